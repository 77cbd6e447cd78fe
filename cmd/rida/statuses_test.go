package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/forge"
	"github.com/rida-build/rida/forge/forgetest"
)

// statusesSetup writes a configuration whose github forge posts statuses to
// a GitHub Enterprise double.
func statusesSetup(t *testing.T) (*forgetest.Server, *examples.Layout, string, string, string) {
	t.Helper()
	srv := forgetest.NewServer(t, forge.KindGHE)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	layout, err := examples.CreateRepos(filepath.Join(dir, "git"), examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
public_url: http://rida.example
forges: [{kind: github, secret_env: RIDA_WEBHOOK_SECRET, api_url: %q, token_env: RIDA_GITHUB_TOKEN}]
repos: {modules: ["modules/*"], components: ["rpms/*"]}
statuses: {rate_per_forge: 50}
backend: {kind: local, local: {parallel: 2, sandbox: "off"}}
`, filepath.Join(dir, "data"), srv.URL())
	cfgPath := filepath.Join(dir, "rida.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, layout, cfgPath, filepath.Join(dir, "data"), srv.Token()
}

func waitStatus(t *testing.T, srv *forgetest.Server, repo, sha, state string, timeout time.Duration) forgetest.Received {
	t.Helper()
	key := forgetest.Key{Repo: repo, SHA: sha, Context: "rida/rida-demo:1.0"}
	deadline := time.Now().Add(timeout)
	for {
		if got, ok := srv.Statuses()[key]; ok && got.State == state {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s status on %s@%.12s within %s; have %+v", state, repo, sha, timeout, srv.Statuses()[key])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServe_Statuses_ModuleAndComponentCommit: from signed deliveries to the
// final status on the module commit and on the component commit.
func TestServe_Statuses_ModuleAndComponentCommit(t *testing.T) {
	const secret = "status-secret"
	srv, layout, cfgPath, data, token := statusesSetup(t)
	p := startServe(t, data, secret, "--config", cfgPath, "--", "RIDA_GITHUB_TOKEN="+token)
	d := &demo{base: p.base, secret: secret, client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}, timeout: 2 * time.Minute}
	zero := strings.Repeat("0", 40)
	if _, err := d.push(context.Background(), "modules/rida-demo", layout.Module, zero, layout.Module.Commit, "import"); err != nil {
		t.Fatalf("%v\n%s", err, d.out)
	}
	got := waitStatus(t, srv, "modules/rida-demo", layout.Module.Commit, "success", 30*time.Second)
	if !strings.HasPrefix(got.TargetURL, "http://rida.example/builds/") || !strings.Contains(got.Description, "rida-demo:1.0") {
		t.Errorf("module commit status: %+v", got)
	}
	// The history shows pending before success on the module commit.
	var states []string
	for _, r := range srv.History() {
		if r.SHA == layout.Module.Commit {
			states = append(states, r.State)
		}
	}
	if len(states) < 2 || states[0] != "pending" || states[len(states)-1] != "success" {
		t.Errorf("module commit status history: %v", states)
	}

	tools := layout.Components["rida-demo-tools"]
	after, err := tools.CommitFiles("change", map[string]string{"NOTES": "x\n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.push(context.Background(), "rpms/rida-demo-tools", tools, tools.Commit, after, "change"); err != nil {
		t.Fatalf("%v\n%s", err, d.out)
	}
	waitStatus(t, srv, "rpms/rida-demo-tools", after, "success", 30*time.Second)
}

// TestServe_Statuses_ForgeDownAndSIGKILL: the forge is down while a build
// finishes, rida is killed with SIGKILL, the forge comes back, rida
// restarts: the final status still arrives.
func TestServe_Statuses_ForgeDownAndSIGKILL(t *testing.T) {
	const secret = "status-secret"
	srv, layout, cfgPath, data, token := statusesSetup(t)
	srv.SetDown(true)
	p := startServe(t, data, secret, "--config", cfgPath, "--", "RIDA_GITHUB_TOKEN="+token)
	d := &demo{base: p.base, secret: secret, client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}, timeout: 2 * time.Minute}
	b, err := d.push(context.Background(), "modules/rida-demo", layout.Module, strings.Repeat("0", 40), layout.Module.Commit, "import")
	if err != nil || b["state_name"] != "ready" {
		t.Fatalf("build: %v %v\n%s", b["state_name"], err, d.out)
	}
	p.kill()
	if n := len(srv.Statuses()); n != 0 {
		t.Fatalf("the forge was down but has %d statuses", n)
	}
	srv.SetDown(false)
	startServe(t, data, secret, "--config", cfgPath, "--", "RIDA_GITHUB_TOKEN="+token)
	waitStatus(t, srv, "modules/rida-demo", layout.Module.Commit, "success", 90*time.Second)
}

// TestServe_Statuses_InvalidModulemdFailsOnCommit: a pushed modulemd that
// does not validate becomes a failed build whose reason names the field,
// and that reason reaches the commit as a failure status.
func TestServe_Statuses_InvalidModulemdFailsOnCommit(t *testing.T) {
	const secret = "status-secret"
	srv, layout, cfgPath, data, token := statusesSetup(t)
	bad := strings.Replace(string(examples.ModuleYAML()), "buildorder: 30", "buildorder: 30\n        buildafter: [rida-demo-lib]", 1)
	after, err := layout.Module.CommitFiles("mix buildorder and buildafter", map[string]string{examples.ModuleFile: bad})
	if err != nil {
		t.Fatal(err)
	}
	p := startServe(t, data, secret, "--config", cfgPath, "--", "RIDA_GITHUB_TOKEN="+token)
	d := &demo{base: p.base, secret: secret, client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}, timeout: time.Minute}
	b, err := d.push(context.Background(), "modules/rida-demo", layout.Module, layout.Module.Commit, after, "break it")
	if err != nil {
		t.Fatalf("%v\n%s", err, d.out)
	}
	if b["state_name"] != "failed" || !strings.Contains(fmt.Sprint(b["state_reason"]), "components.rpms.rida-demo-tools") {
		t.Fatalf("build: %v %v", b["state_name"], b["state_reason"])
	}
	got := waitStatus(t, srv, "modules/rida-demo", after, "failure", 30*time.Second)
	if !strings.Contains(got.Description, "rida-demo-tools") {
		t.Errorf("failure status does not say why: %q", got.Description)
	}
}

// TestServe_Statuses_RedeliveryReReports: a forge lost the final status of
// a built push; redelivering the push (a new delivery id, the same
// content, as Gitea and GitLab redeliver) posts it again, builds nothing,
// and says so in the disposition. Each state change is posted once.
func TestServe_Statuses_RedeliveryReReports(t *testing.T) {
	const secret = "status-secret"
	srv, layout, cfgPath, data, token := statusesSetup(t)
	p := startServe(t, data, secret, "--config", cfgPath, "--", "RIDA_GITHUB_TOKEN="+token)
	d := &demo{base: p.base, secret: secret, client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}, timeout: 2 * time.Minute}
	zero := strings.Repeat("0", 40)
	if _, err := d.push(context.Background(), "modules/rida-demo", layout.Module, zero, layout.Module.Commit, "import"); err != nil {
		t.Fatalf("%v\n%s", err, d.out)
	}
	waitStatus(t, srv, "modules/rida-demo", layout.Module.Commit, "success", 30*time.Second)
	posts := func() (all []string, success int) {
		for _, r := range srv.History() {
			if r.SHA == layout.Module.Commit {
				all = append(all, r.State+" "+r.Description)
				if r.State == "success" {
					success++
				}
			}
		}
		return all, success
	}
	first, n := posts()
	if n != 1 {
		t.Fatalf("success posts before the redelivery: %d", n)
	}
	for i := 1; i < len(first); i++ {
		if first[i] == first[i-1] {
			t.Errorf("the same status was posted twice in a row: %q (history %q)", first[i], first)
		}
	}
	srv.Forget()
	id, err := d.deliverID(context.Background(), "modules/rida-demo", layout.Module, zero, layout.Module.Commit, "import")
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, srv, "modules/rida-demo", layout.Module.Commit, "success", 30*time.Second)
	if _, n := posts(); n != 2 {
		t.Errorf("success posts after the redelivery: %d, want 2", n)
	}
	var dv struct {
		Delivery struct {
			Disposition struct {
				Reason   string `json:"reason"`
				Requests []any  `json:"requests"`
			} `json:"disposition"`
		} `json:"delivery"`
	}
	if err := d.get(context.Background(), fmt.Sprintf("/api/v1/deliveries/%d", id), &dv); err != nil {
		t.Fatal(err)
	}
	if disp := dv.Delivery.Disposition; len(disp.Requests) != 0 || !strings.Contains(disp.Reason, "re-reported: build 1 ready") {
		t.Errorf("disposition %+v", disp)
	}
}
