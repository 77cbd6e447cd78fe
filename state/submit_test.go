package state

import (
	"context"
	"errors"
	"strconv"
	"testing"
)

func submitReq(commit string) BuildRequest {
	return BuildRequest{Module: "foo", Stream: "main", Kind: RequestModule, ModuleRepo: "https://src.example/modules/foo",
		ModuleCommit: commit, Reasons: []string{"submitted by alice"}}
}

// TestStore_EnqueueWithBuild: the request and its init record are made in
// one transaction and survive a reopen of the file; a later submission
// merging into the pending request reuses the record.
func TestStore_EnqueueWithBuild(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	res, builds, err := b.store.EnqueueWithBuild(ctx, submitReq("c1"), RequestOptions{Owner: "alice", RebuildStrategy: "all"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != EnqueueCreated || len(builds) != 1 {
		t.Fatalf("action %s, builds %v", res.Action, builds)
	}
	mb := builds[0]
	if mb.ID == 0 || mb.State != ModuleStateInit || mb.RequestID != res.Request.ID || mb.Owner != "alice" ||
		mb.RebuildStrategy != "all" || mb.ModuleCommit != "c1" || mb.StateReason != ReasonQueued || mb.Scratch {
		t.Errorf("record %+v", mb)
	}
	// Reopen: both are on disk.
	if err := b.store.Close(); err != nil {
		t.Fatal(err)
	}
	b.store = MustOpen(t, b.path, Options{Now: b.clock.Now})
	recs, err := b.store.RequestModuleBuilds(ctx, res.Request.ID)
	if err != nil || len(recs) != 1 || recs[0].ID != mb.ID {
		t.Fatalf("after reopen: %v, %v", recs, err)
	}
	_, pending, err := b.store.QueueSlot(ctx, "foo:main")
	if err != nil || pending == nil || pending.ID != res.Request.ID {
		t.Fatalf("pending %v, %v", pending, err)
	}
	// Merge: same record, new commit and owner.
	res2, builds2, err := b.store.EnqueueWithBuild(ctx, submitReq("c2"), RequestOptions{Owner: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Action != EnqueueMerged || len(builds2) != 1 || builds2[0].ID != mb.ID || builds2[0].ModuleCommit != "c2" ||
		builds2[0].Owner != "bob" || builds2[0].RebuildStrategy != "all" {
		t.Errorf("merged: %s %+v", res2.Action, builds2)
	}
	// A push merging in keeps the record's commit in step.
	push := submitReq("c3")
	push.Kind = RequestComponent
	if _, err := b.store.Enqueue(ctx, push); err != nil {
		t.Fatal(err)
	}
	if cur, err := b.store.GetModuleBuild(ctx, mb.ID); err != nil || cur.ModuleCommit != "c3" {
		t.Errorf("after a push: %v, %v", cur, err)
	}
	// The same commit again: 409-style conflict, nothing new.
	_, _, err = b.store.EnqueueWithBuild(ctx, submitReq("c3"), RequestOptions{})
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) {
		t.Errorf("same commit queued: %v", err)
	}
	if all, _ := b.store.StreamBuilds(ctx, "foo", "main"); len(all) != 1 {
		t.Errorf("%d builds, want 1", len(all))
	}
}

// TestStore_EnqueueWithBuild_Conflicts: a commit a done or ready build
// built gets MBS's message; a failed one may be built again; scratch
// builds neither conflict nor are conflicted with; a scratch submission is
// not merged into a regular pending request.
func TestStore_EnqueueWithBuild_Conflicts(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	put := func(commit string, st ModuleState, scratch bool) uint64 {
		t.Helper()
		mb, err := b.store.PutModuleBuild(ctx, ModuleBuild{Name: "foo", Stream: "main", ModuleCommit: commit, State: st, Scratch: scratch})
		if err != nil {
			t.Fatal(err)
		}
		return mb.ID
	}
	put("ready", ModuleStateReady, false)
	put("failed", ModuleStateFailed, false)
	put("scratch", ModuleStateDone, true)
	_, _, err := b.store.EnqueueWithBuild(ctx, submitReq("ready"), RequestOptions{})
	if !errors.Is(err, ErrConflict) {
		t.Errorf("ready commit: %v", err)
	}
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Message != "Module (state=5) already exists. Only a new build, resubmission of a failed build or build against new buildrequirements is allowed." || ce.BuildID != 1 {
		t.Errorf("ready commit: %#v", ce)
	}
	// A scratch build of a built commit is fine (MBS gives it a context
	// suffix); it is queued as scratch.
	res, builds, err := b.store.EnqueueWithBuild(ctx, submitReq("ready"), RequestOptions{Scratch: true})
	if err != nil || len(builds) != 1 || !builds[0].Scratch {
		t.Fatalf("scratch of a ready commit: %v %v", builds, err)
	}
	if o, err := b.store.RequestOptionsFor(ctx, res.Request.ID); err != nil || !o.Scratch {
		t.Errorf("options %+v, %v", o, err)
	}
	// A regular submission of a commit only a scratch build built, merging
	// into the pending scratch request: allowed, and no longer scratch.
	if _, builds, err = b.store.EnqueueWithBuild(ctx, submitReq("scratch"), RequestOptions{}); err != nil || builds[0].Scratch {
		t.Fatalf("commit only scratch-built: %v %v", builds, err)
	}
	// Now a scratch submission would merge into a regular request: refused.
	if _, _, err := b.store.EnqueueWithBuild(ctx, submitReq("x"), RequestOptions{Scratch: true}); !errors.Is(err, ErrConflict) {
		t.Errorf("scratch into a regular pending request: %v", err)
	}
	// Start it, then resubmit the failed commit: queued behind it.
	if _, err := b.store.StartNext(ctx); err != nil {
		t.Fatal(err)
	}
	_, builds, err = b.store.EnqueueWithBuild(ctx, submitReq("failed"), RequestOptions{})
	if err != nil || len(builds) != 1 || builds[0].StateReason != "queued behind build 4" {
		t.Fatalf("failed commit again: %+v, %v", builds, err)
	}
	if err := b.store.SetPaused(ctx, PauseAll, true, "ops"); err != nil {
		t.Fatal(err)
	}
	_, builds, err = b.store.EnqueueWithBuild(ctx, submitReq("other"), RequestOptions{})
	if err != nil || builds[0].StateReason != ReasonAllPaused || builds[0].ID != 5 {
		t.Errorf("paused: %+v, %v", builds, err)
	}
}

// TestStore_CancelQueued: cancelling a build whose request is still pending
// takes the request out of the queue and fails the build, together; a
// build whose request runs is left to the runner.
func TestStore_CancelQueued(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	res, builds, err := b.store.EnqueueWithBuild(ctx, submitReq("c1"), RequestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.RequestCancel(ctx, builds[0].ID, "cancelled by alice"); err != nil {
		t.Fatal(err)
	}
	mb, done, err := b.store.CancelQueued(ctx, builds[0].ID, "cancelled by alice")
	if err != nil || !done || mb.State != ModuleStateFailed || mb.FailureKind != FailureCanceled || mb.StateReason != "cancelled by alice" {
		t.Fatalf("CancelQueued: %+v %v %v", mb, done, err)
	}
	rq, err := b.store.Request(ctx, res.Request.ID)
	if err != nil || rq.State != RequestFinished || rq.Result != ResultCanceled {
		t.Errorf("request %+v, %v", rq, err)
	}
	if _, err := b.store.StartNext(ctx); !errors.Is(err, ErrNoJob) {
		t.Errorf("StartNext after the cancel: %v", err)
	}
	if running, pending, err := b.store.QueueSlot(ctx, "foo:main"); running != nil || pending != nil || err != nil {
		t.Errorf("slot %v %v %v", running, pending, err)
	}
	// Running request: not queued any more, nothing changes.
	_, builds, err = b.store.EnqueueWithBuild(ctx, submitReq("c2"), RequestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.StartNext(ctx); err != nil {
		t.Fatal(err)
	}
	if _, done, err := b.store.CancelQueued(ctx, builds[0].ID, "x"); done || err != nil {
		t.Errorf("running: done %v, %v", done, err)
	}
	if cur, _ := b.store.GetModuleBuild(ctx, builds[0].ID); cur.State != ModuleStateInit {
		t.Errorf("running request's build: %s", cur.State)
	}
}

// TestStore_RequeueRunning_MovesQueuedBuilds: after a restart, a running
// request merged into a pending one hands its init record over when the
// pending one has none, else the record ends as garbage naming it.
func TestStore_RequeueRunning_MovesQueuedBuilds(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	_, first, err := b.store.EnqueueWithBuild(ctx, submitReq("c1"), RequestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.StartNext(ctx); err != nil {
		t.Fatal(err)
	}
	push := submitReq("c2")
	push.Kind = RequestComponent
	res, err := b.store.Enqueue(ctx, push)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := b.store.RequeueRunning(ctx, "foo:main")
	if err != nil || merged.ID != res.Request.ID {
		t.Fatalf("requeue: %v, %v", merged, err)
	}
	recs, err := b.store.RequestModuleBuilds(ctx, merged.ID)
	if err != nil || len(recs) != 1 || recs[0].ID != first[0].ID || recs[0].State != ModuleStateInit {
		t.Errorf("pending request's builds: %+v, %v", recs, err)
	}

	// The pending request has its own record: the running one's ends.
	if _, err := b.store.StartNext(ctx); err != nil {
		t.Fatal(err)
	}
	_, second, err := b.store.EnqueueWithBuild(ctx, submitReq("c3"), RequestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.RequeueRunning(ctx, "foo:main"); err != nil {
		t.Fatal(err)
	}
	old, _ := b.store.GetModuleBuild(ctx, first[0].ID)
	if old.State != ModuleStateGarbage || old.StateReason != "merged into build request "+itoa(second[0].RequestID)+" after a restart" {
		t.Errorf("old record: %s %q", old.State, old.StateReason)
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
