package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/state"
)

const kojiWeb = "https://koji.example.org/koji"

func kojiLinksSetup(t *testing.T, web string) *bundle {
	t.Helper()
	b := setup(t, setupOpts{mutate: func(o *api.Options) { o.KojiWebURL = web }})
	t0 := b.clock.Now()
	// Build 1 got to Koji (state build); build 2 did not (init, wait).
	b.putBuild(state.ModuleBuild{Name: "kojimod", Stream: "main", Version: 20260301, Context: "dddd", Components: []state.ComponentBuild{
		{Key: "module-build-macros", Package: "module-build-macros", Batch: 1, State: "complete", NVR: "module-build-macros-1-1", TaskID: 4711, Started: t0, Finished: t0},
		{Key: "pkg-a", Package: "pkg-a", Batch: 2, State: "building", TaskID: 4712, Started: t0},
		{Key: "pkg-b", Package: "pkg-b", Batch: 2, State: "queued"},
	}}, state.ModuleStateInit, state.ModuleStateWait, state.ModuleStateBuild)
	b.putBuild(state.ModuleBuild{Name: "waiting", Stream: "main", Version: 20260301, Context: "eeee", Components: []state.ComponentBuild{
		{Key: "pkg-c", Package: "pkg-c", Batch: 2, State: "queued"},
	}}, state.ModuleStateInit, state.ModuleStateWait)
	return b
}

// With backend.koji.web_url, the module build and component build JSON
// carry Koji web links: each task's taskinfo page (null without a task)
// and, once the build got to Koji, its module tag's taginfo page.
func TestServer_KojiWebLinksInJSON(t *testing.T) {
	b := kojiLinksSetup(t, kojiWeb+"/") // a trailing slash is dropped
	tagURL := kojiWeb + "/taginfo?tagID=module-kojimod-main-20260301-dddd"
	for _, path := range []string{"/module-build-service/1/module-builds/1", "/module-build-service/2/module-builds/1?verbose=true",
		"/module-build-service/2/module-builds/?name=kojimod"} {
		r := b.get(path)
		expect(t, r, http.StatusOK, "")
		m := r.json(t)
		if items, ok := m["items"].([]any); ok {
			m = items[0].(map[string]any)
		}
		rpms := m["tasks"].(map[string]any)["rpms"].(map[string]any)
		for pkg, want := range map[string]any{
			"module-build-macros": kojiWeb + "/taskinfo?taskID=4711", "pkg-a": kojiWeb + "/taskinfo?taskID=4712", "pkg-b": nil,
		} {
			if got := rpms[pkg].(map[string]any)["task_url"]; got != want {
				t.Errorf("%s: tasks.rpms.%s.task_url %v, want %v", path, pkg, got, want)
			}
		}
		if got := m["koji_tag_url"]; got != tagURL {
			t.Errorf("%s: koji_tag_url %v, want %s", path, got, tagURL)
		}
	}
	r := b.get("/module-build-service/2/module-builds/2")
	if got, ok := r.json(t)["koji_tag_url"]; !ok || got != nil {
		t.Errorf("a build that did not get to Koji: koji_tag_url %v (present %v), want null", got, ok)
	}
	for path, want := range map[string]any{
		"/module-build-service/1/component-builds/10002":              kojiWeb + "/taskinfo?taskID=4712",
		"/module-build-service/2/component-builds/10002?verbose=true": kojiWeb + "/taskinfo?taskID=4712",
		"/module-build-service/1/component-builds/10003":              nil,
	} {
		r := b.get(path)
		expect(t, r, http.StatusOK, "")
		if got, ok := r.json(t)["task_url"]; !ok || got != want {
			t.Errorf("%s: task_url %v (present %v), want %v", path, got, ok, want)
		}
	}
	r = b.get("/module-build-service/2/component-builds/?module_build=1")
	items := r.json(t)["items"].([]any)
	if got := items[1].(map[string]any)["task_url"]; got != kojiWeb+"/taskinfo?taskID=4712" {
		t.Errorf("component list: task_url %v", got)
	}
}

// Without web_url (the local backend, or Koji without it) nothing changes:
// no task_url or koji_tag_url key at all, no links on the page.
func TestServer_NoKojiWebLinksWithoutWebURL(t *testing.T) {
	b := kojiLinksSetup(t, "")
	m := b.get("/module-build-service/2/module-builds/1?verbose=true").json(t)
	if _, ok := m["koji_tag_url"]; ok {
		t.Error("koji_tag_url without web_url")
	}
	if _, ok := m["tasks"].(map[string]any)["rpms"].(map[string]any)["pkg-a"].(map[string]any)["task_url"]; ok {
		t.Error("tasks.rpms.pkg-a.task_url without web_url")
	}
	if _, ok := b.get("/module-build-service/1/component-builds/10002").json(t)["task_url"]; ok {
		t.Error("component task_url without web_url")
	}
	page := string(b.get("/builds/1").body)
	if strings.Contains(page, "taskinfo") || strings.Contains(page, "taginfo") {
		t.Error("the build page links Koji without web_url")
	}
}

// The build page links each component's task and the module's tag.
func TestWeb_BuildPageLinksKoji(t *testing.T) {
	b := kojiLinksSetup(t, kojiWeb)
	r := b.get("/builds/1")
	expect(t, r, http.StatusOK, "")
	for _, want := range []string{
		`<a id="koji-tag" class="mono" href="` + kojiWeb + `/taginfo?tagID=module-kojimod-main-20260301-dddd">module-kojimod-main-20260301-dddd</a>`,
		`<a class="koji-task" href="` + kojiWeb + `/taskinfo?taskID=4711">task 4711</a>`,
		`<a class="koji-task" href="` + kojiWeb + `/taskinfo?taskID=4712">task 4712</a>`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("build page lacks %s", want)
		}
	}
	if n := strings.Count(string(r.body), `class="koji-task"`); n != 2 {
		t.Errorf("%d task links, want 2 (pkg-b has no task)", n)
	}
	if r := b.get("/builds/2"); strings.Contains(string(r.body), `id="koji-tag"`) {
		t.Error("a build that did not get to Koji links a tag")
	}
}
