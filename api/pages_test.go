package api_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/internal/testlog"
	"github.com/rida-build/rida/state"
)

// TestServer_ExactRoutes: an unknown path under a known API version is 404,
// not the list it starts like.
func TestServer_ExactRoutes(t *testing.T) {
	b := setup(t)
	b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main"}, state.ModuleStateInit)
	b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main"}, state.ModuleStateInit)
	for _, p := range []string{"/module-build-service/2/module-builds/2/bogus", "/module-build-service/1/module-builds/x/y/z",
		"/module-build-service/1/about/more", "/module-build-service/2/component-builds/1/2/3"} {
		expect(t, b.get(p), 404, "no such endpoint")
	}
	expect(t, b.get("/module-build-service/3/module-builds/"), 404, "The requested API version is not available")
	expect(t, b.get("/module-build-service/2/module-builds/2"), 200, `"id": 2`)
	expect(t, b.get("/module-build-service/2/module-builds/"), 200, `"total": 2`)
}

// TestServer_PerPageCapped: per_page above 100 answers 100 items.
func TestServer_PerPageCapped(t *testing.T) {
	b := setup(t)
	for range 105 {
		b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main"}, state.ModuleStateInit)
	}
	m := b.get("/module-build-service/2/module-builds/?per_page=1000&short=true").json(t)
	meta := m["meta"].(map[string]any)
	if n := len(m["items"].([]any)); n != api.MaxPerPage || meta["per_page"] != float64(100) || meta["pages"] != float64(2) {
		t.Errorf("%d items, meta %v; want 100 items, per_page 100, 2 pages", n, meta)
	}
}

// TestServer_PagingLinksHost: without PublicURL the links use the
// request's own host; with it, PublicURL.
func TestServer_PagingLinksHost(t *testing.T) {
	b := setup(t)
	b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main"}, state.ModuleStateInit)
	meta := b.get("/module-build-service/2/module-builds/").json(t)["meta"].(map[string]any)
	if first, _ := meta["first"].(string); !strings.HasPrefix(first, b.http.URL+"/module-build-service/2/module-builds/?") {
		t.Errorf("first %q does not start with the request's host %s", first, b.http.URL)
	}
	b2 := setup(t, setupOpts{mutate: func(o *api.Options) { o.PublicURL = "https://rida.example.org/" }})
	b2.putBuild(state.ModuleBuild{Name: "foo", Stream: "main"}, state.ModuleStateInit)
	meta = b2.get("/module-build-service/2/module-builds/").json(t)["meta"].(map[string]any)
	if first, _ := meta["first"].(string); !strings.HasPrefix(first, "https://rida.example.org/module-build-service/2/module-builds/?") {
		t.Errorf("first %q does not use public_url", first)
	}
}

var subSecond = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+|[+-]\d\d:\d\d)`)

// TestServer_TimesInSeconds: every time in every JSON answer is Zulu in
// whole seconds, even when the store holds nanoseconds.
func TestServer_TimesInSeconds(t *testing.T) {
	b := setup(t)
	b.clock.Set(time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC))
	b.delivery("rpms/pkg-a", sha("a"), state.BuildRequest{Module: "foo", Stream: "main", Kind: state.RequestComponent, ModuleRepo: modRepo})
	b.clock.Set(b.clock.Now().Add(987654321))
	t0 := b.clock.Now()
	b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", RequestID: 1, Components: []state.ComponentBuild{
		{Key: "a", Package: "a", Batch: 2, State: "complete", Started: t0, Finished: t0.Add(1500 * time.Millisecond)},
	}}, state.ModuleStateInit, state.ModuleStateBuild)
	for _, p := range []string{"/api/v1/deliveries", "/api/v1/deliveries/1", "/api/v1/requests/1", "/api/v1/events",
		"/module-build-service/2/module-builds/1?verbose=true", "/module-build-service/2/component-builds/10001?verbose=true"} {
		r := b.get(p)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", p, r.status, r.body)
		}
		if m := subSecond.Find(r.body); m != nil {
			t.Errorf("%s has a time with sub-seconds or an offset: %s", p, m)
		}
		if !bytes.Contains(r.body, []byte(`"2026-03-01T12:00:0`)) {
			t.Errorf("%s has no time at all:\n%s", p, r.body)
		}
	}
	// reused_from is null for a component that was not reused.
	if m := b.get("/module-build-service/2/component-builds/10001").json(t); m["reused_from"] != nil {
		t.Errorf("reused_from = %v, want null", m["reused_from"])
	}
}

