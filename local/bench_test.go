package local_test

import (
	"fmt"
	"testing"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
)

// BenchmarkBuildBatch_Parallel builds one batch of 8 independent tiny
// noarch components (checkout, rpmbuild -ba, rpm -qp, rpmdb install,
// createrepo_c) with Parallel 1 and 2 (sandboxed when bwrap works),
// and Parallel 2 without sandbox to show bwrap's cost. One op is one whole batch.
func BenchmarkBuildBatch_Parallel(b *testing.B) {
	var comps []*runner.Component
	for i := range 8 {
		name := fmt.Sprintf("bench-%d", i)
		comps = append(comps, specRepo(b, name, tinySpec(name, "", ""), nil))
	}
	for i, bc := range []struct {
		parallel int
		sandbox  string
	}{{1, local.SandboxAuto}, {2, local.SandboxAuto}, {2, local.SandboxOff}} {
		b.Run(fmt.Sprintf("parallel=%d/sandbox=%s", bc.parallel, bc.sandbox), func(b *testing.B) {
			be := mustNew(b, local.Options{Parallel: bc.parallel, Sandbox: bc.sandbox, Logger: discardLogger()})
			build := newBuild(int64(100+i), comps)
			rec := &recorder{build: build}
			mustBuildBatches(b, be, build, rec, 1)
			for b.Loop() {
				if err := be.BuildBatch(b.Context(), build, build.Batches[1], rec.report); err != nil {
					b.Fatal(err)
				}
			}
			for _, c := range comps {
				if c.State != runner.ComponentComplete {
					b.Fatalf("%s: %s %s", c.Key, c.State, c.Reason)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/8, "ms/component")
		})
	}
}
