package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/state"
)

const modRepo = "https://src.example.org/modules/foo"

// seedBuilds stores four builds: 1 foo:main ready, 2 foo:main failed,
// 3 bar:f40 build (two components), 4 foo:next init.
func seedBuilds(b *bundle) {
	b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", Version: 100, Context: "aaaa", ModuleRepo: modRepo, ModuleCommit: "abc1234" + strings.Repeat("0", 33), Owner: "webhook"},
		state.ModuleStateInit, state.ModuleStateWait, state.ModuleStateBuild, state.ModuleStateDone, state.ModuleStateReady)
	b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", Version: 300, Context: "bbbb", ModuleRepo: modRepo},
		state.ModuleStateInit, state.ModuleStateFailed)
	t0 := b.clock.Now()
	b.putBuild(state.ModuleBuild{Name: "bar", Stream: "f40", Version: 200, Context: "cccc", Owner: "alice", Components: []state.ComponentBuild{
		{Key: "module-build-macros", Package: "module-build-macros", Batch: 1, State: "complete", NVR: "module-build-macros-1-1", Started: t0, Finished: t0.Add(30 * time.Second)},
		{Key: "pkg-a", Package: "pkg-a", Batch: 2, State: "building", Started: t0.Add(40 * time.Second)},
	}}, state.ModuleStateInit, state.ModuleStateWait, state.ModuleStateBuild)
	b.putBuild(state.ModuleBuild{Name: "foo", Stream: "next"}, state.ModuleStateInit)
}

func ids(t *testing.T, r response) []int {
	t.Helper()
	var out []int
	for _, it := range r.json(t)["items"].([]any) {
		out = append(out, int(it.(map[string]any)["id"].(float64)))
	}
	return out
}

func TestServer_ListBuilds(t *testing.T) {
	b := setup(t)
	seedBuilds(b)
	// Submitted: 1 at 12:00, 2 at 12:05, 3 at 12:07, 4 at 12:10; modified:
	// 1 at 12:04, 2 at 12:06, 3 at 12:09, 4 at 12:10.
	cases := []struct {
		name, query string
		want        []int
	}{
		{"default newest first", "", []int{4, 3, 2, 1}},
		{"state by name", "state=failed", []int{2}},
		{"state repeated", "state=ready&state=build", []int{3, 1}},
		{"state by number", "state=4", []int{2}},
		{"name", "name=foo", []int{4, 2, 1}},
		{"name and stream (indexed)", "name=foo&stream=main", []int{2, 1}},
		{"name and state (indexed)", "name=foo&state=ready&state=failed", []int{2, 1}},
		{"nsvc N:S", "nsvc=foo:main", []int{2, 1}},
		{"nsvc N:S:V:C", "nsvc=foo:main:300:bbbb", []int{2}},
		{"owner default", "owner=rida", []int{4, 2}},
		{"scmurl", "scmurl=" + modRepo + "%3F%23abc1234" + strings.Repeat("0", 33), []int{1}},
		{"submitted_after", "submitted_after=2026-03-01T12:04:30Z", []int{4, 3, 2}},
		{"submitted_before", "submitted_before=2026-03-01T12:04:30Z", []int{1}},
		{"completed_after", "completed_after=2026-03-01T12:00:00Z", []int{2, 1}},
		{"modified range", "modified_after=2026-03-01T12:05:30Z&modified_before=2026-03-01T12:08:30Z", []int{2}},
		{"order_by version", "order_by=version", []int{4, 1, 3, 2}},
		{"order_desc_by version", "order_desc_by=version", []int{2, 3, 1, 4}},
		{"order_by name then id", "order_by=name&order_by=id", []int{3, 1, 2, 4}},
		{"order_by time_submitted", "order_by=time_submitted", []int{1, 2, 3, 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := b.get("/module-build-service/1/module-builds/?" + tc.query)
			expect(t, r, http.StatusOK, "")
			if got := ids(t, r); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("ids %v, want %v", got, tc.want)
			}
		})
	}
}

