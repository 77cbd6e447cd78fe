package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/scm/scmtest"
	"github.com/rida-build/rida/state"
)

// TestMain lets the test binary act as rida itself when a test starts it as
// a subprocess (rida demo starts "rida serve" with os.Executable()).
func TestMain(m *testing.M) {
	if os.Getenv("RIDA_TEST_RUN_MAIN") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestMain_Usage(t *testing.T) {
	if code, out, _ := runMain(t, "--help"); code != exitOK || !strings.Contains(out, "build-local") {
		t.Errorf("--help: code %d, out %q", code, out)
	}
	if code, _, errOut := runMain(t, "frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: code %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runMain(t, "build-local", "--help"); code != exitOK || !strings.Contains(errOut, "-sandbox") {
		t.Errorf("build-local --help: code %d, stderr %q", code, errOut)
	}
	if code, _, _ := runMain(t, "build-local"); code != exitUsage {
		t.Errorf("build-local without SOURCE: code %d, want %d", code, exitUsage)
	}
}

// TestBuildLocal_Example builds the example module end to end: real git
// repositories, modulemd parsing and enrichment, real rpmbuild and
// createrepo_c.
func TestBuildLocal_Example(t *testing.T) {
	dir := t.TempDir()
	layout, err := examples.CreateRepos(dir, examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runMain(t, "build-local", "--workdir", filepath.Join(dir, "work"), "--sandbox", "auto",
		layout.Module.Path+"#"+layout.Module.Branch)
	if code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"module-build-macros", "batch 4/4 done", "RPMs and repository:", "done in"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	repos, _ := filepath.Glob(filepath.Join(dir, "work", "builds", "*", "repo"))
	if len(repos) != 1 {
		t.Fatalf("want one output repo, got %v", repos)
	}
	rpms, _ := filepath.Glob(filepath.Join(repos[0], "*.noarch.rpm"))
	if len(rpms) < len(examples.Components()) {
		t.Errorf("got %d noarch RPMs, want at least %d: %v", len(rpms), len(examples.Components()), rpms)
	}
	for _, rpm := range rpms {
		rel, err := exec.Command("rpm", "-qp", "--qf", "%{RELEASE}", rpm).Output()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(rel), ".module+el9+1+") {
			t.Errorf("%s: release %q lacks the module dist tag", filepath.Base(rpm), rel)
		}
	}
	mmd, err := os.ReadFile(filepath.Join(repos[0], "modules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mmd), "rida-demo-app-0:") || !strings.Contains(string(mmd), "artifacts:") {
		t.Errorf("final modulemd lacks artifacts:\n%s", mmd)
	}
	if _, err := os.Stat(filepath.Join(repos[0], "repodata", "repomd.xml")); err != nil {
		t.Error(err)
	}
}

// TestBuildLocal_FailingComponent: a component whose %build fails fails the
// module with exit 1 and a reason naming the component and its log.
func TestBuildLocal_FailingComponent(t *testing.T) {
	dir := t.TempDir()
	layout, err := examples.CreateRepos(dir, examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	comp := scmtest.Open(t, layout.Components["rida-demo-docs"].Path)
	comp.Commit("break the build", map[string]string{
		"rida-demo-docs.spec": "Name: rida-demo-docs\nVersion: 1\nRelease: 1%{?dist}\nSummary: broken\nLicense: MIT\nBuildArch: noarch\n%description\nbroken\n%build\necho about to fail; exit 1\n%files\n",
	})
	code, out, errOut := runMain(t, "build-local", "--workdir", filepath.Join(dir, "work"), "--sandbox", "off",
		"--component-base", layout.ComponentsBaseURL, layout.Module.Path+"#"+layout.Module.Branch)
	if code != exitFail {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitFail, out, errOut)
	}
	if !strings.Contains(errOut, "Component(s) rida-demo-docs failed to build.") || !strings.Contains(errOut, "rida-demo-docs.log") {
		t.Errorf("reason does not name the component and its log:\n%s", errOut)
	}
	if strings.Contains(out, "batch 4/4 started") {
		t.Errorf("the batch after the failure started:\n%s", out)
	}
}

// TestBuildLocal_InvalidModulemd: an invalid modulemd is a failure with the
// field path in the message, before anything is built.
func TestBuildLocal_InvalidModulemd(t *testing.T) {
	dir := t.TempDir()
	layout, err := examples.CreateRepos(dir, examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mod := scmtest.Open(t, layout.Module.Path)
	bad := strings.Replace(string(examples.ModuleYAML()), "buildorder: 30", "buildorder: 30\n        buildafter: [rida-demo-lib]", 1)
	mod.Commit("mix buildorder and buildafter", map[string]string{examples.ModuleFile: bad})
	code, out, errOut := runMain(t, "build-local", "--workdir", filepath.Join(dir, "work"),
		"--component-base", layout.ComponentsBaseURL, layout.Module.Path+"#"+layout.Module.Branch)
	if code != exitFail {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitFail, out, errOut)
	}
	if !strings.Contains(errOut, "components.rpms.rida-demo-tools") {
		t.Errorf("message does not name the field:\n%s", errOut)
	}
}

// rida compact rewrites the store of a stopped server; with the server
// running it refuses, naming why.
func TestCompact_Command(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := startServe(t, data, "compact-secret")
	code, _, errOut := runMain(t, "compact", "--data-dir", data)
	if code != exitInfra || !strings.Contains(errOut, "is rida serve running on it?") {
		t.Errorf("compact while serving: exit %d, %q", code, errOut)
	}
	p.term(t)
	code, out, errOut := runMain(t, "compact", "--data-dir", data)
	if code != exitOK || !strings.Contains(out, "rida.db:") {
		t.Fatalf("compact: exit %d, %q %q", code, out, errOut)
	}
	st, err := state.Open(filepath.Join(data, "rida.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Error(err)
	}
}
