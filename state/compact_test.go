package state

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// After retention freed most of the file, Compact gives the space back and
// keeps every record.
func TestCompact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rida.db")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, err := Open(path, Options{Now: clock, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3000 {
		d := testDelivery(i)
		d.Commits[0].Message = string(make([]byte, 2000))
		if _, err := s.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for range 2900 {
		job, err := s.LeasePlanJob(ctx, "w", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompletePlanJob(ctx, job.ID, PlanResult{Worker: "w", Reason: "planned"}); err != nil {
			t.Fatal(err)
		}
	}
	keep, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "m", Stream: "1", State: ModuleStateReady})
	if err != nil {
		t.Fatal(err)
	}
	// Retention drops the 2900 planned deliveries and the event log; 100
	// deliveries wait to be planned and stay.
	now = now.Add(100 * 24 * time.Hour)
	if _, err := s.Prune(ctx, now, Retention{Events: time.Hour, Deliveries: time.Hour}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, after, err := Compact(path)
	if err != nil {
		t.Fatal(err)
	}
	if after > before/2 {
		t.Errorf("compact: %d bytes before, %d after", before, after)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if mb, err := s.GetModuleBuild(ctx, keep.ID); err != nil || mb.Name != "m" {
		t.Errorf("build after compact: %+v %v", mb, err)
	}
	if _, n, err := s.Deliveries(ctx, 0, 1); err != nil || n != 100 {
		t.Errorf("deliveries after compact: %d %v", n, err)
	}
}