func TestServer_ListBuilds_Paging(t *testing.T) {
	b := setup(t)
	seedBuilds(b)
	r := b.get("/module-build-service/2/module-builds/?per_page=3&page=2&name=foo&short=true")
	expect(t, r, http.StatusOK, "")
	m := r.json(t)
	meta := m["meta"].(map[string]any)
	if meta["total"].(float64) != 3 || meta["pages"].(float64) != 1 || meta["page"].(float64) != 2 {
		t.Errorf("meta %v", meta)
	}
	r = b.get("/module-build-service/2/module-builds/?per_page=1&page=2&name=foo")
	meta = r.json(t)["meta"].(map[string]any)
	base := b.http.URL + "/module-build-service/2/module-builds/?"
	for key, page := range map[string]string{"first": "1", "last": "3", "prev": "1", "next": "3"} {
		got, _ := meta[key].(string)
		if !strings.HasPrefix(got, base) || !strings.Contains(got, "page="+page) || !strings.Contains(got, "name=foo") || !strings.Contains(got, "per_page=1") {
			t.Errorf("meta %s = %q: want an absolute link to page %s keeping name=foo", key, got, page)
		}
	}
	if got := ids(t, r); fmt.Sprint(got) != "[2]" {
		t.Errorf("page 2 ids %v", got)
	}
	// short: only MBS's short fields.
	item := r.json(t)["items"].([]any)[0].(map[string]any)
	if _, ok := item["tasks"]; !ok {
		t.Error("default items lack tasks")
	}
	r = b.get("/module-build-service/2/module-builds/?short=true&per_page=1")
	item = r.json(t)["items"].([]any)[0].(map[string]any)
	if len(item) != 8 {
		t.Errorf("short item has %d fields, want 8: %v", len(item), item)
	}
}

func TestServer_ListBuilds_Errors(t *testing.T) {
	b := setup(t)
	cases := []struct{ query, want string }{
		{"id=3", "Please use /module-builds/<id>"},
		{"colour=red", `An invalid filter was submitted: \"colour\"`},
		{"state=bogus", `An invalid state was supplied: \"bogus\"`},
		{"submitted_before=yesterday", `for the \"submitted_before\" parameter`},
		{"order_by=colour", `An invalid ordering key of \"colour\"`},
		{"order_by=id&order_desc_by=id", "not specify both order_by and order_desc_by"},
		{"page=0", "page must be a positive integer"},
		{"nsvc=a:b:c:d:e", "nsvc must be N[:S[:V[:C]]]"},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			expect(t, b.get("/module-build-service/1/module-builds/?"+tc.query), http.StatusBadRequest, tc.want)
		})
	}
	expect(t, b.get("/module-build-service/3/module-builds/"), http.StatusNotFound, "The requested API version is not available")
}

func TestServer_GetBuild(t *testing.T) {
	b := setup(t)
	seedBuilds(b)
	r := b.get("/module-build-service/1/module-builds/3")
	expect(t, r, http.StatusOK, "")
	m := r.json(t)
	if m["state_name"] != "build" || m["koji_tag"] != "module-bar-f40-200-cccc" || m["owner"] != "alice" {
		t.Errorf("default json %v", m)
	}
	if got := fmt.Sprint(m["component_builds"]); got != "[30001 30002]" {
		t.Errorf("component_builds %s, want stable ids [30001 30002]", got)
	}
	rpms := m["tasks"].(map[string]any)["rpms"].(map[string]any)
	if a := rpms["pkg-a"].(map[string]any); a["state"] != float64(0) || a["nvr"] != nil {
		t.Errorf("tasks pkg-a %v: want Koji BUILDING (0)", a)
	}
	if _, ok := m["state_trace"]; ok {
		t.Error("default json has state_trace")
	}
	m = b.get("/module-build-service/2/module-builds/1?verbose=true").json(t)
	trace := m["state_trace"].([]any)
	if len(trace) != 5 || trace[0].(map[string]any)["state_name"] != "ready" || trace[4].(map[string]any)["state_name"] != "init" {
		t.Errorf("state_trace %v: want 5 entries, newest first", trace)
	}
	if m["state_url"] != "/module-build-service/2/module-builds/1" || m["time_completed"] == nil || m["scmurl"] != modRepo+"?#abc1234"+strings.Repeat("0", 33) {
		t.Errorf("verbose json %v", m)
	}
	expect(t, b.get("/module-build-service/1/module-builds/99"), http.StatusNotFound, "No such module build found: 99")
	expect(t, b.get("/module-build-service/1/module-builds/x"), http.StatusBadRequest, `id \"x\" is not a positive integer`)
}

