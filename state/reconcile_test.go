package state

import (
	"context"
	"testing"
)

func TestStore_ReconcileRunning(t *testing.T) {
	s := setup(t).store
	ctx := context.Background()
	start := func(module string) *BuildRequest {
		t.Helper()
		if _, err := s.Enqueue(ctx, BuildRequest{Module: module, Stream: "1", Kind: RequestModule, Reasons: []string{"push"}}); err != nil {
			t.Fatal(err)
		}
		r, err := s.StartNext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Crash after StartNext, before the build was recorded.
	noBuild := start("nobuild")
	// Crash after the build ended, before FinishRequest.
	ended := start("ended")
	if _, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "ended", Stream: "1", RequestID: ended.ID, State: ModuleStateFailed, FailureKind: FailureBuild, StateReason: "Component(s) a failed to build."}); err != nil {
		t.Fatal(err)
	}
	// Still building: the runner resumes it.
	building := start("building")
	if _, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "building", Stream: "1", RequestID: building.ID, State: ModuleStateBuild}); err != nil {
		t.Fatal(err)
	}
	fixed, err := s.ReconcileRunning(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Reconciled{}
	for _, f := range fixed {
		got[f.Key] = f
	}
	if len(fixed) != 2 || got["nobuild:1"].Action != "requeued" || got["ended:1"].Action != "finished" || got["ended:1"].Result != ResultFailed {
		t.Fatalf("reconciled %+v", fixed)
	}
	if run, pend, _ := s.QueueSlot(ctx, "nobuild:1"); run != nil || pend == nil || pend.ID != noBuild.ID {
		t.Errorf("nobuild: running %v pending %v, want its request pending again", run, pend)
	}
	if run, _, _ := s.QueueSlot(ctx, "ended:1"); run != nil {
		t.Errorf("ended: still running %+v", run)
	}
	if r, _ := s.Request(ctx, ended.ID); r.Result != ResultFailed || r.ResultReason == "" {
		t.Errorf("ended request %+v", r)
	}
	if run, _, _ := s.QueueSlot(ctx, "building:1"); run == nil || run.ID != building.ID {
		t.Errorf("building: %v, want left running", run)
	}
	// Idempotent.
	if again, err := s.ReconcileRunning(ctx); err != nil || len(again) != 0 {
		t.Errorf("second run: %+v %v", again, err)
	}
}
