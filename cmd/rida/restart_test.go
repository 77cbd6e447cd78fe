package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
)

// TestServe_SIGKILLDuringLocalBuild kills 'rida serve' with SIGKILL while
// the last batch builds, restarts it, and checks that the build finishes
// and that no component of a finished batch is built again (rpmbuild runs
// are counted through a wrapper first in PATH).
func TestServe_SIGKILLDuringLocalBuild(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	layout, err := examples.CreateRepos(filepath.Join(dir, "git"), examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// rida-demo-tools (batch 4) sleeps on its first build only.
	marker := filepath.Join(dir, "tools-started")
	tools := layout.Components["rida-demo-tools"]
	spec := "Name: rida-demo-tools\nVersion: 1.0\nRelease: 1%{?dist}\nSummary: slow once\nLicense: MIT\nBuildArch: noarch\n%description\nslow once\n%build\nif [ ! -e " + marker + " ]; then touch " + marker + "; sleep 120; fi\n%files\n"
	if _, err := tools.CommitFiles("slow once", map[string]string{"rida-demo-tools.spec": spec}); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	runs := filepath.Join(dir, "rpmbuild-runs")
	real, err := exec.LookPath("rpmbuild")
	if err != nil {
		t.Fatal(err)
	}
	wrapper := "#!/bin/sh\nfor a; do case \"$a\" in *.spec) basename \"$a\" .spec >> " + runs + ";; esac; done\nexec " + real + " \"$@\"\n"
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "rpmbuild"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "rida.yaml")
	if err := os.WriteFile(cfgPath, []byte("backend: {kind: local, local: {sandbox: \"off\"}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	const secret = "restart-secret"
	path := "PATH=" + bin + ":" + os.Getenv("PATH")
	p := startServe(t, data, secret, "--config", cfgPath, "--", path)
	d := &demo{base: p.base, secret: secret, client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}, timeout: 2 * time.Minute}
	id, err := d.deliverID(context.Background(), "modules/rida-demo", layout.Module, strings.Repeat("0", 40), layout.Module.Commit, "import")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("batch 4 never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()
	before := countRuns(t, runs)

	p2 := startServe(t, data, secret, "--config", cfgPath, "--", path)
	d.base = p2.base
	b, err := d.follow(context.Background(), id)
	if err != nil {
		t.Fatalf("%v\n%s", err, d.out)
	}
	if b["state_name"] != "ready" {
		t.Fatalf("build ended %v: %v", b["state_name"], b["state_reason"])
	}
	after := countRuns(t, runs)
	for key, n := range after {
		want := before[key]
		if key == "rida-demo-tools" {
			want++
		}
		if n != want {
			t.Errorf("rpmbuild ran %d times for %s across the restart, want %d (before the kill: %d)", n, key, want, before[key])
		}
	}
	if before["rida-demo-lib"] != 1 || before["rida-demo-app"] != 1 {
		t.Errorf("runs before the kill: %v", before)
	}
	// The first rida's interrupted build (a shell sleeping in the work
	// tree) did not outlive the resume.
	builds := filepath.Join(data, "builds") + "/"
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && strings.HasPrefix(cwd, builds) {
			t.Errorf("process %s still runs in %s", e.Name(), cwd)
		}
	}
}

func countRuns(t *testing.T, path string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, l := range strings.Fields(string(data)) {
		out[l]++
	}
	return out
}
