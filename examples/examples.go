// Package examples ships rida's demonstration module and turns it into real
// git repositories, so a demo or a test can build a module end to end
// without network access or a source checkout.
//
// The files are embedded: module/rida-demo.yaml is the module (stream v2
// modulemd), module/rida-demo-extras.yaml a second module that
// buildrequires rida-demo:1.0, and rpms/<component>/ holds each component's
// spec and sources (of both modules). CreateRepos lays them out the way a
// forge would serve them:
//
//	<dir>/modules/rida-demo          branch "1.0" (the stream, as in MBS: stream = branch), rida-demo.yaml at the root
//	<dir>/modules/rida-demo-extras   branch "1.0", rida-demo-extras.yaml at the root
//	<dir>/rpms/<component>           branch "main" (the components' ref: main), <component>.spec at the root
//
// The modulemd's components carry no repository; a caller resolves them as
// Layout.ComponentURL(key), i.e. <ComponentsBaseURL>/<key>.
package examples

import (
	"cmp"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"gopkg.in/yaml.v3"
)

//go:embed README.md module rpms
var files embed.FS

//go:embed config/rida.yaml
var defaultConfig []byte

// DefaultConfig returns the commented example configuration of rida serve,
// which is also its built-in default.
func DefaultConfig() []byte { return append([]byte(nil), defaultConfig...) }

const (
	// ModuleName and ModuleStream are the demo module's name and stream.
	ModuleName   = "rida-demo"
	ModuleStream = "1.0"
	// ModuleFile is the modulemd's file name in the module repository.
	ModuleFile = ModuleName + ".yaml"
	// ModuleBranch is the module repository's branch; it equals the stream.
	ModuleBranch = ModuleStream
	// ComponentBranch is the branch of every component repository; the
	// modulemd's components use "ref: main".
	ComponentBranch = "main"

	// ExtrasName and ExtrasStream are the second module's name and stream:
	// it buildrequires (and requires) ModuleName:ModuleStream, and its
	// component BuildRequires a package of that module.
	ExtrasName   = "rida-demo-extras"
	ExtrasStream = "1.0"
	// ExtrasFile is its modulemd's file name; ExtrasBranch its branch.
	ExtrasFile   = ExtrasName + ".yaml"
	ExtrasBranch = ExtrasStream
)

// FS returns the embedded example tree (README.md, module/, rpms/).
func FS() fs.FS { return files }

// ModuleYAML returns the demo modulemd as shipped.
func ModuleYAML() []byte {
	b, err := files.ReadFile("module/" + ModuleFile)
	if err != nil {
		panic("examples: embedded module file missing: " + err.Error())
	}
	return b
}

// ExtrasYAML returns the second module's modulemd (rida-demo-extras) as
// shipped.
func ExtrasYAML() []byte {
	b, err := files.ReadFile("module/" + ExtrasFile)
	if err != nil {
		panic("examples: embedded module file missing: " + err.Error())
	}
	return b
}

// Components returns the component keys of the demo module (rida-demo),
// sorted: those its modulemd lists, not every directory of rpms/.
func Components() []string { return componentsOf(ModuleYAML()) }

// ExtrasComponents returns the component keys of rida-demo-extras, sorted.
func ExtrasComponents() []string { return componentsOf(ExtrasYAML()) }

// componentsOf returns the keys of data.components.rpms of an embedded
// modulemd, sorted.
func componentsOf(doc []byte) []string {
	var md struct {
		Data struct {
			Components struct {
				RPMs map[string]yaml.Node `yaml:"rpms"`
			} `yaml:"components"`
		} `yaml:"data"`
	}
	if err := yaml.Unmarshal(doc, &md); err != nil {
		panic("examples: embedded modulemd unreadable: " + err.Error())
	}
	names := make([]string, 0, len(md.Data.Components.RPMs))
	for k := range md.Data.Components.RPMs {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Options tunes CreateRepos.
type Options struct {
	// Author names the commits' author and committer. Default
	// "rida examples <examples@rida.invalid>" (split as Name/Email below).
	AuthorName  string
	AuthorEmail string
	// When dates the commits. Default 2024-01-01T00:00:00Z, so that the
	// same files always give the same commit hashes.
	When time.Time
}

// Repo is one created git repository.
type Repo struct {
	// Path is the repository's directory; URL is its file:// URL.
	Path string
	URL  string
	// Branch is the only branch; Commit is its head, a full hash.
	Branch string
	Commit string
}

// Layout is what CreateRepos made.
type Layout struct {
	// Dir is the directory passed to CreateRepos.
	Dir string
	// Module is the module repository (branch ModuleBranch).
	Module Repo
	// ComponentsBaseURL is the file:// URL of <Dir>/rpms; component <key>
	// lives at ComponentsBaseURL + "/" + key.
	ComponentsBaseURL string
	// Components maps each component key of the demo module (Components())
	// to its repository.
	Components map[string]Repo
	// Extras is the second module's repository, <Dir>/modules/rida-demo-extras
	// (branch ExtrasBranch); ExtrasComponents maps each of its component
	// keys (ExtrasComponents()) to its repository under <Dir>/rpms.
	Extras           Repo
	ExtrasComponents map[string]Repo
}

// ComponentURL returns the repository URL of component key.
func (l *Layout) ComponentURL(key string) string {
	return l.ComponentsBaseURL + "/" + key
}

// CreateRepos writes the example modules (rida-demo and rida-demo-extras)
// and their components as git repositories under dir (which must exist),
// one commit each.
func CreateRepos(dir string, opts Options) (*Layout, error) {
	opts.AuthorName = cmp.Or(opts.AuthorName, "rida examples")
	opts.AuthorEmail = cmp.Or(opts.AuthorEmail, "examples@rida.invalid")
	opts.When = cmp.Or(opts.When, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))

	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("examples: create repos in %s: %w", dir, err)
	}
	l := &Layout{
		Dir:               abs,
		ComponentsBaseURL: fileURL(filepath.Join(abs, "rpms")),
		Components:        map[string]Repo{},
		ExtrasComponents:  map[string]Repo{},
	}

	mod, err := createRepo(filepath.Join(abs, "modules", ModuleName), ModuleBranch,
		map[string]string{ModuleFile: "module/" + ModuleFile}, opts)
	if err != nil {
		return nil, err
	}
	l.Module = mod
	if l.Extras, err = createRepo(filepath.Join(abs, "modules", ExtrasName), ExtrasBranch,
		map[string]string{ExtrasFile: "module/" + ExtrasFile}, opts); err != nil {
		return nil, err
	}

	for _, set := range []struct {
		keys []string
		into map[string]Repo
	}{{Components(), l.Components}, {ExtrasComponents(), l.ExtrasComponents}} {
		for _, key := range set.keys {
			r, err := createComponentRepo(abs, key, opts)
			if err != nil {
				return nil, err
			}
			set.into[key] = r
		}
	}
	return l, nil
}

