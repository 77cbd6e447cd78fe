package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/state"
)

// One retention run: the store's records, the build trees retention no
// longer keeps (removed, then marked on the build), the trees builds still
// need, and an unused mirror.
func TestPruner_RunOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := state.Open(filepath.Join(dir, "rida.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	trees := filepath.Join(dir, "builds")
	comps := []state.ComponentBuild{{Key: "p", Package: "p", Batch: 2, State: "complete", RPMs: []string{"p-1-1.noarch"}}}
	put := func(st state.ModuleState) (*state.ModuleBuild, string) {
		t.Helper()
		mb, err := store.PutModuleBuild(ctx, state.ModuleBuild{Name: "m", Stream: "1", Version: 1, Context: "c", State: st, Components: comps})
		if err != nil {
			t.Fatal(err)
		}
		tree := local.TreeDir(trees, mb.Name, mb.Stream, mb.Version, mb.Context, int64(mb.ID))
		if err := os.MkdirAll(filepath.Join(tree, "repo"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, "repo", "p-1-1.noarch.rpm"), []byte("rpm"), 0o644); err != nil {
			t.Fatal(err)
		}
		return mb, tree
	}
	failed, failedTree := put(state.ModuleStateFailed)
	old, oldTree := put(state.ModuleStateReady)
	_, keptTree := put(state.ModuleStateReady)
	_, newestTree := put(state.ModuleStateReady)

	mirrors, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(dir, "mirrors")})
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "mirrors", "gone-000000000000.git")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-40 * 24 * time.Hour)
	if err := os.Chtimes(stale, past, past); err != nil {
		t.Fatal(err)
	}

	p := &pruner{store: store, r: state.Retention{FailedTrees: 14 * 24 * time.Hour, KeepTrees: 2},
		treesDir: trees, mirrors: mirrors, mirrorAge: 30 * 24 * time.Hour}
	res, err := p.runOnce(ctx, time.Now().Add(15*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Trees != 2 || res.TreeBytes != 6 || res.Mirrors != 1 {
		t.Errorf("pruned %+v, want 2 trees of 3 bytes and 1 mirror", res)
	}
	for tree, want := range map[string]bool{failedTree: false, oldTree: false, keptTree: true, newestTree: true, stale: false} {
		if _, err := os.Stat(tree); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", tree, err == nil, want)
		}
	}
	for _, id := range []uint64{failed.ID, old.ID} {
		mb, err := store.GetModuleBuild(ctx, id)
		if err != nil || mb.TreePrunedAt.IsZero() {
			t.Errorf("build %d: %+v %v, want its tree recorded as pruned", id, mb, err)
		}
	}
	if res, err := p.runOnce(ctx, time.Now().Add(15*24*time.Hour)); err != nil || !res.empty() {
		t.Errorf("second run: %+v %v, want nothing left to do", res, err)
	}
}
