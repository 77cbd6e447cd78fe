package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
)

// TestMBSCompat_SubmitListReadCancel talks to a real 'rida serve' the way
// MBS clients (mbs-build, fedpkg module-build, scripts) talk to MBS: the
// request and response shapes are the ones MBS documents (routes under
// /module-build-service/1/, fields, paging meta, error shape, PATCH cancel).
func TestMBSCompat_SubmitListReadCancel(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	layout, err := examples.CreateRepos(filepath.Join(dir, "git"), examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A component that takes long enough to cancel the build while it runs.
	tools := layout.Components["rida-demo-tools"]
	if _, err := tools.CommitFiles("slow", map[string]string{"rida-demo-tools.spec": "Name: rida-demo-tools\nVersion: 1\nRelease: 1%{?dist}\nSummary: slow\nLicense: MIT\nBuildArch: noarch\n%description\nslow\n%build\nsleep 60\n%files\n"}); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("api: {tokens: [{name: packager, token_env: T_API}], allowed_scm: [%q]}\nbackend: {kind: local, local: {sandbox: \"off\"}}\n", "file://"+filepath.Join(dir, "git")+"/")
	cfgPath := filepath.Join(dir, "rida.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, filepath.Join(dir, "data"), "unused", "--config", cfgPath, "--", "T_API=tok")
	base := p.base + "/module-build-service/1"
	call := func(method, path, body string, auth bool) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if auth {
			req.Header.Set("Authorization", "Bearer tok")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if len(bytes.TrimSpace(raw)) > 0 && raw[0] == '{' {
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("%s %s: %v\n%s", method, path, err, raw)
			}
		}
		return resp.StatusCode, out
	}

	// Errors have MBS's shape.
	code, e := call(http.MethodPost, "/module-builds/", `{"scmurl": "x", "branch": "1.0", "colour": "blue"}`, true)
	if code != 400 || e["status"] != float64(400) || e["error"] != "Bad Request" || !strings.Contains(fmt.Sprint(e["message"]), "colour") {
		t.Errorf("unknown key: %d %v", code, e)
	}
	code, e = call(http.MethodPost, "/module-builds/", `{"scmurl": "https://elsewhere/x?#abc", "branch": "1.0"}`, true)
	if code != 403 || e["status"] != float64(403) {
		t.Errorf("scmurl outside the allowed prefixes: %d %v", code, e)
	}

	// Submit: POST {"scmurl": "<url>?#<commit>", "branch": B} → 201, a build.
	scmurl := layout.Module.URL + "?#" + layout.Module.Commit
	code, b := call(http.MethodPost, "/module-builds/", fmt.Sprintf(`{"scmurl": %q, "branch": %q}`, scmurl, layout.Module.Branch), true)
	if code != 201 {
		t.Fatalf("submit: %d %v", code, b)
	}
	id := b["id"]
	if id == nil {
		// The runner did not create the build within the submit wait: the
		// answer is the queued request; find the build by listing.
		deadline := time.Now().Add(30 * time.Second)
		for id == nil && time.Now().Before(deadline) {
			_, l := call(http.MethodGet, "/module-builds/?name=rida-demo", "", false)
			if items, _ := l["items"].([]any); len(items) > 0 {
				id = items[0].(map[string]any)["id"]
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if id == nil {
		t.Fatal("no build appeared after the submit")
	}

	// Read: GET /module-builds/<id>?verbose=true with MBS's fields.
	var got map[string]any
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		_, got = call(http.MethodGet, fmt.Sprintf("/module-builds/%v?verbose=true", id), "", false)
		if got["state_name"] == "build" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, field := range []string{"id", "name", "stream", "version", "context", "state", "state_name", "state_reason", "owner",
		"scmurl", "koji_tag", "rebuild_strategy", "time_submitted", "time_modified", "time_completed", "tasks",
		"component_builds", "state_trace", "siblings", "scratch", "modulemd"} {
		if _, ok := got[field]; !ok {
			t.Errorf("build JSON lacks MBS field %q", field)
		}
	}
	if got["state"] != float64(2) || got["state_name"] != "build" || got["owner"] != "packager" || got["scmurl"] != scmurl {
		t.Errorf("build: state %v %v owner %v scmurl %v", got["state"], got["state_name"], got["owner"], got["scmurl"])
	}

	// List with MBS filters and paging meta.
	code, l := call(http.MethodGet, "/module-builds/?name=rida-demo&state=build&per_page=1", "", false)
	meta, _ := l["meta"].(map[string]any)
	items, _ := l["items"].([]any)
	if code != 200 || len(items) != 1 || meta["total"] != float64(1) || meta["per_page"] != float64(1) || meta["page"] != float64(1) {
		t.Errorf("list: %d items %d meta %v", code, len(items), meta)
	}
	for _, k := range []string{"first", "last", "prev", "next", "pages"} {
		if _, ok := meta[k]; !ok {
			t.Errorf("paging meta lacks %q", k)
		}
	}

	// Cancel: PATCH {"state": "failed"} needs a token, then fails the build.
	if code, _ := call(http.MethodPatch, fmt.Sprintf("/module-builds/%v", id), `{"state": "failed"}`, false); code != 401 {
		t.Errorf("PATCH without a token: %d", code)
	}
	code, c := call(http.MethodPatch, fmt.Sprintf("/module-builds/%v", id), `{"state": "failed"}`, true)
	if code != 200 {
		t.Fatalf("PATCH cancel: %d %v", code, c)
	}
	deadline = time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		_, got = call(http.MethodGet, fmt.Sprintf("/module-builds/%v", id), "", false)
		if got["state_name"] == "failed" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got["state"] != float64(4) || !strings.Contains(fmt.Sprint(got["state_reason"]), "cancelled by packager") || got["time_completed"] == nil {
		t.Errorf("after cancel: state %v reason %v completed %v", got["state"], got["state_reason"], got["time_completed"])
	}
	// A cancelled (failed) build can be submitted again: resubmission.
	if code, _ := call(http.MethodPost, "/module-builds/", fmt.Sprintf(`{"scmurl": %q, "branch": %q}`, scmurl, layout.Module.Branch), true); code != 201 {
		t.Errorf("resubmitting a failed build: %d", code)
	}
	p.term(t) // SIGTERM: the slow rpmbuild's process group is killed with it
}

// TestMBSCompat_FedpkgReplay replays, against a real 'rida serve', the HTTP
// calls rpkg (fedpkg's module commands) makes, with the parameters, body
// encodings and field reads listed in mbs-clients.md: version discovery,
// submit (json= as with OIDC, data= without Content-Type as with Kerberos;
// v1 and v2) followed by watch on a build queued at submit time, info,
// overview (--limit 1, 10, 150 and --unfinished), cancel by the owner, a
// scratch build, submits with overrides and reuse_components_from, and an
// identical resubmission (409).
func TestMBSCompat_FedpkgReplay(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	layout, err := examples.CreateRepos(filepath.Join(dir, "git"), examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("api: {tokens: [{name: packager, token_env: T_API}], allowed_scm: [%q]}\nbackend: {kind: local, local: {sandbox: \"off\"}}\n", "file://"+filepath.Join(dir, "git")+"/")
	cfgPath := filepath.Join(dir, "rida.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, filepath.Join(dir, "data"), "unused", "--config", cfgPath, "--", "T_API=tok")
	defer p.term(t)

	// do sends one call. kerberos: the body goes as data=json.dumps(body),
	// without Content-Type (requests_kerberos); else as json= (OIDC).
	do := func(method, url string, body any, kerberos bool) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = bytes.NewReader(raw)
		}
		req, _ := http.NewRequest(method, url, rd)
		if body != nil && !kerberos {
			req.Header.Set("Content-Type", "application/json")
		}
		if method != http.MethodGet {
			req.Header.Set("Authorization", "Bearer tok")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, raw
	}
	object := func(raw []byte) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("not a JSON object: %v\n%s", err, raw)
		}
		return m
	}

	// Version discovery: GET <api_url>/about/, api_version 2 → /2/.
	code, raw := do(http.MethodGet, p.base+"/module-build-service/1/about/", nil, false)
	if code != 200 || object(raw)["api_version"] != float64(2) {
		t.Fatalf("about: %d %s", code, raw)
	}
	v1, v2 := p.base+"/module-build-service/1", p.base+"/module-build-service/2"
	// submit returns the ids as rpkg reads them: v1 data['id'], v2
	// [b['id'] for b in data].
	submit := func(api string, body map[string]any, kerberos bool) []uint64 {
		t.Helper()
		code, raw := do(http.MethodPost, api+"/module-builds/", body, kerberos)
		if code != 201 {
			t.Fatalf("submit %v: %d %s", body, code, raw)
		}
		var items []map[string]any
		if api == v2 {
			if err := json.Unmarshal(raw, &items); err != nil {
				t.Fatalf("v2 submit answer is not a list: %v\n%s", err, raw)
			}
		} else {
			items = []map[string]any{object(raw)}
		}
		var ids []uint64
		for _, b := range items {
			id, ok := b["id"].(float64)
			if !ok || id == 0 {
				t.Fatalf("submit answered id %v (%s)", b["id"], raw)
			}
			ids = append(ids, uint64(id))
		}
		return ids
	}
	get := func(id uint64) map[string]any {
		t.Helper()
		code, raw := do(http.MethodGet, fmt.Sprintf("%s/module-builds/%d?verbose=true", v2, id), nil, false)
		if code != 200 {
			t.Fatalf("get %d: %d %s", id, code, raw)
		}
		return object(raw)
	}
	// watch is rpkg's loop (every 15 s there; faster here): it reads the
	// tasks of every component and stops only on failed, done or ready.
	watch := func(id uint64) ([]string, map[string]any) {
		t.Helper()
		var seen []string
		deadline := time.Now().Add(4 * time.Minute)
		for time.Now().Before(deadline) {
			b := get(id)
			rpms := b["tasks"].(map[string]any)["rpms"].(map[string]any)
			for pkg, task := range rpms {
				tk := task.(map[string]any)
				if _, ok := tk["state"]; !ok {
					t.Fatalf("tasks.rpms.%s has no state", pkg)
				}
				_ = tk["task_id"]
			}
			st := b["state_name"].(string)
			if len(seen) == 0 || seen[len(seen)-1] != st {
				seen = append(seen, st)
			}
			if st == "failed" || st == "done" || st == "ready" {
				return seen, b
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("build %d: watch did not end; states %v", id, seen)
		return nil, nil
	}
	// untilReady waits for done → ready (two transactions; a watch may
	// stop at done, as rpkg's does).
	untilReady := func(id uint64) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if b := get(id); b["state_name"] == "ready" {
				return b
			}
		}
		t.Fatalf("build %d did not become ready", id)
		return nil
	}
	pause := func(on bool) {
		t.Helper()
		path := "/api/v1/resume"
		if on {
			path = "/api/v1/pause"
		}
		if code, raw := do(http.MethodPost, p.base+path, map[string]any{"module": "rida-demo:1.0"}, false); code != 200 {
			t.Fatalf("%s: %d %s", path, code, raw)
		}
	}
	scmurl := func(commit string) string { return layout.Module.URL + "?#" + commit }
	branch := layout.Module.Branch

	// 1. Submit while the stream is paused: the build is queued, and its id
	// comes back at once (MBS makes the build in the request).
	pause(true)
	ids := submit(v2, map[string]any{"scmurl": scmurl(layout.Module.Commit), "branch": branch, "scratch": false}, false)
	first := ids[0]
	if b := get(first); b["state_name"] != "init" || b["state_reason"] != "stream paused" || b["owner"] != "packager" {
		t.Errorf("queued build: %v %v owner %v", b["state_name"], b["state_reason"], b["owner"])
	}
	// overview --unfinished lists it.
	overview := func(states []int, limit int) []uint64 {
		t.Helper()
		var all []uint64
		for _, st := range states {
			got := 0
			for page := 1; ; page++ {
				url := fmt.Sprintf("%s/module-builds/?verbose=true&state=%d&order_desc_by=id&verbose=True&per_page=%d&page=%d", v2, st, min(limit, 100), page)
				code, raw := do(http.MethodGet, url, nil, false)
				if code != 200 {
					t.Fatalf("overview %s: %d %s", url, code, raw)
				}
				l := object(raw)
				for _, it := range l["items"].([]any) {
					b := it.(map[string]any)
					for _, f := range []string{"name", "stream", "version", "koji_tag", "owner", "state_name", "scratch"} {
						if _, ok := b[f]; !ok {
							t.Errorf("overview item lacks %q", f)
						}
					}
					all = append(all, uint64(b["id"].(float64)))
					got++
				}
				if got >= limit || l["meta"].(map[string]any)["next"] == nil {
					break
				}
			}
		}
		slices.Sort(all)
		all = slices.Compact(all)
		slices.Reverse(all)
		return all[:min(limit, len(all))]
	}
	if got := overview([]int{0, 1, 2}, 10); !slices.Equal(got, []uint64{first}) {
		t.Errorf("overview --unfinished: %v, want [%d]", got, first)
	}
	pause(false)
	seen, b := watch(first)
	if seen[0] != "init" || (b["state_name"] != "ready" && b["state_name"] != "done") {
		t.Fatalf("watch of the queued build saw %v (%v)", seen, b["state_reason"])
	}
	b = untilReady(first)

	// 2. info: the fields rpkg prints.
	for _, f := range []string{"name", "stream", "version", "koji_tag", "owner", "state_name", "state_reason", "time_submitted", "time_completed", "scratch"} {
		if _, ok := b[f]; !ok {
			t.Errorf("info: build lacks %q", f)
		}
	}
	rpms := b["tasks"].(map[string]any)["rpms"].(map[string]any)
	if len(rpms) == 0 {
		t.Fatal("info: no tasks.rpms")
	}
	for pkg, task := range rpms {
		tk := task.(map[string]any)
		if tk["nvr"] == nil || tk["state"] != float64(1) {
			t.Errorf("info: %s: nvr %v state %v", pkg, tk["nvr"], tk["state"])
		}
	}
	nsvc := fmt.Sprintf("%s:%s:%s:%s", b["name"], b["stream"], b["version"], b["context"])

	// 3. The same commit again (Kerberos-style body, v1): 409 with MBS's
	// message, and no new build.
	code, raw = do(http.MethodPost, v1+"/module-builds/", map[string]any{"scmurl": scmurl(layout.Module.Commit), "branch": branch}, true)
	if msg := object(raw)["message"]; code != 409 || msg != "Module (state=5) already exists. Only a new build, resubmission of a failed build or build against new buildrequirements is allowed." {
		t.Errorf("identical resubmission: %d %v", code, msg)
	}

	// 4. A scratch build of that commit (v1): built under context _1, stays
	// done (watch stops there), scrmod koji tag.
	scratch := submit(v1, map[string]any{"scmurl": scmurl(layout.Module.Commit), "branch": branch, "scratch": true}, false)[0]
	_, s := watch(scratch)
	if s["state_name"] != "done" || s["scratch"] != true || s["context"] != b["context"].(string)+"_1" ||
		!strings.HasPrefix(fmt.Sprint(s["koji_tag"]), "scrmod-") {
		t.Errorf("scratch build: %v (%v) scratch %v context %v koji_tag %v", s["state_name"], s["state_reason"], s["scratch"], s["context"], s["koji_tag"])
	}

	// 5. A new commit, queued (paused) and cancelled by its owner: failed
	// at once, and it never starts.
	c2, err := layout.Module.CommitFiles("docs", map[string]string{"README": "two\n"})
	if err != nil {
		t.Fatal(err)
	}
	pause(true)
	queued := submit(v1, map[string]any{"scmurl": scmurl(c2), "branch": branch}, true)[0]
	if get(queued)["state_name"] != "init" {
		t.Fatal("not queued")
	}
	code, raw = do(http.MethodPatch, fmt.Sprintf("%s/module-builds/%d", v1, queued), map[string]any{"state": "failed"}, true)
	if c := object(raw); code != 200 || c["state_name"] != "failed" || c["state_reason"] != "cancelled by packager" {
		t.Errorf("cancel: %d %v %v", code, c["state_name"], c["state_reason"])
	}
	pause(false)

	// 6. Overrides: one for a module the modulemd does not name fails at
	// init with MBS's message; then the platform pinned to el8, reusing
	// the components of the first build (reuse_components_from).
	bad := submit(v2, map[string]any{"scmurl": scmurl(c2), "branch": branch, "buildrequire_overrides": map[string][]string{"nope": {"1"}}}, true)[0]
	if _, f := watch(bad); f["state_name"] != "failed" || !strings.Contains(fmt.Sprint(f["state_reason"]), "The buildrequire overrides for the following modules aren't applicable: nope") {
		t.Errorf("bad override: %v %v", f["state_name"], f["state_reason"])
	}
	el8 := submit(v2, map[string]any{"scmurl": scmurl(c2), "branch": branch, "reuse_components_from": nsvc,
		"buildrequire_overrides": map[string][]string{"platform": {"el8"}}, "require_overrides": map[string][]string{"platform": {"el8"}}}, false)[0]
	if _, e := watch(el8); e["state_name"] != "ready" && e["state_name"] != "done" {
		t.Fatalf("el8 override: %v (%v)", e["state_name"], e["state_reason"])
	}
	e := untilReady(el8)
	brs, _ := e["buildrequires"].(map[string]any)
	platform, _ := brs["platform"].(map[string]any)
	if e["state_name"] != "ready" || platform["stream"] != "el8" || !strings.Contains(fmt.Sprint(e["dist_tag"]), "+el8+") {
		t.Errorf("el8 override: %v (%v) platform %v dist %v", e["state_name"], e["state_reason"], platform, e["dist_tag"])
	}
	for _, c := range e["components"].([]any) {
		comp := c.(map[string]any)
		if comp["key"] != "module-build-macros" && comp["reused_from"] != float64(first) {
			t.Errorf("component %v reused from %v, want build %d", comp["key"], comp["reused_from"], first)
		}
	}

	// 7. overview of finished builds (done, ready, failed) with --limit 1,
	// 10 and 150 (per_page 100).
	finished := []uint64{el8, bad, queued, scratch, first}
	slices.Sort(finished)
	slices.Reverse(finished)
	for _, limit := range []int{1, 10, 150} {
		if got := overview([]int{3, 5, 4}, limit); !slices.Equal(got, finished[:min(limit, len(finished))]) {
			t.Errorf("overview --limit %d: %v, want %v", limit, got, finished[:min(limit, len(finished))])
		}
	}
	if got := overview([]int{0, 1, 2}, 10); len(got) != 0 {
		t.Errorf("overview --unfinished at the end: %v", got)
	}
}
