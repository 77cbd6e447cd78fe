package local_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
)

// escapeWorld is a rida data directory with secrets around it, and what a
// spec will try against it.
type escapeWorld struct {
	base, data, home, srv string
	secret                string
	hostTmp               string // a name under the host's /tmp the spec tries to create
	hostRoot, hostUsr     string // names under / and /usr the spec tries to create
	listener              net.Listener
	accepted              atomic.Int32
}

func newEscapeWorld(t *testing.T) *escapeWorld {
	t.Helper()
	_, secret := plantSecret(t)
	w := &escapeWorld{base: t.TempDir(), secret: secret}
	w.data = filepath.Join(w.base, "data")
	w.home = filepath.Join(w.base, "home", "rida")
	w.srv = filepath.Join(w.base, "srv")
	w.hostTmp = "/tmp/rida-escape-" + strings.TrimPrefix(secret, "rida-test-secret-")
	w.hostRoot = "/rida-escape-" + strings.TrimPrefix(secret, "rida-test-secret-")
	w.hostUsr = "/usr/rida-escape-" + strings.TrimPrefix(secret, "rida-test-secret-")
	// The unsandboxed run does create them.
	t.Cleanup(func() { os.RemoveAll(w.hostTmp); os.Remove(w.hostRoot); os.Remove(w.hostUsr) })
	for _, f := range []string{
		filepath.Join(w.data, "rida.db"),
		filepath.Join(w.data, "mirrors", "rpms", "x.git", "config"),
		filepath.Join(w.home, ".config", "rida", "token"),
		filepath.Join(w.srv, "secret"),
	} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	w.listener = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			w.accepted.Add(1)
			c.Close()
		}
	}()
	return w
}

