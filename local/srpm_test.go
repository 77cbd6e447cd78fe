package local_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
)

// makeSRPM builds name-version-1.src.rpm from a tiny spec with
// "rpmbuild -bs" and returns its path.
func makeSRPM(t testing.TB, name, version string) string {
	t.Helper()
	dir := t.TempDir()
	spec := filepath.Join(dir, name+".spec")
	body := strings.Replace(tinySpec(name, "", "echo from the srpm"), "Version: 1\n", "Version: "+version+"\n", 1)
	if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("rpmbuild", "-bs", "--define", "dist %{nil}", "--define", "_topdir "+dir, "--define", "_sourcedir "+dir,
		"--define", "_srcrpmdir "+dir, spec).CombinedOutput()
	if err != nil {
		t.Fatalf("rpmbuild -bs: %v\n%s", err, out)
	}
	p := filepath.Join(dir, name+"-"+version+"-1.src.rpm")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no SRPM: %v\n%s", err, out)
	}
	return p
}

// TestBackend_BuildBatch_FromUploadedSRPM: a component with an SRPM is
// built from it in the sandbox (rpmbuild -ra: the source and binary
// packages get the module's %dist), never from its repository (which
// does not exist here); an SRPM of another package, a path out of the
// uploads directory and a symlink in it fail the component naming the
// SRPM; no uploads directory is rida's own trouble.
func TestBackend_BuildBatch_FromUploadedSRPM(t *testing.T) {
	t.Parallel()
	requireSandbox(t)
	uploads := t.TempDir()
	src := makeSRPM(t, "srpm-pkg", "7.5")
	if err := os.MkdirAll(filepath.Join(uploads, "0a1b"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(uploads, "0a1b", "srpm-pkg-7.5-1.src.rpm"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A symlink in the uploads directory to a file outside it.
	if err := os.Symlink(src, filepath.Join(uploads, "0a1b", "link-7.5-1.src.rpm")); err != nil {
		t.Fatal(err)
	}
	be := mustNew(t, local.Options{Sandbox: local.SandboxOn, Uploads: uploads})
	comp := func(key, srpm string) *runner.Component {
		return &runner.Component{Key: key, Package: key, Repository: "file:///nonexistent/rpms/" + key, Ref: "main", SRPM: srpm}
	}
	good := comp("srpm-pkg", "0a1b/srpm-pkg-7.5-1.src.rpm")
	other := comp("other-pkg", "0a1b/srpm-pkg-7.5-1.src.rpm")
	out := comp("out-pkg", "../escape-1-1.src.rpm")
	link := comp("link", "0a1b/link-7.5-1.src.rpm")
	build := newBuild(31, []*runner.Component{good, other, out, link})
	rec := &recorder{build: build}
	mustBuildBatches(t, be, build, rec, 99)

	if good.State != runner.ComponentComplete || good.NVR != "srpm-pkg-7.5-1"+build.DistTag ||
		!slices.Equal(good.RPMs, []string{"srpm-pkg-0:7.5-1" + build.DistTag + ".noarch", "srpm-pkg-0:7.5-1" + build.DistTag + ".src"}) {
		t.Fatalf("srpm-pkg: %s (%s) nvr %q rpms %v", good.State, good.Reason, good.NVR, good.RPMs)
	}
	logData, _ := os.ReadFile(good.LogPath)
	if !strings.Contains(string(logData), "rpmbuild -ra ") || strings.Contains(string(logData), "+ export ") {
		t.Errorf("log does not show an rpmbuild -ra from the SRPM only:\n%s", logData)
	}
	rpm := filepath.Join(be.BuildDir(build), "repo", "srpm-pkg-7.5-1"+build.DistTag+".noarch.rpm")
	if got := rpmQuery(t, rpm, "%{VERSION} %{DESCRIPTION}"); !strings.HasPrefix(got, "7.5 Test package. Module rida-demo.") {
		t.Errorf("built RPM: %q", got)
	}
	for c, want := range map[*runner.Component]string{
		other: `SRPM 0a1b/srpm-pkg-7.5-1.src.rpm is package "srpm-pkg", not "other-pkg"`,
		out:   `SRPM "../escape-1-1.src.rpm" is not a .src.rpm file inside the uploads directory`,
		link:  "SRPM 0a1b/link-7.5-1.src.rpm: is a symlink",
	} {
		if c.State != runner.ComponentFailed || !strings.Contains(c.Reason, want) {
			t.Errorf("%s: %s %q, want failed with %q", c.Key, c.State, c.Reason, want)
		}
	}

	// Without an uploads directory: infrastructure trouble.
	be2 := mustNew(t, local.Options{Sandbox: local.SandboxOn})
	b2 := newBuild(32, []*runner.Component{comp("srpm-pkg", "0a1b/srpm-pkg-7.5-1.src.rpm")})
	rec2 := &recorder{build: b2}
	if err := be2.Prepare(t.Context(), b2); err != nil {
		t.Fatal(err)
	}
	if err := be2.BuildBatch(t.Context(), b2, b2.Batches[0], rec2.report); err != nil {
		t.Fatal(err)
	}
	if err := be2.BuildBatch(t.Context(), b2, b2.Batches[1], rec2.report); err == nil || !strings.Contains(err.Error(), "no uploads directory") {
		t.Errorf("without Options.Uploads: %v", err)
	}
}