func TestServer_ComponentBuilds(t *testing.T) {
	b := setup(t)
	seedBuilds(b)
	r := b.get("/module-build-service/1/component-builds/?module_build=3&order_by=id")
	expect(t, r, http.StatusOK, "")
	if got := fmt.Sprint(ids(t, r)); got != "[30001 30002]" {
		t.Errorf("ids %s", got)
	}
	r = b.get("/module-build-service/1/component-builds/?state=COMPLETE")
	if got := fmt.Sprint(ids(t, r)); got != "[30001]" {
		t.Errorf("state=COMPLETE ids %s", got)
	}
	m := b.get("/module-build-service/1/component-builds/30002?verbose=true").json(t)
	if m["package"] != "pkg-a" || m["state_name"] != "BUILDING" || m["module_build"] != float64(3) || m["batch"] != float64(2) || m["format"] != "rpms" {
		t.Errorf("component %v", m)
	}
	expect(t, b.get("/module-build-service/1/component-builds/30003"), http.StatusNotFound, "No such component build found: 30003")
	expect(t, b.get("/module-build-service/1/component-builds/990001"), http.StatusNotFound, "No such component build found: 990001")
	expect(t, b.get("/module-build-service/1/component-builds/?colour=1"), http.StatusBadRequest, "An invalid filter")
	if api.ComponentID(3, 1) != 30002 {
		t.Error("ComponentID")
	}
}

func TestServer_PatchCancel(t *testing.T) {
	b := setup(t)
	seedBuilds(b)
	path := "/module-build-service/1/module-builds/3"
	cases := []struct {
		name, token, body string
		status            int
		want              string
	}{
		{"no token", "", `{"state":"failed"}`, 401, "Authorization: Bearer"},
		{"wrong token", "nope", `{"state":"failed"}`, 401, "not one of the configured api.tokens"},
		{"not json", testToken, `state=failed`, 400, "must be a JSON object"},
		{"other state", testToken, `{"state":"done"}`, 400, `The only allowed change is {\"state\": \"failed\"}`},
		{"extra key", testToken, `{"state":"failed","x":1}`, 400, "unspecified parameters: x"},
		{"cancel", testToken, `{"state":"failed"}`, 200, `"state_reason": "cancelled by alice"`},
		{"again: terminal", testToken, `{"state":"4"}`, 400, "only builds in init, wait or build can be cancelled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, b.do(http.MethodPatch, path, tc.token, tc.body), tc.status, tc.want)
		})
	}
	expect(t, b.do(http.MethodPatch, "/module-build-service/1/module-builds/77", testToken, `{"state":"failed"}`), 404, "No such module build found: 77")
}

