package main

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/rida-build/rida/state"
)

// rida check says a store is consistent, lists what is not (exit 1) once
// an index is broken, and refuses a data dir without a store or a store
// another process holds.
func TestCheck_Command(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := runMain(t, "check", "--data-dir", data); code != exitInfra || !strings.Contains(errOut, "no such file") {
		t.Errorf("no store: exit %d, %q", code, errOut)
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(data, "rida.db")
	st, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := st.PutModuleBuild(context.Background(), state.ModuleBuild{Name: "m", Stream: "1", State: state.ModuleStateReady})
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runMain(t, "check", "--data-dir", data); code != exitInfra || !strings.Contains(errOut, "is rida serve running on it?") {
		t.Errorf("store held by another: exit %d, %q", code, errOut)
	}
	st.Close()
	if code, out, errOut := runMain(t, "check", "--data-dir", data); code != exitOK || !strings.Contains(out, "consistent") {
		t.Fatalf("check: exit %d, %q %q", code, out, errOut)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("builds_by_state")).Delete(append([]byte{byte(state.ModuleStateReady)}, u64be(mb.ID)...))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, out, _ := runMain(t, "check", "--data-dir", data)
	if code != exitFail || !strings.Contains(out, "module build record missing from the state index: (state ready, build 1)") {
		t.Errorf("broken index: exit %d, %q", code, out)
	}
}

func u64be(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
