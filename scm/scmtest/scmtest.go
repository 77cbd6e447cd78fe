// Package scmtest builds real git repositories in temporary directories for
// tests, with the git command line, so tests exercise the same transport
// (git-upload-pack) a file:// remote uses in production.
package scmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Repo is a non-bare git repository in a temp dir.
type Repo struct {
	t   testing.TB
	Dir string
}

// URL returns the repository's file:// URL.
func (r *Repo) URL() string { return "file://" + r.Dir }

// New creates an empty repository at dir (created if missing) whose initial
// branch is branch.
func New(t testing.TB, dir, branch string) *Repo {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Repo{t: t, Dir: dir}
	r.Git("init", "-q", "-b", branch)
	return r
}

// Git runs a git command in the repository and returns its trimmed output.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=rida test", "GIT_AUTHOR_EMAIL=test@rida.invalid",
		"GIT_COMMITTER_NAME=rida test", "GIT_COMMITTER_EMAIL=test@rida.invalid",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+r.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit writes files (path → content; an empty content with a "-" prefix
// path deletes "path") and commits them, returning the new commit hash.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	for p, content := range files {
		if strings.HasPrefix(p, "-") {
			r.Git("rm", "-q", strings.TrimPrefix(p, "-"))
			continue
		}
		full := filepath.Join(r.Dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		r.Git("add", p)
	}
	r.Git("commit", "-q", "--allow-empty", "-m", msg)
	return r.Git("rev-parse", "HEAD")
}

// Open wraps an existing repository at dir.
func Open(t testing.TB, dir string) *Repo {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		t.Fatalf("scmtest: %s is not a git working tree: %v", dir, err)
	}
	return &Repo{t: t, Dir: dir}
}
