package runner_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/runner/runnertest"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/scm/scmtest"
	"github.com/rida-build/rida/state"
)

// BenchmarkExecute_200Components20Batches measures the runner's overhead:
// 200 components in 20 batches of 10 on the simulated backend (builds of 20
// to 29 ms, 10 ms repository regeneration) against the critical-path bound.
func BenchmarkExecute_200Components20Batches(b *testing.B) {
	sim := &runnertest.SimBackend{Durations: map[string]time.Duration{}, RepoRegen: 10 * time.Millisecond}
	mk := func() *runner.Build {
		bd := &runner.Build{ID: 1, Name: "big", Stream: "s", Version: 1, Context: "c", DistTag: ".module+el9+1+00000000"}
		bd.Batches = append(bd.Batches, &runner.Batch{Number: 1, Components: []*runner.Component{{Key: runner.MacrosComponent, Package: runner.MacrosComponent, Batch: 1}}})
		sim.Durations[runner.MacrosComponent] = 20 * time.Millisecond
		for n := 2; n <= 21; n++ {
			batch := &runner.Batch{Number: n}
			for i := range 10 {
				key := fmt.Sprintf("c%03d", (n-2)*10+i)
				sim.Durations[key] = time.Duration(20+i) * time.Millisecond
				batch.Components = append(batch.Components, &runner.Component{Key: key, Package: key, Batch: n})
			}
			bd.Batches = append(bd.Batches, batch)
		}
		return bd
	}
	bound := sim.CriticalPath(mk())
	var total time.Duration
	for b.Loop() {
		bd := mk()
		start := time.Now()
		if _, err := runner.Execute(context.Background(), sim, bd, runner.ExecuteOptions{Logger: quiet()}); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(bound), "wall/critical-path")
	b.ReportMetric(float64(bound.Milliseconds()), "critical-path-ms")
}

