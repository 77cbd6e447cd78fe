package runner_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/rida-build/rida/modgraph"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/state"
)

// distributionGraph indexes 300 module streams in st, shaped like EL8's
// module set: 82 streams take part in 60 buildrequires edges. The
// most-depended-on stream (s000, think perl) has 11 direct dependents,
// which have 20 dependents of their own, which have 8 (a tree of 40
// streams, 39 edges); the other 42 streams form 21 pairs (21 edges); 218
// streams buildrequire only platform. It returns the root.
func distributionGraph(tb testing.TB, st *state.Store) modgraph.StreamRef {
	tb.Helper()
	ctx := context.Background()
	deps := map[int][]int{}
	for i := 1; i <= 11; i++ {
		deps[i] = []int{0}
	}
	for i := 12; i < 32; i++ {
		deps[i] = []int{1 + (i-12)%11}
	}
	for i := 32; i < 40; i++ {
		deps[i] = []int{12 + (i - 32)}
	}
	for i := 40; i < 82; i += 2 {
		deps[i+1] = []int{i}
	}
	edges := 0
	for i := range 300 {
		var reqs []modgraph.Requirement
		for _, d := range deps[i] {
			reqs = append(reqs, modgraph.Requirement{Name: fmt.Sprintf("s%03d", d), Streams: []string{"1"}})
			edges++
		}
		err := st.SetModuleStream(ctx, state.IndexedStream{
			Module: fmt.Sprintf("s%03d", i), Stream: "1", ModuleRepo: fmt.Sprintf("file:///git/modules/s%03d", i),
			Components: []state.IndexedComponent{{Name: fmt.Sprintf("rpms/p%03d", i), Ref: "main"}}, BuildRequires: reqs,
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if edges != 60 {
		tb.Fatalf("graph has %d edges, want 60", edges)
	}
	return modgraph.StreamRef{Name: "s000", Stream: "1"}
}

// BenchmarkCascade_DistributionGraph measures what a build of the
// most-depended-on stream costs when it becomes ready: the store's ready
// transaction with the cascade resolved from the dependents index and
// every rebuild (39 streams) queued, committed to a real bbolt file.
func BenchmarkCascade_DistributionGraph(b *testing.B) {
	var queued int
	st, err := state.Open(filepath.Join(b.TempDir(), "rida.db"), state.Options{
		CascadeFor: func(ev state.CascadeEvent) ([]state.BuildRequest, string) {
			reqs, note := runner.Cascader{Enabled: true}.For(ev)
			queued = len(reqs)
			return reqs, note
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	root := distributionGraph(b, st)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		mb, err := st.PutModuleBuild(ctx, state.ModuleBuild{Name: root.Name, Stream: root.Stream, State: state.ModuleStateDone})
		if err != nil {
			b.Fatal(err)
		}
		mb.State = state.ModuleStateReady
		b.StartTimer()
		if _, err := st.PutModuleBuild(ctx, *mb); err != nil {
			b.Fatal(err)
		}
	}
	if queued != 39 {
		b.Fatalf("cascade queued %d requests, want 39", queued)
	}
	b.ReportMetric(float64(queued), "requests/cascade")
}

// TestCascade_DistributionGraph holds the benchmark's graph to its shape:
// the cascade from the root queues the 39 streams of its tree, each after
// what it buildrequires, and none of the unrelated streams.
func TestCascade_DistributionGraph(t *testing.T) {
	var reqs []state.BuildRequest
	st, err := state.Open(filepath.Join(t.TempDir(), "rida.db"), state.Options{
		CascadeFor: func(ev state.CascadeEvent) ([]state.BuildRequest, string) {
			var note string
			reqs, note = runner.Cascader{Enabled: true}.For(ev)
			return reqs, note
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root := distributionGraph(t, st)
	ctx := context.Background()
	mb, err := st.PutModuleBuild(ctx, state.ModuleBuild{Name: root.Name, Stream: root.Stream, State: state.ModuleStateReady})
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 39 || mb.Cascade == nil || len(mb.Cascade.Requests) != 39 {
		t.Fatalf("queued %d requests, recorded %+v", len(reqs), mb.Cascade)
	}
	pos := map[string]int{}
	for i, r := range reqs {
		pos[r.Module] = i
		if r.Kind != state.RequestCascade || r.CascadeFrom != mb.ID || r.ModuleRepo == "" {
			t.Errorf("request %+v", r)
		}
	}
	for i := 12; i < 40; i++ {
		child := fmt.Sprintf("s%03d", i)
		parent := fmt.Sprintf("s%03d", 1+(i-12)%11)
		if i >= 32 {
			parent = fmt.Sprintf("s%03d", 12+(i-32))
		}
		if pos[child] <= pos[parent] {
			t.Errorf("%s queued before %s, which it buildrequires", child, parent)
		}
	}
	if _, ok := pos["s041"]; ok {
		t.Error("an unrelated stream was queued")
	}
}
