package runner_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/runner/runnertest"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/scm/scmtest"
	"github.com/rida-build/rida/state"
)

// bundle is a runner wired to real parts: a bbolt file, git repositories
// made from the examples, scm mirrors and the local backend with real
// rpmbuild, whose runs are counted per package through a wrapper script.
type bundle struct {
	t        *testing.T
	dir      string
	layout   *examples.Layout
	store    *state.Store
	runner   *runner.Runner
	finished chan state.ModuleBuild
	rpmbuild string // wrapper; it logs one line per run to rpmbuild.log
	opts     runner.Options
}

func setup(t *testing.T, mutate func(*runner.Options)) *bundle {
	t.Helper()
	dir := t.TempDir()
	layout, err := examples.CreateRepos(mustMkdir(t, filepath.Join(dir, "git")), examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(filepath.Join(dir, "rida.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		store.Close()
	})
	bx := &bundle{t: t, dir: dir, layout: layout, store: store, finished: make(chan state.ModuleBuild, 16)}
	// The wrapper records the spec or SRPM it was asked to build.
	bx.rpmbuild = filepath.Join(dir, "rpmbuild-counting")
	script := "#!/bin/sh\nfor a; do case \"$a\" in *.spec) echo \"$(basename \"$a\" .spec)\" >> " + filepath.Join(dir, "rpmbuild.log") + ";; esac; done\nexec rpmbuild \"$@\"\n"
	if err := os.WriteFile(bx.rpmbuild, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	mirrors, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(dir, "mirrors"), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	be, err := local.New(local.Options{WorkDir: filepath.Join(dir, "builds"), Parallel: 2, Sandbox: local.SandboxOff,
		Logger: quiet(), Test: local.TestOptions{RPMBuild: bx.rpmbuild}})
	if err != nil {
		t.Fatal(err)
	}
	bx.opts = runner.Options{
		Store: store, Backend: be, Modules: runner.SCMModules{Mirrors: mirrors},
		Resolver: scm.Resolver{Mirrors: mirrors}, NotFound: scm.ErrNotFound, BackendName: "local",
		DefaultRepository: layout.ComponentsBaseURL, Platform: "el9", PollInterval: 50 * time.Millisecond,
		Logger:   quiet(),
		OnFinish: func(mb state.ModuleBuild) { bx.finished <- mb },
	}
	if mutate != nil {
		mutate(&bx.opts)
	}
	bx.start()
	return bx
}

func (bx *bundle) start() {
	bx.t.Helper()
	r, err := runner.New(bx.opts)
	if err != nil {
		bx.t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		bx.t.Fatal(err)
	}
	bx.runner = r
	bx.t.Cleanup(r.Stop)
}

func mustMkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (bx *bundle) enqueue(kind state.RequestKind, reason string) *state.BuildRequest {
	bx.t.Helper()
	res, err := bx.store.Enqueue(context.Background(), state.BuildRequest{
		Module: examples.ModuleName, Stream: examples.ModuleStream, Kind: kind, Reasons: []string{reason},
		ModuleRepo: bx.layout.Module.URL,
	})
	if err != nil {
		bx.t.Fatal(err)
	}
	bx.runner.Notify()
	return res.Request
}

func (bx *bundle) waitFinished() state.ModuleBuild {
	bx.t.Helper()
	select {
	case mb := <-bx.finished:
		return mb
	case <-time.After(2 * time.Minute):
		bx.t.Fatal("no build finished within 2 minutes")
	}
	panic("unreachable")
}

// rpmbuildRuns returns how many times rpmbuild was run for each spec.
func (bx *bundle) rpmbuildRuns() map[string]int {
	data, _ := os.ReadFile(filepath.Join(bx.dir, "rpmbuild.log"))
	out := map[string]int{}
	for _, l := range strings.Fields(string(data)) {
		out[l]++
	}
	return out
}

func (bx *bundle) commitComponent(key string, files map[string]string) string {
	repo := scmtest.Open(bx.t, bx.layout.Components[key].Path)
	return repo.Commit("change "+key, files)
}

func componentStates(mb state.ModuleBuild) map[string]string {
	out := map[string]string{}
	for _, c := range mb.Components {
		out[c.Key] = c.State
	}
	return out
}

func TestRunner_PushToReady_ThenReuse(t *testing.T) {
	bx := setup(t, nil)
	bx.enqueue(state.RequestModule, "modulemd changed")
	mb := bx.waitFinished()
	if mb.State != state.ModuleStateReady {
		t.Fatalf("build 1: %s (%s)", mb.State, mb.StateReason)
	}
	var trace []string
	for _, tr := range mb.Transitions {
		trace = append(trace, tr.State.String())
	}
	if got := strings.Join(trace, ","); got != "init,wait,build,done,ready" {
		t.Errorf("state trace = %s", got)
	}
	for key, st := range componentStates(mb) {
		if st != "complete" {
			t.Errorf("build 1: %s is %s", key, st)
		}
	}
	first := bx.rpmbuildRuns()
	if first["rida-demo-tools"] != 1 || first["rida-demo-lib"] != 1 {
		t.Errorf("rpmbuild runs after build 1: %v", first)
	}

	// A change to the one component of the last batch rebuilds only it.
	bx.commitComponent("rida-demo-tools", map[string]string{"NOTES": "a change\n"})
	bx.enqueue(state.RequestComponent, "component rida-demo-tools changed")
	mb2 := bx.waitFinished()
	if mb2.State != state.ModuleStateReady {
		t.Fatalf("build 2: %s (%s)", mb2.State, mb2.StateReason)
	}
	states := componentStates(mb2)
	for _, key := range []string{"rida-demo-lib", "rida-demo-data", "rida-demo-app", "rida-demo-docs"} {
		if states[key] != "reused" {
			t.Errorf("build 2: %s is %s, want reused", key, states[key])
		}
	}
	if states["rida-demo-tools"] != "complete" {
		t.Errorf("build 2: rida-demo-tools is %s", states["rida-demo-tools"])
	}
	second := bx.rpmbuildRuns()
	for key, n := range second {
		want := first[key]
		if key == "rida-demo-tools" {
			want++
		}
		if key != "module-build-macros" && n != want {
			t.Errorf("rpmbuild ran %d times for %s, want %d", n, key, want)
		}
	}
	if mb2.Version <= mb.Version {
		t.Errorf("a component-only change kept version %d (build 1 had %d)", mb2.Version, mb.Version)
	}
	for _, c := range mb2.Components {
		if c.State == "reused" && (c.ReusedFrom != mb.ID || !strings.Contains(c.Reason, fmt.Sprintf("build %d", mb.ID))) {
			t.Errorf("reused %s does not say where it came from: %+v", c.Key, c)
		}
	}
	rpms, _ := filepath.Glob(filepath.Join(mb2.ResultDir, "rida-demo-lib-*.noarch.rpm"))
	if len(rpms) != 1 {
		t.Errorf("reused package missing from build 2's repository %s: %v", mb2.ResultDir, rpms)
	}

	// The same content again is satisfied by the build that exists.
	bx.enqueue(state.RequestModule, "redelivered")
	mb3 := bx.waitFinished()
	if mb3.State != state.ModuleStateGarbage || !strings.Contains(mb3.StateReason, fmt.Sprintf("identical to build %d", mb2.ID)) {
		t.Errorf("identical request: %s (%s)", mb3.State, mb3.StateReason)
	}
}

func TestRunner_FailingComponent(t *testing.T) {
	bx := setup(t, nil)
	bx.commitComponent("rida-demo-docs", map[string]string{"rida-demo-docs.spec": brokenSpec("rida-demo-docs")})
	bx.enqueue(state.RequestModule, "first build")
	mb := bx.waitFinished()
	if mb.State != state.ModuleStateFailed {
		t.Fatalf("state %s, want failed", mb.State)
	}
	if !strings.Contains(mb.StateReason, "Component(s) rida-demo-docs failed to build.") || !strings.Contains(mb.StateReason, "rida-demo-docs.log") {
		t.Errorf("reason %q does not name the component and its log", mb.StateReason)
	}
	req, err := bx.store.Request(context.Background(), mb.RequestID)
	if err != nil || req.Result != state.ResultFailed {
		t.Errorf("request result = %+v, %v", req, err)
	}
}

func brokenSpec(name string) string {
	return "Name: " + name + "\nVersion: 1\nRelease: 1%{?dist}\nSummary: broken\nLicense: MIT\nBuildArch: noarch\n%description\nbroken\n%build\necho this package is broken; exit 1\n%files\n"
}

func slowSpec(name string) string {
	return "Name: " + name + "\nVersion: 1\nRelease: 1%{?dist}\nSummary: slow\nLicense: MIT\nBuildArch: noarch\n%description\nslow\n%build\nsleep 60\n%files\n"
}

// waitFor polls cond until it holds; it fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (bx *bundle) componentState(id uint64, key string) string {
	mb, err := bx.store.GetModuleBuild(context.Background(), id)
	if err != nil {
		return ""
	}
	return componentStates(*mb)[key]
}

func (bx *bundle) runningBuild() uint64 {
	builds, _ := bx.store.ModuleBuilds(context.Background(), func(mb *state.ModuleBuild) bool { return mb.State == state.ModuleStateBuild })
	if len(builds) == 0 {
		return 0
	}
	return builds[0].ID
}

func TestRunner_SecondPushDuringBuild_OneFollowUp_AndCancel(t *testing.T) {
	bx := setup(t, nil)
	bx.commitComponent("rida-demo-tools", map[string]string{"rida-demo-tools.spec": slowSpec("rida-demo-tools")})
	bx.enqueue(state.RequestModule, "first")
	var id uint64
	waitFor(t, time.Minute, "the slow component to build", func() bool {
		id = bx.runningBuild()
		return id != 0 && bx.componentState(id, "rida-demo-tools") == "building"
	})
	// Three more pushes while it builds: one pending request, merged.
	for i := range 3 {
		bx.enqueue(state.RequestComponent, fmt.Sprintf("push %d", i))
	}
	running, pending, err := bx.store.QueueSlot(context.Background(), examples.ModuleName+":"+examples.ModuleStream)
	if err != nil || running == nil || pending == nil || pending.Merges != 2 {
		t.Fatalf("queue slot: running %v pending %+v err %v", running, pending, err)
	}
	if err := bx.runner.Cancel(context.Background(), id, "alice"); err != nil {
		t.Fatal(err)
	}
	mb := bx.waitFinished()
	if mb.ID != id || mb.State != state.ModuleStateFailed || mb.StateReason != "cancelled by alice" {
		t.Fatalf("cancelled build: id %d state %s reason %q", mb.ID, mb.State, mb.StateReason)
	}
	// The follow-up builds the same slow spec; cancel it too and count.
	waitFor(t, time.Minute, "the follow-up build", func() bool { b := bx.runningBuild(); return b != 0 && b != id })
	follow := bx.runningBuild()
	if err := bx.runner.Cancel(context.Background(), follow, "bob"); err != nil {
		t.Fatal(err)
	}
	mb2 := bx.waitFinished()
	if mb2.ID != follow || mb2.StateReason != "cancelled by bob" {
		t.Errorf("follow-up: %+v", mb2.StateReason)
	}
	all, _ := bx.store.ModuleBuilds(context.Background(), nil)
	if len(all) != 2 {
		t.Errorf("%d module builds, want exactly 2 (one follow-up for three pushes)", len(all))
	}
	if err := bx.runner.Cancel(context.Background(), follow, "carol"); err == nil {
		t.Error("cancelling a finished build succeeded")
	}
}

func TestRunner_CancelRunningPolicy_Supersedes(t *testing.T) {
	bx := setup(t, func(o *runner.Options) { o.CancelRunning = true })
	bx.commitComponent("rida-demo-tools", map[string]string{"rida-demo-tools.spec": slowSpec("rida-demo-tools")})
	bx.enqueue(state.RequestModule, "first")
	var id uint64
	waitFor(t, time.Minute, "the slow component to build", func() bool {
		id = bx.runningBuild()
		return id != 0 && bx.componentState(id, "rida-demo-tools") == "building"
	})
	newer := bx.enqueue(state.RequestComponent, "newer push")
	mb := bx.waitFinished()
	if mb.ID != id || mb.State != state.ModuleStateFailed || !strings.Contains(mb.StateReason, fmt.Sprintf("superseded by request %d", newer.ID)) {
		t.Fatalf("superseded build: %d %s %q", mb.ID, mb.State, mb.StateReason)
	}
	waitFor(t, time.Minute, "the newer build", func() bool { b := bx.runningBuild(); return b != 0 && b != id })
	if err := bx.runner.Cancel(context.Background(), bx.runningBuild(), "test cleanup"); err != nil {
		t.Fatal(err)
	}
	bx.waitFinished()
}

// TestRunner_Restart_ResumesInterruptedBatch stops the runner while batch 4
// builds (the process going away) and starts a new one on the same store:
// the build finishes and the batches that had finished are not rebuilt.
func TestRunner_Restart_ResumesInterruptedBatch(t *testing.T) {
	bx := setup(t, nil)
	slow := filepath.Join(bx.dir, "slow-once")
	// rida-demo-tools sleeps on its first build only (a marker file says
	// whether it ran before), so the restarted build can finish.
	spec := "Name: rida-demo-tools\nVersion: 1\nRelease: 1%{?dist}\nSummary: slow once\nLicense: MIT\nBuildArch: noarch\n%description\nslow once\n%build\nif [ ! -e " + slow + " ]; then touch " + slow + "; sleep 60; fi\n%files\n"
	bx.commitComponent("rida-demo-tools", map[string]string{"rida-demo-tools.spec": spec})
	bx.enqueue(state.RequestModule, "first")
	var id uint64
	waitFor(t, time.Minute, "batch 4 to build", func() bool {
		id = bx.runningBuild()
		_, err := os.Stat(slow) // %build is running
		return id != 0 && err == nil
	})
	bx.runner.Stop()
	mb, err := bx.store.GetModuleBuild(context.Background(), id)
	if err != nil || mb.State != state.ModuleStateBuild {
		t.Fatalf("after stop: %+v %v", mb, err)
	}
	before := bx.rpmbuildRuns()
	bx.start()
	done := bx.waitFinished()
	if done.ID != id || done.State != state.ModuleStateReady {
		t.Fatalf("resumed build: %d %s %q", done.ID, done.State, done.StateReason)
	}
	after := bx.rpmbuildRuns()
	for key, n := range after {
		if key != "rida-demo-tools" && n != before[key] {
			t.Errorf("%s was rebuilt after the restart (%d → %d runs)", key, before[key], n)
		}
	}
	if after["rida-demo-tools"] != before["rida-demo-tools"]+1 {
		t.Errorf("interrupted component ran %d → %d times", before["rida-demo-tools"], after["rida-demo-tools"])
	}
}

func TestRunner_InvalidModulemd_FailsWithFieldPath(t *testing.T) {
	bx := setup(t, nil)
	mod := scmtest.Open(t, bx.layout.Module.Path)
	bad := strings.Replace(string(examples.ModuleYAML()), "ref: main\n        buildorder: 30", "ref: no-such-branch\n        buildorder: 30", 1)
	mod.Commit("bad ref", map[string]string{examples.ModuleFile: bad})
	bx.enqueue(state.RequestModule, "bad ref")
	mb := bx.waitFinished()
	if mb.State != state.ModuleStateFailed || !strings.Contains(mb.StateReason, "rida-demo-tools") || !strings.Contains(mb.StateReason, "no-such-branch") {
		t.Errorf("missing ref: %s %q", mb.State, mb.StateReason)
	}
	req, _ := bx.store.Request(context.Background(), mb.RequestID)
	if req == nil || req.Result != state.ResultFailed {
		t.Errorf("a missing ref must be a failure, not an error: %+v", req)
	}
}

func TestNew_Validation(t *testing.T) {
	_, err := runner.New(runner.Options{})
	if err == nil || !strings.Contains(err.Error(), "Options.Store") {
		t.Errorf("err = %v", err)
	}
	var ie *runner.InfraError
	if errors.As(err, &ie) {
		t.Error("a config error is not an infrastructure error")
	}
	_ = sync.Mutex{}
}

// cancelingSim is the simulated backend plus Cancel, which fails twice
// before it works, as a hub that is briefly unreachable would.
type cancelingSim struct {
	*runnertest.SimBackend
	mu    sync.Mutex
	calls int
}

func (c *cancelingSim) Cancel(ctx context.Context, b *runner.Build) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls <= 2 {
		return errors.New("hub unreachable")
	}
	return nil
}

