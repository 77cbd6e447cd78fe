package state

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStore_WriteBackup_RestoresToAnEqualStore(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(filepath.Join(dir, "rida.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, err := s.RecordDelivery(ctx, &Delivery{Forge: "github", Event: "push", Repo: "a/b", Ref: "refs/heads/main",
		Before: strings.Repeat("1", 40), After: strings.Repeat("2", 40)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "backup.db"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.WriteBackup(ctx, f)
	f.Close()
	if err != nil || n == 0 {
		t.Fatalf("WriteBackup = %d, %v", n, err)
	}
	restored, err := Open(filepath.Join(dir, "backup.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	d, err := restored.Delivery(ctx, id)
	if err != nil || d.Repo != "a/b" {
		t.Errorf("restored delivery = %+v, %v", d, err)
	}
	if err := restored.Check(); err != nil {
		t.Errorf("restored store: %v", err)
	}
}
