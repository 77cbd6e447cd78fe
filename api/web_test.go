package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/state"
)

// seedWeb stores a delivery whose request built module build 1 (three
// batches, one component still building) and returns the bundle.
func seedWeb(t *testing.T) *bundle {
	b := setup(t)
	ctx := context.Background()
	b.delivery("rpms/pkg-a", sha("a"), state.BuildRequest{Module: "foo", Stream: "main", Kind: state.RequestComponent, ModuleRepo: modRepo,
		Reasons: []string{"component pkg-a changed on main"}})
	rq, err := b.store.StartNext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t0 := b.clock.Now()
	b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", Version: 20260301, Context: "deadbeef", RequestID: rq.ID, ModuleRepo: modRepo, ModuleCommit: sha("c"),
		Owner: "webhook", RebuildStrategy: "changed-and-after", Components: []state.ComponentBuild{
			{Key: "module-build-macros", Package: "module-build-macros", Batch: 1, State: "complete", NVR: "module-build-macros-0.1-1", Started: t0, Finished: t0.Add(20 * time.Second)},
			{Key: "pkg-a", Package: "pkg-a", Batch: 2, State: "complete", NVR: "pkg-a-1.0-1", Started: t0.Add(25 * time.Second), Finished: t0.Add(90 * time.Second)},
			{Key: "pkg-b", Package: "pkg-b", Batch: 2, State: "failed", Reason: "rpmbuild exited 1", Started: t0.Add(25 * time.Second), Finished: t0.Add(50 * time.Second)},
			{Key: "pkg-c", Package: "pkg-c", Batch: 3, State: "queued"},
		}}, state.ModuleStateInit, state.ModuleStateWait, state.ModuleStateBuild, state.ModuleStateFailed)
	b.delivery("rpms/pkg-z", sha("d"))
	return b
}

// TestWeb_Pages checks the server-rendered pages over plain HTTP.
func TestWeb_Pages(t *testing.T) {
	b := seedWeb(t)
	cases := []struct {
		path   string
		status int
		want   []string
	}{
		{"/", 200, []string{"<h1>Module builds</h1>", `href="/builds/1"`, "foo:main:20260301:deadbeef", "state-failed"}},
		{"/builds?state=ready", 200, []string{"No builds match these filters."}},
		{"/builds/1", 200, []string{`id="build-state"`, ">failed<", "Batch 1", "Batch 3", "pkg-b", "rpmbuild exited 1", `<svg id="gantt"`, `class="bar-failed"`, "moved to build"}},
		{"/deliveries", 200, []string{`href="/deliveries/1"`, "rpms/pkg-a", "no relevant paths changed", "1 build request(s)"}},
		{"/deliveries/1", 200, []string{"Delivery 1", "foo:main", "component pkg-a changed on main", `href="/builds/1"`}},
		{"/deliveries/2", 200, []string{"no relevant paths changed", "No build was started"}},
		{"/builds/9", 404, []string{"No such module build found: 9"}},
		{"/builds/x", 400, []string{"is not a positive integer"}},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			r := b.get(tc.path)
			if r.status != tc.status || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %s, want %d text/html", r.status, r.header.Get("Content-Type"), tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(r.body), w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
}

// chromiumArgs are the flags for a quiet, self-contained headless run.
func chromiumArgs(profile string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0", "--dump-dom"}
}

var consoleLine = regexp.MustCompile(`(?m)^.*:CONSOLE[:(].*$`)

// dumpDOM loads url in headless Chromium and returns the DOM after load
// and the console messages the page produced.
func dumpDOM(t *testing.T, url string) (dom string, console []string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: run scripts/install-deps (it installs Debian's chromium package) — %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(chromiumArgs(t.TempDir()), url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", url, err, stderr.String())
	}
	return string(out), consoleLine.FindAllString(stderr.String(), -1)
}

// TestWeb_Chromium renders the pages in a real browser and checks what it
// shows, and that the page logs nothing to the console.
func TestWeb_Chromium(t *testing.T) {
	b := seedWeb(t)

	// The console check itself works: a page that logs an error is caught.
	probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!DOCTYPE html><html><body><script>console.error("probe-error")</script></body></html>`)
	}))
	defer probe.Close()
	if _, console := dumpDOM(t, probe.URL); len(console) == 0 || !strings.Contains(strings.Join(console, "\n"), "probe-error") {
		t.Fatalf("console capture does not work: got %q", console)
	}

	dom, console := dumpDOM(t, b.http.URL+"/builds/1")
	if len(console) > 0 {
		t.Errorf("build page console messages:\n%s", strings.Join(console, "\n"))
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`<span id="build-state" class="state state-failed">failed</span>`),
		regexp.MustCompile(`<td class="component-name">module-build-macros</td>`),
		regexp.MustCompile(`<td class="component-name">pkg-a</td>`),
		regexp.MustCompile(`<td class="component-name">pkg-b</td>`),
		regexp.MustCompile(`<td class="component-name">pkg-c</td>`),
		regexp.MustCompile(`<svg id="gantt"[^>]*>`),
		regexp.MustCompile(`<rect class="bar-complete"[^>]*width="[0-9.]+"`),
		regexp.MustCompile(`<rect class="bar-failed"`),
		regexp.MustCompile(`<title>pkg-a \(batch 2\): complete, 1m5s, from \+25s to \+1m30s</title>`),
	} {
		if !want.MatchString(dom) {
			t.Errorf("build page DOM lacks %s", want)
		}
	}
	// Three started components → three bars; the queued one has none.
	if n := strings.Count(dom, "<rect class=\"bar-"); n != 3 {
		t.Errorf("gantt has %d bars, want 3", n)
	}

	dom, console = dumpDOM(t, b.http.URL+"/deliveries/1")
	if len(console) > 0 {
		t.Errorf("delivery page console messages:\n%s", strings.Join(console, "\n"))
	}
	for _, want := range []string{"Delivery 1", "rpms/pkg-a", "component pkg-a changed on main", "foo:main:20260301:deadbeef"} {
		if !strings.Contains(dom, want) {
			t.Errorf("delivery page DOM lacks %q", want)
		}
	}

	dom, console = dumpDOM(t, b.http.URL+"/")
	if len(console) > 0 {
		t.Errorf("build list console messages:\n%s", strings.Join(console, "\n"))
	}
	if !strings.Contains(dom, "foo:main:20260301:deadbeef") || !strings.Contains(dom, `<span class="state state-failed">failed</span>`) {
		t.Errorf("build list DOM:\n%s", dom)
	}
}

// TestWeb_BuildPage_RefreshesWhileRunning: a running build's page reloads
// itself; a final one's does not.
func TestWeb_BuildPage_RefreshesWhileRunning(t *testing.T) {
	b := setup(t)
	running := b.putBuild(state.ModuleBuild{Name: "m", Stream: "s"}, state.ModuleStateInit, state.ModuleStateBuild)
	final := b.putBuild(state.ModuleBuild{Name: "n", Stream: "s"}, state.ModuleStateInit, state.ModuleStateFailed)
	if body := string(b.get(fmt.Sprintf("/builds/%d", running.ID)).body); !strings.Contains(body, `<meta http-equiv="refresh" content="5">`) {
		t.Errorf("running build's page does not refresh:\n%s", body)
	}
	if body := string(b.get(fmt.Sprintf("/builds/%d", final.ID)).body); strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("a final build's page refreshes")
	}
}
