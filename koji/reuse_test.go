package koji_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/koji"
	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/runner"
)

var _ runner.Reuser = (*koji.Backend)(nil)

// hookCaller runs hooks around the calls a backend makes.
type hookCaller struct {
	koji.Caller
	// before runs before each plain call (Call and CallOnce).
	before func(method string, args []any)
	// afterMulti runs after each MultiCall went through; a non-nil error
	// replaces its answer.
	afterMulti func(calls []koji.MultiCallEntry) error
}

func (h *hookCaller) Call(ctx context.Context, method string, args ...any) (koji.Value, error) {
	if h.before != nil {
		h.before(method, args)
	}
	return h.Caller.Call(ctx, method, args...)
}

func (h *hookCaller) CallOnce(ctx context.Context, method string, args ...any) (koji.Value, error) {
	if h.before != nil {
		h.before(method, args)
	}
	return h.Caller.CallOnce(ctx, method, args...)
}

func (h *hookCaller) MultiCall(ctx context.Context, calls []koji.MultiCallEntry) ([]koji.MultiCallResult, error) {
	res, err := h.Caller.MultiCall(ctx, calls)
	if err == nil && h.afterMulti != nil {
		if herr := h.afterMulti(calls); herr != nil {
			return nil, herr
		}
	}
	return res, err
}

const (
	reuseTag1 = "module-reusemod-master-20260101000000-c0ffee42"
	reuseTag2 = "module-reusemod-master-20260102000000-c0ffee42"
)

// reuseOrder: batch 2 {a, b}, batch 3 {c, d}, batch 4 {e}.
var reuseOrder = map[string]int64{"a": 0, "b": 0, "c": 1, "d": 1, "e": 2}

// reuseBuilds builds reusemod once (build 31) and plans a second build of
// a newer version (build 32) in which the components of reused are taken
// from the first, as runner.planReuse marks them.
func reuseBuilds(t *testing.T, bd *bundle, reused ...string) (first, second *runner.Build) {
	t.Helper()
	first = mustPlan(t, testStream("reusemod", reuseOrder), 31)
	res1, err := runner.Execute(t.Context(), bd.backend, first, runner.ExecuteOptions{Logger: quiet})
	if err != nil {
		t.Fatalf("first build: %v", err)
	}
	if res1.Location != reuseTag1 {
		t.Fatalf("first build location %q", res1.Location)
	}
	s := testStream("reusemod", reuseOrder)
	s.Version = 20260102000000
	second = mustPlan(t, s, 32)
	old, now := byKey(first), byKey(second)
	for _, k := range reused {
		o, c := old[k], now[k]
		if o.State != runner.ComponentComplete || o.NVR == "" || len(o.RPMs) == 0 {
			t.Fatalf("first build's %s: %+v", k, o)
		}
		c.State, c.NVR, c.RPMs = runner.ComponentReused, o.NVR, slices.Clone(o.RPMs)
		c.ReusedFrom, c.ReusedLocation = first.ID, res1.Location
		c.Reason = fmt.Sprintf("reused from build %d (%s)", first.ID, o.NVR)
	}
	return first, second
}

func byKey(b *runner.Build) map[string]*runner.Component {
	out := map[string]*runner.Component{}
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			out[c.Key] = c
		}
	}
	return out
}

// buildSources returns the components submitted in build calls (the
// macros SRPM as "cli-build").
func buildSources(calls []kojitest.Call) []string {
	var out []string
	for _, c := range calls {
		if c.Method != "build" {
			continue
		}
		src := c.Args[0].(string)
		if strings.HasPrefix(src, "cli-build/") {
			out = append(out, "cli-build")
			continue
		}
		out = append(out, strings.TrimPrefix(src[:strings.Index(src, "#")], "git+https://src.example.com/rpms/"))
	}
	slices.Sort(out)
	return out
}

