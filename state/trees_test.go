package state

import (
	"context"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestStore_TreeCandidates(t *testing.T) {
	b := setup(t)
	s, clock := b.store, b.clock
	ctx := context.Background()
	comps := []ComponentBuild{{Key: "pkg", Package: "pkg", Batch: 2, State: "complete", RPMs: []string{"pkg-1-1.noarch"}}}
	put := func(name, ctxName string, st ModuleState, version uint64) uint64 {
		t.Helper()
		mb, err := s.PutModuleBuild(ctx, ModuleBuild{Name: name, Stream: "1", Context: ctxName, Version: version,
			State: st, Platform: "f40", Components: comps, ResultDir: "/x/repo", Scratch: ctxName == "c1_1"})
		if err != nil {
			t.Fatal(err)
		}
		return mb.ID
	}
	failedOld := put("a", "c1", ModuleStateFailed, 1) // 1
	r1 := put("a", "c1", ModuleStateReady, 10)        // 2
	needed := put("a", "c1", ModuleStateReady, 10)    // 3: an unfinished build is built against it
	highest := put("a", "c1", ModuleStateReady, 100)  // 4: resolution picks it (highest version)
	r5 := put("a", "c1", ModuleStateReady, 10)        // 5
	scratch := put("a", "c1_1", ModuleStateDone, 10)  // 6
	c2 := put("a", "c2", ModuleStateReady, 10)        // 7: newest of context c2
	clock.Advance(10 * 24 * time.Hour)
	failedNew := put("a", "c1", ModuleStateFailed, 1) // 8
	newest := put("a", "c1", ModuleStateReady, 11)    // 9
	if _, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "b", Stream: "1", State: ModuleStateBuild,
		BuildRequires: []BuiltAgainst{{Name: "a", Stream: "1", BuildID: needed}}}); err != nil {
		t.Fatal(err)
	}
	_ = newest
	clock.Advance(5 * 24 * time.Hour)
	r := Retention{FailedTrees: 14 * 24 * time.Hour, KeepTrees: 2}
	got := candidateIDs(t, s, clock.Now(), r)
	// Kept: the newest two (9, 7), the newest of c1 (9) and c2 (7), the
	// one resolution picks (4), the one build b needs (3), the failed
	// build younger than 14 days (8).
	if want := []uint64{failedOld, r1, r5, scratch}; !slices.Equal(got, want) {
		t.Errorf("candidates %v, want %v (kept: %d %d %d %d)", got, want, highest, needed, c2, failedNew)
	}
	if got := candidateIDs(t, s, clock.Now(), Retention{}); len(got) != 0 {
		t.Errorf("zero retention: candidates %v, want none", got)
	}

	// Marking removes a build from the candidates for good; a put from a
	// copy read before keeps the mark.
	stale, err := s.GetModuleBuild(ctx, r1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkTreePruned(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkTreePruned(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutModuleBuild(ctx, *stale); err != nil {
		t.Fatal(err)
	}
	mb, err := s.GetModuleBuild(ctx, r1)
	if err != nil || mb.TreePrunedAt.IsZero() {
		t.Fatalf("build %d after a stale put: %+v %v, want TreePrunedAt kept", r1, mb, err)
	}
	if got := candidateIDs(t, s, clock.Now(), r); slices.Contains(got, r1) {
		t.Errorf("candidates %v still hold the pruned build %d", got, r1)
	}
	evs, err := s.EventsSince(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Kind == EventModuleBuildTreePruned && e.Subject == "modulebuild/2" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d tree_pruned events for build %d, want 1", n, r1)
	}

	// A file whose index was never filled gets it at Open.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketTreesKept); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyTreesKeptFilled)
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := MustOpen(t, b.path, Options{Now: clock.Now})
	if got, want := candidateIDs(t, s2, clock.Now(), r), []uint64{failedOld, r5, scratch}; !slices.Equal(got, want) {
		t.Errorf("after refilling the index: candidates %v, want %v", got, want)
	}
}

func candidateIDs(t *testing.T, s *Store, now time.Time, r Retention) []uint64 {
	t.Helper()
	c, err := s.TreeCandidates(context.Background(), now, r)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, mb := range c {
		ids = append(ids, mb.ID)
	}
	return ids
}
