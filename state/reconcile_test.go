package state

import (
	"context"
	"testing"

	bolt "go.etcd.io/bbolt"
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
	record := func(r *BuildRequest) *ModuleBuild {
		t.Helper()
		recs, err := s.RequestModuleBuilds(ctx, r.ID)
		if err != nil || len(recs) != 1 || recs[0].State != ModuleStateInit {
			t.Fatalf("StartNext did not make the request's init record: %+v %v", recs, err)
		}
		return &recs[0]
	}
	// A running request with no build: what a crash between StartNext and
	// the build's record left in files of rida before StartNext made the
	// record itself. Made here by removing the record StartNext wrote.
	noBuild := start("nobuild")
	nb := record(noBuild)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		for _, del := range []struct {
			bucket, key []byte
		}{
			{bucketBuildsByRequest, requestIndexKey(noBuild.ID, nb.ID)},
			{bucketBuildsByState, stateIndexKey(nb.State, nb.ID)},
			{bucketBuildsByStream, buildsByStreamKey(nb.Name, nb.Stream, nb.ID)},
			{bucketModuleBuilds, u64(nb.ID)},
		} {
			if err := tx.Bucket(del.bucket).Delete(del.key); err != nil {
				return err
			}
		}
		return addCount(tx, keyBuildsDeleted, 1) // the build count stays right
	}); err != nil {
		t.Fatal(err)
	}
	// Crash after the build ended, before FinishRequest.
	ended := start("ended")
	eb := record(ended)
	eb.State, eb.FailureKind, eb.StateReason = ModuleStateFailed, FailureBuild, "Component(s) a failed to build."
	if _, err := s.PutModuleBuild(ctx, *eb); err != nil {
		t.Fatal(err)
	}
	// Still building: the runner resumes it.
	building := start("building")
	bb := record(building)
	bb.State = ModuleStateBuild
	if _, err := s.PutModuleBuild(ctx, *bb); err != nil {
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

// FinishBuild ends the request with the build that ends it, in the same
// transaction, with the worst outcome of its builds.
func TestStore_FinishBuild(t *testing.T) {
	s := setup(t).store
	ctx := context.Background()
	if _, err := s.Enqueue(ctx, BuildRequest{Module: "m", Stream: "1", Kind: RequestModule, Reasons: []string{"push"}}); err != nil {
		t.Fatal(err)
	}
	r, err := s.StartNext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := s.RequestModuleBuilds(ctx, r.ID)
	first := recs[0]
	second, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "m", Stream: "1", RequestID: r.ID, State: ModuleStateBuild})
	if err != nil {
		t.Fatal(err)
	}
	first.State, first.FailureKind, first.StateReason = ModuleStateFailed, FailureBuild, "Component(s) a failed to build."
	if _, req, err := s.FinishBuild(ctx, first); err != nil || req != nil {
		t.Fatalf("first build ended: request %+v %v, want it still running", req, err)
	}
	second.State = ModuleStateReady
	_, req, err := s.FinishBuild(ctx, *second)
	if err != nil || req == nil || req.Result != ResultFailed || req.State != RequestFinished {
		t.Fatalf("last build ended: request %+v %v, want finished failed", req, err)
	}
	if run, _, _ := s.QueueSlot(ctx, "m:1"); run != nil {
		t.Errorf("still running: %+v", run)
	}
}
