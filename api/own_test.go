package api_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/state"
)

func sha(c string) string { return strings.Repeat(c, 40) }

func TestServer_Deliveries(t *testing.T) {
	b := setup(t)
	b.delivery("rpms/pkg-a", sha("a"), state.BuildRequest{Module: "foo", Stream: "main", Kind: state.RequestComponent, ModuleRepo: modRepo})
	b.delivery("rpms/pkg-b", sha("b"))
	b.delivery("rpms/pkg-c", sha("c"))
	r := b.get("/api/v1/deliveries?per_page=2")
	expect(t, r, 200, "")
	if got := fmt.Sprint(ids(t, r)); got != "[3 2]" {
		t.Errorf("page 1 %s, want newest first", got)
	}
	m := r.json(t)["meta"].(map[string]any)
	if m["total"] != float64(3) || m["pages"] != float64(2) || !strings.Contains(m["next"].(string), "page=2") {
		t.Errorf("meta %v", m)
	}
	if got := fmt.Sprint(ids(t, b.get("/api/v1/deliveries?per_page=2&page=2"))); got != "[1]" {
		t.Errorf("page 2 %s", got)
	}
	d := b.get("/api/v1/deliveries/2").json(t)["delivery"].(map[string]any)
	if d["disposition"].(map[string]any)["reason"] != "no relevant paths changed" {
		t.Errorf("delivery 2 %v", d)
	}
	expect(t, b.get("/api/v1/deliveries/9"), 404, "No such delivery found: 9")
	expect(t, b.get("/api/v1/deliveries?colour=1"), 400, `An invalid parameter was submitted: "colour"`)
}

func TestServer_ComponentModules(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	for _, m := range []struct{ mod, stream, ref string }{{"foo", "main", "main"}, {"bar", "f40", "f40"}, {"baz", "main", "main"}} {
		if err := b.store.SetModuleComponents(ctx, m.mod, m.stream, "https://src.example.org/modules/"+m.mod, []state.IndexedComponent{{Name: "pkg-a", Ref: m.ref}}); err != nil {
			t.Fatal(err)
		}
	}
	r := b.get("/api/v1/components/pkg-a/modules?branch=main")
	expect(t, r, 200, "")
	items := r.json(t)["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["module"] != "baz" || items[1].(map[string]any)["module"] != "foo" {
		t.Errorf("branch=main items %v", items)
	}
	if items := b.get("/api/v1/components/pkg-a/modules").json(t)["items"].([]any); len(items) != 3 {
		t.Errorf("all refs: %v", items)
	}
	if items := b.get("/api/v1/components/nope/modules").json(t)["items"].([]any); len(items) != 0 {
		t.Errorf("unknown component: %v", items)
	}
	expect(t, b.get("/api/v1/components/pkg-a/modules?ref=x"), 400, `"ref" (only branch is allowed)`)
}

