package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
)

var _ runner.Backend = (*local.Backend)(nil)

func TestBackend_BuildModule_EndToEnd(t *testing.T) {
	t.Parallel()
	be := mustNew(t, local.Options{Parallel: 2})
	if !be.Sandboxed() {
		t.Errorf("Sandbox auto: bwrap works on this machine but the backend is not sandboxed")
	}
	build := demoBuild(t, 7)
	rec := &recorder{build: build}
	mustBuildBatches(t, be, build, rec, 99)

	if len(build.Batches) != 4 {
		t.Fatalf("want 4 batches (macros + 3 buildorders), got %d", len(build.Batches))
	}
	var all []string
	for _, batch := range build.Batches {
		for _, c := range batch.Components {
			if c.State != runner.ComponentComplete {
				t.Fatalf("component %s: state %s, reason %q", c.Key, c.State, c.Reason)
			}
			if !strings.HasSuffix(c.NVR, build.DistTag) {
				t.Errorf("component %s: NVR %s lacks dist tag %s", c.Key, c.NVR, build.DistTag)
			}
			if c.LogPath == "" {
				t.Errorf("component %s: no log path", c.Key)
			} else if _, err := os.Stat(c.LogPath); err != nil {
				t.Error(err)
			}
			us := rec.updatesFor(c.Key)
			if len(us) != 2 || us[0].State != runner.ComponentBuilding || us[1].State != runner.ComponentComplete {
				t.Errorf("component %s: updates %+v, want building then complete", c.Key, us)
			}
			var src bool
			for _, n := range c.RPMs {
				if !strings.Contains(n, "-0:") {
					t.Errorf("NEVRA %s lacks explicit epoch", n)
				}
				src = src || strings.HasSuffix(n, ".src")
			}
			if !src {
				t.Errorf("component %s: no source RPM in %v", c.Key, c.RPMs)
			}
			if c.Key != runner.MacrosComponent {
				all = append(all, c.RPMs...)
			}
		}
	}
	slices.Sort(all)

	// Batch N+1 started only after batch N's repodata existed.
	repos := be.BatchRepos(build)
	if len(repos) != len(build.Batches) {
		t.Fatalf("BatchRepos: %d entries, want %d", len(repos), len(build.Batches))
	}
	for i, batch := range build.Batches {
		if repos[i].Batch != batch.Number || repos[i].Written.IsZero() {
			t.Errorf("BatchRepos[%d] = %+v", i, repos[i])
		}
		if i == 0 {
			continue
		}
		prev := repos[i-1].Written
		for _, c := range batch.Components {
			if !c.Started.After(prev) {
				t.Errorf("batch %d component %s started %s, not after batch %d repomd.xml was written (%s)",
					batch.Number, c.Key, c.Started.Format(time.RFC3339Nano), batch.Number-1, prev.Format(time.RFC3339Nano))
			}
		}
	}

	res, err := be.Finish(t.Context(), build)
	if err != nil {
		t.Fatal(err)
	}
	if res.Dir != filepath.Join(be.BuildDir(build), "repo") || res.Location == "" {
		t.Errorf("Result dir %q location %q", res.Dir, res.Location)
	}
	label := "rida-demo:1.0:9020240101120000:0d3b5e6c"
	for _, n := range all {
		file := filepath.Join(res.Dir, nevraFile(n))
		if _, err := os.Stat(file); err != nil {
			t.Errorf("RPM of %s not in repository: %v", n, err)
			continue
		}
		rel := rpmQuery(t, file, "%{RELEASE}")
		if rel != "1"+build.DistTag {
			t.Errorf("%s: Release %q, want 1%s", n, rel, build.DistTag)
		}
		if strings.HasSuffix(n, ".src") {
			continue
		}
		// %{_module_name} and %{_module_stream} expanded (the module macros
		// were loaded), and rpm stamped ModularityLabel from %modularitylabel.
		if d := rpmQuery(t, file, "%{DESCRIPTION}"); !strings.Contains(d, "Built for module rida-demo:1.0 (label "+label+")") {
			t.Errorf("%s: description lacks module name:\n%s", n, d)
		}
		if l := rpmQuery(t, file, "%{MODULARITYLABEL}"); l != label {
			t.Errorf("%s: ModularityLabel %q, want %q", n, l, label)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(res.Dir, "module-build-macros-*")); len(m) != 0 {
		t.Errorf("module-build-macros left in the output repository: %v", m)
	}

	// modules.yaml: artifacts.rpms lists every NEVRA, sorted, src included.
	var mmd struct {
		Document string `yaml:"document"`
		Data     struct {
			Name      string `yaml:"name"`
			Artifacts struct {
				RPMs []string `yaml:"rpms"`
			} `yaml:"artifacts"`
		} `yaml:"data"`
	}
	if err := yaml.Unmarshal(res.Modulemd, &mmd); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mmd.Data.Artifacts.RPMs, all) || mmd.Data.Name != "rida-demo" || mmd.Document != "modulemd" {
		t.Errorf("modulemd artifacts.rpms = %v\nwant %v", mmd.Data.Artifacts.RPMs, all)
	}
	if onDisk, err := os.ReadFile(filepath.Join(res.Dir, "modules.yaml")); err != nil || string(onDisk) != string(res.Modulemd) {
		t.Errorf("repo/modules.yaml differs from Result.Modulemd (%v)", err)
	}
	repomd, err := os.ReadFile(filepath.Join(res.Dir, "repodata", "repomd.xml"))
	if err != nil || !strings.Contains(string(repomd), `type="modules"`) {
		t.Errorf("repomd.xml lacks modules metadata (%v)", err)
	}
	t.Logf("built %d RPMs; batch repos: %+v", len(all), repos)
}

