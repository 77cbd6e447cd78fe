package webhook

import (
	"slices"
	"strings"
	"testing"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
)

func TestPlanner_IndexModuleRepo(t *testing.T) {
	t.Parallel()
	b := setupPlanner(t, func(o *PlannerOptions) { o.TrackedBranches = []string{"main", "f*", "broken", "empty"} })
	mod := b.repo("modules/tools", "main")
	mod.Commit("main", map[string]string{"tools.yaml": modulemdYAML("main", "make", "cmake@v3")})
	mod.Git("checkout", "-q", "-b", "f40")
	mod.Commit("f40", map[string]string{"tools.yaml": modulemdYAML("f40", "make", "ninja")})
	mod.Git("checkout", "-q", "-b", "broken")
	mod.Commit("broken", map[string]string{"tools.yaml": "document: modulemd\nversion: 1\n"})
	mod.Git("checkout", "-q", "-b", "empty")
	mod.Commit("no modulemd", map[string]string{"-tools.yaml": ""})
	mod.Git("checkout", "-q", "-b", "untracked")
	mod.Commit("untracked", map[string]string{"tools.yaml": modulemdYAML("u", "make")})
	// A stale entry for a branch that lost its modulemd must go.
	if err := b.store.SetModuleComponents(b.ctx, "tools", "empty", mod.URL(), []state.IndexedComponent{{Name: "old", Ref: "empty"}}); err != nil {
		t.Fatal(err)
	}

	n, err := b.planner.IndexModuleRepo(b.ctx, mod.URL(), "")
	if n != 2 {
		t.Errorf("streams = %d, want 2 (main, f40)", n)
	}
	if err == nil || !strings.Contains(err.Error(), "branch broken") || !strings.Contains(err.Error(), "1 of 4 branches") {
		t.Errorf("err = %v, want one naming branch broken", err)
	}
	for stream, want := range map[string][]state.IndexedComponent{
		"main":      {{Name: "cmake", Ref: "v3"}, {Name: "make", Ref: "main"}},
		"f40":       {{Name: "make", Ref: "f40"}, {Name: "ninja", Ref: "f40"}},
		"broken":    nil,
		"empty":     nil,
		"untracked": nil,
	} {
		comps, repo, err := b.store.ModuleComponents(b.ctx, "tools", stream)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(comps, want) || (want != nil && repo != mod.URL()) {
			t.Errorf("tools:%s = %+v from %q, want %+v from %s", stream, comps, repo, want, mod.URL())
		}
	}
	got, err := b.store.ModulesForComponent(b.ctx, "make", "f40")
	if err != nil || len(got) != 1 || got[0] != (state.ModuleStream{Module: "tools", Stream: "f40", ModuleRepo: mod.URL()}) {
		t.Errorf("ModulesForComponent(make, f40) = %+v, %v", got, err)
	}
}

func TestIndexedComponents(t *testing.T) {
	t.Parallel()
	// Packager v3: one stream per configuration, components united; name
	// overrides the key; the document's stream is the default ref.
	streams := []*modulemd.Stream{
		{Stream: "", Components: modulemd.Components{RPMs: map[string]*modulemd.Component{
			"a": {Key: "a"}, "b": {Key: "b", Name: "b-real", Ref: "rawhide"}, "nil": nil,
		}}},
		{Stream: "", Components: modulemd.Components{RPMs: map[string]*modulemd.Component{"a": {Key: "a"}}}},
	}
	want := []state.IndexedComponent{{Name: "a", Ref: "br"}, {Name: "b-real", Ref: "rawhide"}}
	if got := indexedComponents(streams, "br", ""); !slices.Equal(got, want) {
		t.Errorf("indexedComponents = %+v, want %+v", got, want)
	}
	streams[0].Stream, streams[1].Stream = "doc", "doc"
	if got := indexedComponents(streams, "br", ""); got[0].Ref != "doc" {
		t.Errorf("document stream not used as default ref: %+v", got)
	}
	if got := indexedComponents(streams, "br", "main"); got[0].Ref != "main" || got[1].Ref != "rawhide" {
		t.Errorf("DefaultRef not applied (or overrode an explicit ref): %+v", got)
	}
}
