package bigstore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rida-build/rida/state"
)

func TestLastSeq(t *testing.T) {
	ctx := context.Background()
	st, err := state.Open(filepath.Join(t.TempDir(), "rida.db"), state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := lastSeq(ctx, st); err != nil || n != 0 {
		t.Fatalf("empty log: lastSeq = %d, %v; want 0", n, err)
	}
	mb, err := st.PutModuleBuild(ctx, state.ModuleBuild{Name: "m", Stream: "1", State: state.ModuleStateReady})
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(2); want <= 20; want++ {
		if err := st.RecordBuildErrors(ctx, mb.ID, []string{"e"}); err != nil {
			t.Fatal(err)
		}
		if n, err := lastSeq(ctx, st); err != nil || n != want {
			t.Fatalf("lastSeq = %d, %v; want %d", n, err, want)
		}
	}
}
