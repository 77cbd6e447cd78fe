package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/rida-build/rida/koji/kojitest"
)

const kojiBaseTag = "module-el9-build"

// newKojiHub starts the hub double with the base module tag seeded.
func newKojiHub(t *testing.T, buildDuration time.Duration) *kojitest.Hub {
	t.Helper()
	hub := kojitest.New(t, kojitest.Options{BuildDuration: buildDuration, RepoDuration: 20 * time.Millisecond})
	hub.SeedTag(kojitest.TagSeed{Name: kojiBaseTag, Arches: "x86_64", Groups: map[string][]string{
		"build": {"bash", "rpm-build"}, "srpm-build": {"bash", "rpm-build", "git"},
	}})
	return hub
}

// kojiBackendYAML is the backend section of a configuration building in
// hub with password auth (RIDA_KOJI_PASSWORD=kojipass) and fast polls.
func kojiBackendYAML(hub *kojitest.Hub) string {
	return fmt.Sprintf(`backend:
  kind: koji
  koji:
    hub_url: %s
    auth: password
    user: kojiadmin
    password_env: RIDA_KOJI_PASSWORD
    base_module_tag: %s
    arches: [x86_64]
    poll_min: 10ms
    poll_max: 50ms
    web_url: %s/
    tag_permission: tag`, hub.URL, kojiBaseTag, kojiWebURL)
}

// kojiWebURL is the Koji web UI the tests' configuration names.
const kojiWebURL = "https://koji.example.org/koji"

func kojiSetup(t *testing.T, buildDuration time.Duration) (*kojitest.Hub, *examples.Layout, string, string) {
	t.Helper()
	hub := newKojiHub(t, buildDuration)
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
forges: [{kind: github, secret_env: RIDA_WEBHOOK_SECRET}]
repos: {modules: ["modules/*"], components: ["rpms/*"]}
%s
`, filepath.Join(dir, "data"), kojiBackendYAML(hub))
	cfgPath := filepath.Join(dir, "rida.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return hub, layout, cfgPath, filepath.Join(dir, "data")
}

// deliverModulePush sends the module repository's first push, signed, and
// returns the delivery id.
func deliverModulePush(t *testing.T, base, secret string, layout *examples.Layout) uint64 {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/" + layout.Module.Branch, "before": strings.Repeat("0", 40), "after": layout.Module.Commit,
		"repository": map[string]any{"full_name": "modules/" + examples.ModuleName, "clone_url": layout.Module.URL},
		"sender":     map[string]any{"login": "packager"}, "commits": []map[string]any{{"id": layout.Module.Commit, "message": "import"}},
	})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "koji-test-1")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ack struct {
		Delivery uint64 `json:"delivery"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ack); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delivery: %d %v", resp.StatusCode, err)
	}
	return ack.Delivery
}

// buildCalls counts the hub's build calls per source.
func buildCalls(hub *kojitest.Hub) map[string]int {
	out := map[string]int{}
	for _, c := range hub.FlatCalls() {
		if c.Method == "build" && c.Fault == 0 {
			out[fmt.Sprint(c.Args[0])]++
		}
	}
	return out
}

