package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs 'rida demo' as 'make demo' does: a real 'rida serve'
// subprocess, signed webhooks over real HTTP, real git and rpmbuild.
func TestDemo(t *testing.T) {
	t.Setenv("RIDA_TEST_RUN_MAIN", "1") // the server subprocess is this test binary
	dir := t.TempDir()
	code, out, errOut := runMain(t, "demo", "--dir", dir)
	if code != exitOK {
		log, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s\nserver log:\n%s", code, out, errOut, log)
	}
	for _, want := range []string{
		"→ 202", "build 1: ready", "build 2: ready",
		"rida-demo-lib          reused  reused from build 1",
		"module+el9+2+", // build 2's own dist tag on the rebuilt component
		"/builds/2",     // the build page's URL
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	rpms, _ := filepath.Glob(filepath.Join(dir, "data", "builds", "*-2", "repo", "rida-demo-*.noarch.rpm"))
	if len(rpms) != 5 {
		t.Errorf("build 2's repository holds %d component RPMs, want 5 (4 reused + 1 rebuilt): %v", len(rpms), rpms)
	}
}