// A module built twice, the second build reusing a and b (all of batch 2)
// and c (batch 3, with d built): nothing reused is built again, the reused
// builds are tagged into the new module's tags in the batch's one tagging
// multiCall, every later batch's buildroot repo holds them, and the final
// modulemd lists their RPMs.
func TestBackend_ReuseTagsEarlierBuilds(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	ctx := t.Context()
	first, second := reuseBuilds(t, bd, "a", "b", "c")
	old := byKey(first)
	bd.hub.ResetCalls()
	// Tagging takes a while, so that a repo requested too early would miss it.
	bd.hub.SetTagDuration(20 * time.Millisecond)

	// Before each component build of the second build, the build tag's
	// current repo must hold the reused builds of every earlier batch.
	observer := newClient(t, bd.hub)
	var mu sync.Mutex
	var hookErrs []string
	checked := map[string]bool{}
	spy := &hookCaller{Caller: newClient(t, bd.hub), before: func(method string, args []any) {
		if method != "build" {
			return
		}
		src, _ := args[0].(string)
		var comp *runner.Component
		for _, c := range byKey(second) {
			if strings.Contains(src, "/rpms/"+c.Key+"#") {
				comp = c
			}
		}
		if comp == nil {
			return // module-build-macros
		}
		var want []string
		for _, c := range byKey(second) {
			if c.State == runner.ComponentReused && c.Batch < comp.Batch {
				want = append(want, c.NVR)
			}
		}
		var repo *struct {
			ID          int   `json:"id"`
			CreateEvent int64 `json:"create_event"`
		}
		var rows []struct {
			NVR string `json:"nvr"`
		}
		err := observer.CallInto(ctx, &repo, "getRepo", reuseTag2+"-build")
		if err == nil && repo != nil {
			err = observer.CallInto(ctx, &rows, "listTagged", reuseTag2+"-build", koji.KW{"event": repo.CreateEvent})
		}
		mu.Lock()
		defer mu.Unlock()
		checked[comp.Key] = true
		if err != nil || repo == nil {
			hookErrs = append(hookErrs, fmt.Sprintf("build %s: no repo of the build tag (%v)", comp.Key, err))
			return
		}
		for _, nvr := range want {
			if !slices.ContainsFunc(rows, func(r struct {
				NVR string `json:"nvr"`
			}) bool {
				return r.NVR == nvr
			}) {
				hookErrs = append(hookErrs, fmt.Sprintf("build %s: repo %d (event %d) lacks reused %s", comp.Key, repo.ID, repo.CreateEvent, nvr))
			}
		}
	}}
	be2 := newBackend(t, spy, bd.store)

	reported := map[string][]runner.ComponentState{}
	res2, err := runner.Execute(ctx, be2, second, runner.ExecuteOptions{Logger: quiet, Progress: func(e runner.Event) {
		if e.Component != nil {
			reported[e.Component.Key] = append(reported[e.Component.Key], e.Component.State)
		}
	}})
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	calls := bd.hub.FlatCalls()

	// Nothing reused was built.
	if got, want := buildSources(calls), []string{"cli-build", "d", "e"}; !slices.Equal(got, want) {
		t.Errorf("second build submitted %v, want %v", got, want)
	}
	now := byKey(second)
	for _, k := range []string{"a", "b", "c"} {
		c := now[k]
		if c.State != runner.ComponentReused || c.NVR != old[k].NVR || !slices.Equal(c.RPMs, old[k].RPMs) {
			t.Errorf("%s: %s %s %v; want reused %s", k, c.State, c.NVR, c.RPMs, old[k].NVR)
		}
		if len(reported[k]) != 0 {
			t.Errorf("reused %s was reported %v", k, reported[k])
		}
	}
	for _, k := range []string{"d", "e"} {
		if c := now[k]; c.State != runner.ComponentComplete || !strings.HasSuffix(c.NVR, second.DistTag) {
			t.Errorf("%s: %s %s", k, c.State, c.NVR)
		}
	}

	// The reused builds are in both of the new module's tags.
	buildTagged, tagged := bd.hub.Tagged(reuseTag2+"-build"), bd.hub.Tagged(reuseTag2)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		nvr := now[k].NVR
		if !slices.Contains(buildTagged, nvr) || !slices.Contains(tagged, nvr) {
			t.Errorf("%s (%s): build tag holds %v, module tag %v", k, nvr, buildTagged, tagged)
		}
	}
	if len(tagged) != 5 || len(buildTagged) != 6 {
		t.Errorf("module tag holds %v, build tag %v", tagged, buildTagged)
	}

	// Reused builds are tagged in the same multiCall as their batch's
	// builds; each batch but the last gets one repo regeneration; nothing
	// faulted (no "already tagged").
	var groups [][]string
	for _, c := range bd.hub.Calls() {
		var g []string
		for _, s := range append([]kojitest.Call{c}, c.Sub...) {
			if s.Method == "tagBuild" {
				nvr := s.Args[1].(string)
				g = append(g, fmt.Sprintf("%v %s", s.Args[0], nvr[:strings.Index(nvr, "-")]))
			}
		}
		if len(g) > 0 {
			slices.Sort(g)
			groups = append(groups, g)
		}
	}
	wantGroups := [][]string{
		{reuseTag2 + "-build module"},
		{reuseTag2 + " a", reuseTag2 + " b", reuseTag2 + "-build a", reuseTag2 + "-build b"},
		{reuseTag2 + " c", reuseTag2 + " d", reuseTag2 + "-build c", reuseTag2 + "-build d"},
		{reuseTag2 + " e", reuseTag2 + "-build e"},
	}
	if !slices.EqualFunc(groups, wantGroups, slices.Equal) {
		t.Errorf("tagBuild requests:\n got %q\nwant %q", groups, wantGroups)
	}
	repoRequests := 0
	for _, c := range calls {
		if c.Method == "repo.request" && c.Args[0] == reuseTag2+"-build" {
			repoRequests++
		}
		if c.Fault != 0 {
			t.Errorf("%s %v faulted %d", c.Method, c.Args, c.Fault)
		}
	}
	if repoRequests != 3 {
		t.Errorf("%d repo requests for the build tag, want 3", repoRequests)
	}
	mu.Lock()
	if !checked["d"] || !checked["e"] || len(hookErrs) > 0 {
		t.Errorf("buildroot checks (d %v, e %v): %v", checked["d"], checked["e"], hookErrs)
	}
	mu.Unlock()

	// The final modulemd lists the reused RPMs.
	if res2.Location != reuseTag2 {
		t.Errorf("location %q", res2.Location)
	}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		for _, n := range now[k].RPMs {
			if !strings.Contains(string(res2.Modulemd), "- "+n+"\n") {
				t.Errorf("modulemd lacks %s's %s:\n%s", k, n, res2.Modulemd)
			}
		}
	}
	if strings.Contains(string(res2.Modulemd), "module-build-macros-0:") {
		t.Errorf("modulemd lists module-build-macros:\n%s", res2.Modulemd)
	}
}

