package runner

import (
	"slices"
	"testing"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
)

func TestPlanReuse(t *testing.T) {
	const lastYAML = `document: modulemd
version: 2
data:
  name: m
  stream: s
  summary: s
  description: d
  license: {module: [MIT]}
  buildopts: {rpms: {macros: "%%x 1"}}
`
	// last: batch 2 {a, gone}, batch 3 {b}, batch 4 {c}.
	last := func(strategy string) *state.ModuleBuild {
		mb := &state.ModuleBuild{ID: 5, RebuildStrategy: strategy, ResultDir: "/r", Modulemd: lastYAML}
		for _, c := range []struct {
			key   string
			batch int
		}{{"a", 2}, {"gone", 2}, {"b", 3}, {"c", 4}} {
			mb.Components = append(mb.Components, state.ComponentBuild{Key: c.key, Package: c.key, Repository: "r/" + c.key,
				Commit: "1", Batch: c.batch, State: "complete", NVR: c.key + "-1", RPMs: []string{c.key + "-0:1-1.noarch"}, TaskID: 42})
		}
		return mb
	}
	build := func(macros string, withGone bool) *Build {
		b := &Build{Modulemd: &modulemd.Stream{BuildOpts: &modulemd.BuildOpts{Macros: macros}}}
		b.Batches = append(b.Batches, &Batch{Number: 1, Components: []*Component{{Key: MacrosComponent, Batch: 1}}})
		b2 := &Batch{Number: 2, Components: []*Component{{Key: "a", Package: "a", Repository: "r/a", Commit: "1", Batch: 2}}}
		if withGone {
			b2.Components = append(b2.Components, &Component{Key: "gone", Package: "gone", Repository: "r/gone", Commit: "1", Batch: 2})
		}
		b.Batches = append(b.Batches, b2,
			&Batch{Number: 3, Components: []*Component{{Key: "b", Package: "b", Repository: "r/b", Commit: "1", Batch: 3}}},
			&Batch{Number: 4, Components: []*Component{{Key: "c", Package: "c", Repository: "r/c", Commit: "1", Batch: 4}}})
		return b
	}
	reused := func(b *Build) []string {
		var out []string
		for _, batch := range b.Batches {
			for _, c := range batch.Components {
				if c.State == ComponentReused {
					out = append(out, c.Key)
				}
			}
		}
		return out
	}
	for _, tc := range []struct {
		name, strategy, lastStrategy, macros string
		withGone                             bool
		want                                 []string
	}{
		{name: "unchanged", strategy: StrategyChangedAndAfter, macros: "%%x 1", withGone: true, want: []string{"a", "gone", "b", "c"}},
		// MBS compares whole earlier batches: a component removed from
		// batch 2 invalidates batches 3 and 4.
		{name: "removed from an earlier batch", strategy: StrategyChangedAndAfter, macros: "%%x 1", want: []string{"a"}},
		{name: "removed, only-changed", strategy: StrategyOnlyChanged, macros: "%%x 1", want: []string{"a", "b", "c"}},
		{name: "macros changed", strategy: StrategyChangedAndAfter, macros: "%%x 2", withGone: true, want: nil},
		{name: "macros changed, only-changed", strategy: StrategyOnlyChanged, macros: "%%x 2", withGone: true, want: []string{"a", "gone", "b", "c"}},
		{name: "candidate built only-changed", strategy: StrategyChangedAndAfter, lastStrategy: StrategyOnlyChanged, macros: "%%x 1", withGone: true, want: nil},
		{name: "all", strategy: StrategyAll, macros: "%%x 1", withGone: true, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := build(tc.macros, tc.withGone)
			planReuse(b, last(tc.lastStrategy), tc.strategy)
			if got := reused(b); !slices.Equal(got, tc.want) {
				t.Errorf("reused %v, want %v", got, tc.want)
			}
			for _, batch := range b.Batches {
				for _, c := range batch.Components {
					if c.State == ComponentReused && c.TaskID != 42 {
						t.Errorf("reused %s lost the task id of the build it came from", c.Key)
					}
				}
			}
		})
	}
}
