package local_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/scm/scmtest"
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

// BenchmarkModuleBuild_ComponentHistory: a steady-state module build that
// rebuilds one component, whose repository has 1 or 20,000 commits (300
// files of about 2 KiB, made with git fast-import). One op: a new commit
// is pushed to the component, its mirror is fetched (what the planner does
// on push), then the whole module build runs on a new build directory:
// Prepare, module-build-macros, the component (exported from the mirror,
// rpmbuild, createrepo_c), Finish. The ratio of the two is the point;
// peak-RSS-MiB is this process's VmHWM over the sub-benchmark (reset
// through /proc/self/clear_refs first), rpmbuild's own processes aside.
func BenchmarkModuleBuild_ComponentHistory(b *testing.B) {
	for _, commits := range []int{1, 20000} {
		b.Run(fmt.Sprintf("commits=%d", commits), func(b *testing.B) {
			base := b.TempDir()
			src := scmtest.History(b, filepath.Join(base, "rpms", "hist"), "main", commits, 300,
				map[string]string{"hist.spec": tinySpec("hist", "", "")})
			mirrors, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(base, "mirrors"), Logger: discardLogger()})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := mirrors.Fetch(b.Context(), src.URL()); err != nil { // the mirror exists: steady state
				b.Fatal(err)
			}
			be := mustNew(b, local.Options{Sources: mirrors, Logger: discardLogger()})
			debug.FreeOSMemory() // the setup's garbage (fast-import stream, first clone) is not the build's
			resetPeakRSS(b)
			for i := 0; b.Loop(); i++ {
				commit := src.Commit(fmt.Sprintf("bench %d", i), map[string]string{"f000.txt": fmt.Sprintf("change %d\n", i)})
				if _, err := mirrors.Fetch(b.Context(), src.URL()); err != nil {
					b.Fatal(err)
				}
				comp := &runner.Component{Key: "hist", Package: "hist", Repository: src.URL(), Ref: "main", Commit: commit}
				build := newBuild(int64(1000+i), []*runner.Component{comp})
				rec := &recorder{build: build}
				mustBuildBatches(b, be, build, rec, 2)
				if comp.State != runner.ComponentComplete {
					b.Fatalf("hist: %s %s", comp.State, comp.Reason)
				}
				if _, err := be.Finish(b.Context(), build); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(peakRSSMiB(b), "peak-RSS-MiB")
		})
	}
}

// resetPeakRSS resets the process's VmHWM (Linux: "5" to clear_refs).
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak RSS not reset: %v", err)
	}
}

// peakRSSMiB reads VmHWM from /proc/self/status.
func peakRSSMiB(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
