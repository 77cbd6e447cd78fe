package local_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/scm/scmtest"
)

// TestBackend_SourcesFromMirror: a component's sources come from the
// scm.Mirrors given as Options.Sources: its tree at the commit, with git's
// executable bit, without .git or history; a commit already in the mirror
// builds with the repository unreachable (nothing is fetched). A
// successful Finish removes the work directories and keeps logs and
// results; a build that has not finished keeps them (AdoptBatch needs them).
func TestBackend_SourcesFromMirror(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	mirrors, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(base, "mirrors")})
	if err != nil {
		t.Fatal(err)
	}
	src := scmtest.History(t, filepath.Join(base, "rpms", "hist"), "main", 50, 5, map[string]string{
		"hist.spec": tinySpec("hist", "Source0: tool.sh", "test -x %{SOURCE0} || { echo tool.sh lost its executable bit; exit 1; }\n"+
			"test ! -e %{_sourcedir}/.git || { echo history was copied; exit 1; }"),
		"tool.sh": "#!/bin/sh\n",
	})
	src.Git("update-index", "--chmod=+x", "tool.sh")
	commit := src.Commit("tool.sh executable", nil)
	if _, err := mirrors.Fetch(t.Context(), src.URL()); err != nil { // the planner's fetch on push
		t.Fatal(err)
	}
	if err := os.Rename(src.Dir, src.Dir+".away"); err != nil {
		t.Fatal(err)
	}

	be := mustNew(t, local.Options{Sources: mirrors})
	comp := &runner.Component{Key: "hist", Package: "hist", Repository: src.URL(), Ref: "main", Commit: commit}
	build := newBuild(41, []*runner.Component{comp})
	rec := &recorder{build: build}
	mustBuildBatches(t, be, build, rec, 2)
	if comp.State != runner.ComponentComplete {
		t.Fatalf("hist: %s %s", comp.State, comp.Reason)
	}
	dir := be.BuildDir(build)
	srcDir := filepath.Join(dir, "work", "hist", "src")
	entries, err := os.ReadDir(srcDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "f000.txt f001.txt f002.txt f003.txt f004.txt hist.spec tool.sh" {
		t.Errorf("sources: %s", got)
	}
	if fi, err := os.Stat(filepath.Join(srcDir, "tool.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("tool.sh: %v %v, want mode 0755", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "work", "hist", "rpmbuild")); err != nil {
		t.Errorf("before Finish the work directory must stay (resume adopts it): %v", err)
	}
	if _, err := be.Finish(t.Context(), build); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "work")); !os.IsNotExist(err) {
		t.Errorf("after a successful Finish, work/ is still there (%v)", err)
	}
	for _, keep := range []string{"repo/modules.yaml", "logs/hist.log", "repo/hist-1-1" + build.DistTag + ".noarch.rpm"} {
		if _, err := os.Stat(filepath.Join(dir, keep)); err != nil {
			t.Errorf("after Finish: %v", err)
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "logs", "hist.log"))
	if !strings.Contains(string(log), "+ export "+src.URL()+" at "+commit) {
		t.Errorf("the log does not show the export:\n%s", log)
	}
}
