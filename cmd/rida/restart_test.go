package main

import (
	"bytes"
	"context"
	"fmt"
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
// batch 3 builds, after one of its two components (rida-demo-app) completed
// and while the other (rida-demo-docs) runs, restarts it, and checks that
// the build finishes and that no component that completed is built again,
// not even the one in the interrupted batch (rpmbuild runs are counted
// through a wrapper first in PATH).
func TestServe_SIGKILLDuringLocalBuild(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	layout, err := examples.CreateRepos(filepath.Join(dir, "git"), examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// rida-demo-docs (batch 3, beside rida-demo-app) sleeps on its first
	// build only.
	marker := filepath.Join(dir, "docs-started")
	docs := layout.Components["rida-demo-docs"]
	spec := "Name: rida-demo-docs\nVersion: 1.0\nRelease: 1%{?dist}\nSummary: slow once\nLicense: MIT\nBuildArch: noarch\n%description\nslow once\n%build\nif [ ! -e " + marker + " ]; then touch " + marker + "; sleep 120; fi\n%files\n"
	if _, err := docs.CommitFiles("slow once", map[string]string{"rida-demo-docs.spec": spec}); err != nil {
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
	// Kill once rida-demo-docs sleeps and rida-demo-app, its batch
	// sibling, is recorded complete.
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(marker); err == nil && componentState(t, d, id, "rida-demo-app") == "complete" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("batch 3 never got half done")
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
	// Every component that completed ran once; the interrupted one twice.
	want := map[string]int{"module-build-macros": 1, "rida-demo-lib": 1, "rida-demo-data": 1, "rida-demo-app": 1, "rida-demo-docs": 2, "rida-demo-tools": 1}
	for key, n := range want {
		if after[key] != n {
			t.Errorf("rpmbuild ran %d times for %s across the restart, want %d (before the kill: %d)", after[key], key, n, before[key])
		}
	}
	if before["rida-demo-app"] != 1 || before["rida-demo-tools"] != 0 {
		t.Errorf("runs before the kill: %v", before)
	}
	// The kept component's packages are in the final repository.
	for _, c := range components(b) {
		if c.State != "complete" {
			t.Errorf("%s ended %s: %s", c.Key, c.State, c.Reason)
		}
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

// componentState reads a component's state in the build of delivery id
// ("" while there is none).
func componentState(t *testing.T, d *demo, delivery uint64, key string) string {
	t.Helper()
	var dv struct {
		Builds []map[string]any `json:"builds"`
	}
	if err := d.get(context.Background(), fmt.Sprintf("/api/v1/deliveries/%d", delivery), &dv); err != nil || len(dv.Builds) == 0 {
		return ""
	}
	var b map[string]any
	if err := d.get(context.Background(), fmt.Sprintf("/module-build-service/1/module-builds/%v?verbose=true", dv.Builds[0]["id"]), &b); err != nil {
		return ""
	}
	for _, c := range components(b) {
		if c.Key == key {
			return c.State
		}
	}
	return ""
}
