package state

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

const (
	shaA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	shaB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func statusUpdate(sha, st, desc string) StatusUpdate {
	return StatusUpdate{Forge: "github", Repo: "modules/foo", SHA: sha, Context: "rida/foo:main", State: st, Description: desc}
}

// mustUpsert upserts u and returns the stored entry.
func mustUpsert(t *testing.T, s *Store, u StatusUpdate) *OutboxEntry {
	t.Helper()
	e, err := s.UpsertStatus(context.Background(), u)
	if err != nil {
		t.Fatalf("UpsertStatus(%+v): %v", u, err)
	}
	return e
}

func mustDue(t *testing.T, s *Store, now time.Time) []OutboxEntry {
	t.Helper()
	due, err := s.DueStatuses(context.Background(), now, 0)
	if err != nil {
		t.Fatalf("DueStatuses: %v", err)
	}
	return due
}

func mustRecordPost(t *testing.T, s *Store, e *OutboxEntry, res PostResult) *OutboxEntry {
	t.Helper()
	if res.Version == 0 {
		res.Version = e.Version
	}
	if res.Posted.State == "" {
		res.Posted = PostedStatus{State: e.State, Description: e.Description, TargetURL: e.TargetURL}
	}
	out, err := s.RecordPost(context.Background(), e.Key(), res)
	if err != nil {
		t.Fatalf("RecordPost: %v", err)
	}
	return out
}

func TestStore_UpsertStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("LastWriteWins", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mustUpsert(t, b.store, statusUpdate(shaA, "pending", "queued"))
		b.clock.Advance(time.Second)
		e := mustUpsert(t, b.store, statusUpdate(shaA, "success", "built"))
		if e.State != "success" || e.Description != "built" || e.Version != 2 || e.Done {
			t.Fatalf("entry = %+v, want success/built v2 not done", e)
		}
		due := mustDue(t, b.store, b.clock.Now())
		if len(due) != 1 || due[0].State != "success" {
			t.Fatalf("due = %+v, want only the success", due)
		}
	})

	t.Run("SameContentNoNewVersion", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mustUpsert(t, b.store, statusUpdate(shaA, "pending", "queued"))
		e := mustUpsert(t, b.store, statusUpdate(shaA, "pending", "queued"))
		if e.Version != 1 {
			t.Fatalf("Version = %d after a repeat, want 1", e.Version)
		}
	})

	t.Run("SameAsPostedNotResent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		e := mustUpsert(t, b.store, statusUpdate(shaA, "pending", "queued"))
		e = mustRecordPost(t, b.store, e, PostResult{})
		if !e.Done || e.LastPosted == nil || e.LastPosted.State != "pending" {
			t.Fatalf("after post: %+v, want done with LastPosted pending", e)
		}
		// A different state, then back to what the forge shows, before
		// the worker ran: nothing is owed.
		mustUpsert(t, b.store, statusUpdate(shaA, "running", "building"))
		e = mustUpsert(t, b.store, statusUpdate(shaA, "pending", "queued"))
		if !e.Done || e.Version != 3 {
			t.Fatalf("entry = %+v, want done at version 3", e)
		}
		if due := mustDue(t, b.store, b.clock.Now().Add(time.Hour)); len(due) != 0 {
			t.Fatalf("due = %+v, want none", due)
		}
	})

	t.Run("NewLinkAloneNotResent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := statusUpdate(shaA, "pending", "queued")
		u.TargetURL = "http://rida/api/v1/deliveries/1"
		e := mustRecordPost(t, b.store, mustUpsert(t, b.store, u), PostResult{})
		// The build record exists now: same state and description, the
		// link moves to the build page. The forge is not posted again.
		u.TargetURL = "http://rida/builds/1"
		if e = mustUpsert(t, b.store, u); !e.Done || e.TargetURL != u.TargetURL {
			t.Fatalf("entry = %+v, want done with the new link recorded", e)
		}
		// Not yet posted: the one post carries the newest link.
		v := statusUpdate(shaB, "pending", "queued")
		v.TargetURL = "http://rida/api/v1/deliveries/2"
		mustUpsert(t, b.store, v)
		v.TargetURL = "http://rida/builds/2"
		if e := mustUpsert(t, b.store, v); e.Done || e.TargetURL != v.TargetURL {
			t.Fatalf("entry = %+v, want due with the build link", e)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := statusUpdate(shaA, "pending", "")
		u.Context = ""
		if _, err := b.store.UpsertStatus(ctx, u); !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
	})
}

