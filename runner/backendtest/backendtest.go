// Package backendtest is the conformance suite of runner.Backend: one set of
// cases that every implementation, fake or real, runs from its own tests
// (style §9 rule 12, after river's riverdrivertest.Exercise and go-git's
// storage suite). A backend's test supplies a Harness that makes backends and
// components; Exercise runs the cases as subtests:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Exercise(t, backendtest.Harness{
//			NewBackend:   func(t *testing.T) runner.Backend { ... },
//			NewComponent: func(t *testing.T, be runner.Backend, name string, how backendtest.Behavior) *runner.Component { ... },
//		})
//	}
//
// Every BuildBatch call the suite makes, directly or through runner.Execute,
// goes through a checker that enforces the reporting protocol of
// runner.Backend: every update names a component of the batch, a component
// is reported building before it completes or fails, it gets exactly one
// terminal update and nothing after it, nothing is reported once BuildBatch
// has returned, and a nil return means every component of the batch was
// reported terminal.
//
// When a backend's semantics change, extend the suite rather than the
// backend's own tests, so every implementation is held to the change.
package backendtest

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/runner"
)

// Behavior is how the build of a component made by Harness.NewComponent
// goes.
type Behavior int

const (
	// Builds: the package builds and produces at least its own package,
	// named after the component's Package.
	Builds Behavior = iota
	// Fails: the package does not build. This is a component failure (the
	// backend reports it failed), not infrastructure trouble.
	Fails
	// Hangs: the build runs until its context is cancelled; on its own it
	// would take far longer than the suite waits (minutes).
	Hangs
)

func (b Behavior) String() string {
	switch b {
	case Builds:
		return "builds"
	case Fails:
		return "fails"
	case Hangs:
		return "hangs"
	}
	return fmt.Sprintf("Behavior(%d)", int(b))
}

// Harness is what an implementation's test provides to Exercise.
type Harness struct {
	// NewBackend returns a backend that has built nothing yet; whatever it
	// needs (work directory, hub double) is released when t ends. Each
	// case calls it once and runs one or two module builds on the result.
	NewBackend func(t *testing.T) runner.Backend
	// NewComponent returns a component named name (its Key; Package is
	// usually the same) that backend be builds as how says. Only Key,
	// Package, Repository, Ref and Commit are used: the suite writes them
	// into a modulemd stream and plans the build with runner.Plan, so
	// Commit must be set. be is the backend of the same case, for
	// harnesses that configure the behaviour on the backend or on what it
	// talks to (a simulated backend, a hub double).
	NewComponent func(t *testing.T, be runner.Backend, name string, how Behavior) *runner.Component
}

// Deadlines of the suite.
const (
	// CancelDeadline bounds how long BuildBatch may run on after its
	// context is cancelled.
	CancelDeadline = 30 * time.Second
	// startDeadline bounds how long a hanging component may take to be
	// reported building.
	startDeadline = 3 * time.Minute
)

// Exercise runs the conformance cases against the backends h makes. The
// cases run in parallel with each other, each on its own backend.
func Exercise(t *testing.T, h Harness) {
	t.Helper()
	if h.NewBackend == nil || h.NewComponent == nil {
		t.Fatal("backendtest: Harness.NewBackend and Harness.NewComponent are required")
	}
	cases := []struct {
		name string
		run  func(*testing.T, Harness)
	}{
		{"TwoBatchBuild", testTwoBatchBuild},
		{"FailingComponent", testFailingComponent},
		{"UpdateProtocol", testUpdateProtocol},
		{"PrepareIdempotent", testPrepareIdempotent},
		{"Cancel", testCancel},
		{"FinishArtifacts", testFinishArtifacts},
		{"Reuse", testReuse},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, h)
		})
	}
}

// ---- cases ----