func TestServer_RerunRebuild(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	d := b.delivery("rpms/pkg-a", sha("a"), state.BuildRequest{Module: "foo", Stream: "main", Kind: state.RequestComponent, ModuleRepo: modRepo,
		ComponentCommits: []state.ComponentCommit{{Name: "pkg-a", Ref: "main", Commit: sha("a")}}})
	b.delivery("rpms/pkg-b", sha("b"))
	// Run and finish the delivery's request so a rerun creates a new one.
	rq, err := b.store.StartNext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mb := b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", RequestID: rq.ID, ModuleRepo: modRepo, ModuleCommit: sha("9")}, state.ModuleStateInit, state.ModuleStateFailed)
	if _, err := b.store.FinishRequest(ctx, rq.Key, state.ResultFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	if err := b.store.SetModuleComponents(ctx, "foo", "main", modRepo, []state.IndexedComponent{{Name: "pkg-a", Ref: "main"}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, token, body string
		status                  int
		want                    string
	}{
		{"no token", "/api/v1/rerun", "", `{"delivery": 1}`, 401, "Bearer"},
		{"none given", "/api/v1/rerun", testToken, `{}`, 400, `give exactly one of "delivery", "build" or "module"`},
		{"two given", "/api/v1/rerun", testToken, `{"delivery": 1, "build": 1}`, 400, "exactly one"},
		{"bad delivery", "/api/v1/rerun", testToken, `{"delivery": "x"}`, 400, "delivery must be a positive integer"},
		{"unknown key", "/api/v1/rerun", testToken, `{"delivery": 1, "why": 1}`, 400, "unspecified parameters: why"},
		{"rebuild takes no strategy", "/api/v1/rebuild", testToken, `{"delivery": 1, "rebuild_strategy": "all"}`, 400, "unspecified parameters: rebuild_strategy"},
		{"missing delivery", "/api/v1/rerun", testToken, `{"delivery": 9}`, 404, "No such delivery found: 9"},
		{"delivery without builds", "/api/v1/rerun", testToken, `{"delivery": 2}`, 400, "delivery 2 asked for no build: no relevant paths changed"},
		{"bad module", "/api/v1/rerun", testToken, `{"module": "foo"}`, 400, `"module" must be "name:stream"`},
		{"unknown module", "/api/v1/rerun", testToken, `{"module": "zzz:main"}`, 404, "module stream zzz:main is not known"},
		{"commit without module", "/api/v1/rerun", testToken, `{"build": 1, "commit": "x"}`, 400, `"commit" only goes with "module"`},
		{"delivery", "/api/v1/rerun", testToken, fmt.Sprintf(`{"delivery": %d}`, d.ID), 202, `"action": "created"`},
		{"build merges", "/api/v1/rebuild", testToken, fmt.Sprintf(`{"build": %d}`, mb.ID), 202, `"action": "merged"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, b.do(http.MethodPost, tc.path, tc.token, tc.body), tc.status, tc.want)
		})
	}
	_, pending, err := b.store.QueueSlot(ctx, "foo:main")
	if err != nil || pending == nil {
		t.Fatalf("pending %v, %v", pending, err)
	}
	want := []string{"rerun of delivery 1 by alice", fmt.Sprintf("forced rebuild of build %d by alice", mb.ID)}
	if fmt.Sprint(pending.Reasons) != fmt.Sprint(want) || pending.ModuleCommit != sha("9") || len(pending.ComponentCommits) != 1 || fmt.Sprint(pending.DeliveryIDs) != "[1]" {
		t.Errorf("pending %+v", pending)
	}
	if o, _ := b.store.RequestOptionsFor(ctx, pending.ID); o.RebuildStrategy != "all" {
		t.Errorf("forced rebuild strategy %+v, want all", o)
	}
	r := b.do(http.MethodPost, "/api/v1/rerun", testToken, `{"module": "foo:main", "commit": "`+sha("7")+`"}`)
	expect(t, r, 202, "")
	if _, pending, _ = b.store.QueueSlot(ctx, "foo:main"); pending.ModuleCommit != sha("7") || pending.Kind != state.RequestModule {
		t.Errorf("after module rerun %+v", pending)
	}
}

func TestServer_PauseResume(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	for _, m := range []string{"foo", "bar"} {
		if _, err := b.store.Enqueue(ctx, state.BuildRequest{Module: m, Stream: "main", Kind: state.RequestModule, Reasons: []string{"test"}}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, path, token, body string
		status                  int
		want                    string
	}{
		{"no token", "/api/v1/pause", "", `{"all": true}`, 401, "Bearer"},
		{"empty", "/api/v1/pause", testToken, `{}`, 400, `give "module": "name:stream" or "all": true`},
		{"both", "/api/v1/pause", testToken, `{"all": true, "module": "a:b"}`, 400, "not both"},
		{"bad module", "/api/v1/pause", testToken, `{"module": "foo"}`, 400, `"module" must be`},
		{"pause foo", "/api/v1/pause", testToken, `{"module": "foo:main"}`, 200, `"by": "alice"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, b.do(http.MethodPost, tc.path, tc.token, tc.body), tc.status, tc.want)
		})
	}
	// The runner's store wrapper skips the paused stream.
	rs := runner.WithAPIControls(b.store)
	rq, err := rs.StartNext(ctx)
	if err != nil || rq.Key != "bar:main" {
		t.Fatalf("StartNext %v, %v: want bar:main (foo:main is paused)", rq, err)
	}
	if _, err := rs.StartNext(ctx); !errors.Is(err, state.ErrNoJob) {
		t.Fatalf("StartNext while foo paused: %v, want ErrNoJob", err)
	}
	expect(t, b.do(http.MethodPost, "/api/v1/pause", testToken, `{"all": true}`), 200, `"key": "*"`)
	expect(t, b.do(http.MethodPost, "/api/v1/resume", testToken, `{"module": "foo:main"}`), 200, "")
	if _, err := rs.StartNext(ctx); !errors.Is(err, state.ErrNoJob) {
		t.Fatalf("StartNext while all paused: %v", err)
	}
	expect(t, b.get("/api/v1/pause"), 200, `"key": "*"`)
	expect(t, b.do(http.MethodPost, "/api/v1/resume", testToken, `{"all": true}`), 200, `"items": []`)
	if rq, err := rs.StartNext(ctx); err != nil || rq.Key != "foo:main" {
		t.Fatalf("after resume: %v, %v", rq, err)
	}
	// The forced strategy and owner reach the build record.
	res, err := b.store.EnqueueWithOptions(ctx, state.BuildRequest{Module: "baz", Stream: "main", Kind: state.RequestModule}, state.RequestOptions{RebuildStrategy: "all", Owner: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := rs.PutModuleBuild(ctx, state.ModuleBuild{Name: "baz", Stream: "main", RequestID: res.Request.ID, RebuildStrategy: "changed-and-after", Owner: "webhook"})
	if err != nil || mb.RebuildStrategy != "all" || mb.Owner != "carol" {
		t.Errorf("build %+v, %v", mb, err)
	}
}

func TestServer_Events(t *testing.T) {
	b := setup(t)
	b.delivery("rpms/pkg-a", sha("a"))
	r := b.get("/api/v1/events?since=1&limit=2")
	expect(t, r, 200, "")
	m := r.json(t)
	items := m["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["seq"] != float64(2) || m["next"] != float64(3) {
		t.Errorf("events %v", m)
	}
	expect(t, b.get("/api/v1/events?since=x"), 400, "since must be a non-negative integer")

	// SSE: resume after event 1, see 2.., then a new event arrives live.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.http.URL+"/api/v1/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "1")
	resp, err := b.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var gotIDs []string
	next := func() {
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				gotIDs = append(gotIDs, id)
				return
			}
		}
		t.Fatalf("stream ended: %v (ids so far %v)", sc.Err(), gotIDs)
	}
	next()
	if gotIDs[0] != "2" {
		t.Fatalf("first id %s, want 2 (resumed after Last-Event-ID 1)", gotIDs[0])
	}
	evs, _ := b.store.EventsSince(ctx, 0, 0)
	for len(gotIDs) < len(evs)-1 {
		next()
	}
	if err := b.store.SetPaused(ctx, "foo:main", true, "t"); err != nil { // a new event
		t.Fatal(err)
	}
	next()
	if want := fmt.Sprint(len(evs) + 1); gotIDs[len(gotIDs)-1] != want {
		t.Errorf("live event id %s, want %s", gotIDs[len(gotIDs)-1], want)
	}
}

