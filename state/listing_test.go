package state

import (
	"context"
	"testing"
)

func TestStore_ListModuleBuilds(t *testing.T) {
	s := setup(t).store
	ctx := context.Background()
	put := func(name, stream string, st ModuleState) uint64 {
		t.Helper()
		mb, err := s.PutModuleBuild(ctx, ModuleBuild{Name: name, Stream: stream, State: st})
		if err != nil {
			t.Fatal(err)
		}
		return mb.ID
	}
	a1 := put("a", "1", ModuleStateReady)
	a2 := put("a", "2", ModuleStateFailed)
	ab := put("ab", "1", ModuleStateReady) // shares a prefix with "a"
	a3 := put("a", "1", ModuleStateBuild)
	ids := func(bs []ModuleBuild) []uint64 {
		var out []uint64
		for _, b := range bs {
			out = append(out, b.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		q     BuildQuery
		want  []uint64
		total int
	}{
		{"all", BuildQuery{}, []uint64{a3, ab, a2, a1}, 4},
		{"page 2", BuildQuery{Offset: 1, Limit: 2}, []uint64{ab, a2}, 4},
		{"name", BuildQuery{Name: "a"}, []uint64{a3, a2, a1}, 3},
		{"name and stream", BuildQuery{Name: "a", Stream: "1"}, []uint64{a3, a1}, 2},
		{"name and state", BuildQuery{Name: "a", States: []ModuleState{ModuleStateReady}}, []uint64{a1}, 1},
		{"states", BuildQuery{States: []ModuleState{ModuleStateReady, ModuleStateFailed}}, []uint64{ab, a2, a1}, 3},
		{"past the end", BuildQuery{Name: "a", Offset: 5}, nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := s.ListModuleBuilds(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if g := ids(got); total != tc.total || len(g) != len(tc.want) || (len(g) > 0 && g[0] != tc.want[0]) || (len(g) > 1 && g[len(g)-1] != tc.want[len(tc.want)-1]) {
				t.Errorf("got %v (total %d), want %v (total %d)", g, total, tc.want, tc.total)
			}
		})
	}
	counts, err := s.BuildCountsByState(ctx)
	if err != nil || counts[ModuleStateReady] != 2 || counts[ModuleStateBuild] != 1 || counts[ModuleStateFailed] != 1 {
		t.Errorf("counts %v %v", counts, err)
	}
}