// TestServe_Koji_PushToReady goes from a signed webhook delivery to a
// finished module build through the Koji backend against the hub double.
func TestServe_Koji_PushToReady(t *testing.T) {
	const secret = "koji-secret"
	hub, layout, cfgPath, data := kojiSetup(t, 50*time.Millisecond)
	p := startServe(t, data, secret, "--config", cfgPath, "--", "RIDA_KOJI_PASSWORD=kojipass")
	d := &demo{base: p.base, client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}, timeout: 2 * time.Minute}
	b, err := d.follow(context.Background(), deliverModulePush(t, p.base, secret, layout))
	if err != nil {
		t.Fatalf("%v\n%s", err, d.out)
	}
	if b["state_name"] != "ready" {
		t.Fatalf("build ended %v: %v", b["state_name"], b["state_reason"])
	}
	calls := buildCalls(hub)
	if len(calls) != 1+len(layout.Components) {
		t.Errorf("build calls = %v, want one per component plus module-build-macros", calls)
	}
	var seq []string
	for _, c := range hub.FlatCalls() {
		switch c.Method {
		case "createTag", "setInheritanceData", "groupListAdd", "createBuildTarget", "build", "tagBuild", "repo.request":
			seq = append(seq, c.Method)
		}
	}
	joined := strings.Join(seq, " ")
	for _, want := range []string{"createTag createTag", "setInheritanceData", "groupListAdd", "createBuildTarget", "build", "tagBuild", "repo.request"} {
		if !strings.Contains(joined, want) {
			t.Errorf("call sequence lacks %q: %s", want, joined)
		}
	}
	if strings.Index(joined, "createBuildTarget") > strings.Index(joined, "build ") {
		t.Errorf("a build was submitted before the target existed: %s", joined)
	}
	tag := fmt.Sprint(b["koji_tag"])
	if tagged := hub.Tagged(tag); len(tagged) < len(layout.Components) {
		t.Errorf("module tag %s holds %v", tag, tagged)
	}
	for _, name := range []string{tag, tag + "-build"} {
		if ts, _ := hub.Tag(name); ts.Perm != "tag" {
			t.Errorf("%s: permission %q, want backend.koji.tag_permission's tag", name, ts.Perm)
		}
	}
	checkTaskIDs(t, hub, b, 1+len(layout.Components))
	// backend.koji.web_url: the JSON and the build page link each task
	// and the module tag on Koji's web UI.
	for c, v := range b["tasks"].(map[string]any)["rpms"].(map[string]any) {
		task := v.(map[string]any)
		if want := fmt.Sprintf("%s/taskinfo?taskID=%v", kojiWebURL, task["task_id"]); task["task_url"] != want {
			t.Errorf("tasks.rpms.%s.task_url %v, want %s", c, task["task_url"], want)
		}
	}
	tagURL := kojiWebURL + "/taginfo?tagID=" + tag
	if b["koji_tag_url"] != tagURL {
		t.Errorf("koji_tag_url %v, want %s", b["koji_tag_url"], tagURL)
	}
	resp, err := http.Get(fmt.Sprintf("%s/builds/%v", p.base, b["id"]))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `href="`+tagURL+`"`) || strings.Count(string(page), `class="koji-task" href="`+kojiWebURL+`/taskinfo?taskID=`) != 1+len(layout.Components) {
		t.Errorf("the build page does not link the tag and every task on %s", kojiWebURL)
	}
}

func TestKojiConfig_WebURL(t *testing.T) {
	valid := kojiConfig{HubURL: "https://koji.example.org/kojihub", BaseModuleTag: "b", Auth: "password", User: "u"}
	for _, u := range []string{"", "https://koji.example.org/koji", "http://127.0.0.1:8080/koji/"} {
		k := valid
		k.WebURL = u
		if err := k.validate(); err != nil {
			t.Errorf("web_url %q: %v", u, err)
		}
	}
	for _, u := range []string{"koji.example.org/koji", "ftp://koji.example.org/koji", "https://koji.example.org/koji?x=1", "https:///koji"} {
		k := valid
		k.WebURL = u
		if err := k.validate(); err == nil || !strings.Contains(err.Error(), "backend.koji.web_url") {
			t.Errorf("web_url %q: %v, want an error naming backend.koji.web_url", u, err)
		}
	}
	c := &config{}
	c.Backend.Kind, c.Backend.Koji.WebURL = "local", "https://koji.example.org/koji"
	if got := c.kojiWebURL(); got != "" {
		t.Errorf("with the local backend the API gets web_url %q", got)
	}
	c.Backend.Kind = "koji"
	if got := c.kojiWebURL(); got != "https://koji.example.org/koji" {
		t.Errorf("kojiWebURL %q", got)
	}
}