func TestServer_MetricsHealth(t *testing.T) {
	b := setup(t)
	seedBuilds(b)
	ctx := context.Background()
	if _, err := b.store.Enqueue(ctx, state.BuildRequest{Module: "q", Stream: "main", Kind: state.RequestModule}); err != nil {
		t.Fatal(err)
	}
	b.tick(90 * time.Second)
	hook := b.srv.Metrics().Webhooks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "gitlab") {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	for _, p := range []string{"/webhooks/github", "/webhooks/github", "/webhooks/gitlab", "/webhooks/../../x"} {
		req, _ := http.NewRequest(http.MethodPost, "http://x"+p, nil)
		hook.ServeHTTP(discardWriter{}, req)
	}
	b.srv.Metrics().StatusPosted("github", "ok")
	// Component durations are observed as builds end (the runner's
	// OnFinish), not read from every stored build at scrape time.
	bar, err := b.store.GetModuleBuild(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	b.srv.Metrics().ObserveBuild(*bar)
	b.srv.Metrics().TimeToFirstStatus(300 * time.Millisecond)
	r := b.get("/metrics")
	expect(t, r, 200, "")
	for _, want := range []string{
		`rida_webhook_requests_total{code="2xx",forge="github"} 2`,
		`rida_webhook_requests_total{code="4xx",forge="gitlab"} 1`,
		`rida_webhook_requests_total{code="2xx",forge="other"} 1`,
		`rida_status_posts_total{forge="github",outcome="ok"} 1`,
		`rida_time_to_first_status_seconds_count 1`,
		`rida_queue_pending_requests 1`,
		`rida_queue_oldest_pending_age_seconds 90`,
		`rida_module_builds{state="ready"} 1`,
		`rida_module_builds{state="failed"} 1`,
		`rida_module_builds{state="build"} 1`,
		`rida_component_build_duration_seconds_bucket{state="complete",le="30"} 1`,
		`rida_component_build_duration_seconds_count{state="complete"} 1`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	expect(t, b.get("/healthz"), 200, `"ok"`)
	expect(t, b.get("/readyz"), 200, `"ready"`)
	b.store.Close()
	b.closed = true
	expect(t, b.get("/readyz"), 503, "the store is not readable")
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}

func TestServer_Logs(t *testing.T) {
	b := setup(t)
	inside := filepath.Join(b.dataDir, "builds", "1", "pkg-a.log")
	outside := filepath.Join(t.TempDir(), "secret.log")
	link := filepath.Join(b.dataDir, "builds", "escape.log")
	if err := os.MkdirAll(filepath.Dir(inside), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, body := range map[string]string{inside: "+ rpmbuild -ba pkg-a.spec\nWrote: pkg-a-1-1.rpm\n", outside: "TOP SECRET"} {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", Components: []state.ComponentBuild{
		{Key: "pkg-a", Package: "pkg-a", Batch: 2, State: "complete", LogPath: inside},
		{Key: "pkg-b", Package: "pkg-b", Batch: 2, State: "failed", LogPath: outside},
		{Key: "pkg-c", Package: "pkg-c", Batch: 2, State: "failed", LogPath: link},
		{Key: "pkg-d", Package: "pkg-d", Batch: 2, State: "failed", LogPath: "builds/1/../../../etc/passwd"},
		{Key: "pkg-e", Package: "pkg-e", Batch: 2, State: "queued"},
		{Key: "pkg-k", Package: "pkg-k", Batch: 2, State: "building", LogPath: "https://koji.example.org/work/tasks/1/1/"},
	}}, state.ModuleStateBuild)
	r := b.get("/builds/1/logs/pkg-a?raw=1")
	expect(t, r, 200, "Wrote: pkg-a-1-1.rpm")
	if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	for _, c := range []string{"pkg-b", "pkg-c", "pkg-d"} {
		r := b.get("/builds/1/logs/" + c)
		if raw := b.get("/builds/1/logs/" + c + "?raw=1"); raw.status != 404 || strings.Contains(string(raw.body), "SECRET") {
			t.Errorf("%s raw: %d %s: want 404 without the file", c, raw.status, raw.body)
		}
		if r.status != 404 || strings.Contains(string(r.body), "SECRET") || strings.Contains(string(r.body), "root:") {
			t.Errorf("%s: %d %s: want 404 without the file", c, r.status, r.body)
		}
	}
	expect(t, b.get("/builds/1/logs/pkg-e"), 404, "has no log yet")
	expect(t, b.get("/builds/1/logs/nope"), 404, "has no component")
	client := b.http.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get(b.http.URL + "/builds/1/logs/pkg-k")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://koji.example.org/work/tasks/1/1/" {
		t.Errorf("koji log: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