func TestStore_DueStatuses_Order(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t0 := b.clock.Now()
	e1 := mustUpsert(t, b.store, statusUpdate(shaB, "pending", "queued"))
	b.clock.Advance(time.Second)
	mustUpsert(t, b.store, statusUpdate(shaA, "pending", "queued"))
	// e1 fails and is retried in a minute: it goes behind shaA.
	mustRecordPost(t, b.store, e1, PostResult{Err: "HTTP 502", Retry: true, NextAttempt: t0.Add(time.Minute)})

	if due := mustDue(t, b.store, t0); len(due) != 0 {
		t.Fatalf("due at t0 = %d entries, want 0", len(due))
	}
	due := mustDue(t, b.store, t0.Add(time.Second))
	if len(due) != 1 || due[0].SHA != shaA {
		t.Fatalf("due at t0+1s = %+v, want only shaA", due)
	}
	due = mustDue(t, b.store, t0.Add(time.Hour))
	if len(due) != 2 || due[0].SHA != shaA || due[1].SHA != shaB || due[1].Attempts != 1 || due[1].LastError != "HTTP 502" {
		t.Fatalf("due at t0+1h = %+v, want shaA then shaB (1 attempt)", due)
	}
	next, ok, err := b.store.NextStatusDue(context.Background())
	if err != nil || !ok || !next.Equal(t0.Add(time.Second)) {
		t.Fatalf("NextStatusDue = %v %v %v, want %v", next, ok, err, t0.Add(time.Second))
	}
	if due, _ := b.store.DueStatuses(context.Background(), t0.Add(time.Hour), 1); len(due) != 1 {
		t.Fatalf("limit 1 gave %d", len(due))
	}
}

