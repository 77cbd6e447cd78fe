package koji_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rida-build/rida/koji"
	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/runner"
)

// depsBuild plans a one-component build with two module dependencies,
// listed out of name order: zeta (its tag reported by an earlier Koji
// build) and alpha (built elsewhere: no KojiTag, so its tag is named from
// its NSVC).
func depsBuild(t *testing.T, id int64) *runner.Build {
	t.Helper()
	b := mustPlan(t, testStream("withdeps", map[string]int64{"a": 0}), id)
	b.Deps = []runner.ModuleDep{
		{Name: "zeta", Stream: "2", Version: 20250101000000, Context: "00000002",
			KojiTag: "module-zeta-2-20250101000000-00000002", Direct: true},
		{Name: "alpha", Stream: "1", Version: 20250101000000, Context: "00000001"},
	}
	return b
}

const (
	alphaTag = "module-alpha-1-20250101000000-00000001"
	zetaTag  = "module-zeta-2-20250101000000-00000002"
)

func inheritanceSets(h *kojitest.Hub) []kojitest.Call {
	var out []kojitest.Call
	for _, c := range h.FlatCalls() {
		if c.Method == "setInheritanceData" {
			out = append(out, c)
		}
	}
	return out
}

func TestBackend_PrepareInheritsFromModuleDeps(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	ctx := context.Background()
	// zeta's tag is seeded, alpha's created through the API, after zeta's,
	// so that tag ids do not follow name order.
	bd.hub.SeedTag(kojitest.TagSeed{Name: zetaTag, Arches: "x86_64"})
	if _, err := bd.client.Call(ctx, "createTag", alphaTag, koji.KW{"arches": "x86_64"}); err != nil {
		t.Fatal(err)
	}
	if modulemd.KojiTag("alpha", "1", 20250101000000, "00000001") != alphaTag {
		t.Fatal("alphaTag is not the name the backend gives alpha's tag")
	}

	b := depsBuild(t, 21)
	if err := bd.backend.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	buildTag := modulemd.KojiTag(b.Name, b.Stream, b.Version, b.Context) + "-build"
	bt, ok := bd.hub.Tag(buildTag)
	if !ok {
		t.Fatalf("no tag %s", buildTag)
	}
	// Base module tag first (priority 0), then the deps by name.
	want := []struct {
		parent string
		prio   int64
	}{{baseTag, 0}, {alphaTag, 10}, {zetaTag, 20}}
	if len(bt.Inheritance) != len(want) {
		t.Fatalf("inheritance of %s: %+v", buildTag, bt.Inheritance)
	}
	for i, w := range want {
		l := bt.Inheritance[i]
		if l.Parent != w.parent || l.Priority != w.prio || l.MaxDepth != nil || l.Intransitive || l.NoConfig || l.PkgFilter != "" {
			t.Errorf("link %d: %+v, want parent %s priority %d, maxdepth nil, not intransitive, not noconfig, no filter",
				i, l, w.parent, w.prio)
		}
	}
	// One setInheritanceData, on the build tag's id, with MBS's entries.
	sets := inheritanceSets(bd.hub)
	if len(sets) != 1 {
		t.Fatalf("%d setInheritanceData calls", len(sets))
	}
	if id, _ := sets[0].Args[0].(int64); int(id) != bt.ID {
		t.Errorf("setInheritanceData on %v, want build tag id %d", sets[0].Args[0], bt.ID)
	}
	entries, _ := sets[0].Args[1].([]any)
	if len(entries) != 3 {
		t.Fatalf("setInheritanceData entries %v", sets[0].Args[1])
	}
	for i, e := range entries {
		m := e.(map[string]any)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"intransitive", "maxdepth", "noconfig", "parent_id", "pkg_filter", "priority"}) {
			t.Errorf("entry %d keys %v", i, keys)
		}
		if m["maxdepth"] != nil || m["intransitive"] != false || m["noconfig"] != false || m["pkg_filter"] != "" ||
			m["priority"] != int64(want[i].prio) || m["parent_id"] != int64(bt.Inheritance[i].ParentID) {
			t.Errorf("entry %d: %v", i, m)
		}
	}

	// A resumed build (a new backend, as after a restart) adds nothing.
	bd.hub.ResetCalls()
	if err := newBackend(t, bd.client, bd.store).Prepare(ctx, depsBuild(t, 21)); err != nil {
		t.Fatal(err)
	}
	if sets := inheritanceSets(bd.hub); len(sets) != 0 {
		t.Errorf("resumed Prepare called setInheritanceData %v", sets[0].Args)
	}
	again, _ := bd.hub.Tag(buildTag)
	if !slices.Equal(again.Inheritance, bt.Inheritance) {
		t.Errorf("inheritance after resume %+v, was %+v", again.Inheritance, bt.Inheritance)
	}
}

