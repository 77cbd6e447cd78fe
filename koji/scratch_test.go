package koji_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/runner"
)

// TestBackend_ScratchBuildTags: a scratch build's tags and target are
// MBS's scrmod-N-S-V-C+<id> ones, never the module- tags a regular build
// of the same NSVC takes, and its components are tagged there.
func TestBackend_ScratchBuildTags(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	b := mustPlan(t, testStream("scr", map[string]int64{"a": 0}), 11)
	b.Scratch, b.Context, b.Modulemd.Context = true, "c0ffee42_1", "c0ffee42_1"
	res, err := runner.Execute(context.Background(), bd.backend, b, runner.ExecuteOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	tag := "scrmod-scr-master-20260101000000-c0ffee42_1+11"
	if res.Location != tag {
		t.Errorf("location %q, want %q", res.Location, tag)
	}
	for _, name := range []string{tag, tag + "-build"} {
		if _, ok := bd.hub.Tag(name); !ok {
			t.Errorf("no tag %s", name)
		}
	}
	if got := bd.hub.Tagged(tag); !slices.ContainsFunc(got, func(nvr string) bool { return strings.HasPrefix(nvr, "a-") }) {
		t.Errorf("%s holds %q, want a's build", tag, got)
	}
	for _, s := range steps(bd.hub) {
		if strings.Contains(s, "module-scr-") {
			t.Errorf("a scratch build touched a regular tag: %s", s)
		}
		if method, arg, _ := strings.Cut(s, " "); method == "createBuildTarget" && arg != tag {
			t.Errorf("target %q, want %q", arg, tag)
		}
	}
}