func TestServer_Submit(t *testing.T) {
	// alice is an admin: she may submit on carol's behalf ("owner").
	b := setup(t, setupOpts{mutate: func(o *api.Options) { o.AdminUsers = []string{"alice"} }})
	seedBuilds(b)
	path := "/module-build-service/1/module-builds/"
	good := `"scmurl": "https://src.example.org/modules/baz.git?#abc1234", "branch": "main"`
	cases := []struct {
		name, token, body string
		status            int
		want              string
	}{
		{"no token", "", `{` + good + `}`, 401, "Bearer"},
		{"unknown keys", testToken, `{` + good + `, "colour": "red", "size": 1}`, 400, "The request contains unspecified parameters: colour, size"},
		{"yaml", testToken, `{` + good + `, "modulemd": "x"}`, 403, "YAML submission is not enabled"},
		{"srpms without scratch", testToken, `{` + good + `, "srpms": ["cli-build/1/a.src.rpm"]}`, 403, "srpms may only be submitted with scratch builds"},
		{"srpms", testToken, `{` + good + `, "scratch": true, "srpms": ["cli-build/1/a.src.rpm"]}`, 403, "Uploaded SRPMs"},
		{"scratch not a bool", testToken, `{` + good + `, "scratch": "yes"}`, 400, "scratch must be true or false"},
		{"bad overrides", testToken, `{` + good + `, "buildrequire_overrides": {"platform": "el9"}}`, 400, `The \"buildrequire_overrides\" parameter must be an object`},
		{"empty override", testToken, `{` + good + `, "require_overrides": {"platform": []}}`, 400, "needs a non-empty list of streams"},
		{"reuse and all", testToken, `{` + good + `, "reuse_components_from": 1, "rebuild_strategy": "all"}`, 400, `when the \"rebuild_strategy\" parameter is set to \"all\"`},
		{"reuse unknown", testToken, `{` + good + `, "reuse_components_from": 77}`, 400, "could not be found: build 77"},
		{"reuse unknown nsvc", testToken, `{` + good + `, "reuse_components_from": "foo:main:1:x"}`, 400, "could not be found: foo:main:1:x"},
		{"reuse not ready", testToken, `{` + good + `, "reuse_components_from": 2}`, 400, "must be in the ready state: build 2 is failed"},
		{"missing scmurl", testToken, `{"branch": "main"}`, 400, "Missing scmurl"},
		{"missing branch", testToken, `{"scmurl": "https://src.example.org/modules/baz?#abc1234"}`, 400, "Missing branch"},
		{"prefix", testToken, `{"scmurl": "https://evil.example.com/modules/baz?#abc1234", "branch": "main"}`, 403, "is not allowed"},
		{"no commit", testToken, `{"scmurl": "https://src.example.org/modules/baz", "branch": "main"}`, 400, "it must end with #<commit>"},
		{"bad strategy", testToken, `{` + good + `, "rebuild_strategy": "some"}`, 400, `The rebuild method of \"some\" is not allowed`},
		{"not on branch", testToken, `{"scmurl": "https://src.example.org/modules/baz?#fff0000", "branch": "main"}`, 400, "Commit fff0000 is not in branch main."},
		{"exists", testToken, `{"scmurl": "` + modRepo + `?#abc1234", "branch": "main"}`, 409, "Module (state=5) already exists. Only a new build, resubmission of a failed build or build against new buildrequirements is allowed."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, b.do(http.MethodPost, path, tc.token, tc.body), tc.status, tc.want)
		})
	}
	t.Run("queued", func(t *testing.T) {
		// MBS creates the build in the request: 201 with the build in
		// state init, even though nothing runs it yet.
		r := b.do(http.MethodPost, path, testToken, `{`+good+`, "rebuild_strategy": "only-changed", "owner": "carol", "reuse_components_from": "foo:main:100:aaaa"}`)
		expect(t, r, http.StatusCreated, `"state_name": "init"`)
		got := r.json(t)
		id, _ := got["id"].(float64)
		if id == 0 || r.header.Get("Location") != fmt.Sprintf("/module-build-service/1/module-builds/%d", int(id)) {
			t.Fatalf("id %v, Location %q", got["id"], r.header.Get("Location"))
		}
		if got["state"] != float64(0) || got["owner"] != "carol" || got["rebuild_strategy"] != "only-changed" || got["scratch"] != false ||
			got["state_reason"] != state.ReasonQueued || got["scmurl"] != "https://src.example.org/modules/baz.git?#abc1234"+strings.Repeat("0", 33) {
			t.Errorf("queued build %v", got)
		}
		req := b.get(fmt.Sprintf("/api/v1/requests/%v", got["request_id"])).json(t)["request"].(map[string]any)
		if req["key"] != "baz:main" || req["module_commit"] != "abc1234"+strings.Repeat("0", 33) || req["kind"] != "module" ||
			fmt.Sprint(req["reasons"]) != "[submitted by alice]" || req["module_repo"] != "https://src.example.org/modules/baz.git" {
			t.Errorf("request %v", req)
		}
		opts, err := b.store.RequestOptionsFor(context.Background(), uint64(req["id"].(float64)))
		if err != nil || opts.RebuildStrategy != "only-changed" || opts.Owner != "carol" || opts.ReuseFrom != 1 {
			t.Errorf("request options %+v, %v", opts, err)
		}
		if b.enqueued != 1 {
			t.Errorf("OnEnqueue called %d times", b.enqueued)
		}
		// The same commit again, still queued: 409, and no new record.
		expect(t, b.do(http.MethodPost, path, testToken, `{`+good+`}`), 409, "already queued as build request")
		if l := ids(t, b.get("/module-build-service/1/module-builds/?name=baz")); len(l) != 1 || l[0] != int(id) {
			t.Errorf("baz builds after the 409: %v", l)
		}
	})
}