// A module of two component batches builds: runner.Execute succeeds with a
// Result, and every component (module-build-macros included) was reported
// building, then complete, with an NVR carrying the dist tag and the
// NEVRAs, epoch explicit, of what it produced.
func testTwoBatchBuild(t *testing.T, h Harness) {
	be := h.NewBackend(t)
	comps := components(t, h, be, map[string]Behavior{"alpha": Builds, "beta": Builds, "gamma": Builds})
	b := plan(t, "conf-twobatch", 101, [][]*runner.Component{{comps["alpha"]}, {comps["beta"], comps["gamma"]}})
	if len(b.Batches) != 3 {
		t.Fatalf("planned %d batches, want 3 (macros + 2)", len(b.Batches))
	}
	ck := newChecker(t)
	res, err := runner.Execute(t.Context(), ck.wrap(be), b, runner.ExecuteOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if res == nil {
		t.Fatal("Execute returned a nil Result and no error")
	}
	if got := ck.batchNumbers(); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("BuildBatch called for batches %v, want [1 2 3]", got)
	}
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			checkComplete(t, b, c)
			states := ck.states(c.Key)
			if len(states) < 2 || states[0] != runner.ComponentBuilding || states[len(states)-1] != runner.ComponentComplete ||
				slices.ContainsFunc(states[:len(states)-1], func(s runner.ComponentState) bool { return s != runner.ComponentBuilding }) {
				t.Errorf("%s: reported %v, want building then complete", c.Key, states)
			}
			if c.Started.IsZero() || c.Finished.Before(c.Started) {
				t.Errorf("%s: started %v, finished %v", c.Key, c.Started, c.Finished)
			}
		}
	}
	// Batch 3 started after batch 2 was done.
	for _, c := range b.Batches[2].Components {
		if !c.Started.After(b.Batches[1].Components[0].Finished) && !c.Started.Equal(b.Batches[1].Components[0].Finished) {
			t.Errorf("%s of batch 3 started %v, before alpha of batch 2 finished %v", c.Key, c.Started, b.Batches[1].Components[0].Finished)
		}
	}
}

// A component that does not build fails itself, not the batch: BuildBatch
// returns nil, the component is failed with a reason naming it, its
// siblings still reach a terminal state, Execute reports a
// *runner.BuildFailure of that component only, and no later batch is
// handed to the backend.
func testFailingComponent(t *testing.T, h Harness) {
	be := h.NewBackend(t)
	comps := components(t, h, be, map[string]Behavior{"alpha": Builds, "broken": Fails, "omega": Builds, "later": Builds})
	b := plan(t, "conf-failing", 102, [][]*runner.Component{{comps["alpha"], comps["broken"], comps["omega"]}, {comps["later"]}})
	ck := newChecker(t)
	res, err := runner.Execute(t.Context(), ck.wrap(be), b, runner.ExecuteOptions{Logger: quietLogger()})
	var bf *runner.BuildFailure
	if !errors.As(err, &bf) {
		t.Fatalf("Execute = %v, %v; want a *runner.BuildFailure", res, err)
	}
	if !slices.Equal(bf.Components, []string{"broken"}) {
		t.Errorf("BuildFailure.Components = %v, want [broken]", bf.Components)
	}
	if got := ck.batchNumbers(); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("BuildBatch called for batches %v, want [1 2]", got)
	}
	if errs := ck.batchErrors(); len(errs) != 2 || errs[1] != nil {
		t.Errorf("BuildBatch of the failing batch returned %v, want nil", errs)
	}
	byKey := keyed(b)
	broken := byKey["broken"]
	if broken.State != runner.ComponentFailed {
		t.Errorf("broken: state %s, want failed", broken.State)
	}
	if !strings.Contains(broken.Reason, "broken") {
		t.Errorf("broken: reason %q does not name the component", broken.Reason)
	}
	if !slices.ContainsFunc(bf.Details, func(d string) bool { return strings.Contains(d, "broken") }) {
		t.Errorf("BuildFailure.Details %q do not name broken", bf.Details)
	}
	for _, key := range []string{"alpha", "omega"} {
		c := byKey[key]
		if !c.State.Terminal() {
			t.Errorf("sibling %s: state %s, want terminal", key, c.State)
		}
		if c.State != runner.ComponentComplete {
			t.Logf("sibling %s ended %s (%s): the backend does not finish the batch", key, c.State, c.Reason)
		}
	}
	if later := byKey["later"]; later.State != runner.ComponentQueued || len(ck.states("later")) != 0 {
		t.Errorf("later (batch 3): state %s, reported %v; want queued and never reported", later.State, ck.states("later"))
	}
	t.Logf("reason: %s", broken.Reason)
}

