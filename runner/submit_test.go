package runner_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/runner/runnertest"
	"github.com/rida-build/rida/state"
)

// TestRunner_SubmitOptions drives submissions made with
// state.EnqueueWithBuild (POST module-builds) through the runner on a real
// store and real git repositories (simulated component builds): the record
// made at submit is the one built; scratch builds get MBS's context suffix,
// stay done and reuse nothing; overrides pin streams before resolution;
// reuse_components_from names the build to reuse from.
func TestRunner_SubmitOptions(t *testing.T) {
	bx := setup(t, func(o *runner.Options) {
		o.Backend = &runnertest.SimBackend{Default: time.Millisecond}
	})
	ctx := context.Background()
	key := examples.ModuleName + ":" + examples.ModuleStream
	submit := func(commit string, opts state.RequestOptions) state.ModuleBuild {
		t.Helper()
		_, builds, err := bx.store.EnqueueWithBuild(ctx, state.BuildRequest{
			Module: examples.ModuleName, Stream: examples.ModuleStream, Kind: state.RequestModule,
			ModuleRepo: bx.layout.Module.URL, ModuleCommit: commit, Reasons: []string{"submitted by test"},
		}, opts)
		if err != nil || len(builds) != 1 {
			t.Fatalf("submit: %v %v", builds, err)
		}
		bx.runner.Notify()
		return builds[0]
	}
	finished := func(want uint64) state.ModuleBuild {
		t.Helper()
		mb := bx.waitFinished()
		if mb.ID != want {
			t.Fatalf("build %d finished (%s: %s), want the record made at submit, %d", mb.ID, mb.State, mb.StateReason, want)
		}
		return mb
	}

	// Queued at submit (stream paused), built under the same id.
	if err := bx.store.SetPaused(ctx, key, true, "test"); err != nil {
		t.Fatal(err)
	}
	q := submit(bx.layout.Module.Commit, state.RequestOptions{Owner: "alice"})
	if q.State != state.ModuleStateInit || q.StateReason != state.ReasonStreamPaused {
		t.Fatalf("queued record: %s %q", q.State, q.StateReason)
	}
	time.Sleep(200 * time.Millisecond)
	if cur, _ := bx.store.GetModuleBuild(ctx, q.ID); cur.State != state.ModuleStateInit {
		t.Fatalf("paused stream's build started: %s", cur.State)
	}
	if err := bx.store.SetPaused(ctx, key, false, "test"); err != nil {
		t.Fatal(err)
	}
	bx.runner.Notify()
	x := finished(q.ID)
	if x.State != state.ModuleStateReady || x.Owner != "alice" || x.Scratch {
		t.Fatalf("build %d: %s (%s) owner %s", x.ID, x.State, x.StateReason, x.Owner)
	}

	// Scratch builds of the same commit: built (not "identical"), context
	// suffix _1 then _2, scrmod dist tag, nothing reused, stay done.
	for n, suffix := range []string{"_1", "_2"} {
		s := finished(submit(bx.layout.Module.Commit, state.RequestOptions{Scratch: true}).ID)
		if s.State != state.ModuleStateDone || !s.Scratch || s.Context != x.Context+suffix || s.Version != x.Version ||
			!strings.HasPrefix(s.DistTag, ".scrmod+") {
			t.Errorf("scratch %d: %s (%s) context %q (want %q) version %d dist %q", n+1, s.State, s.StateReason, s.Context, x.Context+suffix, s.Version, s.DistTag)
		}
		for _, c := range s.Components {
			if c.ReusedFrom != 0 || c.State != "complete" {
				t.Errorf("scratch %d: component %s %s reused from %d", n+1, c.Key, c.State, c.ReusedFrom)
			}
		}
		if _, err := bx.runner.MarkReady(ctx, s.ID); err == nil {
			t.Errorf("scratch %d could be marked ready", n+1)
		}
	}

	// Overrides: one naming a module the modulemd does not require fails
	// at init with MBS's message; one pinning platform to el8 builds for
	// el8 (the stream is pinned before expansion and resolution).
	c2, err := bx.layout.Module.CommitFiles("docs", map[string]string{"README": "two\n"})
	if err != nil {
		t.Fatal(err)
	}
	f := finished(submit(c2, state.RequestOptions{BuildRequireOverrides: map[string][]string{"nope": {"1"}}}).ID)
	if f.State != state.ModuleStateFailed || !strings.Contains(f.StateReason, "The buildrequire overrides for the following modules aren't applicable: nope") {
		t.Errorf("unusable override: %s %q", f.State, f.StateReason)
	}
	e := finished(submit(c2, state.RequestOptions{BuildRequireOverrides: map[string][]string{"platform": {"el8"}},
		RequireOverrides: map[string][]string{"platform": {"el8"}}}).ID)
	if e.State != state.ModuleStateReady || e.Platform != "el8" || !strings.Contains(e.DistTag, "+el8+") || e.Context == x.Context ||
		!strings.Contains(e.Modulemd, "el8") {
		t.Errorf("platform override: %s (%s) platform %q dist %q context %q", e.State, e.StateReason, e.Platform, e.DistTag, e.Context)
	}

	// reuse_components_from: components come from the named build (the el8
	// one), not from the last good build of the context (x).
	c3, err := bx.layout.Module.CommitFiles("docs", map[string]string{"README": "three\n"})
	if err != nil {
		t.Fatal(err)
	}
	r := finished(submit(c3, state.RequestOptions{ReuseFrom: e.ID, RebuildStrategy: "only-changed"}).ID)
	if r.State != state.ModuleStateReady {
		t.Fatalf("reuse build: %s %s", r.State, r.StateReason)
	}
	reused := 0
	for _, c := range r.Components {
		if c.Key == runner.MacrosComponent {
			continue
		}
		if c.ReusedFrom != e.ID {
			t.Errorf("component %s reused from %d, want %d", c.Key, c.ReusedFrom, e.ID)
		}
		reused++
	}
	if reused == 0 {
		t.Error("no components")
	}
	// Without it, the last good build of the context is the source: r,
	// whose components came from e (a reused component names the build
	// that built it), not x.
	c4, err := bx.layout.Module.CommitFiles("docs", map[string]string{"README": "four\n"})
	if err != nil {
		t.Fatal(err)
	}
	d := finished(submit(c4, state.RequestOptions{RebuildStrategy: "only-changed"}).ID)
	for _, c := range d.Components {
		if c.Key != runner.MacrosComponent && c.ReusedFrom != e.ID {
			t.Errorf("default reuse: component %s from %d", c.Key, c.ReusedFrom)
		}
	}
}

