package koji_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/koji"
	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/runner"
)

// archesBackend is a backend with the given configured arches (nil: the
// base module tag's).
func archesBackend(t *testing.T, bd *bundle, arches []string) *koji.Backend {
	t.Helper()
	be, err := koji.NewBackend(koji.BackendOptions{
		Client: bd.client, Arches: arches, BaseModuleTag: baseTag, Owner: "kojiadmin", Logger: quiet, Intents: bd.store,
		PollMin: time.Millisecond, PollMax: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// editArches returns the arches keyword of every editTag2 call to tag ("-"
// for a call without one).
func editArches(h *kojitest.Hub, tag string) []string {
	var out []string
	for _, c := range h.FlatCalls() {
		if c.Method != "editTag2" || c.Args[0] != tag {
			continue
		}
		kw := c.KW
		if kw == nil && len(c.Args) > 1 {
			kw, _ = c.Args[1].(map[string]any)
		}
		if a, ok := kw["arches"].(string); ok {
			out = append(out, a)
		} else {
			out = append(out, "-")
		}
	}
	return out
}

// The module's tags get the arches MBS gives them, as the hub records them:
// the configured arches, else the base module tag's, narrowed by
// buildopts.arches.
func TestBackend_TagArches(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured []string
		buildopts  []string
		want       string
	}{
		{"base tag's", nil, nil, "x86_64 aarch64"},
		{"configured", []string{"x86_64", "ppc64le"}, nil, "x86_64 ppc64le"},
		{"buildopts narrows the base tag's", nil, []string{"aarch64", "s390x"}, "aarch64"},
		{"buildopts narrows the configured", []string{"x86_64", "ppc64le", "aarch64"}, []string{"aarch64", "x86_64"}, "x86_64 aarch64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bd := setup(t, kojitest.Options{})
			be := archesBackend(t, bd, tc.configured)
			s := testStream("arches", map[string]int64{"a": 0})
			if tc.buildopts != nil {
				s.BuildOpts = &modulemd.BuildOpts{Arches: tc.buildopts}
			}
			b := mustPlan(t, s, 31)
			if err := be.Prepare(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"module-arches-master-20260101000000-c0ffee42", "module-arches-master-20260101000000-c0ffee42-build"} {
				ts, ok := bd.hub.Tag(name)
				if !ok {
					t.Fatalf("no tag %s", name)
				}
				if ts.Arches != tc.want {
					t.Errorf("%s: arches %q, want %q", name, ts.Arches, tc.want)
				}
			}
		})
	}
}

// A buildopts.arches with none of the module's arches fails Prepare naming
// both sets; no tag is made.
func TestBackend_TagArchesNoneInCommon(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	be := archesBackend(t, bd, nil)
	s := testStream("noarch", map[string]int64{"a": 0})
	s.BuildOpts = &modulemd.BuildOpts{Arches: []string{"s390x"}}
	b := mustPlan(t, s, 32)
	err := be.Prepare(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), "buildopts.arches (s390x) has none of the module's arches (x86_64, aarch64)") {
		t.Fatalf("Prepare: %v", err)
	}
	if _, ok := bd.hub.Tag("module-noarch-master-20260101000000-c0ffee42"); ok {
		t.Error("a tag was made")
	}
}

// editTag2 carries arches only when the set changed: a tag with the same
// arches in another order is left alone, a changed set is sent.
func TestBackend_EditTagArchesOnlyWhenChanged(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	tag := "module-reprep-master-20260101000000-c0ffee42"
	b := mustPlan(t, testStream("reprep", map[string]int64{"a": 0}), 33)
	if err := archesBackend(t, bd, []string{"x86_64", "aarch64"}).Prepare(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	// The same set, another order: no editTag2 at all (nothing changed).
	if err := archesBackend(t, bd, []string{"aarch64", "x86_64"}).Prepare(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := editArches(bd.hub, tag); len(got) != 0 {
		t.Errorf("editTag2 on an unchanged tag: %v", got)
	}
	if ts, _ := bd.hub.Tag(tag); ts.Arches != "x86_64 aarch64" {
		t.Errorf("arches %q", ts.Arches)
	}
	// A changed set: editTag2 with the new arches.
	if err := archesBackend(t, bd, []string{"x86_64"}).Prepare(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := editArches(bd.hub, tag); len(got) != 1 || got[0] != "x86_64" {
		t.Errorf("editTag2 arches %v, want [x86_64]", got)
	}
	if ts, _ := bd.hub.Tag(tag); ts.Arches != "x86_64" {
		t.Errorf("arches after the change %q", ts.Arches)
	}
}

// The build goes through with the base tag's arches end to end.
func TestBackend_BaseTagArchesBuild(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	be := archesBackend(t, bd, nil)
	b := mustPlan(t, testStream("basearch", map[string]int64{"a": 0}), 34)
	if _, err := runner.Execute(context.Background(), be, b, runner.ExecuteOptions{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
}
