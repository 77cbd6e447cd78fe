package local_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
)

// A tree removed by retention: RemoveTree finds the build's directory,
// reports its size, can be repeated, and a later build that would reuse
// from it gets runner.ErrReuseUnavailable (the runner then builds the
// component).
func TestRemoveTree_ReuseFallsBack(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	be := mustNew(t, local.Options{WorkDir: work})
	pkg := specRepo(t, "tree-pkg", tinySpec("tree-pkg", "", ""), nil)
	first := newBuild(31, []*runner.Component{pkg})
	mustBuildBatches(t, be, first, &recorder{build: first}, 99)
	res, err := be.Finish(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	dir := local.TreeDir(work, first.Name, first.Stream, first.Version, first.Context, first.ID)
	if dir != be.BuildDir(first) || filepath.Dir(res.Dir) != dir {
		t.Fatalf("TreeDir %s, BuildDir %s, result %s: want one directory", dir, be.BuildDir(first), res.Dir)
	}
	size, err := local.RemoveTree(work, first.Name, first.Stream, first.Version, first.Context, first.ID)
	if err != nil || size == 0 {
		t.Fatalf("RemoveTree: %d bytes, %v", size, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s still there: %v", dir, err)
	}
	if n, err := local.RemoveTree(work, first.Name, first.Stream, first.Version, first.Context, first.ID); err != nil || n != 0 {
		t.Errorf("second RemoveTree: %d, %v; want 0, nil", n, err)
	}

	old := first.Batches[1].Components[0]
	again := *pkg
	second := newBuild(32, []*runner.Component{&again})
	again.State, again.NVR, again.RPMs = runner.ComponentReused, old.NVR, slices.Clone(old.RPMs)
	again.ReusedFrom, again.ReusedLocation = first.ID, res.Dir
	if err := be.Prepare(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	if err := be.Reuse(t.Context(), second, &again); !errors.Is(err, runner.ErrReuseUnavailable) {
		t.Errorf("Reuse from a removed tree: %v, want runner.ErrReuseUnavailable", err)
	}
}
