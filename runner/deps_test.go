package runner_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/internal/testlog"
	"github.com/rida-build/rida/modgraph"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/state"
)

const upperModule = `document: modulemd
version: 2
data:
  summary: upper
  description: Builds on the rida-demo module.
  license: {module: [MIT]}
  dependencies:
    - buildrequires: {platform: [el9], rida-demo: ["1.0"]}
      requires: {platform: [el9], rida-demo: ["1.0"]}
  components:
    rpms:
      upper-app: {rationale: needs rida-demo-lib, ref: main}
`

const upperSpec = `Name: upper-app
Version: 1
Release: 1%{?dist}
Summary: upper app
License: MIT
BuildArch: noarch
BuildRequires: rida-demo-lib
%description
Needs rida-demo-lib from the module it buildrequires.
%install
mkdir -p %{buildroot}/usr/share/upper-app
echo x > %{buildroot}/usr/share/upper-app/x
%files
/usr/share/upper-app/x
`

// createUpper makes the repositories of module "upper" (stream 1), which
// buildrequires rida-demo, and of its component upper-app.
func createUpper(t *testing.T, bx *bundle) examples.Repo {
	t.Helper()
	if _, err := examples.CreateRepo(filepath.Join(bx.layout.Dir, "rpms", "upper-app"), "main", map[string]string{"upper-app.spec": upperSpec}, examples.Options{}); err != nil {
		t.Fatal(err)
	}
	upper, err := examples.CreateRepo(filepath.Join(bx.layout.Dir, "modules", "upper"), "1", map[string]string{"upper.yaml": upperModule}, examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return upper
}

// A build whose buildrequired stream is queued waits without holding a
// build slot: with one slot, upper (started first) waits for rida-demo,
// which then builds in that slot, and upper builds against it after.
func TestRunner_WaitForBuildRequiredStreamReleasesTheSlot(t *testing.T) {
	bx := setup(t, func(o *runner.Options) { o.MaxBuilds = 1; o.DepPollInterval = 100 * time.Millisecond })
	upper := createUpper(t, bx)
	ctx := context.Background()
	// Upper is queued first (so it starts first), then rida-demo.
	if _, err := bx.store.Enqueue(ctx, state.BuildRequest{Module: "upper", Stream: "1", Kind: state.RequestModule, ModuleRepo: upper.URL, Reasons: []string{"test"}}); err != nil {
		t.Fatal(err)
	}
	lowerReq := bx.enqueue(state.RequestModule, "test")
	var lower, up state.ModuleBuild
	for range 2 {
		select {
		case mb := <-bx.finished:
			if mb.Name == "upper" {
				up = mb
			} else {
				lower = mb
			}
		case <-time.After(3 * time.Minute):
			t.Fatal("deadlock: the waiting build kept the only slot")
		}
	}
	if lower.State != state.ModuleStateReady || up.State != state.ModuleStateReady {
		t.Fatalf("lower %s (%s), upper %s (%s)", lower.State, lower.StateReason, up.State, up.StateReason)
	}
	if lower.RequestID != lowerReq.ID {
		t.Fatalf("lower served request %d, want %d", lower.RequestID, lowerReq.ID)
	}
	var waited bool
	for _, tr := range up.Transitions {
		waited = waited || (tr.State == state.ModuleStateWait && strings.Contains(tr.Reason, "waiting for buildrequired rida-demo:1.0"))
	}
	if !waited {
		t.Errorf("upper never waited: %+v", up.Transitions)
	}
	if len(up.BuildRequires) != 1 || up.BuildRequires[0].BuildID != lower.ID || !up.BuildRequires[0].Direct {
		t.Errorf("upper built against %+v, want build %d", up.BuildRequires, lower.ID)
	}
	if up.Platform != "el9" {
		t.Errorf("platform %q", up.Platform)
	}
	// The local buildroot held rida-demo's packages: upper-app built with
	// its BuildRequires checked.
	for _, c := range up.Components {
		if c.Key == "upper-app" && c.State != "complete" {
			t.Errorf("upper-app %s: %s", c.State, c.Reason)
		}
	}
}

func TestCascader_For(t *testing.T) {
	dependents := func(r modgraph.StreamRef) ([]modgraph.StreamRef, error) {
		switch r.String() {
		case "a:1":
			return []modgraph.StreamRef{{Name: "b", Stream: "1"}, {Name: "c", Stream: "1"}}, nil
		case "b:1":
			return []modgraph.StreamRef{{Name: "c", Stream: "1"}}, nil
		case "c:1":
			return []modgraph.StreamRef{{Name: "d", Stream: "1"}}, nil
		}
		return nil, nil
	}
	repo := func(r modgraph.StreamRef) string {
		if r.Name == "d" {
			return ""
		}
		return "file:///m/" + r.Name
	}
	ev := state.CascadeEvent{
		Build:      &state.ModuleBuild{ID: 7, Name: "a", Stream: "1"},
		Request:    &state.BuildRequest{ID: 3, DeliveryIDs: []uint64{11}},
		Dependents: dependents, ModuleRepo: repo,
	}
	reqs, note := runner.Cascader{Enabled: true}.For(ev)
	if len(reqs) != 2 || reqs[0].Module != "b" || reqs[1].Module != "c" {
		t.Fatalf("requests %+v", reqs)
	}
	if !strings.Contains(reqs[1].Reasons[0], "a:1 build 7 became ready") || reqs[1].DeliveryIDs[0] != 11 || reqs[1].CascadeFrom != 7 {
		t.Errorf("request %+v", reqs[1])
	}
	if !strings.Contains(note, "d:1 skipped: its module repository is not indexed") {
		t.Errorf("note %q", note)
	}
	if reqs, _ := (runner.Cascader{Enabled: true, MaxDepth: 1}).For(ev); len(reqs) != 2 {
		t.Errorf("depth 1: %d requests", len(reqs))
	}
	_, note = runner.Cascader{Enabled: true, MaxDepth: 1}.For(ev)
	if !strings.Contains(note, "depth limit 1: not queued: d:1") {
		t.Errorf("depth note %q", note)
	}
	if reqs, _ := (runner.Cascader{}).For(ev); reqs != nil {
		t.Error("disabled cascader queued requests")
	}
	ev.Request.CascadeFrom = 2
	if reqs, _ := (runner.Cascader{Enabled: true}).For(ev); reqs != nil {
		t.Error("a cascaded build cascaded again")
	}
	ev.Request.CascadeFrom = 0
	cyclic := func(r modgraph.StreamRef) ([]modgraph.StreamRef, error) {
		if r.Name == "d" {
			return []modgraph.StreamRef{{Name: "a", Stream: "1"}}, nil
		}
		return dependents(r)
	}
	ev.Dependents = cyclic
	if reqs, note := (runner.Cascader{Enabled: true}).For(ev); reqs != nil || !strings.Contains(note, "module dependency cycle") {
		t.Errorf("cycle: %d requests, note %q", len(reqs), note)
	}
}

// A failed build is logged at WARN (the packager's failure) or ERROR
// (infrastructure), so an operator finds it.
func TestRunner_FailedBuildLogsAtWarn(t *testing.T) {
	var buf testlog.Buffer
	bx := setup(t, func(o *runner.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	if _, err := bx.store.Enqueue(context.Background(), state.BuildRequest{Module: "ghost", Stream: "1", Kind: state.RequestModule,
		ModuleRepo: "file://" + filepath.Join(bx.dir, "no-such-module"), Reasons: []string{"test"}}); err != nil {
		t.Fatal(err)
	}
	bx.runner.Notify()
	select {
	case mb := <-bx.finished:
		if mb.State != state.ModuleStateFailed || mb.FailureKind != state.FailureBuild {
			t.Fatalf("build %s %s: %s", mb.State, mb.FailureKind, mb.StateReason)
		}
	case <-time.After(time.Minute):
		t.Fatal("no build finished")
	}
	if out := buf.String(); !strings.Contains(out, `level=WARN msg="runner: build finished"`) || !strings.Contains(out, "result=failed") {
		t.Errorf("log:\n%s", out)
	}
}

// Five components whose repositories do not exist: the reason names the
// first three and counts the rest, the event log keeps all five, and it is
// the packager's failure.
func TestRunner_ManyMissingRepositories(t *testing.T) {
	bx := setup(t, nil)
	var comps strings.Builder
	for i := range 5 {
		fmt.Fprintf(&comps, "      gone%d: {rationale: r, ref: main}\n", i)
	}
	mod := "document: modulemd\nversion: 2\ndata:\n  summary: s\n  description: d\n  license: {module: [MIT]}\n  components:\n    rpms:\n" + comps.String()
	repo, err := examples.CreateRepo(filepath.Join(bx.layout.Dir, "modules", "many"), "1", map[string]string{"many.yaml": mod}, examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bx.store.Enqueue(context.Background(), state.BuildRequest{Module: "many", Stream: "1", Kind: state.RequestModule, ModuleRepo: repo.URL, Reasons: []string{"test"}}); err != nil {
		t.Fatal(err)
	}
	bx.runner.Notify()
	var mb state.ModuleBuild
	select {
	case mb = <-bx.finished:
	case <-time.After(time.Minute):
		t.Fatal("no build finished")
	}
	if mb.State != state.ModuleStateFailed || mb.FailureKind != state.FailureBuild || !strings.Contains(mb.StateReason, "and 2 more") {
		t.Fatalf("build %s %s: %s", mb.State, mb.FailureKind, mb.StateReason)
	}
	events, err := bx.store.EventsSince(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events {
		if e.Kind == state.EventModuleBuildErrors && e.Subject == fmt.Sprintf("modulebuild/%d", mb.ID) {
			found = strings.Count(string(e.Data), "repository not found") == 5
		}
	}
	if !found {
		t.Error("the event log does not hold all five errors")
	}
}

// A scratch build of a buildrequired stream is never built against (MBS),
// so a dependent does not wait for one queued or running: upper builds at
// once against the stream's ready build while rida-demo's scratch build
// is on the way.
func TestRunner_ScratchBuildOfBuildRequiredStreamIsNotWaitedFor(t *testing.T) {
	bx := setup(t, func(o *runner.Options) { o.MaxBuilds = 2; o.DepPollInterval = 100 * time.Millisecond })
	upper := createUpper(t, bx)
	ctx := context.Background()
	bx.enqueue(state.RequestModule, "test")
	lower := bx.waitFinished()
	if lower.State != state.ModuleStateReady {
		t.Fatalf("rida-demo: %s (%s)", lower.State, lower.StateReason)
	}
	// The scratch build is queued first, so it is on the way (queued or
	// running) when upper resolves.
	_, scratch, err := bx.store.EnqueueWithBuild(ctx, state.BuildRequest{Module: examples.ModuleName, Stream: examples.ModuleStream, Kind: state.RequestModule,
		ModuleRepo: bx.layout.Module.URL, ModuleCommit: bx.layout.Module.Commit, Reasons: []string{"scratch"}}, state.RequestOptions{Scratch: true, Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bx.store.Enqueue(ctx, state.BuildRequest{Module: "upper", Stream: "1", Kind: state.RequestModule, ModuleRepo: upper.URL, Reasons: []string{"test"}}); err != nil {
		t.Fatal(err)
	}
	bx.runner.Notify()
	var up, sc state.ModuleBuild
	for range 2 {
		mb := bx.waitFinished()
		if mb.Name == "upper" {
			up = mb
		} else {
			sc = mb
		}
	}
	if sc.ID != scratch[0].ID || !sc.Scratch {
		t.Fatalf("second rida-demo build %d (scratch %v), want the scratch build %d", sc.ID, sc.Scratch, scratch[0].ID)
	}
	if up.State != state.ModuleStateReady {
		t.Fatalf("upper %s (%s)", up.State, up.StateReason)
	}
	for _, tr := range up.Transitions {
		if tr.State == state.ModuleStateWait && strings.Contains(tr.Reason, "waiting for buildrequired") {
			t.Errorf("upper waited for the scratch build: %q", tr.Reason)
		}
	}
	if len(up.BuildRequires) != 1 || up.BuildRequires[0].BuildID != lower.ID {
		t.Errorf("upper built against %+v, want the ready build %d", up.BuildRequires, lower.ID)
	}
}
