package scm_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/scm/scmtest"
)

func setup(t *testing.T) (*scm.Mirrors, *scmtest.Repo) {
	t.Helper()
	dir := t.TempDir()
	m, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(dir, "mirrors")})
	if err != nil {
		t.Fatal(err)
	}
	return m, scmtest.New(t, filepath.Join(dir, "rpms", "foo"), "main")
}

func TestMirrors_Fetch_ResolveReadDiff(t *testing.T) {
	ctx := context.Background()
	m, src := setup(t)
	c1 := src.Commit("first", map[string]string{"foo.spec": "Name: foo\n", "sources": "a\n"})
	c2 := src.Commit("second", map[string]string{"sources": "b\n", "README": "x\n"})

	repo, err := m.Fetch(ctx, src.Dir) // a plain path works like file://
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ref, want string }{
		{"main", c2}, {"refs/heads/main", c2}, {c1, c1}, {"HEAD", c2},
	} {
		got, err := repo.Resolve(tc.ref)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.ref, got, err, tc.want)
		}
	}
	if _, err := repo.Resolve("nope"); !errors.Is(err, scm.ErrNotFound) {
		t.Errorf("Resolve(nope) err = %v, want ErrNotFound", err)
	}

	b, err := repo.ReadFile(c1, "sources", 0)
	if err != nil || string(b) != "a\n" {
		t.Errorf("ReadFile(c1, sources) = %q, %v", b, err)
	}
	if _, err := repo.ReadFile(c1, "README", 0); !errors.Is(err, scm.ErrNotFound) {
		t.Errorf("ReadFile of a file added later: err = %v, want ErrNotFound", err)
	}
	if _, err := repo.ReadFile(c2, "foo.spec", 3); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("ReadFile over limit: err = %v", err)
	}

	paths, err := repo.ChangedPaths(ctx, c1, c2)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	if want := []string{"README", "sources"}; !slices.Equal(paths, want) {
		t.Errorf("ChangedPaths = %v, want %v", paths, want)
	}
	all, err := repo.ChangedPaths(ctx, scm.ZeroHash, c1)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(all)
	if want := []string{"foo.spec", "sources"}; !slices.Equal(all, want) {
		t.Errorf("ChangedPaths from zero = %v, want %v", all, want)
	}

	// A later push, including a force push that rewrites main, is seen by
	// an incremental fetch.
	src.Git("reset", "-q", "--hard", c1)
	c3 := src.Commit("rewritten", map[string]string{"sources": "c\n"})
	repo, err = m.Fetch(ctx, "file://"+src.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := repo.Resolve("main"); got != c3 {
		t.Errorf("after force push main = %s, want %s", got, c3)
	}
	cm, err := repo.Commit(c3)
	if err != nil || cm.Message != "rewritten\n" || cm.Time.IsZero() || cm.Time.Location().String() != "UTC" {
		t.Errorf("Commit(c3) = %+v, %v", cm, err)
	}
}

func TestListRemoteRefs_AndResolver(t *testing.T) {
	ctx := context.Background()
	m, src := setup(t)
	c1 := src.Commit("first", map[string]string{"a": "1"})
	src.Git("tag", "-a", "v1", "-m", "annotated")
	src.Git("checkout", "-q", "-b", "f40")
	c2 := src.Commit("on f40", map[string]string{"a": "2"})

	refs, err := scm.ListRemoteRefs(ctx, src.URL())
	if err != nil {
		t.Fatal(err)
	}
	if refs["refs/heads/main"] != c1 || refs["refs/heads/f40"] != c2 || refs["refs/tags/v1"] != c1 {
		t.Errorf("refs = %v", refs)
	}

	r := scm.Resolver{Mirrors: m}
	for _, tc := range []struct{ ref, want string }{{"f40", c2}, {"v1", c1}, {c1, c1}} {
		got, err := r.ResolveRef(ctx, src.URL(), tc.ref)
		if err != nil || got != tc.want {
			t.Errorf("ResolveRef(%q) = %q, %v; want %q", tc.ref, got, err, tc.want)
		}
	}
	if _, err := r.ResolveRef(ctx, src.URL(), "no-such-branch"); !errors.Is(err, scm.ErrNotFound) {
		t.Errorf("missing branch: err = %v", err)
	}
	if _, err := r.ResolveRef(ctx, src.URL(), strings.Repeat("ab", 20)); err == nil {
		t.Error("missing commit hash resolved")
	}
}

func TestNormalizeURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"/srv/git/foo", "file:///srv/git/foo", ""},
		{"file:///srv/x", "file:///srv/x", ""},
		{"https://src.example/rpms/foo", "https://src.example/rpms/foo", ""},
		{"ftp://x/y", "", "unsupported scheme"},
		{"", "", "empty"},
	} {
		got, err := scm.NormalizeURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("NormalizeURL(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizeURL(%q) = %q, %v", tc.in, got, err)
		}
	}
	if got := scm.Redact("https://user:s3cret@host/x"); strings.Contains(got, "s3cret") {
		t.Errorf("Redact kept the password: %s", got)
	}
}

func TestRepo_DefaultBranch(t *testing.T) {
	m, src := setup(t)
	src.Commit("first", map[string]string{"a": "1"})
	src.Git("branch", "f40")
	repo, err := m.Fetch(context.Background(), src.URL())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := repo.DefaultBranch(); err != nil || b != "main" {
		t.Errorf("DefaultBranch = %q, %v; want main", b, err)
	}
}

// TestMirrors_Fetch_ManyFetchesRepack fetches after each of more commits
// than RepackAfter allows packs: every commit stays resolvable across the
// repack.
func TestMirrors_Fetch_ManyFetchesRepack(t *testing.T) {
	dir := t.TempDir()
	m, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(dir, "mirrors"), RepackAfter: 3})
	if err != nil {
		t.Fatal(err)
	}
	src := scmtest.New(t, filepath.Join(dir, "src"), "main")
	var commits []string
	var first *scm.Repo
	for i := range 8 {
		commits = append(commits, src.Commit("c", map[string]string{"f": strings.Repeat("x", i+1)}))
		repo, err := m.Fetch(context.Background(), src.URL())
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = repo
		}
		for _, c := range commits {
			if _, err := repo.Commit(c); err != nil {
				t.Fatalf("after fetch %d: commit %s lost: %v", i, c, err)
			}
		}
	}
	// A handle opened before the repacks still works.
	if _, err := first.ReadFile(commits[0], "f", 0); err != nil {
		t.Errorf("a handle from before the repack: %v", err)
	}
	packs, _ := filepath.Glob(filepath.Join(dir, "mirrors", "*", "objects", "pack", "*.pack"))
	if len(packs) > 4 {
		t.Errorf("%d packs after repacking at 3", len(packs))
	}
}

// A repository that does not exist is ErrNotFound (the modulemd's fault),
// whether it is cloned, fetched or listed.
func TestMissingRepositoryIsNotFound(t *testing.T) {
	ctx := context.Background()
	missing := "file://" + filepath.Join(t.TempDir(), "rpms", "no-such-repo")
	m, err := scm.NewMirrors(scm.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Fetch(ctx, missing); !errors.Is(err, scm.ErrNotFound) {
		t.Errorf("Fetch: %v, want ErrNotFound", err)
	}
	if _, err := (scm.Resolver{Mirrors: m}).ResolveRef(ctx, missing, "main"); !errors.Is(err, scm.ErrNotFound) {
		t.Errorf("ResolveRef: %v, want ErrNotFound", err)
	}
	// An unreachable host is not the content's fault.
	if _, err := scm.ListRemoteRefs(ctx, "http://127.0.0.1:1/rpms/x"); err == nil || errors.Is(err, scm.ErrNotFound) {
		t.Errorf("unreachable host: %v, want an error other than ErrNotFound", err)
	}
}
