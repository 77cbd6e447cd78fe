package local_test

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
)

// lookaside is a dist-git lookaside cache double: it serves files at
// /repo/pkgs/rpms/<pkg>/<file>/<algo>/<hash>/<file> (and the old md5 layout
// without <algo>) and records what was asked.
type lookaside struct {
	mu    sync.Mutex
	files map[string]string // URL path → content
	gets  []string
}

func (l *lookaside) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gets = append(l.gets, r.URL.Path)
	content, ok := l.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte(content))
}

func sha512hex(s string) string { h := sha512.Sum512([]byte(s)); return hex.EncodeToString(h[:]) }
func md5hex(s string) string    { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// TestBackend_LookasideSources builds components whose sources live in a
// lookaside cache ("sources" file in dist-git, as fedpkg writes it): the
// files are fetched, checked against their hashes, and rpmbuild uses them.
func TestBackend_LookasideSources(t *testing.T) {
	const tarball = "payload from the lookaside cache\n"
	cache := &lookaside{files: map[string]string{
		"/repo/pkgs/rpms/la-new/data.txt/sha512/" + sha512hex(tarball) + "/data.txt": tarball,
		"/repo/pkgs/rpms/la-old/data.txt/" + md5hex(tarball) + "/data.txt":           tarball,
		"/repo/pkgs/rpms/la-bad/data.txt/sha512/" + sha512hex(tarball) + "/data.txt": "tampered\n",
	}}
	srv := httptest.NewServer(cache)
	defer srv.Close()

	spec := func(name string) string {
		s := tinySpec(name, "Source0: data.txt", `grep -q "payload from the lookaside" %{SOURCE0}`)
		return s
	}
	newFmt := specRepo(t, "la-new", spec("la-new"), map[string]string{"sources": "SHA512 (data.txt) = " + sha512hex(tarball) + "\n"})
	oldFmt := specRepo(t, "la-old", spec("la-old"), map[string]string{"sources": md5hex(tarball) + "  data.txt\n"})
	missing := specRepo(t, "la-missing", spec("la-missing"), map[string]string{"sources": "SHA512 (data.txt) = " + sha512hex("other") + "\n"})
	tampered := specRepo(t, "la-bad", spec("la-bad"), map[string]string{"sources": "SHA512 (data.txt) = " + sha512hex(tarball) + "\n"})

	be := mustNew(t, local.Options{Sandbox: local.SandboxOff, Logger: discardLogger(), Lookaside: srv.URL + "/repo/pkgs/rpms"})
	build := newBuild(400, []*runner.Component{newFmt, oldFmt, missing, tampered})
	rec := &recorder{build: build}
	mustBuildBatches(t, be, build, rec, 2)
	for _, c := range []*runner.Component{newFmt, oldFmt} {
		if c.State != runner.ComponentComplete {
			t.Errorf("%s: %s %s", c.Key, c.State, c.Reason)
		}
	}
	if missing.State != runner.ComponentFailed || !strings.Contains(missing.Reason, "data.txt is not in the lookaside cache") {
		t.Errorf("missing source: %s %q", missing.State, missing.Reason)
	}

	if tampered.State != runner.ComponentFailed || !strings.Contains(tampered.Reason, "the sources file says") {
		t.Errorf("tampered source: %s %q", tampered.State, tampered.Reason)
	}

	// Without a configured cache, a component with a sources file fails
	// and says what to configure.
	bare := mustNew(t, local.Options{Sandbox: local.SandboxOff, Logger: discardLogger()})
	again := specRepo(t, "la-nocache", spec("la-nocache"), map[string]string{"sources": "SHA512 (data.txt) = " + sha512hex(tarball) + "\n"})
	build2 := newBuild(401, []*runner.Component{again})
	rec2 := &recorder{build: build2}
	mustBuildBatches(t, bare, build2, rec2, 2)
	if again.State != runner.ComponentFailed || !strings.Contains(again.Reason, "no lookaside cache is configured") {
		t.Errorf("no cache: %s %q", again.State, again.Reason)
	}
}

// TestBackend_NoDeps: a component that BuildRequires a host tool the build's
// rpm database cannot know fails the check, and builds with NoDeps.
func TestBackend_NoDeps(t *testing.T) {
	for _, nodeps := range []bool{false, true} {
		name := "needs-host-tool"
		if nodeps {
			name += "-nodeps"
		}
		c := specRepo(t, name, tinySpec(name, "BuildRequires: gcc-from-the-host", ""), nil)
		be := mustNew(t, local.Options{Sandbox: local.SandboxOff, Logger: discardLogger(), NoDeps: nodeps})
		build := newBuild(410, []*runner.Component{c})
		mustBuildBatches(t, be, build, &recorder{build: build}, 2)
		switch {
		case nodeps && c.State != runner.ComponentComplete:
			t.Errorf("with NoDeps: %s %q", c.State, c.Reason)
		case !nodeps && (c.State != runner.ComponentFailed || !strings.Contains(c.Reason, "gcc-from-the-host")):
			t.Errorf("without NoDeps: %s %q", c.State, c.Reason)
		}
	}
}
