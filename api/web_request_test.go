package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rida-build/rida/state"
)

// TestWeb_RequestPage: /requests/{id} shows a request's key, kind, state,
// result, reasons, deliveries, cascade cause and builds, with links; the
// queued rows of /builds, build pages and delivery pages link to it.
func TestWeb_RequestPage(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	d := b.delivery("rpms/pkg-a", sha("a"), state.BuildRequest{Module: "foo", Stream: "main", Kind: state.RequestComponent, ModuleRepo: modRepo,
		Reasons:          []string{"rpms/pkg-a main changed"},
		ComponentCommits: []state.ComponentCommit{{Name: "pkg-a", Ref: "main", Commit: sha("a")}}})
	rq, err := b.store.StartNext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mb := b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", Version: 5, Context: "abcd0001", RequestID: rq.ID, ModuleRepo: modRepo, ModuleCommit: sha("9")},
		state.ModuleStateInit, state.ModuleStateReady)
	if _, err := b.store.FinishRequest(ctx, rq.Key, state.ResultFailed, "boom in "+b.dataDir+"/builds/1/logs/pkg-a.log"); err != nil {
		t.Fatal(err)
	}
	casc, err := b.store.Enqueue(ctx, state.BuildRequest{Module: "bar", Stream: "main", Kind: state.RequestCascade, CascadeFrom: mb.ID,
		Reasons: []string{fmt.Sprintf("foo:main build %d became ready", mb.ID)}})
	if err != nil {
		t.Fatal(err)
	}

	r := b.get(fmt.Sprintf("/requests/%d", rq.ID))
	expect(t, r, 200, "")
	page := string(r.body)
	for _, want := range []string{
		fmt.Sprintf("<title>Request %d: foo:main", rq.ID),
		`<dd id="request-kind">component</dd>`,
		`<span class="state state-failed" id="request-state">failed</span>`,
		"boom in builds/1/logs/pkg-a.log", // redacted: relative to the data dir
		"<div>rpms/pkg-a main changed</div>",
		fmt.Sprintf(`<a href="/deliveries/%d">delivery %d</a>`, d.ID, d.ID),
		fmt.Sprintf(`<a href="/builds/%d">foo:main:5:abcd0001</a>`, mb.ID),
		fmt.Sprintf(`<a href="/api/v1/requests/%d">JSON</a>`, rq.ID),
		"pkg-a main " + sha("a")[:12],
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/requests/%d lacks %q", rq.ID, want)
		}
	}
	if strings.Contains(page, b.dataDir) {
		t.Errorf("/requests/%d shows a server path", rq.ID)
	}

	r = b.get(fmt.Sprintf("/requests/%d", casc.Request.ID))
	expect(t, r, 200, "")
	page = string(r.body)
	for _, want := range []string{
		`<dd id="request-kind">cascade</dd>`,
		`<span class="state state-queued" id="request-state">queued</span>`,
		fmt.Sprintf(`<dd id="cascade-from"><a href="/builds/%d">foo:main build %d</a> became ready</dd>`, mb.ID, mb.ID),
		`id="no-builds">No module build yet: the request is queued.`,
		`<meta http-equiv="refresh" content="10">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/requests/%d lacks %q", casc.Request.ID, want)
		}
	}

	// Linked from /builds's queued rows, the build page and the delivery page.
	for path, want := range map[string]string{
		"/builds":                           fmt.Sprintf(`<a href="/requests/%d">%d</a>`, casc.Request.ID, casc.Request.ID),
		fmt.Sprintf("/builds/%d", mb.ID):    fmt.Sprintf(`<a href="/requests/%d">build request %d</a>`, rq.ID, rq.ID),
		fmt.Sprintf("/deliveries/%d", d.ID): fmt.Sprintf(`<a href="/requests/%d">%d</a>`, rq.ID, rq.ID),
	} {
		if r := b.get(path); r.status != 200 || !strings.Contains(string(r.body), want) {
			t.Errorf("%s (%d) lacks %q", path, r.status, want)
		}
	}
	expect(t, b.get("/requests/999"), 404, "")
	expect(t, b.get("/requests/x"), 400, "")
}
