package runner

import (
	"testing"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
)

// TestPlanReuse_NeverAnSRPMComponent: a component built from an SRPM is
// built, never taken from the last build, even where everything else
// about it matches; with only-changed its unchanged sibling is reused.
func TestPlanReuse_NeverAnSRPMComponent(t *testing.T) {
	last := &state.ModuleBuild{ID: 5, RebuildStrategy: StrategyOnlyChanged, ResultDir: "/r",
		Modulemd: "document: modulemd\nversion: 2\ndata: {name: m, stream: s, summary: s, description: d, license: {module: [MIT]}}\n"}
	for _, key := range []string{"a", "b"} {
		last.Components = append(last.Components, state.ComponentBuild{Key: key, Package: key, Repository: "r/" + key,
			Commit: "1", Batch: 2, State: "complete", NVR: key + "-1", RPMs: []string{key + "-0:1-1.noarch"}})
	}
	b := &Build{Modulemd: &modulemd.Stream{}, Batches: []*Batch{
		{Number: 1, Components: []*Component{{Key: MacrosComponent, Batch: 1}}},
		{Number: 2, Components: []*Component{
			{Key: "a", Package: "a", Repository: "r/a", Commit: "1", Batch: 2},
			{Key: "b", Package: "b", Repository: "r/b", Commit: "1", SRPM: "up/b-2-1.src.rpm", Batch: 2},
		}},
	}}
	planReuse(b, last, StrategyOnlyChanged)
	if a := b.Batches[1].Components[0]; a.State != ComponentReused {
		t.Errorf("a: %s, want reused", a.State)
	}
	if c := b.Batches[1].Components[1]; c.State == ComponentReused || c.ReusedFrom != 0 {
		t.Errorf("b (from an SRPM): %s from %d, want built", c.State, c.ReusedFrom)
	}
}