// TestServer_Submit_Queued: a submission answers with its build's id
// whatever the queue holds (v1 a dict, v2 a list), with a reason saying why
// it waits; a submission merging into a pending request gets that
// request's build.
func TestServer_Submit_Queued(t *testing.T) {
	b := setup(t, setupOpts{mutate: func(o *api.Options) { o.AdminUsers = []string{"alice"} }})
	ctx := context.Background()
	v2 := "/module-build-service/2/module-builds/"
	submit := func(commit, extra string) map[string]any {
		t.Helper()
		r := b.do(http.MethodPost, v2, testToken, `{"scmurl": "https://src.example.org/modules/baz?#`+commit+`", "branch": "main"`+extra+`}`)
		expect(t, r, http.StatusCreated, "")
		var list []map[string]any
		if err := json.Unmarshal(r.body, &list); err != nil || len(list) != 1 || list[0]["id"] == nil {
			t.Fatalf("v2 answer %s: %v", r.body, err)
		}
		if want := fmt.Sprintf("/module-build-service/2/module-builds/%v", list[0]["id"]); r.header.Get("Location") != want {
			t.Errorf("Location %q, want %q", r.header.Get("Location"), want)
		}
		return list[0]
	}
	// Paused stream.
	if err := b.store.SetPaused(ctx, "baz:main", true, "ops"); err != nil {
		t.Fatal(err)
	}
	first := submit("abc1234", `, "scratch": true`)
	if first["state_name"] != "init" || first["state_reason"] != state.ReasonStreamPaused || first["scratch"] != true {
		t.Errorf("paused: %v %v scratch %v", first["state_name"], first["state_reason"], first["scratch"])
	}
	// A second scratch submission (another commit) merges into the pending
	// request and gets its build, with the new commit and owner.
	second := submit("def5678", `, "scratch": true, "owner": "dave"`)
	if second["id"] != first["id"] || second["scmurl"] != "https://src.example.org/modules/baz?#def5678"+strings.Repeat("0", 33) ||
		second["owner"] != "dave" || second["scratch"] != true {
		t.Errorf("merged submission: id %v (first %v), scmurl %v, owner %v", second["id"], first["id"], second["scmurl"], second["owner"])
	}
	// A push merging in makes it a regular build; a scratch build is then
	// not merged into it: 409.
	if _, err := b.store.Enqueue(ctx, state.BuildRequest{Module: "baz", Stream: "main", Kind: state.RequestComponent, Reasons: []string{"push"}}); err != nil {
		t.Fatal(err)
	}
	mb, err := b.store.GetModuleBuild(ctx, uint64(first["id"].(float64)))
	if err != nil || mb.Scratch {
		t.Errorf("after a push merged in: scratch %v, %v", mb.Scratch, err)
	}
	expect(t, b.do(http.MethodPost, v2, testToken, `{"scmurl": "https://src.example.org/modules/baz?#abc1234", "branch": "main", "scratch": true}`),
		409, "a scratch build is not merged into it")

	// Another build of the stream running: "queued behind build N".
	if err := b.store.SetPaused(ctx, "baz:main", false, "ops"); err != nil {
		t.Fatal(err)
	}
	rq, err := b.store.StartNext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := b.store.RequestModuleBuilds(ctx, rq.ID)
	if err != nil || len(recs) != 1 {
		t.Fatalf("running request's builds %v, %v", recs, err)
	}
	third := submit("abc1234", "")
	if third["id"] == first["id"] || third["state_reason"] != fmt.Sprintf("queued behind build %d", recs[0].ID) {
		t.Errorf("behind a running build: id %v reason %v", third["id"], third["state_reason"])
	}
	// The queued build lists as init.
	if l := ids(t, b.get("/module-build-service/1/module-builds/?name=baz&state=init")); len(l) != 2 {
		t.Errorf("init builds of baz: %v", l)
	}
}

func TestServer_AboutStrategiesFinal(t *testing.T) {
	b := setup(t)
	seedBuilds(b)
	if m := b.get("/module-build-service/1/about/").json(t); m["api_version"] != float64(2) || m["auth_method"] != "bearer" || m["version"] != "test" {
		t.Errorf("about %v", m)
	}
	if r := b.get("/module-build-service/2/rebuild-strategies/"); !strings.Contains(string(r.body), `"default": true`) {
		t.Errorf("strategies %s", r.body)
	}
	expect(t, b.get("/module-build-service/1/final-modulemd/1"), 200, "")
	expect(t, b.get("/module-build-service/1/final-modulemd/3"), 400, "its state is build, not done or ready")
}
