package local_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
)

// TestBackend_Slots_BoundAcrossBuilds runs two module builds at once on two
// backends sharing one slot: each batch allows 4 parallel builds, yet no two
// component builds may overlap. Every %build takes a lock directory with
// mkdir (atomic) and records an overlap if it is taken.
func TestBackend_Slots_BoundAcrossBuilds(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "lock")
	overlap := filepath.Join(dir, "overlap")
	body := fmt.Sprintf("if mkdir %s 2>/dev/null; then sleep 0.2; rmdir %s; else touch %s; fi", lock, lock, overlap)
	slots := runner.NewLimiter(1)
	var wg sync.WaitGroup
	for b := range 2 {
		var comps []*runner.Component
		for i := range 3 {
			name := fmt.Sprintf("slot-%d-%d", b, i)
			comps = append(comps, specRepo(t, name, tinySpec(name, "", body), nil))
		}
		be := mustNew(t, local.Options{Parallel: 4, Slots: slots, Sandbox: local.SandboxOff, Logger: discardLogger()})
		build := newBuild(int64(200+b), comps)
		rec := &recorder{build: build}
		wg.Go(func() { mustBuildBatches(t, be, build, rec, 2) })
		t.Cleanup(func() {
			for _, c := range comps {
				if c.State != runner.ComponentComplete {
					t.Errorf("%s: %s %s", c.Key, c.State, c.Reason)
				}
			}
		})
	}
	wg.Wait()
	if _, err := os.Stat(overlap); err == nil {
		t.Error("two component builds ran at once although only one slot exists")
	}
}
