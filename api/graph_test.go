package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/modgraph"
	"github.com/rida-build/rida/state"
)

// graphStore indexes a module graph (name:stream → buildrequires
// "module:stream,stream" or "module:" for every stream, "module:-s" to
// exclude) with SetModuleStream.
func graphStore(t *testing.T, b *bundle, g map[string][]string) {
	t.Helper()
	for ns, brs := range g {
		name, stream, _ := strings.Cut(ns, ":")
		var reqs []modgraph.Requirement
		for _, br := range brs {
			mod, streams, _ := strings.Cut(br, ":")
			req := modgraph.Requirement{Name: mod}
			if streams != "" {
				req.Streams = strings.Split(streams, ",")
			}
			reqs = append(reqs, req)
		}
		if err := b.store.SetModuleStream(context.Background(), state.IndexedStream{Module: name, Stream: stream,
			ModuleRepo: "https://src.example.org/modules/" + name, Components: []state.IndexedComponent{{Name: "pkg-" + name, Ref: stream}},
			BuildRequires: reqs}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServer_ModuleDependents(t *testing.T) {
	b := setup(t)
	graphStore(t, b, map[string][]string{
		"lower:stable": nil,
		"lower:old":    nil,
		"mid:stable":   {"lower:stable"},
		"mid:old":      {"lower:old"},
		"app:main":     {"mid:"},                   // every stream of mid
		"tool:1":       {"lower:-old"},             // every stream but old
		"top:1":        {"app:main", "tool:1"},     // depth 2 through tool:1, not 3 through app
		"self:1":       {"self:1", "lower:stable"}, // bootstraps from itself
		"x:1":          {"y:1", "lower:stable"},    // a cycle x ↔ y
		"y:1":          {"x:1"},
		"deep:1":       {"top:1"},
	})
	type dep struct {
		Module, Stream string
		Direct         bool
		Depth          int
		Via            []string
	}
	str := func(ds []dep) string {
		var parts []string
		for _, d := range ds {
			parts = append(parts, fmt.Sprintf("%s:%s/%v/%d/%s", d.Module, d.Stream, d.Direct, d.Depth, strings.Join(d.Via, "+")))
		}
		return strings.Join(parts, " ")
	}
	direct := "mid:stable/true/1/lower:stable self:1/true/1/lower:stable tool:1/true/1/lower:stable x:1/true/1/lower:stable"
	cases := []struct {
		name, path    string
		items, brs    string
		truncated     bool
		status        int
		wantErrSubstr string
	}{
		{name: "direct", path: "/api/v1/modules/lower/stable/dependents", items: direct, brs: `[]`},
		{name: "transitive", path: "/api/v1/modules/lower/stable/dependents?transitive=true", brs: `[]`,
			items: direct + " app:main/false/2/mid:stable top:1/false/2/tool:1 y:1/false/2/x:1 deep:1/false/3/top:1"},
		{name: "depth bound", path: "/api/v1/modules/lower/stable/dependents?transitive=true&max_depth=2", brs: `[]`, truncated: true,
			items: direct + " app:main/false/2/mid:stable top:1/false/2/tool:1 y:1/false/2/x:1"},
		{name: "not transitive is never truncated", path: "/api/v1/modules/lower/stable/dependents?transitive=false", items: direct, brs: `[]`},
		{name: "exclusion", path: "/api/v1/modules/lower/old/dependents", items: "mid:old/true/1/lower:old", brs: `[]`},
		{name: "every stream", path: "/api/v1/modules/mid/old/dependents?transitive=1", items: "app:main/true/1/mid:old top:1/false/2/app:main deep:1/false/3/top:1",
			brs: `[{"name":"lower","streams":["old"]}]`},
		{name: "self is not listed", path: "/api/v1/modules/self/1/dependents?transitive=true", items: "",
			brs: `[{"name":"self","streams":["1"]},{"name":"lower","streams":["stable"]}]`},
		{name: "cycle", path: "/api/v1/modules/x/1/dependents?transitive=true", items: "y:1/true/1/x:1",
			brs: `[{"name":"y","streams":["1"]},{"name":"lower","streams":["stable"]}]`},
		{name: "buildrequires every stream", path: "/api/v1/modules/app/main/dependents", items: "top:1/true/1/app:main", brs: `[{"name":"mid","streams":[]}]`},
		{name: "unknown stream", path: "/api/v1/modules/nope/1/dependents?transitive=true", items: "", brs: `[]`},
		{name: "bad parameter", path: "/api/v1/modules/lower/stable/dependents?depth=2", status: 400, wantErrSubstr: `An invalid parameter was submitted: "depth"`},
		{name: "bad transitive", path: "/api/v1/modules/lower/stable/dependents?transitive=maybe", status: 400, wantErrSubstr: `transitive must be true or false`},
		{name: "bad max_depth", path: "/api/v1/modules/lower/stable/dependents?transitive=true&max_depth=0", status: 400, wantErrSubstr: `max_depth must be an integer from 1 to 100`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := b.get(tc.path)
			if tc.status != 0 {
				expect(t, r, tc.status, tc.wantErrSubstr)
				return
			}
			expect(t, r, 200, "")
			var out struct {
				Module, Stream string
				BuildRequires  json.RawMessage `json:"buildrequires"`
				Items          []dep
				Truncated      bool
			}
			if err := json.Unmarshal(r.body, &out); err != nil {
				t.Fatal(err)
			}
			if out.Items == nil {
				t.Errorf("items is null: %s", r.body)
			}
			if got := str(out.Items); got != tc.items {
				t.Errorf("items\n got  %s\n want %s", got, tc.items)
			}
			var brs bytes.Buffer
			if err := json.Compact(&brs, out.BuildRequires); err != nil || brs.String() != tc.brs {
				t.Errorf("buildrequires %s, want %s", brs.String(), tc.brs)
			}
			if out.Truncated != tc.truncated {
				t.Errorf("truncated %v", out.Truncated)
			}
			if path := strings.Split(tc.path, "/"); out.Module != path[4] || out.Stream != path[5] {
				t.Errorf("module %s stream %s", out.Module, out.Stream)
			}
		})
	}
}

// TestWeb_BuildGraph: the build page shows what a build was built against,
// the build whose becoming ready queued it, and what its own becoming
// ready queued.
func TestWeb_BuildGraph(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	lower := b.putBuild(state.ModuleBuild{Name: "lower", Stream: "stable", Version: 11, Context: "aaaa0001", Platform: "el9"},
		state.ModuleStateInit, state.ModuleStateDone, state.ModuleStateReady)
	// lower's becoming ready queued upper (which got built) and other
	// (still pending).
	up, err := b.store.Enqueue(ctx, state.BuildRequest{Module: "upper", Stream: "stable", Kind: state.RequestCascade, CascadeFrom: lower.ID,
		Reasons: []string{fmt.Sprintf("lower:stable build %d became ready", lower.ID)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.StartNext(ctx); err != nil {
		t.Fatal(err)
	}
	other, err := b.store.Enqueue(ctx, state.BuildRequest{Module: "other", Stream: "1", Kind: state.RequestCascade, CascadeFrom: lower.ID})
	if err != nil {
		t.Fatal(err)
	}
	upper := b.putBuild(state.ModuleBuild{Name: "upper", Stream: "stable", Version: 12, Context: "bbbb0001", RequestID: up.Request.ID, Platform: "el9",
		BuildRequires: []state.BuiltAgainst{
			{Name: "lower", Stream: "stable", Version: 11, Context: "aaaa0001", BuildID: lower.ID, Direct: true},
			{Name: "runtime", Stream: "2", Version: 3, Context: "cccc0001", BuildID: 77},
		}}, state.ModuleStateInit, state.ModuleStateBuild)
	lower.Cascade = &state.CascadeRecord{Requests: []uint64{up.Request.ID, other.Request.ID}, Note: "deep:1 left out: deeper than build.cascade_depth 1"}
	if _, err := b.store.PutModuleBuild(ctx, *lower); err != nil {
		t.Fatal(err)
	}
	plain := b.putBuild(state.ModuleBuild{Name: "plain", Stream: "main", Version: 1, Context: "dddd0001"}, state.ModuleStateWait)

	cases := []struct {
		id      uint64
		want    []string
		notWant []string
	}{
		{upper.ID, []string{
			"Built against", `<a href="/builds/1">lower:stable:11:aaaa0001</a></span> (build 1)`,
			`<a href="/builds/77">runtime:2:3:cccc0001</a></span> (build 77) <span class="muted">(through another module's requires)`,
			"Queued because", `<dd id="cascade-from"><a href="/builds/1">lower:stable build 1</a> became ready</dd>`,
			"Platform", "el9",
		}, []string{`id="cascade"`}},
		{lower.ID, []string{
			`<dd id="cascade">`, fmt.Sprintf(`<a href="/builds/%d">upper:stable build %d</a> (request %d)`, upper.ID, upper.ID, up.Request.ID),
			fmt.Sprintf(`<a href="/requests/%d">request %d</a> other:1, pending`, other.Request.ID, other.Request.ID),
			"deep:1 left out: deeper than build.cascade_depth 1",
		}, []string{"Built against", "Queued because"}},
		{plain.ID, nil, []string{"Built against", "Queued because", `id="cascade"`, "Platform"}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.id), func(t *testing.T) {
			r := b.get(fmt.Sprintf("/builds/%d", tc.id))
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(r.body), w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(string(r.body), w) {
					t.Errorf("page has %q", w)
				}
			}
			if t.Failed() {
				t.Logf("page:\n%s", r.body)
			}
		})
	}
}

// TestServer_ModuleDependentsDefaultDepth: a transitive walk stops at depth
// 10 unless max_depth says otherwise, and says so.
func TestServer_ModuleDependentsDefaultDepth(t *testing.T) {
	b := setup(t)
	g := map[string][]string{"c0:1": nil}
	for i := 1; i <= 12; i++ {
		g[fmt.Sprintf("c%d:1", i)] = []string{fmt.Sprintf("c%d:1", i-1)}
	}
	graphStore(t, b, g)
	for _, tc := range []struct {
		query     string
		n, depth  int
		truncated bool
	}{{"transitive=true", 10, 10, true}, {"transitive=true&max_depth=12", 12, 12, false}, {"transitive=true&max_depth=11", 11, 11, true}} {
		var out struct {
			Items     []struct{ Depth int }
			Truncated bool
			MaxDepth  int `json:"max_depth"`
		}
		r := b.get("/api/v1/modules/c0/1/dependents?" + tc.query)
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Items) != tc.n || out.Items[len(out.Items)-1].Depth != tc.depth || out.Truncated != tc.truncated || out.MaxDepth != tc.depth {
			t.Errorf("%s: %d items, last depth %d, truncated %v, max_depth %d", tc.query, len(out.Items), out.Items[len(out.Items)-1].Depth, out.Truncated, out.MaxDepth)
		}
	}
}

// TestServer_ModuleDependentsCount: the walk lists at most
// Options.MaxDependents streams (1000; 3 here) and says it left some out.
func TestServer_ModuleDependentsCount(t *testing.T) {
	b := setup(t, setupOpts{mutate: func(o *api.Options) { o.MaxDependents = 3 }})
	graphStore(t, b, map[string][]string{"root:1": nil, "a:1": {"root:1"}, "b:1": {"root:1"}, "c:1": {"a:1"}, "d:1": {"b:1"}})
	var out struct {
		Items     []struct{ Module string }
		Truncated bool
	}
	if err := json.Unmarshal(b.get("/api/v1/modules/root/1/dependents?transitive=true").body, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 3 || out.Items[2].Module != "c" || !out.Truncated {
		t.Errorf("items %v truncated %v", out.Items, out.Truncated)
	}
}
