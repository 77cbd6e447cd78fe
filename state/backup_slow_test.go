package state

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// stallingWriter accepts nothing until released: a backup client that stops
// reading. started closes at the first Write.
type stallingWriter struct {
	once    sync.Once
	started chan struct{}
	release chan struct{}
	f       *os.File
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.started) })
	<-w.release
	return w.f.Write(p)
}

// TestStore_WriteBackup_SlowReaderDoesNotStallWrites: while a backup's
// reader is stalled, deliveries that grow the file well past its mapped
// size (bbolt must remap, which waits for every read transaction) are
// recorded within a bound; the backup, once read, opens as a valid store
// holding what was there when it started, and no snapshot file is left
// in the directory.
func TestStore_WriteBackup_SlowReaderDoesNotStallWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(filepath.Join(dir, "rida.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first, err := s.RecordDelivery(ctx, &Delivery{Forge: "github", Event: "push", Repo: "a/before", Ref: "refs/heads/main",
		Before: strings.Repeat("1", 40), After: strings.Repeat("2", 40)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "backup.db"))
	if err != nil {
		t.Fatal(err)
	}
	w := &stallingWriter{started: make(chan struct{}), release: make(chan struct{}), f: out}
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.WriteBackup(ctx, w)
		done <- result{n, err}
	}()
	select {
	case <-w.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the backup wrote nothing in 10s")
	}

	// 16 MiB of deliveries: the file grows from a few hundred KiB, so
	// bbolt remaps it several times.
	big := strings.Repeat("x", 64<<10)
	writes := make(chan error, 1)
	go func() {
		for i := range 256 {
			_, err := s.RecordDelivery(ctx, &Delivery{Forge: "github", Event: "push", Repo: fmt.Sprintf("a/during-%d", i), Ref: "refs/heads/main",
				Before: strings.Repeat("1", 40), After: strings.Repeat("3", 40), Commits: []Commit{{ID: strings.Repeat("3", 40), Message: big}}})
			if err != nil {
				writes <- err
				return
			}
		}
		writes <- nil
	}()
	select {
	case err := <-writes:
		if err != nil {
			t.Fatalf("RecordDelivery during the backup: %v", err)
		}
	case <-time.After(30 * time.Second):
		close(w.release)
		t.Fatal("writes did not complete within 30s while the backup's reader was stalled")
	}
	st, err := os.Stat(filepath.Join(dir, "rida.db"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 16<<20 {
		t.Fatalf("rida.db is %d bytes: the writes did not grow it as the test needs", st.Size())
	}

	close(w.release)
	r := <-done
	out.Close()
	if r.err != nil || r.n == 0 {
		t.Fatalf("WriteBackup = %d, %v", r.n, r.err)
	}
	if fi, err := os.Stat(out.Name()); err != nil || fi.Size() != r.n {
		t.Fatalf("backup file: %v, %v; WriteBackup said %d bytes", fi, err, r.n)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "rida.db" {
			t.Errorf("left in the store's directory: %s", e.Name())
		}
	}
	restored, err := Open(out.Name(), Options{})
	if err != nil {
		t.Fatalf("the backup does not open as a store: %v", err)
	}
	defer restored.Close()
	if err := restored.Check(); err != nil {
		t.Errorf("restored store: %v", err)
	}
	if d, err := restored.Delivery(ctx, first); err != nil || d.Repo != "a/before" {
		t.Errorf("restored delivery %d = %+v, %v", first, d, err)
	}
	if d, err := restored.Delivery(ctx, first+1); err == nil {
		t.Errorf("the backup holds delivery %d (%s), recorded after it started", d.ID, d.Repo)
	}
}