// The process dies after the tagging multiCall of an all-reused batch went
// out; the resumed build finds the reused builds tagged (Reuse's
// listTagged) and does not tag them again.
func TestBackend_ReuseResumesAfterCrashMidTagging(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	ctx := t.Context()
	_, second := reuseBuilds(t, bd, "a", "b", "c")
	now := byKey(second)

	crashCtx, crash := context.WithCancel(ctx)
	defer crash()
	spy := &hookCaller{Caller: newClient(t, bd.hub), afterMulti: func(calls []koji.MultiCallEntry) error {
		for _, c := range calls {
			if c.Method == "tagBuild" && c.Args[1] == now["a"].NVR {
				crash()
				return context.Canceled
			}
		}
		return nil
	}}
	if _, err := runner.Execute(crashCtx, newBackend(t, spy, bd.store), second, runner.ExecuteOptions{Logger: quiet}); !errors.Is(err, context.Canceled) {
		t.Fatalf("crashed run: %v", err)
	}
	if now[runner.MacrosComponent].State != runner.ComponentComplete {
		t.Fatalf("macros: %s", now[runner.MacrosComponent].State)
	}

	// A new process: new session, new backend, same hub and intents. Its
	// first request lets the crashed run's tagBuild tasks finish.
	bd.hub.ResetCalls()
	be2 := newBackend(t, newClient(t, bd.hub), bd.store)
	if _, err := runner.Execute(ctx, be2, second, runner.ExecuteOptions{Logger: quiet}); err != nil {
		t.Fatalf("resumed build: %v", err)
	}
	var tagBuilds []string
	for _, c := range bd.hub.FlatCalls() {
		if c.Fault != 0 {
			t.Errorf("%s %v faulted %d", c.Method, c.Args, c.Fault)
		}
		if c.Method == "tagBuild" {
			tagBuilds = append(tagBuilds, c.Args[1].(string))
		}
	}
	for _, k := range []string{"a", "b"} {
		if slices.Contains(tagBuilds, now[k].NVR) {
			t.Errorf("%s tagged again after the restart: %v", k, tagBuilds)
		}
	}
	if !slices.Contains(tagBuilds, now["c"].NVR) {
		t.Errorf("c (reused in batch 3) not tagged: %v", tagBuilds)
	}
	if got := buildSources(bd.hub.FlatCalls()); !slices.Equal(got, []string{"d", "e"}) {
		t.Errorf("resumed build submitted %v", got)
	}
	for _, tag := range []string{reuseTag2, reuseTag2 + "-build"} {
		got := bd.hub.Tagged(tag)
		for _, k := range []string{"a", "b", "c"} {
			if n := slices.Index(got, now[k].NVR); n < 0 || slices.Contains(got[n+1:], now[k].NVR) {
				t.Errorf("%s: %s tagged %v", tag, k, got)
			}
		}
	}
}