// TestServer_AuditLog: each write call logs one audit line naming who and
// what, never the token; reads log nothing.
func TestServer_AuditLog(t *testing.T) {
	var logs testlog.Buffer
	b := setup(t, setupOpts{mutate: func(o *api.Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) }})
	b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", Owner: "alice"}, state.ModuleStateInit, state.ModuleStateBuild)
	b.get("/module-build-service/2/module-builds/1")
	expect(t, b.do(http.MethodPatch, "/module-build-service/2/module-builds/1", testToken, `{"state": "failed"}`), 200, "")
	expect(t, b.do(http.MethodPost, "/api/v1/pause", testToken, `{"module": "foo:main"}`), 200, "")
	expect(t, b.do(http.MethodPost, "/api/v1/pause", "wrong-token", `{"module": "foo:main"}`), 401, "")
	out := logs.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 audit lines, got:\n%s", out)
	}
	for i, want := range []string{
		`msg="api: audit" method=PATCH path=/module-build-service/2/module-builds/1 who=alice status=200 build=1`,
		`msg="api: audit" method=POST path=/api/v1/pause who=alice status=200 module=foo:main`,
		`msg="api: audit" method=POST path=/api/v1/pause who="(no valid token)" status=401`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q lacks %q", i, lines[i], want)
		}
	}
	if strings.Contains(out, testToken) || strings.Contains(out, "wrong-token") {
		t.Errorf("the audit log holds a token:\n%s", out)
	}
}

