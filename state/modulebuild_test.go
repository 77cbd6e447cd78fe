package state

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestModuleState_String(t *testing.T) {
	tests := []struct {
		s    ModuleState
		want string
		num  int
	}{
		{ModuleStateInit, "init", 0}, {ModuleStateWait, "wait", 1}, {ModuleStateBuild, "build", 2},
		{ModuleStateDone, "done", 3}, {ModuleStateFailed, "failed", 4}, {ModuleStateReady, "ready", 5},
		{ModuleStateGarbage, "garbage", 6}, {ModuleState(9), "ModuleState(9)", 9},
	}
	for _, tt := range tests {
		if tt.s.String() != tt.want || int(tt.s) != tt.num {
			t.Errorf("%d: String() = %q, want %q", tt.num, tt.s.String(), tt.want)
		}
	}
}

func TestStore_PutModuleBuild_Transitions(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	mb, err := b.store.PutModuleBuild(ctx, ModuleBuild{Name: "foo", Stream: "main", State: ModuleStateInit, StateReason: "submitted"})
	if err != nil {
		t.Fatal(err)
	}
	if mb.ID != 1 || len(mb.Transitions) != 1 {
		t.Fatalf("created = %+v", mb)
	}
	b.clock.Advance(time.Second)
	mb.State, mb.StateReason = ModuleStateWait, "planned"
	if mb, err = b.store.PutModuleBuild(ctx, *mb); err != nil {
		t.Fatal(err)
	}
	mb.Version = 20260301 // no state change: no transition
	if mb, err = b.store.PutModuleBuild(ctx, *mb); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Second)
	mb.State, mb.StateReason = ModuleStateFailed, "Component(s) bar failed to build."
	if _, err = b.store.PutModuleBuild(ctx, *mb); err != nil {
		t.Fatal(err)
	}
	got, err := b.store.GetModuleBuild(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var states []ModuleState
	for _, tr := range got.Transitions {
		states = append(states, tr.State)
	}
	if len(states) != 3 || states[0] != ModuleStateInit || states[1] != ModuleStateWait || states[2] != ModuleStateFailed ||
		got.Version != 20260301 || !got.Transitions[2].Time.Equal(b.clock.Now()) || got.Transitions[2].Reason != "Component(s) bar failed to build." {
		t.Errorf("module build = %+v", got)
	}
	if _, err := b.store.GetModuleBuild(ctx, 42); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get missing = %v", err)
	}
	if _, err := b.store.PutModuleBuild(ctx, ModuleBuild{ID: 42, Name: "x", Stream: "y"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Put unknown id = %v", err)
	}
	if _, err := b.store.PutModuleBuild(ctx, ModuleBuild{Name: "x", Stream: "y", State: 17}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Put bad state = %v", err)
	}
}

// A put from a copy read before a cancel was recorded keeps the cancel.
func TestStore_PutModuleBuild_KeepsCancel(t *testing.T) {
	s := setup(t).store
	ctx := context.Background()
	mb, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "m", Stream: "1", State: ModuleStateWait})
	if err != nil {
		t.Fatal(err)
	}
	stale := *mb
	if _, err := s.RequestCancel(ctx, mb.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	stale.State, stale.StateReason = ModuleStateBuild, "building"
	got, err := s.PutModuleBuild(ctx, stale)
	if err != nil {
		t.Fatal(err)
	}
	if got.CancelRequestedBy != "alice" {
		t.Errorf("the stale put undid the cancel: %+v", got)
	}
}
