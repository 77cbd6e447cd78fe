package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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