// BuildBatch called directly, without the runner in between (the runner
// ignores updates it does not expect, so it would hide them): the checker
// sees the raw report stream of a batch that mixes success and failure.
func testUpdateProtocol(t *testing.T, h Harness) {
	be := h.NewBackend(t)
	comps := components(t, h, be, map[string]Behavior{"one": Builds, "two": Builds, "bad": Fails})
	b := plan(t, "conf-protocol", 103, [][]*runner.Component{{comps["one"], comps["two"], comps["bad"]}})
	ck := newChecker(t)
	wb := ck.wrap(be)
	ctx := t.Context()
	if err := wb.Prepare(ctx, b); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	ap := newApplier(b)
	for _, batch := range b.Batches {
		if err := wb.BuildBatch(ctx, b, batch, ap.apply); err != nil {
			t.Fatalf("BuildBatch %d: %v", batch.Number, err)
		}
	}
	want := map[string]runner.ComponentState{runner.MacrosComponent: runner.ComponentComplete,
		"one": runner.ComponentComplete, "two": runner.ComponentComplete, "bad": runner.ComponentFailed}
	for key, st := range want {
		if got := ap.state(key); got != st {
			t.Errorf("%s: state %s, want %s", key, got, st)
		}
		states := ck.states(key)
		if len(states) == 0 || states[0] != runner.ComponentBuilding {
			t.Errorf("%s: reported %v, want building first", key, states)
		}
	}
}

// Prepare may be called again for the same build (a restarted process
// does): the second call succeeds and the build still runs.
func testPrepareIdempotent(t *testing.T, h Harness) {
	be := h.NewBackend(t)
	comps := components(t, h, be, map[string]Behavior{"alpha": Builds})
	b := plan(t, "conf-prepare", 104, [][]*runner.Component{{comps["alpha"]}})
	ctx := t.Context()
	for i := range 2 {
		if err := be.Prepare(ctx, b); err != nil {
			t.Fatalf("Prepare #%d: %v", i+1, err)
		}
	}
	// Execute prepares a third time.
	ck := newChecker(t)
	if _, err := runner.Execute(ctx, ck.wrap(be), b, runner.ExecuteOptions{Logger: quietLogger()}); err != nil {
		t.Fatalf("Execute after two Prepares: %v", err)
	}
	for _, c := range keyed(b) {
		checkComplete(t, b, c)
	}
}

// Cancelling the context while a batch builds makes BuildBatch return
// within CancelDeadline, either with the context's error or with every
// component of the batch terminal; the hanging build is never reported
// complete.
func testCancel(t *testing.T, h Harness) {
	be := h.NewBackend(t)
	// hang is alone in its batch, so the cancellation finds the backend
	// waiting for a running build, not starting another one.
	comps := components(t, h, be, map[string]Behavior{"hang": Hangs})
	b := plan(t, "conf-cancel", 105, [][]*runner.Component{{comps["hang"]}})
	ck := newChecker(t)
	wb := ck.wrap(be)
	if err := wb.Prepare(t.Context(), b); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	ap := newApplier(b)
	if err := wb.BuildBatch(t.Context(), b, b.Batches[0], ap.apply); err != nil {
		t.Fatalf("BuildBatch 1: %v", err)
	}

	started := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- wb.BuildBatch(ctx, b, b.Batches[1], func(u runner.ComponentUpdate) {
			ap.apply(u)
			if u.Key == "hang" && u.State == runner.ComponentBuilding {
				once.Do(func() { close(started) })
			}
		})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("BuildBatch returned %v before hang was reported building (hang: %s)", err, ap.state("hang"))
	case <-time.After(startDeadline):
		t.Fatalf("hang not reported building within %s", startDeadline)
	}
	cancel()
	canceledAt := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(CancelDeadline):
		t.Fatalf("BuildBatch still running %s after its context was cancelled", CancelDeadline)
	}
	t.Logf("BuildBatch returned %v after %s; hang %s", err, time.Since(canceledAt).Round(time.Millisecond), ap.state("hang"))
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("BuildBatch after cancel = %v, want an error that is context.Canceled (or nil with every component terminal)", err)
		}
	} else {
		for _, c := range b.Batches[1].Components {
			if !ap.state(c.Key).Terminal() {
				t.Errorf("BuildBatch returned nil after cancel with %s still %s", c.Key, ap.state(c.Key))
			}
		}
	}
	if st := ap.state("hang"); st == runner.ComponentComplete || st == runner.ComponentReused {
		t.Errorf("hang: state %s after cancellation", st)
	}
}

