package state

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestStore_DueStatusesBy_Budget: a forge with budget 0 is left out however
// many of the oldest entries are its own, a budget caps a forge's share, and
// the entries returned keep the due order.
func TestStore_DueStatusesBy_Budget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for i := range 20 {
		mustUpsert(t, b.store, StatusUpdate{Forge: "github", Repo: "modules/foo", SHA: fmt.Sprintf("%040x", i), Context: "rida/foo:main", State: "pending"})
		b.clock.Advance(time.Millisecond)
	}
	for i := range 3 {
		mustUpsert(t, b.store, StatusUpdate{Forge: "gitlab", Repo: "modules/foo", SHA: fmt.Sprintf("%040x", 100+i), Context: "rida/foo:main", State: "pending"})
		b.clock.Advance(time.Millisecond)
	}
	now := b.clock.Now()
	forges := func(es []OutboxEntry) map[string]int {
		m := map[string]int{}
		for _, e := range es {
			m[e.Forge]++
		}
		return m
	}

	// Without a budget the 10 oldest are all github's.
	due, err := b.store.DueStatuses(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := forges(due); got["github"] != 10 || got["gitlab"] != 0 {
		t.Fatalf("no budget: %v, want 10 github", got)
	}

	calls := map[string]int{}
	due, err = b.store.DueStatusesBy(ctx, now, 10, func(f string) int {
		calls[f]++
		if f == "github" {
			return 0
		}
		return 100
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := forges(due); got["github"] != 0 || got["gitlab"] != 3 {
		t.Fatalf("github skipped: %v, want the 3 gitlab entries", got)
	}
	if calls["github"] != 1 || calls["gitlab"] != 1 {
		t.Fatalf("budget called %v, want once per forge", calls)
	}

	due, err = b.store.DueStatusesBy(ctx, now, 10, func(f string) int {
		if f == "github" {
			return 4
		}
		return 100
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := forges(due); got["github"] != 4 || got["gitlab"] != 3 {
		t.Fatalf("github capped at 4: %v", got)
	}
	for i := 1; i < len(due); i++ {
		if due[i].NextAttempt.Before(due[i-1].NextAttempt) {
			t.Fatalf("entry %d is due before entry %d: %v < %v", i, i-1, due[i].NextAttempt, due[i-1].NextAttempt)
		}
	}
}
