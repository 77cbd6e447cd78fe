// Package scmtest builds real git repositories in temporary directories for
// tests, with the git command line, so tests exercise the same transport
// (git-upload-pack) a file:// remote uses in production.
package scmtest

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// History creates at dir a repository on branch with a long history, fast
// (git fast-import): a first commit adds files (files "f000.txt"… of about
// 2 KiB each, plus every path of extra), then each of commits-1 further
// commits appends a line to one of them in turn. The work tree is checked
// out at the last commit.
func History(t testing.TB, dir, branch string, commits, files int, extra map[string]string) *Repo {
	t.Helper()
	r := New(t, dir, branch)
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	data := func(s string) { w("data %d\n%s\n", len(s), s) }
	content := make([]string, files)
	for i := range content {
		// Text that compresses and deltas like source files do.
		var b strings.Builder
		for j := 0; b.Len() < 2048; j++ {
			fmt.Fprintf(&b, "line %d of file %d: the quick brown fox %x\n", j, i, (i+1)*(j+7)*2654435761%1000003)
		}
		content[i] = b.String()
	}
	when := int64(1700000000)
	for c := range commits {
		w("commit refs/heads/%s\n", branch)
		w("committer rida test <test@rida.invalid> %d +0000\n", when+int64(c))
		data(fmt.Sprintf("change %d", c))
		if c == 0 {
			for i, s := range content {
				w("M 100644 inline f%03d.txt\n", i)
				data(s)
			}
			for _, p := range slices.Sorted(maps.Keys(extra)) {
				w("M 100644 inline %s\n", p)
				data(extra[p])
			}
		} else if files > 0 {
			i := c % files
			content[i] += fmt.Sprintf("commit %d\n", c)
			w("M 100644 inline f%03d.txt\n", i)
			data(content[i])
		}
		w("\n")
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(sb.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, out)
	}
	r.Git("repack", "-a", "-d", "-q")
	r.Git("checkout", "-q", "-f", branch)
	return r
}
