package scm_test

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/scm/scmtest"
)

// listTree returns every path under dir with its type and permission bits
// ("d755", "f644", "f755", "l:<target>"), .git included if there.
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch m := fi.Mode(); {
		case m&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "l:" + target
		case m.IsDir():
			out[rel] = "d" + fmtPerm(m)
		default:
			out[rel] = "f" + fmtPerm(m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fmtPerm(m fs.FileMode) string { return fmt.Sprintf("%o", m.Perm()) }

// TestMirrors_Export writes only the tree at the commit: regular files with
// git's executable bit, directories, symlinks as recorded, a submodule as an
// empty directory, no .git and nothing of other commits.
func TestMirrors_Export(t *testing.T) {
	ctx := t.Context()
	m, src := setup(t)
	c1 := src.Commit("first", map[string]string{"foo.spec": "Name: foo\n", "old.txt": "old\n"})
	src.Commit("second", map[string]string{"-old.txt": "", "sub/dir/data": "data\n", "run.sh": "#!/bin/sh\n"})
	src.Git("update-index", "--chmod=+x", "run.sh")
	if err := os.Symlink("sub/dir/data", filepath.Join(src.Dir, "link")); err != nil {
		t.Fatal(err)
	}
	src.Git("add", "link")
	src.Git("update-index", "--add", "--cacheinfo", "160000,"+c1+",vendor/mod")
	c2 := src.Commit("third", nil)

	dir := filepath.Join(t.TempDir(), "src")
	if err := m.Export(ctx, src.URL(), c2, dir); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"foo.spec": "f644", "run.sh": "f755", "sub": "d755", "sub/dir": "d755", "sub/dir/data": "f644",
		"link": "l:sub/dir/data", "vendor": "d755", "vendor/mod": "d755",
	}
	got := listTree(t, dir)
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %q, want %q", p, got[p], w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected %s (%s) in the export", p, got[p])
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sub", "dir", "data")); string(b) != "data\n" {
		t.Errorf("sub/dir/data = %q", b)
	}

	// An older commit by hash: its own tree, nothing of the later ones.
	old := filepath.Join(t.TempDir(), "src")
	if err := m.Export(ctx, src.URL(), c1, old); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(listTree(t, old))); !slices.Equal(got, []string{"foo.spec", "old.txt"}) {
		t.Errorf("export of the first commit holds %v", got)
	}
	// A branch works too (fetched first).
	if err := m.Export(ctx, src.URL(), "main", filepath.Join(t.TempDir(), "src")); err != nil {
		t.Errorf("export of branch main: %v", err)
	}
}

// TestMirrors_Export_NoFetchForKnownCommit: a commit already in the mirror
// is exported (and resolved) without reaching the repository; a branch, or a
// commit the mirror lacks, is fetched.
func TestMirrors_Export_NoFetchForKnownCommit(t *testing.T) {
	ctx := t.Context()
	m, src := setup(t)
	c1 := src.Commit("first", map[string]string{"foo.spec": "Name: foo\n"})
	url := src.URL()
	if _, err := m.Fetch(ctx, url); err != nil {
		t.Fatal(err)
	}
	c2 := src.Commit("second", map[string]string{"foo.spec": "Name: foo\nVersion: 2\n"})

	// The repository is gone: only what the mirror holds can be used.
	hidden := src.Dir + ".away"
	if err := os.Rename(src.Dir, hidden); err != nil {
		t.Fatal(err)
	}
	if err := m.Export(ctx, url, c1, filepath.Join(t.TempDir(), "a")); err != nil {
		t.Errorf("export of a commit in the mirror, repository unreachable: %v", err)
	}
	if h, err := (scm.Resolver{Mirrors: m}).ResolveRef(ctx, url, c1); err != nil || h != c1 {
		t.Errorf("ResolveRef(c1) with the repository unreachable = %q, %v", h, err)
	}
	if err := m.Export(ctx, url, c2, filepath.Join(t.TempDir(), "b")); err == nil {
		t.Error("export of a commit the mirror lacks succeeded without the repository")
	}
	if err := os.Rename(hidden, src.Dir); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "c")
	if err := m.Export(ctx, url, c2, dir); err != nil {
		t.Fatalf("export of a new commit (fetched): %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "foo.spec")); !strings.Contains(string(b), "Version: 2") {
		t.Errorf("foo.spec = %q", b)
	}
	if err := m.Export(ctx, url, strings.Repeat("1", 40), filepath.Join(t.TempDir(), "d")); !errors.Is(err, scm.ErrNotFound) {
		t.Errorf("export of an unknown commit: %v, want ErrNotFound", err)
	}
}