// A component whose BuildRequires is provided by an earlier batch fails
// when that batch has not been built and builds once it has.
func TestBackend_BuildBatch_BuildRequiresFromEarlierBatch(t *testing.T) {
	t.Parallel()
	be := mustNew(t, local.Options{})
	lib := specRepo(t, "dep-lib", tinySpec("dep-lib", "Provides: dep-lib-api = 2", ""), nil)
	app := specRepo(t, "dep-app", tinySpec("dep-app", "BuildRequires: dep-lib-api >= 2", ""), nil)

	// Without the library: only macros, then the app.
	without := newBuild(1, []*runner.Component{app})
	rec := &recorder{build: without}
	mustBuildBatches(t, be, without, rec, 99)
	c := without.Batches[1].Components[0]
	t.Logf("reason: %s", c.Reason)
	if c.State != runner.ComponentFailed {
		t.Fatalf("dep-app without dep-lib: state %s, want failed", c.State)
	}
	for _, want := range []string{"component dep-app failed to build", "rpmbuild exited 11", "error: Failed build dependencies: dep-lib-api >= 2 is needed by dep-app-1-1", c.LogPath} {
		if !strings.Contains(c.Reason, want) {
			t.Errorf("reason %q lacks %q", c.Reason, want)
		}
	}

	// With the library in the batch before: it builds.
	lib2 := *lib
	app2 := *app
	with := newBuild(2, []*runner.Component{&lib2}, []*runner.Component{&app2})
	rec2 := &recorder{build: with}
	mustBuildBatches(t, be, with, rec2, 99)
	for _, c := range []*runner.Component{&lib2, &app2} {
		if c.State != runner.ComponentComplete {
			t.Errorf("%s: state %s, reason %s", c.Key, c.State, c.Reason)
		}
	}
}

