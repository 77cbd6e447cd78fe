package state

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStore_RecordDelivery_Validation(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(d *Delivery)
		field string
	}{
		{"ErrForgeRequired", func(d *Delivery) { d.Forge = "" }, "Forge"},
		{"ErrEventRequired", func(d *Delivery) { d.Event = "" }, "Event"},
		{"ErrRepoRequired", func(d *Delivery) { d.Repo = "" }, "Repo"},
		{"ErrRefRequired", func(d *Delivery) { d.Ref = "" }, "Ref"},
		{"ErrBeforeRequired", func(d *Delivery) { d.Before = "" }, "Before"},
		{"ErrAfterRequired", func(d *Delivery) { d.After = "" }, "After"},
	}
	b := setup(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testDelivery(1)
			tt.edit(d)
			_, err := b.store.RecordDelivery(context.Background(), d)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ValidationError on %s", err, tt.field)
			}
		})
	}
}

func TestStore_RecordDelivery_OK(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	d := testDelivery(7)
	id, err := b.store.RecordDelivery(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if id != 1 || d.ID != 1 {
		t.Errorf("id = %d, d.ID = %d, want 1", id, d.ID)
	}
	if want := ContentKey("github", "rpms/foo", "refs/heads/main", d.Before, d.After); d.ContentKey != want || len(want) != 64 {
		t.Errorf("ContentKey = %q, want %q", d.ContentKey, want)
	}
	got, err := b.store.Delivery(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.DeliveryGUID != "guid-7" || got.Sender != "alice" || got.Disposition != nil || !got.PlannedAt.IsZero() {
		t.Errorf("stored delivery = %+v", got)
	}
	if _, err := b.store.Delivery(ctx, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delivery(99) err = %v, want ErrNotFound", err)
	}
}

// TestStore_RecordDelivery_Concurrent records deliveries from many goroutines
// (exercising DB.Batch grouping) and checks that every call got a distinct ID
// whose record and plan job exist.
func TestStore_RecordDelivery_Concurrent(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	const goroutines, each = 32, 20
	var (
		mu  sync.Mutex
		ids = map[uint64]string{}
		wg  sync.WaitGroup
	)
	var txMu sync.Mutex
	txs := map[int]bool{}
	b.store.recordTxHook = func(id int) { txMu.Lock(); txs[id] = true; txMu.Unlock() }
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				d := testDelivery(g*1000 + i)
				id, err := b.store.RecordDelivery(ctx, d)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, dup := ids[id]; dup {
					errs <- errors.New("duplicate id for " + prev + " and " + d.DeliveryGUID)
				}
				ids[id] = d.DeliveryGUID
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(ids) != goroutines*each {
		t.Fatalf("got %d ids, want %d", len(ids), goroutines*each)
	}
	if len(txs) >= goroutines*each {
		t.Errorf("%d deliveries used %d transactions: DB.Batch grouped nothing", goroutines*each, len(txs))
	}
	t.Logf("%d deliveries in %d transactions", goroutines*each, len(txs))
	for id, guid := range ids {
		d, err := b.store.Delivery(ctx, id)
		if err != nil || d.DeliveryGUID != guid {
			t.Fatalf("delivery %d = %+v, %v; want guid %s", id, d, err, guid)
		}
	}
	leased := 0
	for {
		if _, err := b.store.LeasePlanJob(ctx, "w", time.Minute); errors.Is(err, ErrNoJob) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		leased++
	}
	if leased != goroutines*each {
		t.Errorf("leased %d plan jobs, want %d", leased, goroutines*each)
	}
}

func TestStore_PlanJob_LeaseCompleteRescue(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	id, err := b.store.RecordDelivery(ctx, testDelivery(1))
	if err != nil {
		t.Fatal(err)
	}

	job, err := b.store.LeasePlanJob(ctx, "planner-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if job.DeliveryID != id || job.Delivery == nil || job.Delivery.ID != id || job.Attempt != 1 ||
		job.State != PlanJobLeased || job.LeasedBy != "planner-a" || !job.LeaseExpires.Equal(b.clock.Now().Add(time.Minute)) {
		t.Fatalf("leased job = %+v", job)
	}
	if _, err := b.store.LeasePlanJob(ctx, "planner-b", time.Minute); !errors.Is(err, ErrNoJob) {
		t.Fatalf("second lease err = %v, want ErrNoJob", err)
	}

	// Not yet expired: nothing to rescue.
	if n, err := b.store.RescueExpiredLeases(ctx, b.clock.Now().Add(59*time.Second)); err != nil || n != 0 {
		t.Fatalf("early rescue = %d, %v; want 0", n, err)
	}
	// planner-a dies; after the lease expires the job is available again.
	b.clock.Advance(2 * time.Minute)
	if n, err := b.store.RescueExpiredLeases(ctx, b.clock.Now()); err != nil || n != 1 {
		t.Fatalf("rescue = %d, %v; want 1", n, err)
	}
	job2, err := b.store.LeasePlanJob(ctx, "planner-b", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if job2.ID != job.ID || job2.Attempt != 2 {
		t.Fatalf("re-leased job = %+v", job2)
	}

	// planner-a wakes up and tries to complete: refused.
	_, err = b.store.CompletePlanJob(ctx, job.ID, PlanResult{Worker: "planner-a", Reason: "late"})
	if !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale complete err = %v, want ErrLeaseLost", err)
	}
	d, err := b.store.CompletePlanJob(ctx, job.ID, PlanResult{
		Worker:   "planner-b",
		Requests: []BuildRequest{{Module: "foo", Stream: "main", Kind: RequestComponent, Reasons: []string{"rpms/foo changed"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.PlannedAt.IsZero() || d.Disposition == nil || len(d.Disposition.Requests) != 1 || d.Disposition.Requests[0].Action != EnqueueCreated {
		t.Fatalf("disposition = %+v", d.Disposition)
	}
	_, pending, err := b.store.QueueSlot(ctx, "foo:main")
	if err != nil || pending == nil || pending.DeliveryIDs[0] != id || pending.ContentKeys[0] != d.ContentKey {
		t.Fatalf("pending = %+v, %v; want it to name delivery %d", pending, err, id)
	}
	if _, err := b.store.CompletePlanJob(ctx, job.ID, PlanResult{Worker: "planner-b", Reason: "again"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("double complete err = %v, want ErrNotFound", err)
	}
}

func TestStore_RescueExpiredLeases_AbandonsAfterMaxAttempts(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.store.opts.MaxPlanAttempts = 2
	id, err := b.store.RecordDelivery(ctx, testDelivery(1))
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		if _, err := b.store.LeasePlanJob(ctx, "crashy", time.Second); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		b.clock.Advance(time.Minute)
		if n, err := b.store.RescueExpiredLeases(ctx, b.clock.Now()); err != nil || n != 1 {
			t.Fatalf("attempt %d rescue = %d, %v", attempt, n, err)
		}
	}
	if _, err := b.store.LeasePlanJob(ctx, "crashy", time.Second); !errors.Is(err, ErrNoJob) {
		t.Fatalf("lease after abandon err = %v, want ErrNoJob", err)
	}
	d, _ := b.store.Delivery(ctx, id)
	if d.Disposition == nil || d.Disposition.Reason == "" || d.PlannedAt.IsZero() {
		t.Errorf("abandoned delivery = %+v", d)
	}
}

func TestStore_CompletePlanJob_Validation(t *testing.T) {
	b := setup(t)
	tests := []struct {
		name  string
		res   PlanResult
		field string
	}{
		{"ErrWorkerRequired", PlanResult{Reason: "x"}, "PlanResult.Worker"},
		{"ErrReasonRequired", PlanResult{Worker: "w"}, "PlanResult.Reason"},
		{"ErrBadKind", PlanResult{Worker: "w", Requests: []BuildRequest{{Module: "m", Stream: "s", Kind: "x"}}}, "BuildRequest.Kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.store.CompletePlanJob(context.Background(), 1, tt.res)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("err = %v, want ValidationError on %s", err, tt.field)
			}
		})
	}
}

func TestStore_ReleaseLeases_AtStartup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rida.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.RecordDelivery(ctx, &Delivery{Forge: "github", Event: "push", Repo: "a/b", Ref: "refs/heads/main",
		Before: strings.Repeat("1", 40), After: strings.Repeat("2", 40)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LeasePlanJob(ctx, "dead-planner", time.Hour); err != nil {
		t.Fatal(err)
	}
	s.Close() // the process dies holding the lease

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.LeasePlanJob(ctx, "new-planner", time.Hour); !errors.Is(err, ErrNoJob) {
		t.Fatalf("before release: lease err = %v, want ErrNoJob", err)
	}
	if n, err := s.ReleaseLeases(ctx); err != nil || n != 1 {
		t.Fatalf("ReleaseLeases = %d, %v", n, err)
	}
	if j, err := s.LeasePlanJob(ctx, "new-planner", time.Hour); err != nil || j == nil {
		t.Fatalf("after release: %v, %v", j, err)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}
