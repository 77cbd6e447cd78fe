package webhook

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rida-build/rida/modgraph"
	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/scm"
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
		_, repo, err := b.store.ModuleComponents(b.ctx, "tools", stream)
		if err != nil {
			t.Fatal(err)
		}
		if comps := b.components("tools", stream); !slices.Equal(comps, want) || (want != nil && repo != mod.URL()) {
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
	// overrides the key; the document's stream is the default ref; a
	// component's own repository wins over the base.
	streams := []*modulemd.Stream{
		{Stream: "", Components: modulemd.Components{RPMs: map[string]*modulemd.Component{
			"a": {Key: "a"}, "b": {Key: "b", Name: "b-real", Ref: "rawhide"}, "nil": nil,
			"c": {Key: "c", Repository: "https://other.example/tests/c.git"},
		}}},
		{Stream: "", Components: modulemd.Components{RPMs: map[string]*modulemd.Component{"a": {Key: "a"}}}},
	}
	const base = "https://src.example/rpms"
	want := []componentRef{
		{Name: "a", Repository: base + "/a", Ref: "br"},
		{Name: "b-real", Repository: base + "/b-real", Ref: "rawhide"},
		{Name: "c", Repository: "https://other.example/tests/c.git", Ref: "br"},
	}
	if got := indexedComponents(streams, "br", "", base); !slices.Equal(got, want) {
		t.Errorf("indexedComponents = %+v, want %+v", got, want)
	}
	streams[0].Stream, streams[1].Stream = "doc", "doc"
	if got := indexedComponents(streams, "br", "", base); got[0].Ref != "doc" {
		t.Errorf("document stream not used as default ref: %+v", got)
	}
	if got := indexedComponents(streams, "br", "main", base); got[0].Ref != "main" || got[1].Ref != "rawhide" {
		t.Errorf("DefaultRef not applied (or overrode an explicit ref): %+v", got)
	}
	wantEntries := []state.IndexedComponent{
		{Name: "a", Ref: "br"}, {Name: "b-real", Ref: "rawhide"}, {Name: "c", Ref: "br"},
		{Name: "rpms/a", Ref: "br"}, {Name: "rpms/b-real", Ref: "rawhide"}, {Name: "tests/c", Ref: "br"},
	}
	if got := indexEntries(want); !slices.Equal(got, wantEntries) {
		t.Errorf("indexEntries = %+v, want %+v", got, wantEntries)
	}
}

func TestComponentIndexNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		repo string
		want []string
	}{
		{"https://src.example/rpms/liblow", []string{"liblow", "rpms/liblow"}},
		{"https://src.example/git/rpms/liblow.git/", []string{"liblow", "rpms/liblow", "git/rpms/liblow"}},
		{"file:///tmp/x/rpms/liblow", []string{"liblow", "rpms/liblow", "x/rpms/liblow", "tmp/x/rpms/liblow"}},
		{"/tmp/x/rpms/liblow", []string{"liblow", "rpms/liblow", "x/rpms/liblow", "tmp/x/rpms/liblow"}},
		{"git@gitlab.example:group/sub/liblow.git", []string{"liblow", "sub/liblow", "group/sub/liblow"}},
		{"ssh://git@gitlab.example:2222/group/sub/liblow", []string{"liblow", "sub/liblow", "group/sub/liblow"}},
		{"https://h/a/b/c/d/e/f/g/liblow", []string{"liblow", "g/liblow", "f/g/liblow", "e/f/g/liblow", "d/e/f/g/liblow", "c/d/e/f/g/liblow"}},
		{"https://src.example/liblow", []string{"liblow"}},
		{"", []string{"liblow"}},
	} {
		if got := componentIndexNames(componentRef{Name: "liblow", Repository: tc.repo}); !slices.Equal(got, tc.want) {
			t.Errorf("componentIndexNames(%q) = %q, want %q", tc.repo, got, tc.want)
		}
	}
}

