package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/state"
)

// TestCLI_HelpHidesToken: --help never prints $RIDA_TOKEN, yet the token
// is still used.
func TestCLI_HelpHidesToken(t *testing.T) {
	hs, _ := cliServer(t)
	t.Setenv("RIDA_TOKEN", "very-secret-token-value")
	for _, cmd := range []string{"submit", "status", "cancel", "rerun", "deliveries", "which-modules"} {
		_, out, errOut := runCLI(t, cmd, "--help")
		if strings.Contains(out+errOut, "very-secret-token-value") {
			t.Errorf("%s --help prints the token:\n%s", cmd, errOut)
		}
	}
	t.Setenv("RIDA_TOKEN", cliToken)
	if code, out, errOut := runCLI(t, "cancel", "3", "--server", hs.URL); code != 0 || !strings.Contains(out, "cancelled by ci") {
		t.Errorf("cancel with $RIDA_TOKEN: exit %d\n%s%s", code, out, errOut)
	}
}

// TestCLI_UnauthorizedHint: a 401 names --token and RIDA_TOKEN.
func TestCLI_UnauthorizedHint(t *testing.T) {
	hs, _ := cliServer(t)
	t.Setenv("RIDA_TOKEN", "")
	code, _, errOut := runCLI(t, "cancel", "3", "--server", hs.URL)
	if code != 1 || !strings.Contains(errOut, "401 Unauthorized") || !strings.Contains(errOut, "--token") || !strings.Contains(errOut, "$RIDA_TOKEN") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestCLI_ServerHostPort: --server host:port works without a scheme.
func TestCLI_ServerHostPort(t *testing.T) {
	hs, _ := cliServer(t)
	code, out, errOut := runCLI(t, "status", "1", "--server", strings.TrimPrefix(hs.URL, "http://"))
	if code != 0 || !strings.Contains(out, "build 1") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "status", "--server", "ftp://x"); code != 2 || !strings.Contains(errOut, "not an http(s) URL") {
		t.Errorf("ftp server: exit %d %q", code, errOut)
	}
}

func TestCLI_Version(t *testing.T) {
	for _, arg := range []string{"--version", "version"} {
		code, out, _ := runCLI(t, arg)
		if code != 0 || out != "rida "+version+"\n" {
			t.Errorf("%s: exit %d %q", arg, code, out)
		}
	}
}

// TestCLI_ListTruncates: the list cuts long reasons and shows durations.
func TestCLI_ListTruncates(t *testing.T) {
	hs, st := cliServer(t)
	ctx := context.Background()
	mb, _ := st.GetModuleBuild(ctx, 2)
	mb.StateReason = "Component(s) pkg-b failed to build. " + strings.Repeat("x", 400)
	if _, err := st.PutModuleBuild(ctx, *mb); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "status", "--server", hs.URL)
	if code != 0 || strings.Contains(out, strings.Repeat("x", 60)) || !strings.Contains(out, "Component(s) pkg-b failed to build. xxx") || !strings.Contains(out, "…") || !strings.Contains(out, "DURATION") {
		t.Errorf("list:\n%s", out)
	}
	code, out, _ = runCLI(t, "status", "2", "--server", hs.URL)
	if code != 1 || !strings.Contains(out, strings.Repeat("x", 400)) {
		t.Errorf("one build shows the whole reason: exit %d\n%s", code, out)
	}
}

// TestCLI_WatchOrder: component lines come before the build's final line,
// a failure gives its reason, the state is not repeated, and a progress
// line follows each change.
func TestCLI_WatchOrder(t *testing.T) {
	hs, st := cliServer(t)
	ctx := context.Background()
	mb, _ := st.GetModuleBuild(ctx, 3)
	mb.Components = append(mb.Components, state.ComponentBuild{Key: "pkg-b", Package: "pkg-b", Batch: 3, State: "queued"})
	if _, err := st.PutModuleBuild(ctx, *mb); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(150 * time.Millisecond)
		mb, _ := st.GetModuleBuild(ctx, 3)
		mb.Components[0].State, mb.Components[0].NVR = "complete", "pkg-a-1-1"
		mb.Components[1].State = "building"
		_, _ = st.PutModuleBuild(ctx, *mb)
		time.Sleep(150 * time.Millisecond)
		mb, _ = st.GetModuleBuild(ctx, 3)
		mb.Components[1].State, mb.Components[1].Reason = "failed", "rpmbuild exited 1, see logs/pkg-b.log"
		mb.State, mb.StateReason = state.ModuleStateFailed, "failed: Component(s) pkg-b failed to build."
		_, _ = st.PutModuleBuild(ctx, *mb)
	}()
	code, out, errOut := runCLI(t, "status", "3", "--watch", "--interval", "20ms", "--server", hs.URL)
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	iFail := strings.Index(out, "batch 3 pkg-b: failed — rpmbuild exited 1, see logs/pkg-b.log")
	iEnd := strings.Index(out, "build 3 finished: failed — Component(s) pkg-b failed to build.")
	if iFail < 0 || iEnd < 0 || iFail > iEnd {
		t.Errorf("want the component's failure, then the build's end:\n%s", out)
	}
	if !strings.Contains(out, "batch 3/3 · 1/2 done · ") || strings.Contains(out, "failed failed") {
		t.Errorf("progress line missing or a word doubled:\n%s", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour written to a non-terminal")
	}
}