// checkTaskIDs checks that every component of build b (the verbose build
// JSON) shows the id of a distinct build task of the hub as its
// tasks.rpms.<c>.task_id.
func checkTaskIDs(t *testing.T, hub *kojitest.Hub, b map[string]any, want int) {
	t.Helper()
	tasks := map[float64]bool{}
	for _, id := range hub.TaskIDs("build") {
		tasks[float64(id)] = true
	}
	rpms, _ := b["tasks"].(map[string]any)["rpms"].(map[string]any)
	if len(rpms) != want {
		t.Errorf("tasks.rpms has %d components, want %d", len(rpms), want)
	}
	seen := map[float64]string{}
	for c, v := range rpms {
		id, ok := v.(map[string]any)["task_id"].(float64)
		switch {
		case !ok:
			t.Errorf("tasks.rpms.%s.task_id = %v, want a task id", c, v.(map[string]any)["task_id"])
		case !tasks[id]:
			t.Errorf("tasks.rpms.%s.task_id = %v is not a build task of the hub", c, id)
		case seen[id] != "":
			t.Errorf("tasks.rpms.%s and %s share task_id %v", c, seen[id], id)
		}
		seen[id] = c
	}
}

// TestServe_Koji_SIGKILLMidBuild kills rida while Koji tasks run and
// restarts it: the build finishes and no component is submitted twice.
func TestServe_Koji_SIGKILLMidBuild(t *testing.T) {
	const secret = "koji-secret"
	hub, layout, cfgPath, data := kojiSetup(t, 700*time.Millisecond)
	p := startServe(t, data, secret, "--config", cfgPath, "--", "RIDA_KOJI_PASSWORD=kojipass")
	delivery := deliverModulePush(t, p.base, secret, layout)
	deadline := time.Now().Add(time.Minute)
	for len(buildCalls(hub)) < 3 { // module-build-macros and batch 2 submitted
		if time.Now().After(deadline) {
			t.Fatalf("batch 2 was never submitted: %v", buildCalls(hub))
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()
	p2 := startServe(t, data, secret, "--config", cfgPath, "--", "RIDA_KOJI_PASSWORD=kojipass")
	d := &demo{base: p2.base, client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}, timeout: 2 * time.Minute}
	b, err := d.follow(context.Background(), delivery)
	if err != nil {
		t.Fatalf("%v\n%s", err, d.out)
	}
	if b["state_name"] != "ready" {
		t.Fatalf("build ended %v: %v", b["state_name"], b["state_reason"])
	}
	for src, n := range buildCalls(hub) {
		if n != 1 {
			t.Errorf("%s was submitted %d times", src, n)
		}
	}
	if got := len(buildCalls(hub)); got != 1+len(layout.Components) {
		t.Errorf("%d distinct submissions, want %d", got, 1+len(layout.Components))
	}
	// Components submitted before the kill keep their task ids.
	checkTaskIDs(t, hub, b, 1+len(layout.Components))
}

// TestServe_Koji_RepoTimeout: a hub whose repo requests never complete
// fails the build within backend.koji.repo_timeout, as an infrastructure
// error naming the build tag and the repo request.
func TestServe_Koji_RepoTimeout(t *testing.T) {
	const secret = "koji-secret"
	hub, layout, cfgPath, data := kojiSetup(t, 0)
	hub.SetRepoDuration(kojitest.Manual)
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("    repo_timeout: 500ms\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p := startServe(t, data, secret, "--config", cfgPath, "--", "RIDA_KOJI_PASSWORD=kojipass")
	d := &demo{base: p.base, client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}, timeout: 2 * time.Minute}
	b, err := d.follow(context.Background(), deliverModulePush(t, p.base, secret, layout))
	if err != nil {
		t.Fatalf("%v\n%s", err, d.out)
	}
	reason := fmt.Sprint(b["state_reason"])
	if b["state_name"] != "failed" || !strings.Contains(reason, "infrastructure error") ||
		!strings.Contains(reason, fmt.Sprint(b["koji_tag"])+"-build within 500ms (backend.koji.repo_timeout): repo request ") {
		t.Errorf("build ended %v: %s", b["state_name"], reason)
	}
}