// TestRunner_CancelQueuedSubmission: cancelling a build queued at submit
// fails it at once and takes its request out of the queue, so it never
// starts.
func TestRunner_CancelQueuedSubmission(t *testing.T) {
	bx := setup(t, func(o *runner.Options) {
		o.Backend = &runnertest.SimBackend{Default: time.Millisecond}
	})
	ctx := context.Background()
	key := examples.ModuleName + ":" + examples.ModuleStream
	if err := bx.store.SetPaused(ctx, key, true, "test"); err != nil {
		t.Fatal(err)
	}
	res, builds, err := bx.store.EnqueueWithBuild(ctx, state.BuildRequest{
		Module: examples.ModuleName, Stream: examples.ModuleStream, Kind: state.RequestModule,
		ModuleRepo: bx.layout.Module.URL, ModuleCommit: bx.layout.Module.Commit, Reasons: []string{"submitted by test"},
	}, state.RequestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bx.runner.Cancel(ctx, builds[0].ID, "alice"); err != nil {
		t.Fatal(err)
	}
	mb, err := bx.store.GetModuleBuild(ctx, builds[0].ID)
	if err != nil || mb.State != state.ModuleStateFailed || mb.StateReason != "cancelled by alice" || mb.FailureKind != state.FailureCanceled {
		t.Fatalf("cancelled: %+v, %v", mb, err)
	}
	rq, err := bx.store.Request(ctx, res.Request.ID)
	if err != nil || rq.State != state.RequestFinished || rq.Result != state.ResultCanceled {
		t.Errorf("request %+v, %v", rq, err)
	}
	if err := bx.store.SetPaused(ctx, key, false, "test"); err != nil {
		t.Fatal(err)
	}
	bx.runner.Notify()
	time.Sleep(300 * time.Millisecond)
	if all, _ := bx.store.StreamBuilds(ctx, examples.ModuleName, examples.ModuleStream); len(all) != 1 {
		t.Errorf("%d builds after resume, want the cancelled one only", len(all))
	}
}

// A scratch build becoming ready (it never does by itself) queues no
// cascade.
func TestCascader_SkipsScratch(t *testing.T) {
	c := runner.Cascader{Enabled: true}
	reqs, note := c.For(state.CascadeEvent{Build: &state.ModuleBuild{ID: 1, Name: "lower", Stream: "1", Scratch: true}})
	if reqs != nil || note != "" {
		t.Errorf("scratch cascade: %v %q", reqs, note)
	}
}