func TestBackend_BuildBatch_FailingComponent(t *testing.T) {
	t.Parallel()
	failing := func(t *testing.T) *runner.Component {
		return specRepo(t, "broken", tinySpec("broken", "", "echo 'this package is broken' >&2\nexit 1"), nil)
	}
	t.Run("FinishBatch", func(t *testing.T) {
		t.Parallel()
		be := mustNew(t, local.Options{Parallel: 2})
		comps := []*runner.Component{
			failing(t),
			specRepo(t, "good-a", tinySpec("good-a", "", "sleep 1"), nil),
			specRepo(t, "good-b", tinySpec("good-b", "", "sleep 1"), nil),
		}
		build := newBuild(3, comps)
		rec := &recorder{build: build}
		mustBuildBatches(t, be, build, rec, 99)
		broken := comps[0]
		if broken.State != runner.ComponentFailed {
			t.Fatalf("broken: state %s", broken.State)
		}
		logPath := filepath.Join(be.BuildDir(build), "logs", "broken.log")
		for _, want := range []string{"component broken failed to build: rpmbuild exited 1", "see " + logPath, "this package is broken; error: Bad exit status"} {
			if !strings.Contains(broken.Reason, want) {
				t.Errorf("reason %q lacks %q", broken.Reason, want)
			}
		}
		if log, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(log), "this package is broken") {
			t.Errorf("log %s lacks the build's stderr (%v)", logPath, err)
		}
		t.Logf("reason: %s", broken.Reason)
		for _, c := range comps[1:] {
			if c.State != runner.ComponentComplete {
				t.Errorf("sibling %s: state %s (%s), want complete under finish-batch", c.Key, c.State, c.Reason)
			}
		}
	})
	t.Run("CancelBatch", func(t *testing.T) {
		t.Parallel()
		be := mustNew(t, local.Options{Parallel: 2, OnFailure: local.CancelBatch})
		comps := []*runner.Component{
			specRepo(t, "slow", tinySpec("slow", "", "sleep 60"), nil),
			failing(t),
			specRepo(t, "queued", tinySpec("queued", "", ""), nil),
		}
		build := newBuild(4, comps)
		rec := &recorder{build: build}
		start := time.Now()
		mustBuildBatches(t, be, build, rec, 99)
		if d := time.Since(start); d > 40*time.Second {
			t.Errorf("batch took %s: the slow sibling was not killed", d)
		}
		want := map[string]runner.ComponentState{"slow": runner.ComponentCanceled, "broken": runner.ComponentFailed, "queued": runner.ComponentCanceled}
		for _, c := range comps {
			if c.State != want[c.Key] {
				t.Errorf("%s: state %s (%s), want %s", c.Key, c.State, c.Reason, want[c.Key])
			}
		}
		if !strings.Contains(comps[0].Reason, "broken") {
			t.Errorf("canceled sibling's reason %q does not name the failed component", comps[0].Reason)
		}
		if procs := processesIn(be.BuildDir(build)); len(procs) > 0 {
			t.Errorf("processes still running in the build directory: %v", procs)
		}
		t.Logf("reasons: slow=%q queued=%q", comps[0].Reason, comps[2].Reason)
		if us := rec.updatesFor("queued"); len(us) != 1 {
			t.Errorf("queued component should go straight to canceled, got %+v", us)
		}
	})
}

func TestBackend_BuildBatch_ContextCanceled(t *testing.T) {
	t.Parallel()
	be := mustNew(t, local.Options{})
	slow := specRepo(t, "slow", tinySpec("slow", "", "sleep 60"), nil)
	build := newBuild(5, []*runner.Component{slow})
	rec := &recorder{build: build}
	mustBuildBatches(t, be, build, rec, 1)

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(2*time.Second, cancel)
	start := time.Now()
	err := be.BuildBatch(ctx, build, build.Batches[1], rec.report)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("BuildBatch after cancel = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("BuildBatch returned after %s: rpmbuild was not killed", d)
	}
	if slow.State != runner.ComponentCanceled {
		t.Errorf("slow: state %s, want canceled", slow.State)
	}
	// No process of that build survives (the whole process group, sandbox
	// included, was killed): none has its working directory in the build.
	if procs := processesIn(be.BuildDir(build)); len(procs) > 0 {
		t.Errorf("processes still running in the build directory: %v", procs)
	}
	t.Logf("reason: %s", slow.Reason)
}

// processesIn lists the pids whose working directory is under dir.
func processesIn(dir string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err == nil && strings.HasPrefix(cwd, dir) {
			pids = append(pids, e.Name()+":"+cwd)
		}
	}
	return pids
}