// TestCLI_RerunWatch: rerun --watch follows the build the request makes.
func TestCLI_RerunWatch(t *testing.T) {
	hs, st := cliServer(t)
	ctx := context.Background()
	go func() {
		// Play the runner: start the queued request and build it.
		for range 100 {
			time.Sleep(30 * time.Millisecond)
			rq, err := st.StartNext(ctx)
			if err != nil || rq == nil || rq.Module != "foo" {
				continue
			}
			// StartNext made the request's init record; fill it in.
			recs, err := st.RequestModuleBuilds(ctx, rq.ID)
			if err != nil || len(recs) != 1 {
				return
			}
			recs[0].Version, recs[0].Context = 9, "c9"
			mb, err := st.PutModuleBuild(ctx, recs[0])
			if err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
			mb.State, mb.StateReason = state.ModuleStateReady, "ready: done, no gating configured"
			_, _ = st.PutModuleBuild(ctx, *mb)
			return
		}
	}()
	code, out, errOut := runCLI(t, "rerun", "--build", "2", "--watch", "--interval", "20ms", "--server", hs.URL, "--token", cliToken)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"foo:main: build request", "module build 4", "build 4 finished: ready — done, no gating configured"} {
		if !strings.Contains(out, want) {
			t.Errorf("rerun --watch lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ready ready") {
		t.Errorf("doubled word:\n%s", out)
	}
}

// TestCLI_Validate: rida's rules offline, with file:line:col and the field.
func TestCLI_Validate(t *testing.T) {
	cases := filepath.Join("..", "..", "modulemd", "testdata", "cases")
	code, out, _ := runCLI(t, "validate", filepath.Join(cases, "good_buildafter.yaml"), filepath.Join(cases, "packager_v3_good.yaml"))
	if code != 0 || strings.Count(out, ": valid (") != 2 {
		t.Errorf("good files: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "validate", filepath.Join(cases, "good_buildorder.yaml"), filepath.Join(cases, "cycle.yaml"))
	if code != 1 || !strings.Contains(out, "cycle.yaml:12:21: components.rpms.a.buildafter: buildafter cycle: a -> c -> b -> a") {
		t.Errorf("cycle: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "validate", "--output", "json", filepath.Join(cases, "self_reference.yaml"))
	var res struct {
		Valid bool
		Files []validateResult
	}
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil || res.Valid || len(res.Files) != 1 || len(res.Files[0].Problems) != 1 ||
		res.Files[0].Problems[0].Path != "components.rpms.a.buildafter" || res.Files[0].Problems[0].Line != 12 {
		t.Errorf("json: exit %d\n%s", code, out)
	}
	// Several documents are read as an index.
	dir := t.TempDir()
	index := filepath.Join(dir, "modules.yaml")
	good, err := os.ReadFile(filepath.Join(cases, "good_buildorder.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := os.ReadFile(filepath.Join(cases, "missing_summary.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(index, []byte(string(good)+"\n---\n"+string(bad)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "validate", index)
	if code != 1 || !strings.Contains(out, "summary: is required") {
		t.Errorf("index: exit %d\n%s", code, out)
	}
	if code, _, _ := runCLI(t, "validate"); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
	if code, out, _ := runCLI(t, "validate", filepath.Join(dir, "nope.yaml")); code != 1 || !strings.Contains(out, "no such file") {
		t.Errorf("missing file: exit %d %s", code, out)
	}
}