// TestWeb_BuildStates: a cancelled build shows as cancelled, never-built
// components as "skipped", long reasons are cut in the list (whole on
// the build page) and server paths are not shown.
func TestWeb_BuildStates(t *testing.T) {
	b := setup(t)
	logPath := filepath.Join(b.dataDir, "builds", "foo-1", "logs", "pkg-b.log")
	long := "Component(s) pkg-b failed to build. pkg-b: rpmbuild exited 1, see " + logPath + "\n" + strings.Repeat("error: detail ", 40)
	failed := b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", Components: []state.ComponentBuild{
		{Key: "pkg-b", Package: "pkg-b", Batch: 2, State: "failed", Reason: "rpmbuild exited 1, see " + logPath + " (/usr/lib/rpm/tool/x)"},
		{Key: "pkg-c", Package: "pkg-c", Batch: 3, State: "queued"},
	}}, state.ModuleStateInit, state.ModuleStateBuild)
	failed.State, failed.StateReason = state.ModuleStateFailed, long
	if _, err := b.store.PutModuleBuild(context.Background(), *failed); err != nil {
		t.Fatal(err)
	}
	cancelled := b.putBuild(state.ModuleBuild{Name: "bar", Stream: "main", CancelRequestedBy: "cancelled by alice", FailureKind: state.FailureCanceled},
		state.ModuleStateInit, state.ModuleStateFailed)

	list := string(b.get("/builds").body)
	if strings.Contains(list, b.dataDir) || strings.Contains(list, "error: detail error: detail error: detail error: detail") {
		t.Errorf("the list shows a server path or the whole reason:\n%s", list)
	}
	for _, want := range []string{"Component(s) pkg-b failed to build. pkg-b: rpmbuild exited 1, see builds/foo-1/logs/pkg-b.log …",
		`<span class="state state-cancelled">cancelled</span>`} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %q", want)
		}
	}
	page := string(b.get(fmt.Sprintf("/builds/%d", failed.ID)).body)
	if strings.Contains(page, b.dataDir) || strings.Contains(page, "/usr/lib/rpm/tool") {
		t.Errorf("build page shows a server path:\n%s", page)
	}
	for _, want := range []string{`<details id="state-reason">`, strings.Repeat("error: detail ", 40)[:200], "see builds/foo-1/logs/pkg-b.log (…/x)",
		`<span class="state state-skipped">skipped</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("build page lacks %q", want)
		}
	}
	if page := string(b.get(fmt.Sprintf("/builds/%d", cancelled.ID)).body); !strings.Contains(page, `<span id="build-state" class="state state-cancelled">cancelled</span>`) {
		t.Errorf("cancelled build page:\n%s", page)
	}
	if list := string(b.get("/builds?state=ready").body); !strings.Contains(list, "No builds match these filters.") {
		t.Error("an empty filter result does not say so")
	}
	empty := setup(t)
	if list := string(empty.get("/builds").body); !strings.Contains(list, "No builds yet.") {
		t.Error("an empty store does not say no builds yet")
	}
}

// TestWeb_QueuedAndPush: queued and paused requests are listed on /builds,
// which then refreshes itself; a build page links the push that caused it.
func TestWeb_QueuedAndPush(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	d := &state.Delivery{Forge: "github", Event: "push", Repo: "rpms/pkg-a", CloneURL: "https://github.example/rpms/pkg-a.git", Ref: "refs/heads/main",
		Before: sha("1"), After: sha("a"), Sender: "bob", DeliveryGUID: "g1", Commits: []state.Commit{{ID: sha("a"), Message: "Fix the frobnicator\n\nlong text"}}}
	if _, err := b.store.RecordDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	job, err := b.store.LeasePlanJob(ctx, "w", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.CompletePlanJob(ctx, job.ID, state.PlanResult{Worker: "w", Requests: []state.BuildRequest{
		{Module: "foo", Stream: "main", Kind: state.RequestComponent, ModuleRepo: modRepo, Reasons: []string{"component pkg-a changed on main"}},
	}}); err != nil {
		t.Fatal(err)
	}
	rq, err := b.store.StartNext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mb := b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", RequestID: rq.ID}, state.ModuleStateInit, state.ModuleStateReady)
	if _, err := b.store.FinishRequest(ctx, "foo:main", state.ResultSucceeded, "ready"); err != nil {
		t.Fatal(err)
	}
	// Two requests queued through the API: one for a stream never built,
	// one for a paused stream.
	if r := b.do(http.MethodPost, "/api/v1/rerun", testToken, `{"build": 1}`); r.status != 202 {
		t.Fatalf("rerun: %d %s", r.status, r.body)
	}
	if _, err := b.store.EnqueueWithOptions(ctx, state.BuildRequest{Module: "newmod", Stream: "s1", Kind: state.RequestModule, ModuleRepo: modRepo, Reasons: []string{"submitted by alice"}}, state.RequestOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(t, b.do(http.MethodPost, "/api/v1/pause", testToken, `{"module": "foo:main"}`), 200, "")

	list := string(b.get("/builds").body)
	for _, want := range []string{`<table id="queued">`, "newmod:s1", "submitted by alice", `class="state state-paused">paused</span>`, `<meta http-equiv="refresh" content="10">`} {
		if !strings.Contains(list, want) {
			t.Errorf("/builds lacks %q:\n%s", want, list)
		}
	}
	if n := strings.Count(list, `class="queued-request"`); n != 2 {
		t.Errorf("%d queued requests listed, want 2", n)
	}
	page := string(b.get(fmt.Sprintf("/builds/%d", mb.ID)).body)
	for _, want := range []string{`<a href="/deliveries/1">delivery 1</a>`, "by bob", `href="https://github.example/rpms/pkg-a/commit/` + sha("a") + `"`,
		"“Fix the frobnicator”", "component pkg-a changed on main"} {
		if !strings.Contains(page, want) {
			t.Errorf("build page lacks %q", want)
		}
	}
	// Nothing queued or running: no refresh.
	quiet := setup(t)
	quiet.putBuild(state.ModuleBuild{Name: "foo", Stream: "main"}, state.ModuleStateInit, state.ModuleStateReady)
	if strings.Contains(string(quiet.get("/builds").body), "http-equiv") {
		t.Error("/builds refreshes with nothing running")
	}
}

// TestWeb_Gantt: rounded ticks, the last label inside the chart, reused
// components and the gaps between batches.
func TestWeb_Gantt(t *testing.T) {
	b := setup(t)
	t0 := b.clock.Now()
	mb := b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", Components: []state.ComponentBuild{
		{Key: "module-build-macros", Package: "module-build-macros", Batch: 1, State: "complete", Started: t0, Finished: t0.Add(20 * time.Second)},
		{Key: "pkg-a", Package: "pkg-a", Batch: 2, State: "reused", ReusedFrom: 7},
		{Key: "pkg-b", Package: "pkg-b", Batch: 2, State: "complete", Started: t0.Add(30 * time.Second), Finished: t0.Add(553 * time.Second)},
	}}, state.ModuleStateInit, state.ModuleStateReady)
	page := string(b.get(fmt.Sprintf("/builds/%d", mb.ID)).body)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`text-anchor="start">0</text>`),
		regexp.MustCompile(`text-anchor="middle">(\+|&#43;)2m</text>`),
		regexp.MustCompile(`text-anchor="end">(\+|&#43;)10m</text>`),
		regexp.MustCompile(`<rect class="gap"[^>]*><title>between batch 1 and batch 2 \(repository regenerated\): 10s</title>`),
		regexp.MustCompile(`<rect class="reused"[^>]*><title>pkg-a \(batch 2\): reused from build 7, not rebuilt</title>`),
		regexp.MustCompile(`reused from 7</text>`),
		regexp.MustCompile(`<svg id="gantt" [^>]*viewBox="0 0 900 [0-9]+"`),
		regexp.MustCompile(`<a href="/builds/7/logs/pkg-a">log</a>`),
	} {
		if !want.MatchString(page) {
			t.Errorf("build page lacks %s", want)
		}
	}
	if strings.Contains(page, `553s</text>`) || strings.Contains(page, `<svg id="gantt" xmlns="http://www.w3.org/2000/svg" width=`) {
		t.Error("the Gantt has unrounded ticks or a fixed width")
	}
}

