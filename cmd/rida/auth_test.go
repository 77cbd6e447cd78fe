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

// authServe is a 'rida serve' for the authentication tests: example
// repositories whose tools component runs for a minute (so a build can be
// cancelled while it runs), configured with extraAPI (YAML keys under api:).
type authServe struct {
	t      *testing.T
	p      *serverProc
	scmurl string
	branch string
	// log is the path of rida serve's log.
	log string
}

func startAuthServe(t *testing.T, extraAPI string, env ...string) *authServe {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	layout, err := examples.CreateRepos(filepath.Join(dir, "git"), examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tools := layout.Components["rida-demo-tools"]
	if _, err := tools.CommitFiles("slow", map[string]string{"rida-demo-tools.spec": "Name: rida-demo-tools\nVersion: 1\nRelease: 1%{?dist}\nSummary: slow\nLicense: MIT\nBuildArch: noarch\n%description\nslow\n%build\nsleep 60\n%files\n"}); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("api:\n  allowed_scm: [%q]\n%s\nbackend: {kind: local, local: {sandbox: \"off\"}}\n", "file://"+filepath.Join(dir, "git")+"/", extraAPI)
	cfgPath := filepath.Join(dir, "rida.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, filepath.Join(dir, "data"), "unused", append([]string{"--config", cfgPath, "--"}, env...)...)
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
			t.Logf("serve.log:\n%s", log)
		}
	})
	return &authServe{t: t, p: p, scmurl: layout.Module.URL + "?#" + layout.Module.Commit, branch: layout.Module.Branch, log: filepath.Join(dir, "serve.log")}
}

func (a *authServe) url(path string) string { return a.p.base + "/module-build-service/1" + path }

func (a *authServe) submitBody() string {
	return fmt.Sprintf(`{"scmurl": %q, "branch": %q}`, a.scmurl, a.branch)
}

// call makes a request with the given Authorization header (none if empty)
// and returns the status, the WWW-Authenticate values and the JSON body.
func (a *authServe) call(method, path, authz, body string) (int, []string, map[string]any) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url(path), strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Values("WWW-Authenticate"), decodeObject(a.t, resp.Body)
}

func decodeObject(t *testing.T, r io.Reader) map[string]any {
	t.Helper()
	raw, _ := io.ReadAll(r)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%v\n%s", err, raw)
		}
	}
	return out
}

// buildOf returns the id of the build a submit answer stands for, waiting
// for the runner to create it when the answer was the queued request, and
// then waits until the build runs.
func (a *authServe) running(answer map[string]any) float64 {
	a.t.Helper()
	id, _ := answer["id"].(float64)
	deadline := time.Now().Add(time.Minute)
	for id == 0 && time.Now().Before(deadline) {
		_, _, l := a.call(http.MethodGet, "/module-builds/?name=rida-demo&order_desc_by=id", "", "")
		if items, _ := l["items"].([]any); len(items) > 0 {
			id = items[0].(map[string]any)["id"].(float64)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if id == 0 {
		a.t.Fatalf("no build appeared after the submit %v", answer)
	}
	for time.Now().Before(deadline) {
		_, _, b := a.call(http.MethodGet, fmt.Sprintf("/module-builds/%v", id), "", "")
		if b["state_name"] == "build" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return id
}

func (a *authServe) build(id float64) map[string]any {
	a.t.Helper()
	_, _, b := a.call(http.MethodGet, fmt.Sprintf("/module-builds/%v", id), "", "")
	return b
}

// wantError checks an error answer's status and message.
func wantError(t *testing.T, what string, code int, body map[string]any, status int, msg string) {
	t.Helper()
	if code != status || !strings.Contains(fmt.Sprint(body["message"]), msg) {
		t.Errorf("%s: %d %v; want %d with %q", what, code, body["message"], status, msg)
	}
}

// waitState waits until build id is in state name and returns it.
func (a *authServe) waitState(id float64, name string) map[string]any {
	a.t.Helper()
	var b map[string]any
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if b = a.build(id); b["state_name"] == name {
			return b
		}
	}
	a.t.Fatalf("build %v is %v, not %s", id, b["state_name"], name)
	return nil
}
