package runner_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/runner/runnertest"
	"github.com/rida-build/rida/state"
)

// TestRunner_SubmittedModulemdAndSRPMs drives scratch submissions that
// carry a modulemd and SRPMs (state.RequestOptions.Modulemd, SRPMs)
// through the runner on a real store and real component repositories: the
// build is made from the stored modulemd (the module repository is never
// read: the request names none), under the submission's name and stream,
// versioned from the submission time; an SRPM's component is not resolved
// (xmd.mbs.rpms.<key>.ref null) and carries the SRPM; an SRPM that
// replaces no component, or a modulemd with xmd.mbs, fails the build
// naming it.
func TestRunner_SubmittedModulemdAndSRPMs(t *testing.T) {
	bx := setup(t, func(o *runner.Options) {
		o.Backend = &runnertest.SimBackend{Default: time.Millisecond}
	})
	ctx := context.Background()
	raw, err := os.ReadFile("../examples/module/" + examples.ModuleFile)
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(string(raw), "name: rida-demo\n", "name: uploaded\n", 1)
	at := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	submit := func(yaml string, srpms []state.SRPM) state.ModuleBuild {
		t.Helper()
		_, builds, err := bx.store.EnqueueWithBuild(ctx, state.BuildRequest{
			Module: "uploaded", Stream: "mine", Kind: state.RequestModule, Reasons: []string{"scratch build submitted by test"},
		}, state.RequestOptions{Scratch: true, Modulemd: yaml, SubmittedAt: at, SRPMs: srpms})
		if err != nil || len(builds) != 1 {
			t.Fatalf("submit: %v %v", builds, err)
		}
		bx.runner.Notify()
		mb := bx.waitFinished()
		if mb.ID != builds[0].ID {
			t.Fatalf("build %d finished, want %d", mb.ID, builds[0].ID)
		}
		return mb
	}

	tools := "0a1b2c3d/rida-demo-tools-9.9-1.src.rpm"
	mb := submit(yaml, []state.SRPM{{Package: "rida-demo-tools", Path: tools}})
	// Version: the submission time, prefixed with the platform's (el9).
	if mb.State != state.ModuleStateDone || !mb.Scratch || mb.Name != "uploaded" || mb.Stream != "mine" ||
		mb.Version != 920260203040506 || !strings.HasSuffix(mb.Context, "_1") || mb.ModuleRepo != "" || mb.ModuleCommit != "" {
		t.Fatalf("build: %s (%s) %s scratch %v repo %q commit %q", mb.State, mb.StateReason,
			modulemd.NSVC(mb.Name, mb.Stream, mb.Version, mb.Context), mb.Scratch, mb.ModuleRepo, mb.ModuleCommit)
	}
	if !slices.Equal(mb.SRPMs, []string{tools}) {
		t.Errorf("build SRPMs %v", mb.SRPMs)
	}
	for _, c := range mb.Components {
		switch {
		case c.Key == "rida-demo-tools" && (c.SRPM != tools || c.Commit != ""):
			t.Errorf("overridden component: srpm %q commit %q", c.SRPM, c.Commit)
		case c.Key != "rida-demo-tools" && c.Key != runner.MacrosComponent && (c.SRPM != "" || len(c.Commit) != 40):
			t.Errorf("component %s: srpm %q commit %q", c.Key, c.SRPM, c.Commit)
		}
	}
	streams, err := modulemd.Parse([]byte(mb.Modulemd))
	if err != nil {
		t.Fatal(err)
	}
	rpms := streams[0].Xmd["mbs"].(map[string]any)["rpms"].(map[string]any)
	if e, ok := rpms["rida-demo-tools"].(map[string]any); !ok || e["ref"] != nil {
		t.Errorf("xmd.mbs.rpms.rida-demo-tools = %#v, want ref null", rpms["rida-demo-tools"])
	}
	if e, _ := rpms["rida-demo-lib"].(map[string]any); len(e["ref"].(string)) != 40 {
		t.Errorf("xmd.mbs.rpms.rida-demo-lib = %#v", rpms["rida-demo-lib"])
	}
	for _, k := range []string{"scmurl", "commit"} {
		if _, ok := streams[0].Xmd["mbs"].(map[string]any)[k]; ok {
			t.Errorf("xmd.mbs.%s set for a submitted modulemd", k)
		}
	}

	// The same again: a scratch build of the same N:S:V gets _2.
	if again := submit(yaml, nil); again.State != state.ModuleStateDone || again.Context != strings.TrimSuffix(mb.Context, "_1")+"_2" {
		t.Errorf("second build: %s (%s) context %q", again.State, again.StateReason, again.Context)
	}

	// An SRPM of a package that is no component; a modulemd with xmd.mbs.
	bad := submit(yaml, []state.SRPM{{Package: "nope", Path: "0a1b2c3d/nope-1-1.src.rpm"}})
	if bad.State != state.ModuleStateFailed || !strings.Contains(bad.StateReason, "srpms: 0a1b2c3d/nope-1-1.src.rpm (package nope) replaces no component of the module") {
		t.Errorf("unused SRPM: %s %q", bad.State, bad.StateReason)
	}
	xmd := strings.Replace(yaml, "  components:\n", "  xmd:\n    mbs: {commit: abc}\n  components:\n", 1)
	if x := submit(xmd, nil); x.State != state.ModuleStateFailed || !strings.Contains(x.StateReason, `The "mbs" xmd field is reserved for MBS`) {
		t.Errorf("xmd.mbs: %s %q", x.State, x.StateReason)
	}
}