func TestRunner_Cancel_StopsBackendTasksWithRetries(t *testing.T) {
	be := &cancelingSim{SimBackend: &runnertest.SimBackend{Default: time.Minute}}
	bx := setup(t, func(o *runner.Options) { o.Backend = be })
	bx.enqueue(state.RequestModule, "first")
	var id uint64
	waitFor(t, time.Minute, "the build to start", func() bool { id = bx.runningBuild(); return id != 0 })
	if err := bx.runner.Cancel(context.Background(), id, "alice"); err != nil {
		t.Fatal(err)
	}
	mb := bx.waitFinished()
	if mb.StateReason != "cancelled by alice" {
		t.Errorf("reason %q", mb.StateReason)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.calls != 3 {
		t.Errorf("backend Cancel called %d times, want 3 (two failures, then success)", be.calls)
	}
}

// TestRunner_PackagerV3_OneBuildPerConfiguration: a packager v3 modulemd
// with two configurations gives two module builds, one per context, and the
// request ends when both did.
func TestRunner_PackagerV3_OneBuildPerConfiguration(t *testing.T) {
	bx := setup(t, nil)
	v3 := `document: modulemd-packager
version: 3
data:
  name: rida-demo
  stream: "1.0"
  summary: Demonstration module for rida
  description: The demo module in packager v3 form, for two platforms.
  license: [MIT]
  configurations:
    - context: CTXA
      platform: el9
    - context: CTXB
      platform: el10
  components:
    rpms:
      rida-demo-lib: {rationale: lib, ref: main, buildorder: 10}
      rida-demo-data: {rationale: data, ref: main, buildorder: 10}
      rida-demo-app: {rationale: app, ref: main, buildorder: 20}
`
	scmtest.Open(t, bx.layout.Module.Path).Commit("packager v3", map[string]string{examples.ModuleFile: v3})
	req := bx.enqueue(state.RequestModule, "v3")
	got := map[string]state.ModuleBuild{}
	for range 2 {
		mb := bx.waitFinished()
		got[mb.Context] = mb
	}
	for _, ctx := range []string{"CTXA", "CTXB"} {
		mb, ok := got[ctx]
		if !ok || mb.State != state.ModuleStateReady {
			t.Errorf("context %s: %+v", ctx, mb.StateReason)
		}
	}
	// Each version carries its own platform's prefix, as MBS's do.
	if got["CTXA"].ID == got["CTXB"].ID || !strings.HasPrefix(fmt.Sprint(got["CTXA"].Version), "9") || !strings.HasPrefix(fmt.Sprint(got["CTXB"].Version), "10") {
		t.Errorf("builds %d/%d, versions %d/%d", got["CTXA"].ID, got["CTXB"].ID, got["CTXA"].Version, got["CTXB"].Version)
	}
	r, err := bx.store.Request(context.Background(), req.ID)
	if err != nil || r.State != state.RequestFinished || r.Result != state.ResultSucceeded {
		t.Errorf("request: %+v %v", r, err)
	}
}

// TestRunner_StreamExpansion: a stream v2 modulemd that buildrequires two
// platform streams is expanded, as MBS does, into two builds with their own
// contexts, version prefixes and dist tag markings.
func TestRunner_StreamExpansion(t *testing.T) {
	bx := setup(t, nil)
	mse := strings.Replace(string(examples.ModuleYAML()), "platform: [el9]\n      requires:\n        platform: [el9]", "platform: [el9, el10]\n      requires:\n        platform: [el9, el10]", 1)
	if mse == string(examples.ModuleYAML()) {
		t.Fatal("the example modulemd no longer has the dependencies this test rewrites")
	}
	scmtest.Open(t, bx.layout.Module.Path).Commit("two platforms", map[string]string{examples.ModuleFile: mse})
	bx.enqueue(state.RequestModule, "mse")
	var got []state.ModuleBuild
	for range 2 {
		got = append(got, bx.waitFinished())
	}
	markings := map[string]bool{}
	for _, mb := range got {
		if mb.State != state.ModuleStateReady {
			t.Errorf("build %d: %s %s", mb.ID, mb.State, mb.StateReason)
		}
		markings[strings.Split(mb.DistTag, "+")[1]] = true
	}
	if got[0].Context == got[1].Context || !markings["el9"] || !markings["el10"] {
		t.Errorf("contexts %s/%s, dist tags %s/%s", got[0].Context, got[1].Context, got[0].DistTag, got[1].DistTag)
	}
}

// TestRunner_ReuseUnavailable_BuildsInstead: when the earlier build's
// packages of a reusable component are gone (cleaned up), the component is
// built instead of failing the module.
func TestRunner_ReuseUnavailable_BuildsInstead(t *testing.T) {
	bx := setup(t, nil)
	bx.enqueue(state.RequestModule, "first")
	mb := bx.waitFinished()
	if mb.State != state.ModuleStateReady {
		t.Fatalf("build 1: %s %s", mb.State, mb.StateReason)
	}
	gone, _ := filepath.Glob(filepath.Join(mb.ResultDir, "rida-demo-lib-*.rpm"))
	if len(gone) == 0 {
		t.Fatalf("no rida-demo-lib packages in %s", mb.ResultDir)
	}
	for _, f := range gone {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	bx.commitComponent("rida-demo-tools", map[string]string{"NOTES": "x\n"})
	bx.enqueue(state.RequestComponent, "tools changed")
	mb2 := bx.waitFinished()
	states := componentStates(mb2)
	if mb2.State != state.ModuleStateReady || states["rida-demo-lib"] != "complete" || states["rida-demo-data"] != "reused" {
		t.Errorf("build 2: %s %q, components %v", mb2.State, mb2.StateReason, states)
	}
}

// TestRunner_IncludedModule: a module that includes another
// (components.modules) builds the included module's components too, in
// batches of their own at the included module's place in the order.
func TestRunner_IncludedModule(t *testing.T) {
	bx := setup(t, nil)
	// modules/rida-demo-extra holds rida-demo-docs; the demo module drops
	// it from its own components and includes rida-demo-extra instead.
	extra := scmtest.New(t, filepath.Join(bx.dir, "git", "modules", "rida-demo-extra"), examples.ModuleBranch)
	extra.Commit("extra", map[string]string{"rida-demo-extra.yaml": `document: modulemd
version: 2
data:
  summary: extra
  description: The documentation, as a module of its own.
  license: {module: [MIT]}
  components:
    rpms:
      rida-demo-docs: {rationale: docs, ref: main}
`})
	parent := strings.Replace(string(examples.ModuleYAML()), `      rida-demo-docs:
        rationale: Documentation built from rida-demo-data.
        ref: main
        buildorder: 20
`, "", 1)
	parent = strings.Replace(parent, "  components:\n", "  components:\n    modules:\n      rida-demo-extra: {rationale: docs as a module, buildorder: 20}\n", 1)
	if !strings.Contains(parent, "rida-demo-extra") || strings.Contains(parent, "Documentation built from") {
		t.Fatal("the example modulemd changed; this test's rewrite no longer applies")
	}
	scmtest.Open(t, bx.layout.Module.Path).Commit("include extra", map[string]string{examples.ModuleFile: parent})
	bx.enqueue(state.RequestModule, "include")
	mb := bx.waitFinished()
	if mb.State != state.ModuleStateReady {
		t.Fatalf("build: %s %s", mb.State, mb.StateReason)
	}
	batch := map[string]int{}
	for _, c := range mb.Components {
		batch[c.Key] = c.Batch
		if c.State != "complete" {
			t.Errorf("%s is %s", c.Key, c.State)
		}
	}
	// lib,data (10) | app (20) | docs (the included module, at 20) | tools (30)
	if batch["rida-demo-lib"] != 2 || batch["rida-demo-app"] != 3 || batch["rida-demo-docs"] != 4 || batch["rida-demo-tools"] != 5 {
		t.Errorf("batches %v", batch)
	}
	if !strings.Contains(mb.Modulemd, "included") {
		t.Errorf("the recorded modulemd does not say what was included:\n%s", mb.Modulemd)
	}
}