// Finish after every batch built returns a Result whose modulemd is the
// build's stream with artifacts.rpms listing every package of every
// component, module-build-macros excluded.
func testFinishArtifacts(t *testing.T, h Harness) {
	be := h.NewBackend(t)
	comps := components(t, h, be, map[string]Behavior{"alpha": Builds, "beta": Builds})
	b := plan(t, "conf-finish", 106, [][]*runner.Component{{comps["alpha"]}, {comps["beta"]}})
	ck := newChecker(t)
	res, err := runner.Execute(t.Context(), ck.wrap(be), b, runner.ExecuteOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	checkResult(t, h, b, res)
}

// A component reused from an earlier build of the stream: a runner.Reuser
// takes it over (it stays reused, is never handed to BuildBatch, and its
// packages are in the new build's artifacts); any other backend gets it to
// build again. Either way the build succeeds.
func testReuse(t *testing.T, h Harness) {
	be := h.NewBackend(t)
	comps := components(t, h, be, map[string]Behavior{"alpha": Builds, "beta": Builds})
	first := plan(t, "conf-reuse", 107, [][]*runner.Component{{comps["alpha"]}, {comps["beta"]}})
	res1, err := runner.Execute(t.Context(), newChecker(t).wrap(be), first, runner.ExecuteOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("first build: %v", err)
	}
	old := keyed(first)["alpha"]
	checkComplete(t, first, old)

	second := plan(t, "conf-reuse", 108, [][]*runner.Component{{comps["alpha"]}, {comps["beta"]}})
	alpha := keyed(second)["alpha"]
	alpha.State, alpha.NVR, alpha.RPMs = runner.ComponentReused, old.NVR, slices.Clone(old.RPMs)
	alpha.ReusedFrom, alpha.ReusedLocation = first.ID, res1.Dir
	ck := newChecker(t)
	res2, err := runner.Execute(t.Context(), ck.wrap(be), second, runner.ExecuteOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("second build, alpha reused: %v", err)
	}
	if _, ok := be.(runner.Reuser); ok {
		if alpha.State != runner.ComponentReused || !slices.Equal(alpha.RPMs, old.RPMs) {
			t.Errorf("alpha: state %s, RPMs %v; want reused with %v", alpha.State, alpha.RPMs, old.RPMs)
		}
		if s := ck.states("alpha"); len(s) != 0 {
			t.Errorf("reused alpha was reported %v", s)
		}
	} else {
		checkComplete(t, second, alpha)
		t.Logf("backend is not a runner.Reuser: alpha was rebuilt as %s", alpha.NVR)
	}
	checkComplete(t, second, keyed(second)["beta"])
	checkResult(t, h, second, res2)
}

// ---- helpers ----

// components makes one component per name.
func components(t *testing.T, h Harness, be runner.Backend, how map[string]Behavior) map[string]*runner.Component {
	t.Helper()
	out := map[string]*runner.Component{}
	for _, name := range sortedKeys(how) {
		c := h.NewComponent(t, be, name, how[name])
		if c == nil || c.Key != name || c.Commit == "" {
			t.Fatalf("Harness.NewComponent(%q) = %+v: want Key %q and a Commit", name, c, name)
		}
		out[name] = c
	}
	return out
}

// plan writes the components into an enriched modulemd stream, one
// buildorder per element of order, and plans it with runner.Plan.
func plan(t *testing.T, name string, id int64, order [][]*runner.Component) *runner.Build {
	t.Helper()
	rpms := map[string]*modulemd.Component{}
	refs := map[string]any{}
	for i, batch := range order {
		for _, c := range batch {
			mc := &modulemd.Component{Key: c.Key, Rationale: "conformance", Repository: c.Repository, Ref: c.Ref, BuildOrder: int64(i)}
			if c.Package != "" && c.Package != c.Key {
				mc.Name = c.Package
			}
			rpms[c.Key] = mc
			refs[c.Key] = map[string]any{"ref": c.Commit}
		}
	}
	s := &modulemd.Stream{
		Name: name, Stream: "conformance", Version: 20260101000000 + uint64(id), Context: contextOf(name),
		Summary: "conformance test module", Description: "A module built by the backend conformance suite.",
		License:    modulemd.License{Module: []string{"MIT"}},
		Components: modulemd.Components{RPMs: rpms},
		Xmd:        map[string]any{"mbs": map[string]any{"rpms": refs}},
	}
	b, err := runner.Plan(s, runner.PlanOptions{ID: id, Marking: "el9"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func contextOf(name string) string {
	sum := sha1.Sum([]byte(name))
	return hex.EncodeToString(sum[:4])
}

func keyed(b *runner.Build) map[string]*runner.Component {
	out := map[string]*runner.Component{}
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			out[c.Key] = c
		}
	}
	return out
}

// checkComplete checks a built component: complete, an NVR of its package
// carrying the dist tag, and NEVRAs with an explicit epoch, one of them
// the NVR's own package.
func checkComplete(t *testing.T, b *runner.Build, c *runner.Component) {
	t.Helper()
	if c.State != runner.ComponentComplete {
		t.Errorf("%s: state %s (%s), want complete", c.Key, c.State, c.Reason)
		return
	}
	if !strings.HasPrefix(c.NVR, c.Package+"-") || !strings.HasSuffix(c.NVR, b.DistTag) {
		t.Errorf("%s: NVR %q, want %s-<version>-<release ending in %s>", c.Key, c.NVR, c.Package, b.DistTag)
	}
	if len(c.RPMs) == 0 {
		t.Errorf("%s: no RPMs", c.Key)
	}
	own := false
	for _, n := range c.RPMs {
		nvr, _, err := parseNEVRA(n)
		if err != nil {
			t.Errorf("%s: %v", c.Key, err)
			continue
		}
		own = own || nvr == c.NVR
	}
	if !own && len(c.RPMs) > 0 {
		t.Errorf("%s: none of the RPMs %v is of NVR %s", c.Key, c.RPMs, c.NVR)
	}
}

// parseNEVRA splits name-epoch:version-release.arch into the NVR and the
// arch, requiring the epoch.
func parseNEVRA(s string) (nvr, arch string, err error) {
	dot := strings.LastIndex(s, ".")
	colon := strings.LastIndex(s, ":")
	if dot < 0 || colon < 0 || dot < colon {
		return "", "", fmt.Errorf("NEVRA %q: want name-epoch:version-release.arch", s)
	}
	nev, rel := s[:dot], s[dot+1:]
	arch = rel
	dash := strings.LastIndex(s[:colon], "-")
	if dash <= 0 {
		return "", "", fmt.Errorf("NEVRA %q: no name before the epoch", s)
	}
	epoch := s[dash+1 : colon]
	if epoch == "" || strings.Trim(epoch, "0123456789") != "" {
		return "", "", fmt.Errorf("NEVRA %q: epoch %q is not a number", s, epoch)
	}
	vr := nev[colon+1:]
	if strings.Count(vr, "-") < 1 || arch == "" {
		return "", "", fmt.Errorf("NEVRA %q: want version-release.arch after the epoch", s)
	}
	return s[:dash] + "-" + vr, arch, nil
}

// checkResult checks Finish's Result: non-nil and the build's modulemd with
// artifacts.rpms set to
// the sorted packages of every complete or reused component but
// module-build-macros.
func checkResult(t *testing.T, h Harness, b *runner.Build, res *runner.Result) {
	t.Helper()
	if res == nil {
		t.Fatal("Execute returned a nil Result and no error")
	}
	if len(res.Modulemd) == 0 {
		t.Errorf("Result.Modulemd is empty; the build has a modulemd (Result: %+v)", res)
		return
	}
	streams, err := modulemd.Parse(res.Modulemd)
	if err != nil {
		t.Fatalf("Result.Modulemd: %v\n%s", err, res.Modulemd)
	}
	if len(streams) != 1 {
		t.Fatalf("Result.Modulemd holds %d streams, want 1", len(streams))
	}
	s := streams[0]
	if s.Name != b.Name || s.Stream != b.Stream || s.Version != b.Version || s.Context != b.Context {
		t.Errorf("Result.Modulemd is %s, want %s", modulemd.NSVC(s.Name, s.Stream, s.Version, s.Context), b.NSVC())
	}
	set := map[string]bool{}
	for key, c := range keyed(b) {
		if key == runner.MacrosComponent || (c.State != runner.ComponentComplete && c.State != runner.ComponentReused) {
			continue
		}
		for _, n := range c.RPMs {
			set[n] = true
		}
	}
	want := sortedKeys(set)
	if !slices.Equal(s.Artifacts.RPMs, want) {
		t.Errorf("Result.Modulemd artifacts.rpms = %v\nwant %v", s.Artifacts.RPMs, want)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