// BenchmarkRunner_100PushesInOneSecond enqueues 100 requests for one module
// stream over one second (a push every 10 ms) while the runner builds on the
// simulated backend, and reports how many module builds resulted. Each
// simulated build takes about 2 s (4 batches of 500 ms builds and 10 ms
// repository regenerations): real module builds take minutes, so every push
// after the first lands while a build runs.
func BenchmarkRunner_100PushesInOneSecond(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		layout, err := examples.CreateRepos(mustMkdirB(b, filepath.Join(dir, "git")), examples.Options{})
		if err != nil {
			b.Fatal(err)
		}
		store, err := state.Open(filepath.Join(dir, "rida.db"), state.Options{})
		if err != nil {
			b.Fatal(err)
		}
		mirrors, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(dir, "mirrors"), Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		sim := &runnertest.SimBackend{Default: 500 * time.Millisecond, RepoRegen: 10 * time.Millisecond}
		finished := make(chan state.ModuleBuild, 200)
		r, err := runner.New(runner.Options{
			Store: store, Backend: sim, Modules: runner.SCMModules{Mirrors: mirrors}, Resolver: scm.Resolver{Mirrors: mirrors},
			NotFound: scm.ErrNotFound, RebuildStrategy: runner.StrategyAll, Logger: quiet(), PollInterval: 20 * time.Millisecond,
			OnFinish: func(mb state.ModuleBuild) { finished <- mb },
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		comp := layout.Components["rida-demo-tools"]
		for i := range 100 {
			// Each push is a new component commit, so no two builds are
			// identical and none is skipped for that reason.
			if _, err := comp.CommitFiles(fmt.Sprintf("push %d", i), map[string]string{"N": fmt.Sprint(i)}); err != nil {
				b.Fatal(err)
			}
			if _, err := store.Enqueue(context.Background(), state.BuildRequest{
				Module: examples.ModuleName, Stream: examples.ModuleStream, Kind: state.RequestComponent,
				Reasons: []string{fmt.Sprintf("push %d", i)}, ModuleRepo: layout.Module.URL,
			}); err != nil {
				b.Fatal(err)
			}
			r.Notify()
			time.Sleep(10 * time.Millisecond)
		}
		// Wait until the queue for the stream is empty.
		for {
			running, pending, err := store.QueueSlot(context.Background(), examples.ModuleName+":"+examples.ModuleStream)
			if err != nil {
				b.Fatal(err)
			}
			if running == nil && pending == nil {
				break
			}
			<-finished
		}
		r.Stop()
		all, _ := store.ModuleBuilds(context.Background(), nil)
		b.ReportMetric(float64(len(all)), "module-builds/100-pushes")
		store.Close()
	}
}

func mustMkdirB(b *testing.B, dir string) string {
	b.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkRunner_Reuse_1of100Changed builds a module of 100 components in
// 10 batches (real git repositories, real modulemd, the simulated backend),
// changes one component of the last batch, builds again with
// changed-and-after, and reports how many components were built and reused
// the second time (design target: 1 built, 99 reused).
func BenchmarkRunner_Reuse_1of100Changed(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		var yaml strings.Builder
		yaml.WriteString("document: modulemd\nversion: 2\ndata:\n  summary: big\n  description: big module\n  license: {module: [MIT]}\n" +
			"  dependencies: [{buildrequires: {platform: [el9]}, requires: {platform: [el9]}}]\n  components:\n    rpms:\n")
		comps := map[string]*scmtest.Repo{}
		for i := range 100 {
			name := fmt.Sprintf("c%03d", i)
			fmt.Fprintf(&yaml, "      %s: {rationale: r, ref: main, buildorder: %d}\n", name, i/10+1)
			r := scmtest.New(b, filepath.Join(dir, "rpms", name), "main")
			r.Commit("import", map[string]string{name + ".spec": "Name: " + name + "\n"})
			comps[name] = r
		}
		mod := scmtest.New(b, filepath.Join(dir, "modules", "big"), "1.0")
		mod.Commit("import", map[string]string{"big.yaml": yaml.String()})

		store, err := state.Open(filepath.Join(dir, "rida.db"), state.Options{})
		if err != nil {
			b.Fatal(err)
		}
		mirrors, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(dir, "mirrors"), Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		sim := &runnertest.SimBackend{Default: time.Millisecond}
		finished := make(chan state.ModuleBuild, 4)
		r, err := runner.New(runner.Options{
			Store: store, Backend: sim, Modules: runner.SCMModules{Mirrors: mirrors}, Resolver: scm.Resolver{Mirrors: mirrors},
			NotFound: scm.ErrNotFound, Logger: quiet(), PollInterval: 20 * time.Millisecond,
			OnFinish: func(mb state.ModuleBuild) { finished <- mb },
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		enqueue := func(kind state.RequestKind) state.ModuleBuild {
			if _, err := store.Enqueue(context.Background(), state.BuildRequest{Module: "big", Stream: "1.0", Kind: kind,
				Reasons: []string{"bench"}, ModuleRepo: "file://" + filepath.Join(dir, "modules", "big")}); err != nil {
				b.Fatal(err)
			}
			r.Notify()
			mb := <-finished
			if mb.State != state.ModuleStateReady {
				b.Fatalf("build %d: %s %s", mb.ID, mb.State, mb.StateReason)
			}
			return mb
		}
		enqueue(state.RequestModule)
		first := sim.Builds()
		comps["c099"].Commit("change", map[string]string{"c099.spec": "Name: c099\n# changed\n"})
		mb := enqueue(state.RequestComponent)
		reused := 0
		for _, c := range mb.Components {
			if c.State == string(runner.ComponentReused) {
				reused++
			}
		}
		r.Stop()
		store.Close()
		// The second build's module-build-macros is always rebuilt (it
		// carries the new build's dist tag); it is not a component.
		b.ReportMetric(float64(sim.Builds()-first-1), "components-built")
		b.ReportMetric(float64(reused), "components-reused")
	}
}