// createComponentRepo creates <abs>/rpms/<key> from the embedded
// rpms/<key>/.
func createComponentRepo(abs, key string, opts Options) (Repo, error) {
	srcs := map[string]string{}
	err := fs.WalkDir(files, "rpms/"+key, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("rpms/"+key, p)
		srcs[filepath.ToSlash(rel)] = p
		return nil
	})
	if err != nil {
		return Repo{}, fmt.Errorf("examples: read embedded component %s: %w", key, err)
	}
	return createRepo(filepath.Join(abs, "rpms", key), ComponentBranch, srcs, opts)
}

// createRepo initialises a repository at dir on branch, writes files
// (repository path → embedded path) and commits them.
func createRepo(dir, branch string, srcs map[string]string, opts Options) (Repo, error) {
	return writeRepo(dir, branch, srcs, func(name string) ([]byte, error) { return files.ReadFile(srcs[name]) }, opts)
}

// writeRepo initialises a repository at dir on branch and commits the files
// named by the keys of names, their content read with read.
func writeRepo(dir, branch string, srcs map[string]string, read func(name string) ([]byte, error), opts Options) (Repo, error) {
	fail := func(op string, err error) (Repo, error) {
		return Repo{}, fmt.Errorf("examples: %s %s: %w", op, dir, err)
	}
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(branch)},
	})
	if err != nil {
		return fail("init repository", err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return fail("open worktree of", err)
	}
	names := make([]string, 0, len(srcs))
	for name := range srcs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		data, err := read(name)
		if err != nil {
			return fail("read "+name+" for", err)
		}
		mode := os.FileMode(0o644)
		if path.Ext(name) == "" {
			// Extension-less sources in rpms/ are scripts.
			mode = 0o755
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fail("create directory in", err)
		}
		if err := os.WriteFile(dst, data, mode); err != nil {
			return fail("write "+name+" in", err)
		}
		if _, err := wt.Add(name); err != nil {
			return fail("git add "+name+" in", err)
		}
	}
	sig := &object.Signature{Name: opts.AuthorName, Email: opts.AuthorEmail, When: opts.When}
	hash, err := wt.Commit("Import "+filepath.Base(dir)+" from rida examples", &git.CommitOptions{
		Author: sig, Committer: sig,
	})
	if err != nil {
		return fail("commit in", err)
	}
	return Repo{Path: dir, URL: fileURL(dir), Branch: branch, Commit: hash.String()}, nil
}

// CreateRepo initialises a git repository at dir on branch with files
// (repository path → content) in one commit dated opts.When: for tests and
// demos that need modules and components beyond the embedded example.
func CreateRepo(dir, branch string, files map[string]string, opts Options) (Repo, error) {
	opts.AuthorName = cmp.Or(opts.AuthorName, "rida examples")
	opts.AuthorEmail = cmp.Or(opts.AuthorEmail, "examples@rida.invalid")
	opts.When = cmp.Or(opts.When, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Repo{}, fmt.Errorf("examples: create repo %s: %w", dir, err)
	}
	return writeRepo(abs, branch, files, func(name string) ([]byte, error) { return []byte(files[name]), nil }, opts)
}

func fileURL(p string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(p)}).String()
}

// CommitFiles writes files (path → content) into the working tree of the
// repository at r.Path and commits them on its branch, as a packager
// would, returning the new commit's hash. The commit time is now.
func (r Repo) CommitFiles(msg string, files map[string]string) (string, error) {
	repo, err := git.PlainOpen(r.Path)
	if err != nil {
		return "", fmt.Errorf("examples: open %s: %w", r.Path, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return "", fmt.Errorf("examples: worktree of %s: %w", r.Path, err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		dst := filepath.Join(r.Path, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", fmt.Errorf("examples: commit in %s: %w", r.Path, err)
		}
		if err := os.WriteFile(dst, []byte(files[name]), 0o644); err != nil {
			return "", fmt.Errorf("examples: commit in %s: %w", r.Path, err)
		}
		if _, err := wt.Add(name); err != nil {
			return "", fmt.Errorf("examples: git add %s in %s: %w", name, r.Path, err)
		}
	}
	sig := &object.Signature{Name: "rida demo", Email: "demo@rida.invalid", When: time.Now()}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: true})
	if err != nil {
		return "", fmt.Errorf("examples: commit in %s: %w", r.Path, err)
	}
	return h.String(), nil
}