// rpmbuild runs in a network namespace of its own: %(...) in the spec is
// expanded inside the sandbox, so the description records its namespace.
func TestBackend_Sandbox_NoNetwork(t *testing.T) {
	t.Parallel()
	be := mustNew(t, local.Options{Sandbox: local.SandboxOn})
	spec := strings.Replace(tinySpec("netns", "", ""), "Test package.", "netns=%(readlink /proc/self/ns/net)", 1)
	c := specRepo(t, "netns", spec, nil)
	build := newBuild(6, []*runner.Component{c})
	rec := &recorder{build: build}
	mustBuildBatches(t, be, build, rec, 99)
	if c.State != runner.ComponentComplete {
		t.Fatalf("netns: %s %s", c.State, c.Reason)
	}
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(be.BuildDir(build), "work", "netns", "rpmbuild", "RPMS", "noarch", "netns-1-1"+build.DistTag+".noarch.rpm")
	desc := rpmQuery(t, file, "%{DESCRIPTION}")
	if !strings.Contains(desc, "netns=net:[") || strings.Contains(desc, host) {
		t.Errorf("build ran in host network namespace %s: description %q", host, desc)
	}
}

func TestNew_Options(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  local.Options
		field string
		is    error
	}{
		{"ErrWorkDirRequired", local.Options{}, "WorkDir", nil},
		{"ErrParallelNegative", local.Options{WorkDir: "x", Parallel: -1}, "Parallel", nil},
		{"ErrSandboxInvalid", local.Options{WorkDir: "x", Sandbox: "maybe"}, "Sandbox", nil},
		{"ErrOnFailureInvalid", local.Options{WorkDir: "x", OnFailure: "retry"}, "OnFailure", nil},
		{"ErrSandboxOnUnavailable", local.Options{WorkDir: "x", Sandbox: local.SandboxOn, Test: local.TestOptions{Bwrap: "/nonexistent/bwrap"}}, "Sandbox", local.ErrSandboxUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.WorkDir != "" {
				tt.opts.WorkDir = filepath.Join(t.TempDir(), tt.opts.WorkDir)
			}
			_, err := local.New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("New() error = %v, want one naming %s", err, tt.field)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
	t.Run("SandboxAutoFallsBack", func(t *testing.T) {
		be, err := local.New(local.Options{WorkDir: t.TempDir(), Test: local.TestOptions{Bwrap: "/nonexistent/bwrap"}})
		if err != nil || be.Sandboxed() {
			t.Fatalf("New(auto, no bwrap) = sandboxed %v, %v; want unsandboxed, nil", be != nil && be.Sandboxed(), err)
		}
		if p := be.SandboxProblem(); !errors.Is(p, local.ErrSandboxUnavailable) || !strings.Contains(p.Error(), "/nonexistent/bwrap") {
			t.Errorf("SandboxProblem() = %v, want ErrSandboxUnavailable naming the binary", p)
		}
	})
}

func TestBackend_BuildBatch_InfraErrors(t *testing.T) {
	t.Parallel()
	t.Run("RPMBuildMissing", func(t *testing.T) {
		be := mustNew(t, local.Options{Test: local.TestOptions{RPMBuild: "/nonexistent/rpmbuild"}})
		build := newBuild(8)
		if err := be.Prepare(t.Context(), build); err != nil {
			t.Fatal(err)
		}
		rec := &recorder{build: build}
		err := be.BuildBatch(t.Context(), build, build.Batches[0], rec.report)
		var te *local.ToolError
		if !errors.As(err, &te) || te.Tool != "/nonexistent/rpmbuild" {
			t.Fatalf("BuildBatch = %v, want *ToolError for rpmbuild", err)
		}
		if len(rec.updates) != 0 {
			t.Errorf("no component should be reported on a missing tool: %+v", rec.updates)
		}
	})
	t.Run("NotPrepared", func(t *testing.T) {
		be := mustNew(t, local.Options{})
		build := newBuild(9)
		err := be.BuildBatch(t.Context(), build, build.Batches[0], func(runner.ComponentUpdate) {})
		if !errors.Is(err, local.ErrNotPrepared) {
			t.Fatalf("BuildBatch = %v, want ErrNotPrepared", err)
		}
	})
	t.Run("NoModuleMacros", func(t *testing.T) {
		be := mustNew(t, local.Options{})
		build := newBuild(10, []*runner.Component{{Key: "x", Package: "x"}})
		if err := be.Prepare(t.Context(), build); err != nil {
			t.Fatal(err)
		}
		err := be.BuildBatch(t.Context(), build, build.Batches[1], func(runner.ComponentUpdate) {})
		if !errors.Is(err, local.ErrNoModuleMacros) {
			t.Fatalf("BuildBatch = %v, want ErrNoModuleMacros", err)
		}
	})
}