// TestWeb_LogPage: an HTML page with numbered anchors, a jump to the first
// error, no git progress, and a live tail while the component builds; the
// raw text stays available; a reused component's log is its source's.
func TestWeb_LogPage(t *testing.T) {
	b := setup(t)
	logPath := filepath.Join(b.dataDir, "builds", "1", "pkg-a.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	text := "Cloning into 'pkg-a'...\nremote: Enumerating objects: 5, done.\nReceiving objects:  50% (1/2)\rReceiving objects: 100% (2/2), done.\n+ rpmbuild -ba pkg-a.spec\nerror: Bad exit status from /var/tmp/rpm-tmp (%build)\n<script>alert(1)</script>\n"
	if err := os.WriteFile(logPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", Components: []state.ComponentBuild{
		{Key: "pkg-a", Package: "pkg-a", Batch: 2, State: "building", LogPath: logPath},
	}}, state.ModuleStateInit, state.ModuleStateBuild)
	b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", Components: []state.ComponentBuild{
		{Key: "pkg-a", Package: "pkg-a", Batch: 2, State: "reused", ReusedFrom: 1},
	}}, state.ModuleStateInit, state.ModuleStateReady)

	r := b.get("/builds/1/logs/pkg-a")
	page := string(r.body)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", r.status, r.header.Get("Content-Type"))
	}
	for _, want := range []string{`<div id="L1"><a href="#L1">1</a>Cloning into &#39;pkg-a&#39;...</div>`,
		`<a id="first-error" href="#L5">Jump to the first error (line 5)</a>`, `<div id="L5" class="err">`,
		"2 git progress line(s) left out", `&lt;script&gt;alert(1)&lt;/script&gt;`, `href="/builds/1/logs/pkg-a?raw=1"`, `data-offset="` + fmt.Sprint(len(text)) + `"`, `data-next="7"`} {
		if !strings.Contains(page, want) {
			t.Errorf("log page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "Receiving objects") || strings.Contains(page, "Enumerating objects") {
		t.Error("log page shows git progress")
	}
	raw := b.get("/builds/1/logs/pkg-a?raw=1")
	if string(raw.body) != text || !strings.HasPrefix(raw.header.Get("Content-Type"), "text/plain") {
		t.Errorf("raw log: %s %q", raw.header.Get("Content-Type"), raw.body)
	}
	// Live tail reads from an offset with Range.
	req, _ := http.NewRequest(http.MethodGet, b.http.URL+"/builds/1/logs/pkg-a?raw=1", nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", len(text)-len("<script>alert(1)</script>\n")))
	resp, err := b.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		t.Errorf("range read: %d", resp.StatusCode)
	}
	client := b.http.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = client.Get(b.http.URL + "/builds/2/logs/pkg-a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/builds/1/logs/pkg-a" {
		t.Errorf("reused component's log: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Once the component is done, no live tail.
	ctx := context.Background()
	mb, _ := b.store.GetModuleBuild(ctx, 1)
	mb.Components[0].State, mb.State = "failed", state.ModuleStateFailed
	if _, err := b.store.PutModuleBuild(ctx, *mb); err != nil {
		t.Fatal(err)
	}
	if page := string(b.get("/builds/1/logs/pkg-a").body); strings.Contains(page, "data-offset") || strings.Contains(page, "<script>") {
		t.Error("a finished component's log page still tails")
	}
}

// TestWeb_Downloads: the build's repository is served from its result
// directory only: files, listings, a .repo file and the final modulemd;
// nothing outside it, through ".." or a symlink.
func TestWeb_Downloads(t *testing.T) {
	b := setup(t)
	result := filepath.Join(b.dataDir, "builds", "foo-main-1-c-1")
	repo := filepath.Join(result, "repo")
	outside := filepath.Join(t.TempDir(), "secret.txt")
	for p, body := range map[string]string{
		filepath.Join(repo, "pkg-a-1.0-1.x86_64.rpm"): "RPM-A",
		filepath.Join(repo, "repodata", "repomd.xml"): "<repomd/>",
		filepath.Join(result, "logs", "pkg-a.log"):    "LOG",
		outside: "TOP SECRET",
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(repo, "escape.rpm")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(repo, "escapedir")); err != nil {
		t.Fatal(err)
	}
	mb := b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", Version: 1, Context: "c", ResultDir: result, Modulemd: "document: modulemd\nversion: 2\n"},
		state.ModuleStateInit, state.ModuleStateReady)
	other := b.putBuild(state.ModuleBuild{Name: "bad", Stream: "main", ResultDir: filepath.Dir(outside)}, state.ModuleStateInit, state.ModuleStateReady)

	r := b.get(fmt.Sprintf("/builds/%d/repo/pkg-a-1.0-1.x86_64.rpm", mb.ID))
	if r.status != 200 || string(r.body) != "RPM-A" || r.header.Get("Content-Type") != "application/x-rpm" {
		t.Errorf("rpm: %d %s %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	expect(t, b.get(fmt.Sprintf("/builds/%d/repo/repodata/repomd.xml", mb.ID)), 200, "<repomd/>")
	listing := string(b.get(fmt.Sprintf("/builds/%d/repo/", mb.ID)).body)
	for _, want := range []string{`href="pkg-a-1.0-1.x86_64.rpm"`, `href="repodata/"`} {
		if !strings.Contains(listing, want) {
			t.Errorf("listing lacks %q:\n%s", want, listing)
		}
	}
	if strings.Contains(listing, "escape") {
		t.Error("listing shows a symlink")
	}
	for _, p := range []string{"escape.rpm", "escapedir/secret.txt", "../logs/pkg-a.log", "repodata/../../logs/pkg-a.log", "%2e%2e/logs/pkg-a.log"} {
		r := b.get(fmt.Sprintf("/builds/%d/repo/%s", mb.ID, p))
		if r.status == 200 || strings.Contains(string(r.body), "SECRET") || strings.Contains(string(r.body), "LOG") {
			t.Errorf("%s: %d %q", p, r.status, r.body)
		}
	}
	expect(t, b.get(fmt.Sprintf("/builds/%d/repo/", other.ID)), 404, "has no repository")
	dnf := string(b.get(fmt.Sprintf("/builds/%d/dnf.repo", mb.ID)).body)
	if !strings.Contains(dnf, fmt.Sprintf("baseurl=%s/builds/%d/repo/\n", b.http.URL, mb.ID)) || !strings.Contains(dnf, "module_hotfixes=1") {
		t.Errorf(".repo file:\n%s", dnf)
	}
	expect(t, b.get(fmt.Sprintf("/builds/%d/modules.yaml", mb.ID)), 200, "document: modulemd")
	page := string(b.get(fmt.Sprintf("/builds/%d", mb.ID)).body)
	if !strings.Contains(page, fmt.Sprintf(`<a href="/builds/%d/repo/">repository</a>`, mb.ID)) || strings.Contains(page, result) {
		t.Errorf("build page: no download link, or the server path:\n%s", page)
	}
}

// TestWeb_ChromiumNarrow loads the pages in headless Chromium at 1400 px
// and at 420 px (inside a 420 px iframe, as headless Chromium's window is
// at least 500 px wide; the test checks the width really measured); a
// script writes the document's scrollWidth into the DOM, which must not
// exceed the viewport's width (no
// horizontal overflow: tables scroll inside their wrapper, the Gantt
// scales).
func TestWeb_ChromiumNarrow(t *testing.T) {
	b := seedWeb(t)
	long := strings.Repeat("a-very-long-reason-without-spaces-", 12)
	b.putBuild(state.ModuleBuild{Name: "a-module-with-a-rather-long-name", Stream: "stream-with-long-name", Version: 9020260301120000, Context: "deadbeef",
		Components: []state.ComponentBuild{{Key: "pkg-x", Package: "pkg-x", Batch: 2, State: "failed", Reason: long,
			Started: b.clock.Now(), Finished: b.clock.Now().Add(553 * time.Second)}}},
		state.ModuleStateInit, state.ModuleStateBuild, state.ModuleStateFailed)
	probe := `<script>addEventListener("load",function(){var p=document.createElement("p");p.id="layout";` +
		`p.textContent=document.documentElement.scrollWidth+"/"+window.innerWidth;document.body.appendChild(p)})</script></body>`
	inject := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/__frame" {
			// Headless Chromium's window is at least 500 px wide: a page
			// is measured at 420 px inside an iframe that wide instead.
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><html><body style="margin:0"><iframe id="f" src=%q style="width:%spx;height:900px;border:0"></iframe>`+
				`<script>document.getElementById("f").addEventListener("load",function(){var f=document.getElementById("f");`+
				`var p=document.createElement("p");p.id="layout";p.textContent=f.contentDocument.documentElement.scrollWidth+"/"+f.contentWindow.innerWidth;`+
				`document.body.appendChild(p)})</script></body></html>`, r.URL.Query().Get("src"), r.URL.Query().Get("w"))
			return
		}
		rec := httptest.NewRecorder()
		b.srv.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		w.Write([]byte(strings.Replace(rec.Body.String(), "</body>", probe, 1)))
	}))
	defer inject.Close()
	layout := regexp.MustCompile(`<p id="layout">(\d+)/(\d+)</p>`)
	for _, width := range []int{420, 1400} {
		for _, page := range []string{"/builds", "/builds/1", "/builds/2", "/deliveries", "/deliveries/1", "/requests/1"} {
			target, window := inject.URL+page, width
			if width < 500 {
				target, window = fmt.Sprintf("%s/__frame?w=%d&src=%s", inject.URL, width, page), 1400
			}
			dom, console := dumpDOMWidth(t, target, window)
			if len(console) > 0 {
				t.Errorf("%s at %d px: console:\n%s", page, width, strings.Join(console, "\n"))
			}
			m := layout.FindStringSubmatch(dom)
			if m == nil {
				t.Errorf("%s at %d px: no layout report in the DOM", page, width)
				continue
			}
			t.Logf("%s at %d px: scrollWidth/innerWidth %s/%s", page, width, m[1], m[2])
			if inner, _ := strconv.Atoi(m[2]); inner != width {
				t.Errorf("%s: measured at %s px, want %d", page, m[2], width)
			}
			if m[1] != m[2] {
				t.Errorf("%s at %d px: scrollWidth/innerWidth %s/%s: the page overflows horizontally", page, width, m[1], m[2])
			}
		}
	}
}

// dumpDOMWidth is dumpDOM in a window width px wide.
func dumpDOMWidth(t *testing.T, url string, width int) (string, []string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: run scripts/install-deps — %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append(chromiumArgs(t.TempDir()), fmt.Sprintf("--window-size=%d,900", width), "--hide-scrollbars", url)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", url, err, stderr.String())
	}
	return string(out), consoleLine.FindAllString(stderr.String(), -1)
}
