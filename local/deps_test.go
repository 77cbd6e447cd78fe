package local_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
)

// liblowSpec builds package liblow and its sub-package liblow-extra.
const liblowSpec = `Name: liblow
Version: 1
Release: 1%{?dist}
Summary: lower library
License: MIT
BuildArch: noarch

%description
Lower library of module %{?_module_name}.

%package extra
Summary: extras of liblow

%description extra
Extras.

%build
echo low > low.txt

%install
install -D -m 0644 low.txt %{buildroot}/usr/share/liblow/low.txt
install -D -m 0644 low.txt %{buildroot}/usr/share/liblow-extra/low.txt

%files
/usr/share/liblow/low.txt

%files extra
/usr/share/liblow-extra/low.txt
`

// moduleBuild returns a build of module name with the given component
// batches (batch 1 is module-build-macros).
func moduleBuild(id int64, name string, batches ...[]*runner.Component) *runner.Build {
	b := newBuild(id, batches...)
	b.Name, b.Stream, b.Context = name, "1", "c0ffee"+string(rune('0'+id%10))
	return b
}

// lowerModule builds module "lower" (component liblow) to the end and
// returns it, its result and the component.
func lowerModule(t *testing.T) (*runner.Build, *runner.Result, *runner.Component) {
	t.Helper()
	be := mustNew(t, local.Options{})
	liblow := specRepo(t, "liblow", liblowSpec, nil)
	lower := moduleBuild(1, "lower", []*runner.Component{liblow})
	rec := &recorder{build: lower}
	mustBuildBatches(t, be, lower, rec, 99)
	if liblow.State != runner.ComponentComplete {
		t.Fatalf("liblow: state %s, reason %s", liblow.State, liblow.Reason)
	}
	res, err := be.Finish(t.Context(), lower)
	if err != nil {
		t.Fatal(err)
	}
	return lower, res, liblow
}

// lowerDep is the runner.ModuleDep of module build lower, as the runner
// resolves it.
func lowerDep(lower *runner.Build, resultDir string, rpms []string, filtered ...string) runner.ModuleDep {
	return runner.ModuleDep{
		Name: lower.Name, Stream: lower.Stream, Version: lower.Version, Context: lower.Context,
		BuildID: uint64(lower.ID), ResultDir: resultDir, RPMs: slices.Clone(rpms), Filtered: filtered, Direct: true,
	}
}

// rpmdbPackages lists the names in a build's rpm database, sorted, one
// entry per installed header.
func rpmdbPackages(t *testing.T, be *local.Backend, build *runner.Build) []string {
	t.Helper()
	out, err := exec.Command("rpm", "--dbpath", filepath.Join(be.BuildDir(build), "rpmdb"), "-qa", "--qf", `%{NAME}\n`).Output()
	if err != nil {
		t.Fatalf("rpm -qa: %v", err)
	}
	names := strings.Fields(string(out))
	slices.Sort(names)
	return names
}

