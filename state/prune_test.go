package state

import (
	"context"
	"testing"
	"time"
)

func TestStore_Prune(t *testing.T) {
	b := setup(t)
	s, clock := b.store, b.clock
	ctx := context.Background()
	t0 := clock.Now()
	// Day 0: two deliveries, one planned, one still waiting; a posted
	// status.
	plannedOld := mustRecordDelivery(t, s, testDelivery(1))
	waiting := mustRecordDelivery(t, s, testDelivery(2))
	job, err := s.LeasePlanJob(ctx, "w", time.Hour)
	if err != nil || job.DeliveryID != plannedOld {
		t.Fatalf("lease: %+v %v", job, err)
	}
	if _, err := s.CompletePlanJob(ctx, job.ID, PlanResult{Worker: "w", Reason: "done"}); err != nil {
		t.Fatal(err)
	}
	e := mustUpsert(t, s, statusUpdate(shaA, "success", "built"))
	mustRecordPost(t, s, e, PostResult{})
	mustUpsert(t, s, statusUpdate(shaB, "pending", "queued")) // not posted: kept
	// Day 10: a planned delivery with commits.
	clock.Advance(10 * 24 * time.Hour)
	middle := mustRecordDelivery(t, s, testDelivery(3))
	job, _ = s.LeasePlanJob(ctx, "w", time.Hour)
	if job.DeliveryID == waiting {
		// leave the waiting one unplanned: take the next
		job, _ = s.LeasePlanJob(ctx, "w", time.Hour)
	}
	if _, err := s.CompletePlanJob(ctx, job.ID, PlanResult{Worker: "w", Reason: "done"}); err != nil {
		t.Fatal(err)
	}
	// Day 100: prune with 90 days for deliveries and events, 7 for
	// commits and statuses.
	clock.Advance(90 * 24 * time.Hour)
	r := Retention{Events: 90 * 24 * time.Hour, Deliveries: 90 * 24 * time.Hour, DeliveryCommits: 7 * 24 * time.Hour, PostedStatuses: 7 * 24 * time.Hour}
	p, err := s.Prune(ctx, clock.Now(), r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Deliveries != 1 || p.DeliveryCommits != 1 || p.Statuses != 1 || p.Events == 0 {
		t.Errorf("pruned %+v, want 1 delivery, 1 commit list, 1 status and the old events", p)
	}
	if _, err := s.Delivery(ctx, plannedOld); !isNotFound(err) {
		t.Errorf("the old planned delivery is still there: %v", err)
	}
	if _, err := s.Delivery(ctx, waiting); err != nil {
		t.Errorf("a delivery waiting to be planned was removed: %v", err)
	}
	d, err := s.Delivery(ctx, middle)
	if err != nil || len(d.Commits) != 0 || d.CommitsOmitted != 1 {
		t.Errorf("middle delivery %+v %v, want its commits dropped and counted", d, err)
	}
	if _, err := s.OutboxEntry(ctx, statusUpdate(shaA, "", "").Key()); !isNotFound(err) {
		t.Errorf("posted status kept: %v", err)
	}
	if _, err := s.OutboxEntry(ctx, statusUpdate(shaB, "", "").Key()); err != nil {
		t.Errorf("a status still owed was removed: %v", err)
	}
	evs, err := s.EventsSince(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Time.Before(t0.Add(10 * 24 * time.Hour)) {
			t.Errorf("event from day 0 kept: %+v", ev)
		}
	}
	// Idempotent.
	if p, err := s.Prune(ctx, clock.Now(), r); err != nil || p != (Pruned{}) {
		t.Errorf("second prune: %+v %v", p, err)
	}
}

func mustRecordDelivery(t *testing.T, s *Store, d *Delivery) uint64 {
	t.Helper()
	id, err := s.RecordDelivery(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