// spec returns a spec whose %build tries every escape and records each
// outcome ("ESCAPED: ..." or "held: ...") in a file packaged in its RPM;
// the build itself always succeeds. siblingLog and siblingWork are another
// component's log and work directory in the same build.
func (w *escapeWorld) spec(name, buildDir, realHome string) string {
	port := w.listener.Addr().(*net.TCPAddr).Port
	var probes []string
	probe := func(what, cmd string) {
		probes = append(probes, fmt.Sprintf("if ( %s ) >/dev/null 2>&1; then echo 'ESCAPED: %s' >> report.txt; else echo 'held: %s' >> report.txt; fi", cmd, what, what))
	}
	reads := map[string]string{
		"read rida.db":            filepath.Join(w.data, "rida.db"),
		"read a git mirror":       filepath.Join(w.data, "mirrors", "rpms", "x.git", "config"),
		"read a home directory":   filepath.Join(w.home, ".config", "rida", "token"),
		"read /srv":               filepath.Join(w.srv, "secret"),
		"read a sibling log":      filepath.Join(buildDir, "logs", "sibling.log"),
		"read a sibling checkout": filepath.Join(buildDir, "work", "sibling", "src", "secret"),
	}
	for _, what := range slices.Sorted(func(yield func(string) bool) {
		for k := range reads {
			if !yield(k) {
				return
			}
		}
	}) {
		// cat, not grep: the spec (in the SRPM) must not hold the secret.
		probe(what, "cat "+reads[what])
	}
	probe("list the rida data directory", "ls "+w.data+" | grep -q rida.db")
	probe("list the real $HOME", "ls -A "+realHome+" | grep -q .")
	probe("list /home", "ls -A /home | grep -q .")
	probe("read /etc/shadow", "test -r /etc/shadow")
	probe("see the host /etc/passwd", "grep -q '^daemon:' /etc/passwd")
	probe("see the host /etc/hostname", "test -e /etc/hostname")
	probe("hard link the secret", "ln "+filepath.Join(w.data, "rida.db")+" hard")
	// Writes: the sandbox's / is read-only and its /tmp a private tmpfs, in
	// which the mount points of the work directory's parents are created;
	// whether a write reached the host is checked on the host.
	for what, dir := range map[string]string{
		"write the build repository":                   filepath.Join(buildDir, "repo"),
		"write the build logs":                         filepath.Join(buildDir, "logs"),
		"write the build rpmdb":                        filepath.Join(buildDir, "rpmdb"),
		"write a sibling work directory":               filepath.Join(buildDir, "work", "sibling"),
		"(host-checked) write the build directory":     buildDir,
		"(host-checked) write the rida data directory": w.data,
		"(host-checked) write the builds directory":    filepath.Dir(buildDir),
	} {
		probe(what, "touch "+filepath.Join(dir, "escaped"))
	}
	probe("append to the module macros", "echo '%escaped 1' >> "+filepath.Join(buildDir, "macros.zz-modules"))
	probe("write the rpmdb file", "echo x >> "+filepath.Join(buildDir, "rpmdb", "rpmdb.sqlite"))
	probe("(host-checked) write the host /tmp", "mkdir "+w.hostTmp+" && test -d "+w.hostTmp)
	probe("write /", "touch "+w.hostRoot)
	probe("write /usr", "touch "+w.hostUsr)
	probe("connect to a loopback listener", fmt.Sprintf("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d'", port))
	probe("see a network interface", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | grep -vqx lo")
	probes = append(probes,
		"echo \"etc: $(ls -A /etc | tr '\\n' ' ')\" >> report.txt",
		"echo \"uid: $(id -u) caps: $(grep CapEff /proc/self/status)\" >> report.txt",
		"cp report.txt out.txt")
	spec := tinySpec(name, "", "rm -f report.txt\n"+strings.Join(probes, "\n"))
	// tinySpec's %build ends with "echo ok > out.txt": keep the report.
	return strings.Replace(spec, "echo ok > out.txt\n", "", 1)
}

// report builds the escape spec with sandbox mode mode in world w and
// returns the report packaged in its RPM.
func (w *escapeWorld) report(t *testing.T, mode string) (report string, be *local.Backend, build *runner.Build) {
	t.Helper()
	be = mustNew(t, local.Options{WorkDir: filepath.Join(w.data, "builds"), Sandbox: mode})
	c := &runner.Component{}
	build = newBuild(600, []*runner.Component{c})
	buildDir := be.BuildDir(build)
	home, _ := os.UserHomeDir()
	*c = *specRepo(t, "escape", w.spec("escape", buildDir, home), nil)
	c.Batch, c.State = 2, runner.ComponentQueued
	if err := be.Prepare(t.Context(), build); err != nil {
		t.Fatal(err)
	}
	// A sibling component's log and checkout, with the secret.
	for _, f := range []string{filepath.Join(buildDir, "logs", "sibling.log"), filepath.Join(buildDir, "work", "sibling", "src", "secret")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(w.secret+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{build: build}
	mustBuildBatches(t, be, build, rec, 2)
	if c.State != runner.ComponentComplete {
		t.Fatalf("escape spec (%s): %s %s", mode, c.State, c.Reason)
	}
	rpm := filepath.Join(buildDir, "repo", "escape-1-1"+build.DistTag+".noarch.rpm")
	payload, err := exec.Command("rpm2cpio", rpm).Output()
	if err != nil {
		t.Fatalf("rpm2cpio %s: %v", rpm, err)
	}
	i := bytes.Index(payload, []byte("held: "))
	j := bytes.Index(payload, []byte("ESCAPED: "))
	if i < 0 || (j >= 0 && j < i) {
		i = j
	}
	if i < 0 {
		t.Fatalf("no report in the RPM")
	}
	end := bytes.IndexByte(payload[i:], 0)
	if end < 0 {
		end = len(payload) - i
	}
	return string(payload[i : i+end]), be, build
}

// TestBackend_Sandbox_Escapes: a spec tries to read $HOME, a home
// directory, /srv, rida's data directory and rida.db, a git mirror, a
// sibling component's log and checkout, and /etc's secrets; to write
// outside its work directory (the build's repository, logs, rpm database,
// macros, a sibling's work directory, rida's data directory, the host's
// /tmp, /, /usr); and to reach the network (a loopback listener this test
// opens). In the sandbox every attempt fails, and the secret is in no file
// of the build and in no RPM. The same spec without the sandbox escapes,
// which shows the probes can see an escape.
func TestBackend_Sandbox_Escapes(t *testing.T) {
	t.Parallel()
	requireSandbox(t)

	t.Run("Sandboxed", func(t *testing.T) {
		t.Parallel()
		w := newEscapeWorld(t)
		report, be, build := w.report(t, local.SandboxOn)
		t.Logf("report:\n%s", report)
		if !strings.Contains(report, "held: connect to a loopback listener") {
			t.Fatalf("the report is incomplete:\n%s", report)
		}
		for _, line := range strings.Split(report, "\n") {
			if strings.HasPrefix(line, "ESCAPED: ") && !strings.HasPrefix(line, "ESCAPED: (host-checked) ") {
				t.Errorf("sandbox: %s", line)
			}
		}
		if n := w.accepted.Load(); n != 0 {
			t.Errorf("the loopback listener accepted %d connections from the build", n)
		}
		// /etc holds rida's generated files and the few host entries
		// programs need, nothing else.
		var etc []string
		for _, line := range strings.Split(report, "\n") {
			if rest, ok := strings.CutPrefix(line, "etc: "); ok {
				etc = strings.Fields(rest)
			}
		}
		allowed := []string{"passwd", "group", "nsswitch.conf", "hosts", "ld.so.cache", "alternatives", "localtime", "rpm"}
		for _, e := range etc {
			if !slices.Contains(allowed, e) {
				t.Errorf("/etc in the sandbox holds %s", e)
			}
		}
		if !slices.Contains(etc, "passwd") {
			t.Errorf("/etc in the sandbox: %v, want the generated passwd", etc)
		}
		if !strings.Contains(report, "CapEff:\t0000000000000000") {
			t.Errorf("the build has capabilities: %s", report)
		}
		// Nothing appeared outside the work directory on the host.
		buildDir := be.BuildDir(build)
		for _, p := range []string{
			filepath.Join(buildDir, "repo", "escaped"), filepath.Join(buildDir, "logs", "escaped"),
			filepath.Join(buildDir, "rpmdb", "escaped"), filepath.Join(buildDir, "work", "sibling", "escaped"),
			filepath.Join(buildDir, "escaped"), filepath.Join(w.data, "escaped"), filepath.Join(w.data, "builds", "escaped"),
			w.hostTmp, w.hostRoot, w.hostUsr,
		} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("the build created %s on the host", p)
			}
		}
		if macros, err := os.ReadFile(filepath.Join(buildDir, "macros.zz-modules")); err != nil || bytes.Contains(macros, []byte("%escaped")) {
			t.Errorf("module macros written by the build (%v)", err)
		}
		assertSecretNowhere(t, filepath.Join(w.data, "rida.db"), w.secret, &recorder{}, "", filepath.Join(buildDir, "repo"))
	})

	t.Run("Unsandboxed", func(t *testing.T) {
		t.Parallel()
		w := newEscapeWorld(t)
		report, _, _ := w.report(t, local.SandboxOff)
		for _, want := range []string{"ESCAPED: read rida.db", "ESCAPED: read a home directory", "ESCAPED: write the build repository",
			"ESCAPED: (host-checked) write the rida data directory", "ESCAPED: connect to a loopback listener", "ESCAPED: append to the module macros"} {
			if !strings.Contains(report, want) {
				t.Errorf("without the sandbox the probe did not escape: want %q in\n%s", want, report)
			}
		}
	})
}