// A module built against another module: its component's BuildRequires
// are checked (no nodeps) against the dependency's packages, minus the
// dependency's filtered ones; without the dependency they fail.
func TestBackend_Deps_BuildRequiresFromModuleDep(t *testing.T) {
	t.Parallel()
	lower, res, liblow := lowerModule(t)
	if !slices.ContainsFunc(liblow.RPMs, func(n string) bool { return strings.HasPrefix(n, "liblow-extra-0:") }) {
		t.Fatalf("liblow built no liblow-extra: %v", liblow.RPMs)
	}
	upperSpec := tinySpec("upper-app", "BuildRequires: liblow\nBuildRequires: liblow-extra", "")

	for _, tc := range []struct {
		name     string
		deps     []runner.ModuleDep
		wantOK   bool
		wantInDB []string // packages from the dep in the rpmdb
		notInDB  []string
	}{
		{
			name:     "result dir is the repository",
			deps:     []runner.ModuleDep{lowerDep(lower, res.Dir, liblow.RPMs)},
			wantOK:   true,
			wantInDB: []string{"liblow", "liblow-extra"},
		},
		{
			name:     "result dir holds repo",
			deps:     []runner.ModuleDep{lowerDep(lower, filepath.Dir(res.Dir), liblow.RPMs)},
			wantOK:   true,
			wantInDB: []string{"liblow", "liblow-extra"},
		},
		{
			name:     "filtered",
			deps:     []runner.ModuleDep{lowerDep(lower, res.Dir, liblow.RPMs, "liblow")},
			wantInDB: []string{"liblow-extra"},
			notInDB:  []string{"liblow"},
		},
		{
			name:    "no deps",
			notInDB: []string{"liblow", "liblow-extra"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := mustNew(t, local.Options{}) // NoDeps false: BuildRequires checked
			app := specRepo(t, "upper-app", upperSpec, nil)
			upper := moduleBuild(2, "upper", []*runner.Component{app})
			upper.Deps = tc.deps
			// Prepare twice, and once more from a fresh backend (a
			// restarted rida adopting the build): the same packages, once.
			for range 2 {
				if err := be.Prepare(t.Context(), upper); err != nil {
					t.Fatal(err)
				}
			}
			if err := mustNew(t, local.Options{WorkDir: filepath.Dir(be.BuildDir(upper))}).Prepare(t.Context(), upper); err != nil {
				t.Fatal(err)
			}
			rec := &recorder{build: upper}
			mustBuildBatches(t, be, upper, rec, 99) // prepares a fourth time

			inDB := rpmdbPackages(t, be, upper)
			for _, n := range tc.wantInDB {
				if c := countOf(inDB, n); c != 1 {
					t.Errorf("rpmdb has %s %d times, want once: %v", n, c, inDB)
				}
			}
			for _, n := range tc.notInDB {
				if slices.Contains(inDB, n) {
					t.Errorf("rpmdb has %s: %v", n, inDB)
				}
			}
			if slices.Contains(inDB, "liblow-src") || countOf(inDB, "module-build-macros") != 1 {
				t.Errorf("rpmdb: %v, want one module-build-macros (upper's own)", inDB)
			}

			deps, err := os.ReadFile(filepath.Join(be.BuildDir(upper), "deps.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.deps) > 0 && !strings.Contains(string(deps), lower.NSVC()+" build 1 (direct)") {
				t.Errorf("deps.txt lacks %s:\n%s", lower.NSVC(), deps)
			}

			t.Logf("reason: %s", app.Reason)
			if tc.wantOK {
				if app.State != runner.ComponentComplete {
					t.Fatalf("upper-app: state %s, reason %s", app.State, app.Reason)
				}
				if !strings.Contains(string(deps), "repository: "+res.Dir) {
					t.Errorf("deps.txt does not name the repository %s:\n%s", res.Dir, deps)
				}
				log, _ := os.ReadFile(app.LogPath)
				if !strings.Contains(string(log), "build root: this module's earlier batches and the packages of "+lower.NSVC()) {
					t.Errorf("component log does not name the module dependency:\n%s", log)
				}
				// The dependency's packages are not part of upper's output.
				out, err := be.Finish(t.Context(), upper)
				if err != nil {
					t.Fatal(err)
				}
				if m, _ := filepath.Glob(filepath.Join(out.Dir, "liblow*")); len(m) != 0 {
					t.Errorf("upper's repository has lower's packages: %v", m)
				}
				return
			}
			if app.State != runner.ComponentFailed {
				t.Fatalf("upper-app: state %s, want failed", app.State)
			}
			if want := "error: Failed build dependencies: liblow is needed by upper-app-1-1"; !strings.Contains(app.Reason, want) {
				t.Errorf("reason %q lacks %q", app.Reason, want)
			}
			if strings.Contains(app.Reason, "infrastructure") {
				t.Errorf("reason %q: a missing BuildRequires is the component's failure", app.Reason)
			}
		})
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// Prepare refuses dependencies whose packages cannot be read safely, and
// accepts those that need nothing.
func TestBackend_Prepare_DepErrors(t *testing.T) {
	t.Parallel()
	lower, res, liblow := lowerModule(t)
	var liblowFile string
	for _, n := range liblow.RPMs {
		if strings.HasPrefix(n, "liblow-0:") && !strings.HasSuffix(n, ".src") {
			liblowFile = nevraFile(n)
		}
	}
	if liblowFile == "" {
		t.Fatalf("no liblow package in %v", liblow.RPMs)
	}
	srcOnly := slices.DeleteFunc(slices.Clone(liblow.RPMs), func(n string) bool { return !strings.HasSuffix(n, ".src") })

	// A result directory lacking liblow's file.
	missing := t.TempDir()
	for _, n := range liblow.RPMs {
		if f := nevraFile(n); f != liblowFile {
			copyTestFile(t, filepath.Join(res.Dir, f), filepath.Join(missing, f))
		}
	}
	// One whose liblow file is a symlink to a file outside it.
	outside := filepath.Join(t.TempDir(), liblowFile)
	copyTestFile(t, filepath.Join(res.Dir, liblowFile), outside)
	linked := t.TempDir()
	for _, n := range liblow.RPMs {
		if f := nevraFile(n); f != liblowFile {
			copyTestFile(t, filepath.Join(res.Dir, f), filepath.Join(linked, f))
		}
	}
	if err := os.Symlink(outside, filepath.Join(linked, liblowFile)); err != nil {
		t.Fatal(err)
	}
	// A build directory whose repo/ is a symlink to elsewhere.
	repoLink := t.TempDir()
	if err := os.Symlink(res.Dir, filepath.Join(repoLink, "repo")); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		dep  runner.ModuleDep
		want []string // in the error; none: Prepare succeeds
	}{
		{name: "file missing", dep: lowerDep(lower, missing, liblow.RPMs),
			want: []string{lower.NSVC(), liblowFile, "is missing from " + missing}},
		{name: "result dir gone", dep: lowerDep(lower, filepath.Join(missing, "gone"), liblow.RPMs),
			want: []string{lower.NSVC(), "gone"}},
		{name: "symlinked file", dep: lowerDep(lower, linked, liblow.RPMs),
			want: []string{lower.NSVC(), liblowFile, "symlink"}},
		{name: "symlinked repo", dep: lowerDep(lower, repoLink, liblow.RPMs),
			want: []string{lower.NSVC(), "repo is a symlink"}},
		{name: "no result dir", dep: lowerDep(lower, "", liblow.RPMs),
			want: []string{lower.NSVC(), "no result directory"}},
		{name: "hostile package name", dep: lowerDep(lower, res.Dir, []string{"x-0:1-1/../../../etc/passwd.noarch"}),
			want: []string{lower.NSVC(), "does not name a file"}},
		{name: "no result dir, source RPMs only", dep: lowerDep(lower, "", srcOnly)},
		{name: "no result dir, every binary filtered", dep: lowerDep(lower, "", liblow.RPMs, "liblow", "liblow-extra")},
		{name: "filtered file may be missing", dep: lowerDep(lower, missing, liblow.RPMs, "liblow")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := mustNew(t, local.Options{Logger: discardLogger()})
			upper := moduleBuild(3, "upper", []*runner.Component{specRepo(t, "upper-app", tinySpec("upper-app", "", ""), nil)})
			upper.Deps = []runner.ModuleDep{tc.dep}
			err := be.Prepare(t.Context(), upper)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if inDB := rpmdbPackages(t, be, upper); slices.Contains(inDB, "liblow") {
					t.Errorf("rpmdb has liblow: %v", inDB)
				}
				return
			}
			if err == nil {
				t.Fatal("Prepare succeeded")
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, local.ErrDepUnavailable) {
				t.Errorf("error is not ErrDepUnavailable: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if inDB := rpmdbPackages(t, be, upper); len(inDB) != 0 {
				t.Errorf("rpmdb not empty after a refused dependency: %v", inDB)
			}
		})
	}
}

func copyTestFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