func TestBackend_PrepareAppendsNewDepsAfterExistingParents(t *testing.T) {
	// A build tag prepared before its deps were known (or by an older rida)
	// keeps its base link at priority 0; the deps come after it.
	bd := setup(t, kojitest.Options{})
	ctx := context.Background()
	bd.hub.SeedTag(kojitest.TagSeed{Name: alphaTag})
	bd.hub.SeedTag(kojitest.TagSeed{Name: zetaTag})
	b := depsBuild(t, 22)
	deps := b.Deps
	b.Deps = nil
	if err := bd.backend.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Deps = deps
	if err := newBackend(t, bd.client, bd.store).Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	bt, _ := bd.hub.Tag(modulemd.KojiTag(b.Name, b.Stream, b.Version, b.Context) + "-build")
	var got []string
	for _, l := range bt.Inheritance {
		got = append(got, fmt.Sprintf("%s@%d", l.Parent, l.Priority))
	}
	want := []string{baseTag + "@0", alphaTag + "@10", zetaTag + "@20"}
	if !slices.Equal(got, want) {
		t.Errorf("inheritance %v, want %v", got, want)
	}
}

func TestBackend_PrepareFailsOnMissingDepTag(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	ctx := context.Background()
	bd.hub.SeedTag(kojitest.TagSeed{Name: alphaTag})
	b := depsBuild(t, 23) // zeta's tag does not exist on the hub
	err := bd.backend.Prepare(ctx, b)
	if err == nil {
		t.Fatal("Prepare succeeded without zeta's tag")
	}
	for _, s := range []string{zetaTag, "zeta:2:20250101000000:00000002"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	var f *koji.Fault
	if !errors.As(err, &f) || f.Code != 1000 {
		t.Errorf("error %v does not wrap the hub's GenericError fault", err)
	}
	if sets := inheritanceSets(bd.hub); len(sets) != 0 {
		t.Errorf("setInheritanceData called despite the missing tag: %v", sets[0].Args)
	}
}

func TestBackend_FinishKeepsBuildrequiresKojiTag(t *testing.T) {
	// The runner fills xmd.mbs.buildrequires (koji_tag included); the final
	// modulemd keeps it as it is.
	bd := setup(t, kojitest.Options{})
	s := testStream("keepxmd", map[string]int64{"a": 0})
	s.Xmd["mbs"].(map[string]any)["buildrequires"] = map[string]any{
		"zeta": map[string]any{"stream": "2", "version": "20250101000000", "context": "00000002",
			"koji_tag": zetaTag, "filtered_rpms": []any{}},
	}
	b := mustPlan(t, s, 24)
	res, err := bd.backend.Finish(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	streams, err := modulemd.Parse(res.Modulemd)
	if err != nil {
		t.Fatal(err)
	}
	br, _ := streams[0].Xmd["mbs"].(map[string]any)["buildrequires"].(map[string]any)
	zeta, _ := br["zeta"].(map[string]any)
	if zeta["koji_tag"] != zetaTag {
		t.Errorf("xmd.mbs.buildrequires after Finish: %v\n%s", br, res.Modulemd)
	}
}
