package state

import (
	"context"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestStore_SubjectEvents(t *testing.T) {
	b := setup(t)
	s, clock := b.store, b.clock
	ctx := context.Background()
	mb1, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "a", Stream: "1", State: ModuleStateInit})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(100 * 24 * time.Hour)
	mb2, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "b", Stream: "1", State: ModuleStateInit})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []ModuleState{ModuleStateWait, ModuleStateBuild} {
		mb1.State, mb2.State = st, st
		if mb1, err = s.PutModuleBuild(ctx, *mb1); err != nil {
			t.Fatal(err)
		}
		if mb2, err = s.PutModuleBuild(ctx, *mb2); err != nil {
			t.Fatal(err)
		}
	}
	kinds := func(s *Store, subject string, after uint64, limit int) []string {
		t.Helper()
		evs, err := s.SubjectEvents(ctx, subject, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			if e.Subject != subject {
				t.Errorf("event %d of %s in %s's events", e.Seq, e.Subject, subject)
			}
			out = append(out, e.Kind)
		}
		return out
	}
	if got := kinds(s, "modulebuild/1", 0, 0); len(got) != 3 {
		t.Errorf("build 1: %v, want 3 state events", got)
	}
	if got := kinds(s, "modulebuild/1", 0, 2); len(got) != 2 {
		t.Errorf("build 1, limit 2: %v", got)
	}
	first, _ := s.SubjectEvents(ctx, "modulebuild/2", 0, 1)
	if got := kinds(s, "modulebuild/2", first[0].Seq, 0); len(got) != 2 {
		t.Errorf("build 2 after its first event: %v, want 2", got)
	}
	if got := kinds(s, "modulebuild/", 0, 0); len(got) != 0 {
		t.Errorf("a prefix of subjects: %v, want nothing", got)
	}

	// Pruning events removes their index entries: build 1's first event
	// is 100 days old.
	if _, err := s.Prune(ctx, clock.Now(), Retention{Events: 90 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := kinds(s, "modulebuild/1", 0, 0); len(got) != 2 {
		t.Errorf("build 1 after prune: %v, want its 2 newer events", got)
	}
	var n int
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketEventsBySubject).Stats().KeyN; return nil })
	if n != 5 {
		t.Errorf("%d index entries after prune, want 5", n)
	}

	// A file without the index gets it at Open.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketEventsBySubject); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyEventsBySubjectFilled)
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := MustOpen(t, b.path, Options{Now: clock.Now})
	if got := kinds(s2, "modulebuild/2", 0, 0); len(got) != 3 {
		t.Errorf("build 2 after refilling: %v, want 3", got)
	}
}
