package scm

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rida-build/rida/scm/scmtest"
)

func TestMirrors_Prune(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m, err := NewMirrors(Options{Dir: filepath.Join(dir, "mirrors")})
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(name string) *Repo {
		t.Helper()
		src := scmtest.New(t, filepath.Join(dir, "rpms", name), "main")
		src.Commit("first", map[string]string{name + ".spec": "Name: " + name + "\n"})
		r, err := m.Fetch(ctx, src.Dir)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	old, busy, fresh := fetch("old"), fetch("busy"), fetch("fresh")
	past := time.Now().Add(-40 * 24 * time.Hour)
	for _, r := range []*Repo{old, busy} {
		for _, p := range []string{filepath.Join(r.Dir, usedStamp), r.Dir} {
			if err := os.Chtimes(p, past, past); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An interrupted prune's leftover goes too.
	if err := os.MkdirAll(filepath.Join(dir, "mirrors", prunePrefix+"x.git", "objects"), 0o755); err != nil {
		t.Fatal(err)
	}

	// busy is in use (its lock held): skipped.
	mi := m.mirror(busy.Dir)
	mi.mu.Lock()
	removed, err := m.Prune(time.Now().Add(-30 * 24 * time.Hour))
	mi.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{old.Dir}) {
		t.Errorf("removed %v, want only %s", removed, old.Dir)
	}
	for _, d := range []string{old.Dir, filepath.Join(dir, "mirrors", prunePrefix+"x.git")} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", d, err)
		}
	}
	if _, err := fresh.Resolve("main"); err != nil {
		t.Errorf("the fresh mirror: %v", err)
	}
	// A handle on the removed mirror fails; a new fetch clones it again.
	if _, err := old.Resolve("main"); err == nil {
		t.Errorf("Resolve on a removed mirror succeeded")
	}
	if _, err := m.Fetch(ctx, filepath.Join(dir, "rpms", "old")); err != nil {
		t.Errorf("fetch after prune: %v", err)
	}

	// Using a mirror stamps it: busy, read now, is kept next time.
	if _, err := m.Fetch(ctx, filepath.Join(dir, "rpms", "busy")); err != nil {
		t.Fatal(err)
	}
	if removed, err := m.Prune(time.Now().Add(-30 * 24 * time.Hour)); err != nil || len(removed) != 0 {
		t.Errorf("second prune removed %v, %v; want nothing", removed, err)
	}
}
