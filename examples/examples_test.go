package examples_test

import (
	"os"
	"os/exec"
	"path/filepath"
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
		t.Errorf("modulemd components %v != rpms/ dirs %v", keys, examples.Components())
	}
	if len(orders) != 3 {
		t.Errorf("want 3 buildorder values (3 batches), got %v", orders)
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