// hostileCommit writes a commit whose root tree has the given entries
// straight into src's object store, as a hostile pusher could, and
// returns its hash.
func hostileCommit(t *testing.T, src *scmtest.Repo, entries []object.TreeEntry) string {
	t.Helper()
	r, err := git.PlainOpen(src.Dir)
	if err != nil {
		t.Fatal(err)
	}
	tree := &object.Tree{Entries: entries}
	obj := r.Storer.NewEncodedObject()
	if err := tree.Encode(obj); err != nil {
		t.Fatal(err)
	}
	th, err := r.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	sig := object.Signature{Name: "x", Email: "x@rida.invalid", When: time.Unix(1700000000, 0)}
	c := &object.Commit{Author: sig, Committer: sig, Message: "hostile\n", TreeHash: th}
	obj = r.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		t.Fatal(err)
	}
	ch, err := r.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Storer.SetReference(plumbing.NewHashReference("refs/heads/hostile", ch)); err != nil {
		t.Fatal(err)
	}
	return ch.String()
}

func blob(t *testing.T, src *scmtest.Repo, content string) plumbing.Hash {
	t.Helper()
	r, err := git.PlainOpen(src.Dir)
	if err != nil {
		t.Fatal(err)
	}
	obj := r.Storer.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, _ := obj.Writer()
	w.Write([]byte(content))
	w.Close()
	h, err := r.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestMirrors_Export_HostileTrees: tree entries git itself would never
// write (names "..", ".git", with a slash, duplicates) and files over
// MaxBlob fail the export with a *TreeError naming the entry, and nothing
// is written outside the export directory.
func TestMirrors_Export_HostileTrees(t *testing.T) {
	ctx := t.Context()
	base := t.TempDir()
	m, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(base, "mirrors"), MaxBlob: 64})
	if err != nil {
		t.Fatal(err)
	}
	src := scmtest.New(t, filepath.Join(base, "rpms", "evil"), "main")
	src.Commit("first", map[string]string{"foo.spec": "Name: foo\n"})
	small, big := blob(t, src, "x\n"), blob(t, src, strings.Repeat("y", 65))
	for _, tc := range []struct {
		name    string
		entries []object.TreeEntry
		path    string
	}{
		{"DotDot", []object.TreeEntry{{Name: "..", Mode: filemode.Regular, Hash: small}}, `".."`},
		{"DotGit", []object.TreeEntry{{Name: ".GIT", Mode: filemode.Regular, Hash: small}}, `".GIT"`},
		{"Slash", []object.TreeEntry{{Name: "../../escaped", Mode: filemode.Regular, Hash: small}}, `"../../escaped"`},
		{"Duplicate", []object.TreeEntry{{Name: "a", Mode: filemode.Symlink, Hash: blob(t, src, "/tmp")}, {Name: "a", Mode: filemode.Regular, Hash: small}}, "a"},
		{"TooBig", []object.TreeEntry{{Name: "huge.tar", Mode: filemode.Regular, Hash: big}}, "huge.tar"},
		{"SymlinkTooLong", []object.TreeEntry{{Name: "l", Mode: filemode.Symlink, Hash: blob(t, src, strings.Repeat("a/", 3000))}}, "l"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			commit := hostileCommit(t, src, tc.entries)
			dir := filepath.Join(base, "out-"+tc.name, "src")
			err := m.Export(ctx, src.URL(), commit, dir)
			var te *scm.TreeError
			if !errors.As(err, &te) {
				t.Fatalf("export: %v, want a *scm.TreeError", err)
			}
			if te.Path != tc.path {
				t.Errorf("error names %q, want %q (%v)", te.Path, tc.path, err)
			}
			if strings.Contains(err.Error(), "yyyy") || strings.Contains(err.Error(), "/tmp") {
				t.Errorf("the error quotes content: %v", err)
			}
		})
	}
	if _, err := os.Lstat(filepath.Join(base, "escaped")); err == nil {
		t.Error("a file was written outside the export directory")
	}
}