// As a real hub does, the tagBuild call goes through and its task fails
// "already tagged" when another run tagged the build after Reuse looked:
// the batch carries on.
func TestBackend_ReuseTagTaskFindsBuildTagged(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	ctx := t.Context()
	_, second := reuseBuilds(t, bd, "a", "b")
	now := byKey(second)
	be := bd.backend
	if err := be.Prepare(ctx, second); err != nil {
		t.Fatal(err)
	}
	noop := func(runner.ComponentUpdate) {}
	if err := be.BuildBatch(ctx, second, second.Batches[0], noop); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if err := be.Reuse(ctx, second, now[k]); err != nil {
			t.Fatal(err)
		}
	}

	// Another run's tagBuild of a into the build tag, still running.
	bd.hub.SetTagDuration(kojitest.Manual)
	var other int
	if err := newClient(t, bd.hub).CallInto(ctx, &other, "tagBuild", reuseTag2+"-build", now["a"].NVR); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	batch := &runner.Batch{Number: second.Batches[1].Number} // all reused
	go func() { done <- be.BuildBatch(ctx, second, batch, noop) }()
	otherDone := false
	var failed []int
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("BuildBatch: %v", err)
			}
			if len(failed) != 1 {
				t.Errorf("tagBuild tasks that failed: %v, want the backend's of a", failed)
			}
			for _, tag := range []string{reuseTag2, reuseTag2 + "-build"} {
				got := bd.hub.Tagged(tag)
				if !slices.Contains(got, now["a"].NVR) || !slices.Contains(got, now["b"].NVR) {
					t.Errorf("%s holds %v", tag, got)
				}
			}
			return
		case <-deadline:
			t.Fatal("BuildBatch did not return")
		case <-time.After(time.Millisecond):
		}
		var open []int
		for _, id := range bd.hub.TaskIDs("tagBuild") {
			if st, _ := bd.hub.TaskState(id); id != other && (st == kojitest.TaskFree || st == kojitest.TaskOpen) {
				open = append(open, id)
			}
		}
		if len(open) == 0 {
			continue
		}
		// The other run's task first: the backend's of a then fails.
		if !otherDone {
			if err := bd.hub.CompleteTask(other); err != nil {
				t.Fatal(err)
			}
			otherDone = true
		}
		for _, id := range open {
			if err := bd.hub.CompleteTask(id); err != nil {
				t.Fatal(err)
			}
			if st, _ := bd.hub.TaskState(id); st == kojitest.TaskFailed {
				failed = append(failed, id)
			}
		}
	}
}

// A reused build that is not in Koji is an infrastructure error, and
// nothing of the batch is tagged.
func TestBackend_ReuseMissingBuild(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	_, second := reuseBuilds(t, bd, "a", "b")
	now := byKey(second)
	now["b"].NVR = "b-9.9-9.gone"
	bd.hub.ResetCalls()
	// Reuse reports the build gone (ErrReuseUnavailable); the runner then
	// builds b instead of failing the module, and tags nothing that is gone.
	if err := bd.backend.Prepare(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	err := bd.backend.Reuse(t.Context(), second, now["b"])
	if !errors.Is(err, runner.ErrReuseUnavailable) || !strings.Contains(err.Error(), "build b-9.9-9.gone does not exist in Koji") {
		t.Fatalf("Reuse = %v, want ErrReuseUnavailable naming the missing build", err)
	}
	now["b"].State = runner.ComponentReused
	if _, err := runner.Execute(t.Context(), bd.backend, second, runner.ExecuteOptions{Logger: quiet}); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if now["b"].State != runner.ComponentComplete {
		t.Errorf("b is %s, want built after its earlier build was gone", now["b"].State)
	}
	built := false
	for _, c := range bd.hub.FlatCalls() {
		if c.Method == "tagBuild" && strings.Contains(fmt.Sprint(c.Args[1]), "gone") {
			t.Errorf("tagged the missing build: %v", c.Args)
		}
		if c.Method == "build" && strings.Contains(fmt.Sprint(c.Args[0]), "/b#") {
			built = true
		}
	}
	if !built {
		t.Error("b was not submitted to Koji")
	}
}
