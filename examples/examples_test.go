package examples_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"gopkg.in/yaml.v3"

	"github.com/rida-build/rida/examples"
)

func TestComponents_MatchModulemd(t *testing.T) {
	var doc struct {
		Document string `yaml:"document"`
		Version  int    `yaml:"version"`
		Data     struct {
			Name       string `yaml:"name"`
			Stream     string `yaml:"stream"`
			Components struct {
				RPMs map[string]struct {
					Repository string `yaml:"repository"`
					Ref        string `yaml:"ref"`
					Buildorder int    `yaml:"buildorder"`
				} `yaml:"rpms"`
			} `yaml:"components"`
		} `yaml:"data"`
	}
	if err := yaml.Unmarshal(examples.ModuleYAML(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Document != "modulemd" || doc.Version != 2 || doc.Data.Name != examples.ModuleName || doc.Data.Stream != examples.ModuleStream {
		t.Fatalf("unexpected header: %+v", doc)
	}
	var keys []string
	orders := map[int]bool{}
	for k, c := range doc.Data.Components.RPMs {
		keys = append(keys, k)
		orders[c.Buildorder] = true
		if c.Repository != "" || c.Ref != examples.ComponentBranch {
			t.Errorf("component %s: repository %q ref %q, want none and %q", k, c.Repository, c.Ref, examples.ComponentBranch)
		}
	}
	slices.Sort(keys)
	if !slices.Equal(keys, examples.Components()) {
		t.Errorf("modulemd components %v != Components() %v", keys, examples.Components())
	}
	if len(orders) != 3 {
		t.Errorf("want 3 buildorder values (3 batches), got %v", orders)
	}

	// rpms/ holds the components of both modules, each in one module only.
	entries, err := fs.ReadDir(examples.FS(), "rpms")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	both := append(slices.Clone(examples.Components()), examples.ExtrasComponents()...)
	slices.Sort(both)
	if !slices.Equal(dirs, both) || len(slices.Compact(slices.Clone(both))) != len(both) {
		t.Errorf("rpms/ dirs %v != Components() %v + ExtrasComponents() %v", dirs, examples.Components(), examples.ExtrasComponents())
	}
}

// TestExtras_Modulemd: rida-demo-extras buildrequires and requires
// rida-demo:1.0, and its component BuildRequires a package rida-demo's
// components build, so it builds only against a rida-demo build.
func TestExtras_Modulemd(t *testing.T) {
	var doc struct {
		Data struct {
			Name         string `yaml:"name"`
			Stream       string `yaml:"stream"`
			Dependencies []struct {
				BuildRequires map[string][]string `yaml:"buildrequires"`
				Requires      map[string][]string `yaml:"requires"`
			} `yaml:"dependencies"`
			Components struct {
				RPMs map[string]struct {
					Repository string `yaml:"repository"`
					Ref        string `yaml:"ref"`
				} `yaml:"rpms"`
			} `yaml:"components"`
		} `yaml:"data"`
	}
	if err := yaml.Unmarshal(examples.ExtrasYAML(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Data.Name != examples.ExtrasName || doc.Data.Stream != examples.ExtrasStream {
		t.Fatalf("extras modulemd: %s:%s", doc.Data.Name, doc.Data.Stream)
	}
	want := map[string][]string{"platform": {"el9"}, examples.ModuleName: {examples.ModuleStream}}
	if len(doc.Data.Dependencies) != 1 || !reflect.DeepEqual(doc.Data.Dependencies[0].BuildRequires, want) ||
		!reflect.DeepEqual(doc.Data.Dependencies[0].Requires, want) {
		t.Errorf("extras dependencies %+v, want buildrequires and requires %v", doc.Data.Dependencies, want)
	}
	if len(examples.ExtrasComponents()) == 0 {
		t.Fatal("extras has no components")
	}
	for _, key := range examples.ExtrasComponents() {
		if c := doc.Data.Components.RPMs[key]; c.Repository != "" || c.Ref != examples.ComponentBranch {
			t.Errorf("component %s: repository %q ref %q", key, c.Repository, c.Ref)
		}
	}
	spec, err := fs.ReadFile(examples.FS(), "rpms/rida-demo-extras/rida-demo-extras.spec")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(spec), "\nBuildRequires:  rida-demo-lib\n") || !slices.Contains(examples.Components(), "rida-demo-lib") {
		t.Errorf("rida-demo-extras.spec does not BuildRequire rida-demo's rida-demo-lib")
	}
	if out, err := exec.Command("modulemd-validator", "--version").CombinedOutput(); err == nil {
		f := filepath.Join(t.TempDir(), examples.ExtrasFile)
		if err := os.WriteFile(f, examples.ExtrasYAML(), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err = exec.Command("modulemd-validator", f).CombinedOutput(); err != nil {
			t.Errorf("modulemd-validator %s: %v\n%s", examples.ExtrasFile, err, out)
		}
	}
}

func TestCreateRepos(t *testing.T) {
	dir := t.TempDir()
	l, err := examples.CreateRepos(dir, examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(r examples.Repo, branch, file string) {
		t.Helper()
		repo, err := git.PlainOpen(r.Path)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := repo.Reference(plumbing.NewBranchReferenceName(branch), true)
		if err != nil {
			t.Fatalf("%s: branch %s: %v", r.Path, branch, err)
		}
		if ref.Hash().String() != r.Commit || r.Branch != branch {
			t.Errorf("%s: branch %s at %s, layout says %s@%s", r.Path, branch, ref.Hash(), r.Branch, r.Commit)
		}
		if _, err := os.Stat(filepath.Join(r.Path, file)); err != nil {
			t.Error(err)
		}
		if !strings.HasPrefix(r.URL, "file:///") {
			t.Errorf("URL %q is not file:///", r.URL)
		}
		// The real git client agrees (and can clone the URL).
		out, err := exec.Command("git", "ls-remote", r.URL).CombinedOutput()
		if err != nil || !strings.Contains(string(out), r.Commit+"\trefs/heads/"+branch) {
			t.Errorf("git ls-remote %s: %v\n%s", r.URL, err, out)
		}
	}
	check(l.Module, examples.ModuleBranch, examples.ModuleFile)
	if len(l.Components) != len(examples.Components()) {
		t.Fatalf("got %d component repos, want %d", len(l.Components), len(examples.Components()))
	}
	for key, r := range l.Components {
		check(r, examples.ComponentBranch, key+".spec")
		if r.URL != l.ComponentURL(key) {
			t.Errorf("component %s URL %s != ComponentURL %s", key, r.URL, l.ComponentURL(key))
		}
	}
	check(l.Extras, examples.ExtrasBranch, examples.ExtrasFile)
	if l.Extras.Path != filepath.Join(l.Dir, "modules", examples.ExtrasName) {
		t.Errorf("extras module repository at %s", l.Extras.Path)
	}
	if len(l.ExtrasComponents) != len(examples.ExtrasComponents()) {
		t.Fatalf("got %d extras component repos, want %d", len(l.ExtrasComponents), len(examples.ExtrasComponents()))
	}
	for key, r := range l.ExtrasComponents {
		check(r, examples.ComponentBranch, key+".spec")
		if r.URL != l.ComponentURL(key) {
			t.Errorf("extras component %s URL %s != ComponentURL %s", key, r.URL, l.ComponentURL(key))
		}
		if _, dup := l.Components[key]; dup {
			t.Errorf("component %s is in both modules", key)
		}
	}
	if fi, err := os.Stat(filepath.Join(l.Components["rida-demo-app"].Path, "rida-demo")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("rida-demo script not executable: %v %v", fi, err)
	}

	// Same files, same options: same commits (reproducible hashes).
	l2, err := examples.CreateRepos(t.TempDir(), examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l2.Module.Commit != l.Module.Commit || l2.Components["rida-demo-lib"].Commit != l.Components["rida-demo-lib"].Commit {
		t.Errorf("commit hashes not reproducible")
	}
}