func TestBuildRequirements_UnitedAcrossStreams(t *testing.T) {
	t.Parallel()
	deps := func(br map[string][]string) *modulemd.Stream {
		return &modulemd.Stream{Dependencies: []modulemd.Dependencies{{BuildRequires: br}}}
	}
	streams := []*modulemd.Stream{
		deps(map[string][]string{"platform": {"f40"}, "lower": {"stable"}, "any": {"a"}, "ex": {"-old"}, "same": {"-x"}}),
		deps(map[string][]string{"platform": {"f41"}, "lower": {"next", "stable"}, "any": {}, "ex": {"new"}, "same": {"-x"}, "only2": {"s"}}),
	}
	want := []modgraph.Requirement{
		{Name: "any"},
		{Name: "ex"},
		{Name: "lower", Streams: []string{"stable", "next"}},
		{Name: "only2", Streams: []string{"s"}},
		{Name: "same", Streams: []string{"-x"}},
	}
	got := buildRequirements(streams)
	if len(got) != len(want) {
		t.Fatalf("buildRequirements = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || !slices.Equal(got[i].Streams, want[i].Streams) {
			t.Errorf("buildRequirements[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// upperYAML is a stream v2 modulemd buildrequiring platform and, when
// lower is not empty, lower at those streams.
func upperYAML(lower ...string) string {
	doc := modulemdYAML("upper", "upper-pkg")
	deps := "  dependencies:\n    - buildrequires:\n        platform: [f40]\n"
	if len(lower) > 0 {
		deps += "        lower: [" + strings.Join(lower, ", ") + "]\n"
	}
	return strings.Replace(doc, "  components:\n", deps+"  components:\n", 1)
}

func TestPlanner_RunOnce_ModulePushRecordsBuildRequires(t *testing.T) {
	t.Parallel()
	b := setupPlanner(t, nil)
	mod := b.repo("modules/upper", "main")
	c1 := mod.Commit("init", map[string]string{"upper.yaml": upperYAML("stable")})
	d := b.plan(b.push("modules/upper", mod, "refs/heads/main", scm.ZeroHash, c1))
	if len(d.Disposition.Requests) != 1 {
		t.Fatalf("push: %+v", d.Disposition)
	}
	dependents := func(stream string) []modgraph.StreamRef {
		t.Helper()
		got, err := b.store.Dependents(b.ctx, "lower", stream)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	upperMain := []modgraph.StreamRef{{Name: "upper", Stream: "main"}}
	if got := dependents("stable"); !slices.Equal(got, upperMain) {
		t.Errorf("Dependents(lower, stable) = %+v, want %+v", got, upperMain)
	}
	if got := dependents("next"); len(got) != 0 {
		t.Errorf("Dependents(lower, next) = %+v, want none", got)
	}
	if got := b.components("upper", "main"); !slices.Equal(got, []state.IndexedComponent{{Name: "upper-pkg", Ref: "main"}}) {
		t.Errorf("components = %+v", got)
	}

	// The requirement follows the modulemd.
	c2 := mod.Commit("next", map[string]string{"upper.yaml": upperYAML("next")})
	_ = b.plan(b.push("modules/upper", mod, "refs/heads/main", c1, c2))
	if got, gotNext := dependents("stable"), dependents("next"); len(got) != 0 || !slices.Equal(gotNext, upperMain) {
		t.Errorf("after the switch to next: Dependents(lower, stable) = %+v, (lower, next) = %+v", got, gotNext)
	}
	c3 := mod.Commit("none", map[string]string{"upper.yaml": upperYAML()})
	_ = b.plan(b.push("modules/upper", mod, "refs/heads/main", c2, c3))
	if got := dependents("next"); len(got) != 0 {
		t.Errorf("after dropping the requirement: Dependents(lower, next) = %+v", got)
	}

	// A deleted branch leaves the dependents index.
	mod.Git("checkout", "-q", "-b", "f40")
	c4 := mod.Commit("f40", map[string]string{"upper.yaml": upperYAML("stable")})
	_ = b.plan(b.push("modules/upper", mod, "refs/heads/f40", scm.ZeroHash, c4))
	if got := dependents("stable"); !slices.Equal(got, []modgraph.StreamRef{{Name: "upper", Stream: "f40"}}) {
		t.Errorf("Dependents(lower, stable) = %+v, want upper:f40", got)
	}
	d = b.plan(b.push("modules/upper", mod, "refs/heads/f40", c4, scm.ZeroHash))
	wantReason(t, d, ReasonDeletion, "removed from the component index")
	if got := dependents("stable"); len(got) != 0 {
		t.Errorf("after deleting f40: Dependents(lower, stable) = %+v", got)
	}
}

// TestPlanner_RunOnce_ComponentByFullName: the component index is keyed by
// the repository's full name. Module app builds liblow from the default
// place (.../rpms/liblow beside .../modules/app), libother from an explicit
// repository in another namespace (.../tests/libother) and libdeep from a
// GitLab-like nested group; same-named repositories elsewhere trigger
// nothing.
func TestPlanner_RunOnce_ComponentByFullName(t *testing.T) {
	t.Parallel()
	b := setupPlanner(t, func(o *PlannerOptions) {
		o.Classifier = Classifier{ModulePatterns: []string{"modules/*"}, ComponentPatterns: []string{"rpms/*", "tests/*", "group/*/*"}}
	})
	forge := "file://" + filepath.Join(b.dir, "forge")
	doc := modulemdYAML("app", "liblow", "libother", "libdeep") +
		"      libother:\n        rationale: x.\n        repository: " + forge + "/tests/libother\n" +
		"      libdeep:\n        rationale: x.\n        repository: " + forge + "/group/sub/libdeep.git\n"
	doc = strings.Replace(doc, "      libother:\n        rationale: test.\n", "", 1)
	doc = strings.Replace(doc, "      libdeep:\n        rationale: test.\n", "", 1)
	mod := b.repo("modules/app", "main")
	head := mod.Commit("init", map[string]string{"app.yaml": doc})
	if n, err := b.planner.IndexModuleRepo(b.ctx, mod.URL(), ""); n != 1 || err != nil {
		t.Fatalf("IndexModuleRepo = %d, %v", n, err)
	}
	indexed := b.indexEntries("app", "main")
	for _, name := range []string{"rpms/liblow", "forge/rpms/liblow", "tests/libother", "group/sub/libdeep", "sub/libdeep", "liblow"} {
		if !slices.Contains(indexed, state.IndexedComponent{Name: name, Ref: "main"}) {
			t.Errorf("index of app:main = %+v, want an entry %s at main", indexed, name)
		}
	}
	for _, name := range []string{"tests/liblow", "rpms/libother", "rpms/libdeep"} {
		if slices.Contains(indexed, state.IndexedComponent{Name: name, Ref: "main"}) {
			t.Errorf("index of app:main holds %s", name)
		}
	}
	// A module push indexes exactly what `rida index` did.
	c2 := mod.Commit("readme", map[string]string{"README": "x"})
	_ = b.plan(b.push("modules/app", mod, "refs/heads/main", head, c2))
	if got := b.indexEntries("app", "main"); !slices.Equal(got, indexed) {
		t.Errorf("after a module push the index is %+v, want what IndexModuleRepo wrote: %+v", got, indexed)
	}

	for _, tc := range []struct {
		fullName string
		triggers bool
	}{
		{"rpms/liblow", true},
		{"tests/liblow", false},
		{"tests/libother", true},
		{"rpms/libother", false},
		{"group/sub/libdeep", true},
		{"group/other/libdeep", false},
		{"rpms/libdeep", false},
	} {
		t.Run(strings.ReplaceAll(tc.fullName, "/", "_"), func(t *testing.T) {
			r := b.repo(tc.fullName, "main")
			c := r.Commit("change", map[string]string{"x.spec": "x"})
			d := b.plan(b.push(tc.fullName, r, "refs/heads/main", scm.ZeroHash, c))
			if !tc.triggers {
				wantReason(t, d, ReasonNoModule, tc.fullName+" at ref main")
				return
			}
			reqs := b.requests(d)
			if len(reqs) != 1 || reqs[0].Key != "app:main" || reqs[0].ModuleCommit != c2 || reqs[0].ModuleRepo != mod.URL() {
				t.Fatalf("push to %s: requests %+v (reason %q), want app:main at %s", tc.fullName, reqs, d.Disposition.Reason, c2)
			}
			// The pushes merge into app:main's one pending request.
			if want := (state.ComponentCommit{Name: RepoName(tc.fullName), Ref: "main", Commit: c}); !slices.Contains(reqs[0].ComponentCommits, want) {
				t.Errorf("component commits = %+v, want %+v among them", reqs[0].ComponentCommits, want)
			}
		})
	}
}

// TestPlanner_RunOnce_IncludedModuleTriggersIncluding: app includes the
// module base (components.modules, no repository: modules/base beside
// modules/app, at app's branch) and a module that does not exist; a push
// to a component of base triggers app.
func TestPlanner_RunOnce_IncludedModuleTriggersIncluding(t *testing.T) {
	t.Parallel()
	b := setupPlanner(t, nil)
	base := b.repo("modules/base", "main")
	base.Commit("init", map[string]string{"base.yaml": modulemdYAML("base", "libinc", "libpinned@v2")})
	base.Git("checkout", "-q", "-b", "other")
	base.Commit("other", map[string]string{"base.yaml": modulemdYAML("base other", "libonother")})
	base.Git("checkout", "-q", "main")

	doc := strings.Replace(modulemdYAML("app", "appmain"), "    rpms:\n",
		"    modules:\n      base: {rationale: shared components.}\n      ghost: {rationale: not there.}\n    rpms:\n", 1)
	mod := b.repo("modules/app", "main")
	c1 := mod.Commit("init", map[string]string{"app.yaml": doc})
	d := b.plan(b.push("modules/app", mod, "refs/heads/main", scm.ZeroHash, c1))
	// The build is asked for all the same; the disposition names the
	// included module that could not be read.
	if reqs := b.requests(d); len(reqs) != 1 || reqs[0].Key != "app:main" {
		t.Fatalf("module push: requests %+v (reason %q)", reqs, d.Disposition.Reason)
	}
	if !strings.Contains(d.Disposition.Reason, "components.modules.ghost") || strings.Contains(d.Disposition.Reason, "components.modules.base") {
		t.Errorf("reason = %q, want it to name ghost (unreadable) and not base", d.Disposition.Reason)
	}
	want := []state.IndexedComponent{{Name: "appmain", Ref: "main"}, {Name: "libinc", Ref: "main"}, {Name: "libpinned", Ref: "v2"}}
	if got := b.components("app", "main"); !slices.Equal(got, want) {
		t.Errorf("index of app:main = %+v, want %+v", got, want)
	}

	lib := b.repo("rpms/libinc", "main")
	c := lib.Commit("fix", map[string]string{"libinc.spec": "x"})
	d = b.plan(b.push("rpms/libinc", lib, "refs/heads/main", scm.ZeroHash, c))
	if reqs := b.requests(d); len(reqs) != 1 || reqs[0].Key != "app:main" || reqs[0].ModuleCommit != c1 {
		t.Errorf("push to rpms/libinc: requests %+v (reason %q), want app:main", reqs, d.Disposition.Reason)
	}

	// An explicit ref reads the included module at that ref.
	doc2 := strings.Replace(doc, "base: {rationale: shared components.}", "base: {rationale: shared components., ref: other}", 1)
	c2 := mod.Commit("base at other", map[string]string{"app.yaml": doc2})
	_ = b.plan(b.push("modules/app", mod, "refs/heads/main", c1, c2))
	want = []state.IndexedComponent{{Name: "appmain", Ref: "main"}, {Name: "libonother", Ref: "other"}}
	if got := b.components("app", "main"); !slices.Equal(got, want) {
		t.Errorf("index of app:main with base at other = %+v, want %+v", got, want)
	}
	d = b.plan(b.push("rpms/libinc", lib, "refs/heads/main", c, lib.Commit("again", nil)))
	wantReason(t, d, ReasonNoModule, "rpms/libinc at ref main")
}