func TestStore_RecordPost(t *testing.T) {
	t.Parallel()

	t.Run("NewerVersionStaysDue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		v1 := mustUpsert(t, b.store, statusUpdate(shaA, "pending", "queued"))
		mustUpsert(t, b.store, statusUpdate(shaA, "success", "built")) // arrives while v1 is posted
		e := mustRecordPost(t, b.store, v1, PostResult{})
		if e.Done || e.LastPosted.State != "pending" || e.State != "success" {
			t.Fatalf("entry = %+v, want success still due after pending posted", e)
		}
		if due := mustDue(t, b.store, b.clock.Now()); len(due) != 1 || due[0].Version != 2 {
			t.Fatalf("due = %+v, want version 2", due)
		}
	})

	t.Run("StalePostRaceReopens", func(t *testing.T) {
		t.Parallel()
		// The forge shows A; B is being posted; meanwhile A comes back
		// (done, equal to what was posted). Once B's post lands, the
		// forge shows B, so A is owed again.
		b := setup(t)
		a := mustUpsert(t, b.store, statusUpdate(shaA, "pending", "queued"))
		mustRecordPost(t, b.store, a, PostResult{})
		bv := mustUpsert(t, b.store, statusUpdate(shaA, "running", "building"))
		if mustUpsert(t, b.store, statusUpdate(shaA, "pending", "queued")).Done != true {
			t.Fatal("A again should be done")
		}
		e := mustRecordPost(t, b.store, bv, PostResult{})
		if e.Done || e.State != "pending" || e.LastPosted.State != "running" {
			t.Fatalf("entry = %+v, want pending due again", e)
		}
	})

	t.Run("PermanentFailure", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		e := mustUpsert(t, b.store, statusUpdate(shaA, "success", "built"))
		e = mustRecordPost(t, b.store, e, PostResult{Err: "HTTP 404: not found"})
		if !e.Done || !e.Failed || e.LastError != "HTTP 404: not found" || e.Attempts != 1 {
			t.Fatalf("entry = %+v, want done+failed with the error", e)
		}
		if due := mustDue(t, b.store, b.clock.Now().Add(24*time.Hour)); len(due) != 0 {
			t.Fatalf("a permanent failure is due again: %+v", due)
		}
		e = mustUpsert(t, b.store, statusUpdate(shaA, "failure", "build failed"))
		if e.Done || e.Failed || e.Attempts != 0 {
			t.Fatalf("new content after a permanent failure: %+v, want due, attempts reset", e)
		}
	})

	t.Run("EventsRecorded", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		e := mustUpsert(t, b.store, statusUpdate(shaA, "success", "built"))
		e = mustRecordPost(t, b.store, e, PostResult{Err: "HTTP 502", Retry: true, NextAttempt: b.clock.Now().Add(2 * time.Second)})
		mustRecordPost(t, b.store, e, PostResult{})
		evs, err := b.store.EventsSince(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, ev := range evs {
			kinds = append(kinds, ev.Kind)
		}
		if len(kinds) != 2 || kinds[0] != EventStatusFailed || kinds[1] != EventStatusPosted {
			t.Fatalf("events = %v, want failed then posted", kinds)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if _, err := b.store.RecordPost(context.Background(), OutboxKey("github", "a/b", shaA, "c"), PostResult{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestStore_ExpireStatuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := mustUpsert(t, b.store, statusUpdate(shaA, "pending", "queued"))
	mustRecordPost(t, b.store, old, PostResult{})
	mustUpsert(t, b.store, statusUpdate(shaB, "success", "built"))
	b.clock.Advance(7 * time.Hour)
	n, err := b.store.ExpireStatuses(context.Background(), b.clock.Now().Add(-6*time.Hour), func(e OutboxEntry) (StatusUpdate, bool) {
		if e.State != "pending" {
			return StatusUpdate{}, false
		}
		u := e.Update()
		u.State, u.Description = "error", "lost"
		return u, true
	})
	if err != nil || n != 1 {
		t.Fatalf("ExpireStatuses = %d, %v; want 1", n, err)
	}
	e, err := b.store.OutboxEntry(context.Background(), old.Key())
	if err != nil || e.State != "error" || e.Description != "lost" || e.Done {
		t.Fatalf("expired entry = %+v, %v", e, err)
	}
}

func TestStore_Outbox_SurvivesReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rida.db")
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s, err := Open(path, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mustUpsert(t, s, statusUpdate(shaA, "success", "built"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = MustOpen(t, path, Options{Now: clock.Now})
	due := mustDue(t, s, clock.Now())
	if len(due) != 1 || due[0].State != "success" || due[0].Version != 1 {
		t.Fatalf("due after reopen = %+v", due)
	}
}

// TestStore_StatusHook drives the hook through Enqueue, PutModuleBuild and
// UpdateComponentBuild and checks the entries land in the same
// transactions, and that OnStatusQueued fires after commit.
func TestStore_StatusHook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var events []StatusEvent
	var notified atomic.Int32
	hook := func(ev StatusEvent) []StatusUpdate {
		events = append(events, ev)
		var out []StatusUpdate
		for _, d := range ev.Deliveries {
			st := "pending"
			if ev.After != nil && ev.After.State == ModuleStateReady {
				st = "success"
			}
			out = append(out, StatusUpdate{Forge: d.Forge, Repo: d.Repo, SHA: d.After, Context: "rida/foo:main", State: st})
		}
		return out
	}
	path := filepath.Join(t.TempDir(), "rida.db")
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := MustOpen(t, path, Options{Now: clock.Now, StatusesFor: hook, OnStatusQueued: func() { notified.Add(1) }})

	d1, d2 := testDelivery(1), testDelivery(10)
	d2.Repo = "rpms/bar"
	id1, err := s.RecordDelivery(ctx, d1)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := s.RecordDelivery(ctx, d2)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Enqueue(ctx, BuildRequest{Module: "foo", Stream: "main", Kind: RequestModule, DeliveryIDs: []uint64{id1, id2}})
	if err != nil {
		t.Fatal(err)
	}
	if notified.Load() != 1 {
		t.Fatalf("OnStatusQueued called %d times, want 1", notified.Load())
	}
	if len(events) != 1 || events[0].Kind != StatusEventEnqueued || len(events[0].Deliveries) != 2 {
		t.Fatalf("hook events = %+v", events)
	}
	if due := mustDue(t, s, clock.Now()); len(due) != 2 {
		t.Fatalf("due after Enqueue = %d, want 2", len(due))
	}

	mb, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "foo", Stream: "main", RequestID: res.Request.ID, State: ModuleStateInit,
		Components: []ComponentBuild{{Key: "bar", Package: "bar", Batch: 2, State: "queued"}}})
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if last.Kind != StatusEventBuildState || last.Before != nil || last.Request == nil || last.Request.ID != res.Request.ID || len(last.Deliveries) != 2 {
		t.Fatalf("build event = %+v", last)
	}
	if err := s.UpdateComponentBuild(ctx, mb.ID, ComponentBuild{Key: "bar", Package: "bar", Batch: 2, State: "building"}); err != nil {
		t.Fatal(err)
	}
	last = events[len(events)-1]
	if last.Kind != StatusEventBatchProgress || last.Before.Components[0].State != "queued" || last.After.Components[0].State != "building" {
		t.Fatalf("progress event = %+v", last)
	}
	mb.State = ModuleStateReady
	if _, err := s.PutModuleBuild(ctx, *mb); err != nil {
		t.Fatal(err)
	}
	for _, e := range mustDue(t, s, clock.Now()) {
		if e.State != "success" {
			t.Fatalf("entry %s is %s, want success", e.Key(), e.State)
		}
	}
	// A failed transaction writes no status.
	n := len(mustDue(t, s, clock.Now()))
	if _, err := s.PutModuleBuild(ctx, ModuleBuild{ID: 999, Name: "foo", Stream: "main", State: ModuleStateFailed}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if got := len(mustDue(t, s, clock.Now())); got != n {
		t.Fatalf("due changed from %d to %d by a failed put", n, got)
	}
}

func TestStore_StatusHook_InvalidUpdateSkipped(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rida.db")
	s := MustOpen(t, path, Options{StatusesFor: func(StatusEvent) []StatusUpdate {
		return []StatusUpdate{{Forge: "github"}} // no repo, sha, ...
	}})
	if _, err := s.Enqueue(context.Background(), BuildRequest{Module: "foo", Stream: "main", Kind: RequestModule}); err != nil {
		t.Fatalf("Enqueue failed because of a bad status: %v", err)
	}
	if due := mustDue(t, s, time.Now().Add(time.Hour)); len(due) != 0 {
		t.Fatalf("due = %+v", due)
	}
}

func TestStore_StatusEvent_SiblingsOnFinalState(t *testing.T) {
	var events []StatusEvent
	s, err := Open(filepath.Join(t.TempDir(), "rida.db"), Options{StatusesFor: func(ev StatusEvent) []StatusUpdate {
		events = append(events, ev)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	a, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "m", Stream: "s", RequestID: 9, Context: "A", State: ModuleStateBuild})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "m", Stream: "s", RequestID: 9, Context: "B", State: ModuleStateBuild})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "m", Stream: "s", RequestID: 10, State: ModuleStateBuild}); err != nil {
		t.Fatal(err)
	}
	if n := len(events[len(events)-1].Siblings); n != 0 {
		t.Errorf("a non-final event carries %d siblings", n)
	}
	b.State = ModuleStateReady
	if _, err := s.PutModuleBuild(ctx, *b); err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if len(last.Siblings) != 1 || last.Siblings[0].ID != a.ID || last.Siblings[0].Context != "A" {
		t.Errorf("siblings of the final event = %+v", last.Siblings)
	}
}
