package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs 'rida demo' as 'make demo' does: a real 'rida serve'
// subprocess, signed webhooks over real HTTP, real git and rpmbuild.
// Builds: 1 rida-demo, 2 rida-demo-extras (against 1), 3 rida-demo after a
// component push, 4 rida-demo-extras cascaded from 3 (against 3).
func TestDemo(t *testing.T) {
	t.Setenv("RIDA_TEST_RUN_MAIN", "1") // the server subprocess is this test binary
	dir := t.TempDir()
	code, out, errOut := runMain(t, "demo", "--dir", dir)
	if code != exitOK {
		log, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s\nserver log:\n%s", code, out, errOut, log)
	}
	for _, want := range []string{
		"→ 202", "build 1: ready", "build 2: ready", "build 3: ready", "build 4: ready",
		"build 2 rida-demo-extras:1.0  ready",
		"build 3 rida-demo:1.0  ready",
		"build 4 rida-demo-extras:1.0  ready",
		"rida-demo-lib          reused  reused from build 1",
		"module+el9+3+", // build 3's own dist tag on the rebuilt component
		// The cascaded extras build rebuilds its component, with its own dist tag.
		"batch 2  rida-demo-extras       complete  rida-demo-extras-1.0-1.module+el9+4+",
		// Its cause, from its request.
		"rida-demo-extras build 4, cause: request 4 (cascade): rida-demo:1.0 build 3 became ready (cascade: rida-demo-extras:1.0 buildrequires rida-demo:1.0)",
		"/builds/2", "/builds/4", // the build pages' URLs
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	for _, re := range []string{
		`build 2 rida-demo-extras:1\.0 was built against rida-demo:1\.0:\d+:[0-9a-f]{8} = rida-demo build 1 \(`,
		`build 4 rida-demo-extras:1\.0 was built against rida-demo:1\.0:\d+:[0-9a-f]{8} = rida-demo build 3 \(`,
		`(?m)^    4 +rida-demo-extras:1\.0 +ready +1 built +rida-demo build 3 +cascade: rida-demo:1\.0 build 3 became ready$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("demo output does not match %s:\n%s", re, out)
		}
	}
	rpms, _ := filepath.Glob(filepath.Join(dir, "data", "builds", "rida-demo-1.0-*-3", "repo", "rida-demo-*.noarch.rpm"))
	if len(rpms) != 5 {
		t.Errorf("build 3's repository holds %d component RPMs, want 5 (4 reused + 1 rebuilt): %v", len(rpms), rpms)
	}
	for _, id := range []string{"2", "4"} {
		rpms, _ := filepath.Glob(filepath.Join(dir, "data", "builds", "rida-demo-extras-1.0-*-"+id, "repo", "rida-demo-extras-1.0-1.module+el9+"+id+"+*.noarch.rpm"))
		if len(rpms) != 1 {
			t.Errorf("rida-demo-extras build %s's repository: %v, want its rida-demo-extras RPM", id, rpms)
		}
	}
}
