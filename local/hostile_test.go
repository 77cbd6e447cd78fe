package local_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/rida-build/rida/internal/testlog"
	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
)

// plantSecret writes a token file outside every checkout and build tree
// and returns its path and content.
func plantSecret(t testing.TB) (path, secret string) {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	secret = "rida-test-secret-" + hex.EncodeToString(b)
	path = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, secret
}

// climbTo returns a relative symlink target that climbs from any checkout
// to the root and down to abs.
func climbTo(abs string) string {
	return strings.Repeat("../", 40) + strings.TrimPrefix(abs, "/")
}

// hostileRepo commits files and symlinks (name → target) into a new git
// repository holding <name>.spec and returns a component for it.
func hostileRepo(t testing.TB, name, spec string, files, symlinks map[string]string) *runner.Component {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{name + ".spec": spec}
	for k, v := range files {
		all[k] = v
	}
	for f, content := range all {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	for f, target := range symlinks {
		if err := os.Symlink(target, filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	sig := &object.Signature{Name: "test", Email: "test@rida.invalid", When: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	h, err := wt.Commit("import", &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	return &runner.Component{Key: name, Package: name, Repository: "file://" + dir, Ref: "main", Commit: h.String()}
}

// assertSecretNowhere fails the test if secret appears in any update's
// reason (what becomes the module's state_reason and the commit status),
// in the backend's log, or in any file of the build directory: component
// logs, work trees, the repository and, decompressed with rpm2cpio, the
// payload of every RPM in it.
// The secret file itself, hard linked into a work directory by the spec,
// is left out.
func assertSecretNowhere(t *testing.T, secretPath, secret string, rec *recorder, slogOut string, buildDir string) {
	t.Helper()
	secretInfo, err := os.Stat(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range rec.updates {
		if strings.Contains(u.Reason, secret) {
			t.Errorf("secret in the reason of %s: %q", u.Key, u.Reason)
		}
	}
	if strings.Contains(slogOut, secret) {
		t.Errorf("secret in the backend's log")
	}
	err = filepath.WalkDir(buildDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Size() > 64<<20 {
			return nil // the planted 1 GiB sparse file: zeros
		}
		if os.SameFile(fi, secretInfo) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("secret in %s", p)
		}
		if strings.HasSuffix(p, ".rpm") {
			if payload, err := exec.Command("rpm2cpio", p).Output(); err == nil && bytes.Contains(payload, []byte(secret)) {
				t.Errorf("secret in the payload of %s", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBackend_HostileRepositories: a packager controls a component's
// repository and its spec. Each attempt to make rida's own process read or
// write outside the checkout ends in a clean failure of that component (not
// an infrastructure error, no hang), and the token planted outside is in no
// reason, log, file or RPM of the build. The repository cases run without
// the sandbox, so that they show rida's own process holding on its own; the
// build output cases run in the sandbox, as a server does.
func TestBackend_HostileRepositories(t *testing.T) {
	t.Parallel()
	const payload = "payload from the lookaside cache\n"
	cache := &lookaside{files: map[string]string{}}
	srv := httptest.NewServer(cache)
	defer srv.Close()
	sourcesOf := func(pkg string) string {
		cache.mu.Lock()
		cache.files["/repo/pkgs/rpms/"+pkg+"/data.txt/sha512/"+sha512hex(payload)+"/data.txt"] = payload
		cache.mu.Unlock()
		return "SHA512 (data.txt) = " + sha512hex(payload) + "\n"
	}
	spec := func(name string) string {
		return tinySpec(name, "Source0: data.txt", "")
	}
	// outputSpec's %install leaves something in the RPMS directory rida
	// collects from.
	outputSpec := func(name, install string) string {
		return strings.Replace(tinySpec(name, "", ""), "%files", install+"\n\n%files", 1)
	}

	tests := []struct {
		name    string
		sandbox string
		// comp returns the component given the secret file's path.
		comp func(t *testing.T, secretPath string) *runner.Component
		// reason must appear in the failure reason.
		reason string
	}{
		{
			name: "SymlinkedSources", sandbox: local.SandboxOff,
			comp: func(t *testing.T, secretPath string) *runner.Component {
				return hostileRepo(t, "h-sources-link", spec("h-sources-link"), nil, map[string]string{"sources": climbTo(secretPath)})
			},
			reason: "sources: is a symlink that does not resolve inside the repository",
		},
		{
			name: "PartSymlink", sandbox: local.SandboxOff,
			comp: func(t *testing.T, secretPath string) *runner.Component {
				return hostileRepo(t, "h-part-link", spec("h-part-link"),
					map[string]string{"sources": sourcesOf("h-part-link")},
					map[string]string{"data.txt.part": secretPath})
			},
			reason: "data.txt.part: is a symlink that does not resolve inside the repository",
		},
		{
			name: "DotDotPath", sandbox: local.SandboxOff,
			comp: func(t *testing.T, secretPath string) *runner.Component {
				return hostileRepo(t, "h-dotdot", spec("h-dotdot"),
					map[string]string{"sources": "SHA512 (..) = " + sha512hex(payload) + "\n"}, nil)
			},
			reason: "sources line 1 does not name a plain file",
		},
		{
			name: "HardlinkedOutput", sandbox: local.SandboxOff,
			comp: func(t *testing.T, secretPath string) *runner.Component {
				return hostileRepo(t, "h-hardlink", outputSpec("h-hardlink",
					"mkdir -p %{_topdir}/RPMS/noarch\nln "+secretPath+" %{_topdir}/RPMS/noarch/h-hardlink-leak-1-1.noarch.rpm"), nil, nil)
			},
			reason: "has 2 hard links",
		},
		{
			name: "SymlinkedOutput", sandbox: local.SandboxOn,
			comp: func(t *testing.T, secretPath string) *runner.Component {
				return hostileRepo(t, "h-out-link", outputSpec("h-out-link",
					"mkdir -p %{_topdir}/RPMS/noarch\nln -s "+secretPath+" %{_topdir}/RPMS/noarch/h-out-link-leak-1-1.noarch.rpm"), nil, nil)
			},
			reason: "is a symlink",
		},
		{
			name: "FIFOOutput", sandbox: local.SandboxOn,
			comp: func(t *testing.T, secretPath string) *runner.Component {
				return hostileRepo(t, "h-fifo", outputSpec("h-fifo",
					"mkdir -p %{_topdir}/RPMS/noarch\nmkfifo %{_topdir}/RPMS/noarch/h-fifo-1-1.noarch.rpm"), nil, nil)
			},
			reason: "is not a regular file (a FIFO)",
		},
		{
			name: "SparseGiBOutput", sandbox: local.SandboxOn,
			comp: func(t *testing.T, secretPath string) *runner.Component {
				return hostileRepo(t, "h-sparse", outputSpec("h-sparse",
					"mkdir -p %{_topdir}/RPMS/noarch\ntruncate -s 1G %{_topdir}/RPMS/noarch/h-sparse-big-1-1.noarch.rpm"), nil, nil)
			},
			reason: "built files are not RPM packages rpm can read",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.sandbox == local.SandboxOn {
				requireSandbox(t)
			}
			secretPath, secret := plantSecret(t)
			var slogOut testlog.Buffer
			be := mustNew(t, local.Options{
				Sandbox: tt.sandbox, Lookaside: srv.URL + "/repo/pkgs/rpms",
				Logger: slog.New(slog.NewTextHandler(&slogOut, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			c := tt.comp(t, secretPath)
			build := newBuild(500, []*runner.Component{c})
			rec := &recorder{build: build}
			done := make(chan struct{})
			go func() {
				defer close(done)
				mustBuildBatches(t, be, build, rec, 2)
			}()
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				t.Fatal("the build hangs")
			}
			if c.State != runner.ComponentFailed || !strings.Contains(c.Reason, tt.reason) {
				t.Errorf("%s: %s %q, want failed with %q", c.Key, c.State, c.Reason, tt.reason)
			}
			if strings.Contains(c.Reason, "infrastructure error") {
				t.Errorf("a hostile repository is the component's failure, not an infrastructure error: %q", c.Reason)
			}
			if got, err := os.ReadFile(secretPath); err != nil || string(got) != secret+"\n" {
				t.Errorf("the secret file was changed: %q, %v", got, err)
			}
			assertSecretNowhere(t, secretPath, secret, rec, slogOut.String(), be.BuildDir(build))
			t.Logf("reason: %s", c.Reason)
		})
	}
}

// requireSandbox skips, naming the reason, when bubblewrap cannot run
// here; on this project's machines it runs (scripts/install-deps).
func requireSandbox(t testing.TB) {
	t.Helper()
	be, err := local.New(local.Options{WorkDir: t.TempDir(), Sandbox: local.SandboxAuto, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if p := be.SandboxProblem(); p != nil {
		if os.Getenv("RIDA_REQUIRE_SANDBOX") != "" {
			t.Fatalf("RIDA_REQUIRE_SANDBOX is set but the sandbox cannot run: %v", p)
		}
		t.Skipf("SKIP: the bubblewrap sandbox cannot run on this machine (%v); install bubblewrap and allow unprivileged user namespaces", p)
	}
}
