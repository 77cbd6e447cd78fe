// Package local is rida's local build backend: it builds a module's
// components with rpmbuild on this machine, batch after batch, and publishes
// the result as a yum repository with modules.yaml.
//
// Layout of one build, under Options.WorkDir:
//
//	<name>-<stream>-<version>-<context>-<id>/
//	  repo/                  the yum repository: RPMs, SRPMs, repodata/, modules.yaml
//	  logs/<key>.log         stdout+stderr of every command run for a component
//	  work/<key>/            sources (src/: the component's tree at its commit, exported
//	                         from the mirror, no .git), rpmbuild _topdir (rpmbuild/), tmp/,
//	                         and home/, rpmbuild's HOME (so the host's ~/.rpmmacros never
//	                         applies); all of work/ is removed when Finish succeeds
//	  rpmdb/                 the build's rpm database: the "build root"
//	  deps.txt               the module builds (Build.Deps) whose packages are in rpmdb/
//	  macros.zz-modules      the module macros (%dist, %_module_*), see buildmacros
//
// and, beside the builds, .sandbox/etc/ (the sandbox's generated /etc
// files, see sandbox.go) and, when Options.Sources is not given, .mirrors/
// (bare mirrors of the component repositories).
//
// Under the sandbox (the default), rpmbuild sees only work/<key>/ writable
// and rpmdb/ and macros.zz-modules read-only, nothing else of this tree; see
// sandbox.go for everything it sees.
//
// The build root is an rpm database, not a chroot: after each batch the
// backend installs the batch's binary RPMs into rpmdb/ with
// "rpm -i --justdb", and every rpmbuild runs with _dbpath pointing there.
// Prepare has put there, the same way, the binary packages of the modules
// the build is built against (Build.Deps, read from their local result
// directories, filter.rpms honoured). So a component's BuildRequires are
// satisfied exactly by what earlier batches of the same module and its
// module dependencies built (the host's own rpm database is never
// consulted), and a BuildRequires on anything else fails the component. Package files
// are not unpacked, so %build cannot use files of earlier batches; this
// backend suits noarch packages and demos, not a full distribution rebuild.
//
// Batch 1 (runner.MacrosComponent) builds the module-build-macros package
// from buildmacros; afterwards its macros file is loaded (rpmbuild --load)
// into every component build, as the installed package would be in MBS's
// Koji build root.
package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/urlpolicy"
)

// Sandbox modes (Options.Sandbox).
const (
	// SandboxAuto runs rpmbuild under the sandbox if bubblewrap works on
	// this machine (probed once in New), else runs it directly, logging a
	// warning with the reason (Backend.SandboxProblem). For interactive
	// use (rida build-local); a server must not use it (rida serve turns
	// it into SandboxOn).
	SandboxAuto = "auto"
	// SandboxOn requires bubblewrap; New fails if it cannot run.
	SandboxOn = "on"
	// SandboxOff runs rpmbuild directly, as rida's user, with network: the
	// spec can read and write whatever rida can.
	SandboxOff = "off"
)

// Failure policies (Options.OnFailure).
const (
	// FinishBatch lets the other components of a batch build to the end
	// when one fails, as MBS does; the module fails once the batch drains.
	FinishBatch = "finish-batch"
	// CancelBatch kills the batch's other running builds when one fails and
	// does not start the remaining ones; they are reported canceled.
	CancelBatch = "cancel-batch"
)

// Options configures a Backend.
type Options struct {
	// WorkDir holds one directory per module build. Required; created if
	// missing.
	WorkDir string
	// Parallel is how many components of a batch build at once. Default 1:
	// rpmbuild already runs make with %_smp_mflags (all CPUs) inside one
	// build, so more is only worth it for many small packages (see
	// BenchmarkBuildBatch_Parallel). Must be >= 1 after defaulting.
	Parallel int
	// Sandbox is SandboxAuto (default), SandboxOn or SandboxOff.
	Sandbox string
	// OnFailure is FinishBatch (default) or CancelBatch.
	OnFailure string
	// Logger receives progress and the sandbox decision. Default: discard.
	Logger *slog.Logger
	// NoDeps runs rpmbuild with --nodeps: BuildRequires are not checked at
	// all. The per-build rpm database holds only the module's own packages,
	// so a component that BuildRequires host tools (gcc, make) cannot pass
	// the check on a host whose tools are not RPMs (Debian); with NoDeps it
	// builds with whatever the host has. Default false: checked.
	NoDeps bool
	// Lookaside is the base URL of the dist-git lookaside cache, e.g.
	// "https://src.fedoraproject.org/repo/pkgs/rpms"; a component's sources
	// are fetched from <Lookaside>/<package>/... when its checkout has a
	// "sources" file (a component's own cache: in the modulemd wins).
	// Empty: components with a sources file fail, saying so.
	Lookaside string
	// HTTPClient fetches lookaside sources. Default: a client with a 10
	// minute timeout.
	HTTPClient *http.Client
	// URLs is the policy every lookaside download must pass, the URL
	// asked for and every redirect (a refused one fails the component,
	// naming the URL without credentials). Default nil: any URL.
	URLs *urlpolicy.Policy
	// Sources writes a component's tree at a commit into its work
	// directory. rida passes its scm.Mirrors, the bare mirrors the
	// planner fetches on push, so a build fetches nothing it already has
	// and copies no history. Default: scm.Mirrors of its own under
	// WorkDir/.mirrors (tests and embedders that pass none).
	Sources Sources
	// Uploads is the directory uploaded source RPMs are read from: a
	// component with runner.Component.SRPM set (a scratch build's srpms)
	// is built from the file at that path relative to Uploads, never
	// following a symlink or ".." out of it, with "rpmbuild -ra" instead
	// of from its repository. rida serve passes <data_dir>/uploads, where
	// its API stores uploaded SRPMs. Empty: such a component fails.
	Uploads string
	// Slots, when set, is shared by every build of the process and bounds
	// the component builds running at once across all of them (the
	// runner's max_components); Parallel still bounds one batch.
	Slots runner.Limiter
	// Test holds knobs for tests and unusual hosts.
	Test TestOptions
}

// Sources exports component sources: the tree of commit rev (a full hash,
// else a branch or tag) of the repository at repoURL, written into dir
// with no history. It must write only inside dir and only directories,
// regular files and symlinks (which the backend then checks resolve inside
// the tree; see checkTree). *scm.Mirrors implements it (Mirrors.Export).
type Sources interface {
	Export(ctx context.Context, repoURL, rev, dir string) error
}

var _ Sources = (*scm.Mirrors)(nil)

// TestOptions overrides binaries and the clock. Binary paths default to the
// names below, looked up in PATH when used.
type TestOptions struct {
	RPMBuild   string // default "rpmbuild"
	RPM        string // default "rpm"
	CreateRepo string // default "createrepo_c"
	ModifyRepo string // default "modifyrepo_c"; optional, skipped when missing
	Bwrap      string // default "bwrap"
	// Now is the clock for ComponentUpdate.Time. Default time.Now.
	Now func() time.Time
}

// Backend builds module components locally. It implements runner.Backend.
// A Backend may run several module builds at once; each has its own
// directory and state.
type Backend struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	sandbox *sandbox // nil: rpmbuild runs directly
	// sandboxProblem is why the sandbox is off under SandboxAuto.
	sandboxProblem error

	mu     sync.Mutex
	builds map[string]*buildState // by build directory
}

// buildState is what the backend remembers about one module build.
type buildState struct {
	dir, repo, logs, work, rpmdb, macros string

	mu    sync.Mutex
	rpms  map[string][]string // component key -> NEVRAs
	repos []BatchRepo
}

// BatchRepo records when a batch's output became a repository.
type BatchRepo struct {
	// Batch is the batch number.
	Batch int
	// Started is when BuildBatch began the batch.
	Started time.Time
	// Written is the modification time of repodata/repomd.xml after
	// createrepo_c ran for this batch (and after the batch's RPMs were
	// installed into the build's rpm database).
	Written time.Time
	// RepoMD is the path of repomd.xml.
	RepoMD string
}

// New validates opts, fills defaults, creates WorkDir and decides whether
// rpmbuild runs sandboxed. Missing rpm tools are not an error here; they
// make Prepare or BuildBatch fail with a *ToolError.
func New(opts Options) (*Backend, error) {
	opts.Parallel = cmp.Or(opts.Parallel, 1)
	opts.Sandbox = cmp.Or(opts.Sandbox, SandboxAuto)
	opts.OnFailure = cmp.Or(opts.OnFailure, FinishBatch)
	opts.Logger = cmp.Or(opts.Logger, slog.New(slog.NewTextHandler(io.Discard, nil)))
	opts.Test.RPMBuild = cmp.Or(opts.Test.RPMBuild, "rpmbuild")
	opts.Test.RPM = cmp.Or(opts.Test.RPM, "rpm")
	opts.Test.CreateRepo = cmp.Or(opts.Test.CreateRepo, "createrepo_c")
	opts.Test.ModifyRepo = cmp.Or(opts.Test.ModifyRepo, "modifyrepo_c")
	opts.Test.Bwrap = cmp.Or(opts.Test.Bwrap, "bwrap")
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Minute}
	}
	if opts.URLs != nil {
		// A cache may not redirect where the policy would not let rida go.
		c := *opts.HTTPClient
		next := c.CheckRedirect
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if _, err := opts.URLs.Check(req.URL.String()); err != nil {
				return &lookasideError{"redirected: " + err.Error()}
			}
			if next != nil {
				return next(req, via)
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		}
		opts.HTTPClient = &c
	}
	now := opts.Test.Now
	if now == nil {
		now = time.Now
	}

	if opts.WorkDir == "" {
		return nil, errors.New("local: Options.WorkDir is required")
	}
	if opts.Parallel < 1 {
		return nil, fmt.Errorf("local: Options.Parallel is %d, must be >= 1", opts.Parallel)
	}
	switch opts.Sandbox {
	case SandboxAuto, SandboxOn, SandboxOff:
	default:
		return nil, fmt.Errorf("local: Options.Sandbox is %q, must be %q, %q or %q", opts.Sandbox, SandboxAuto, SandboxOn, SandboxOff)
	}
	switch opts.OnFailure {
	case FinishBatch, CancelBatch:
	default:
		return nil, fmt.Errorf("local: Options.OnFailure is %q, must be %q or %q", opts.OnFailure, FinishBatch, CancelBatch)
	}
	wd, err := filepath.Abs(opts.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("local: Options.WorkDir %s: %w", opts.WorkDir, err)
	}
	opts.WorkDir = wd
	if opts.Uploads != "" {
		if opts.Uploads, err = filepath.Abs(opts.Uploads); err != nil {
			return nil, fmt.Errorf("local: Options.Uploads: %w", err)
		}
	}
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return nil, fmt.Errorf("local: create Options.WorkDir: %w", err)
	}

	if opts.Sources == nil {
		m, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(wd, ".mirrors"), Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("local: default Options.Sources: %w", err)
		}
		opts.Sources = m
	}

	b := &Backend{opts: opts, log: opts.Logger, now: now, builds: map[string]*buildState{}}
	if opts.Sandbox != SandboxOff {
		sb, err := newSandbox(opts.Test.Bwrap, filepath.Join(wd, ".sandbox"))
		if err == nil {
			err = sb.probe(filepath.Join(wd, ".sandbox"))
		}
		switch {
		case err == nil:
			b.sandbox = sb
		case opts.Sandbox == SandboxOn:
			return nil, fmt.Errorf("local: Options.Sandbox is %q: %w: %v", SandboxOn, ErrSandboxUnavailable, err)
		default:
			b.sandboxProblem = fmt.Errorf("%w: %v", ErrSandboxUnavailable, err)
			b.log.Warn("local: the build sandbox does not work here: rpmbuild runs WITHOUT a sandbox, as this user, with network",
				"reason", err.Error())
		}
	}
	b.log.Info("local: backend ready", "workdir", wd, "parallel", opts.Parallel, "sandbox", b.sandbox != nil, "on_failure", opts.OnFailure)
	return b, nil
}

// Sandboxed reports whether rpmbuild runs in the sandbox (see sandbox.go).
func (b *Backend) Sandboxed() bool { return b.sandbox != nil }

// SandboxProblem returns why rpmbuild runs without the sandbox under
// SandboxAuto (an error wrapping ErrSandboxUnavailable), or nil when it is
// sandboxed or the sandbox is off by choice.
func (b *Backend) SandboxProblem() error { return b.sandboxProblem }

// BuildDir returns the directory of build b under WorkDir.
func (b *Backend) BuildDir(build *runner.Build) string {
	return TreeDir(b.opts.WorkDir, build.Name, build.Stream, build.Version, build.Context, build.ID)
}

// BatchRepos returns, in batch order, when each finished batch's output
// became a repository. Only batches built by this Backend value are listed.
func (b *Backend) BatchRepos(build *runner.Build) []BatchRepo {
	b.mu.Lock()
	st := b.builds[b.BuildDir(build)]
	b.mu.Unlock()
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.repos)
}

func newBuildState(dir string) *buildState {
	return &buildState{
		dir:    dir,
		repo:   filepath.Join(dir, "repo"),
		logs:   filepath.Join(dir, "logs"),
		work:   filepath.Join(dir, "work"),
		rpmdb:  filepath.Join(dir, "rpmdb"),
		macros: filepath.Join(dir, "macros.zz-modules"),
		rpms:   map[string][]string{},
	}
}

// Prepare creates the build directory and its rpm database, and installs
// into that database the binary packages of the module builds the build is
// built against (Build.Deps, minus each one's filtered packages; see
// installDeps), listing them in deps.txt. It is idempotent: preparing an
// existing build keeps what earlier batches built, so a restarted build
// resumes.
func (b *Backend) Prepare(ctx context.Context, build *runner.Build) error {
	if build == nil || build.Name == "" || build.Stream == "" || build.Context == "" || build.DistTag == "" {
		return errors.New("local: prepare: build needs Name, Stream, Context and DistTag")
	}
	st := newBuildState(b.BuildDir(build))
	b.mu.Lock()
	_, known := b.builds[st.dir]
	b.mu.Unlock()
	if _, err := os.Stat(st.dir); err == nil && !known {
		// Adopting a build an earlier process started: stop what it left
		// running before the interrupted batch is built again.
		if n := killStrays(st.dir); n > 0 {
			b.log.Warn("local: killed processes left by an earlier rida in the build directory", "dir", st.dir, "processes", n)
		}
	}
	for _, d := range []string{st.repo, st.logs, st.work, st.rpmdb} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("local: prepare %s: %w", build.NSVC(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(st.rpmdb, "rpmdb.sqlite")); errors.Is(err, os.ErrNotExist) {
		if _, err := b.tool(ctx, "initialise rpmdb", b.opts.Test.RPM, nil, "--dbpath", st.rpmdb, "--initdb"); err != nil {
			return err
		}
	}
	if err := b.installDeps(ctx, build, st); err != nil {
		return err
	}
	b.mu.Lock()
	if _, ok := b.builds[st.dir]; !ok {
		b.builds[st.dir] = st
	}
	b.mu.Unlock()
	b.log.Info("local: build prepared", "nsvc", build.NSVC(), "dir", st.dir)
	return nil
}

// state returns the state of a prepared build; a build prepared by an
// earlier process (its directory exists) is adopted.
func (b *Backend) state(build *runner.Build) (*buildState, error) {
	dir := b.BuildDir(build)
	b.mu.Lock()
	defer b.mu.Unlock()
	if st, ok := b.builds[dir]; ok {
		return st, nil
	}
	st := newBuildState(dir)
	if _, err := os.Stat(filepath.Join(st.rpmdb, "rpmdb.sqlite")); err != nil {
		return nil, fmt.Errorf("local: %s: %w (no %s)", build.NSVC(), ErrNotPrepared, st.rpmdb)
	}
	b.builds[dir] = st
	return st, nil
}

// tool runs a bookkeeping command (not a package build) and turns any
// failure into a *ToolError. Output goes to log when given.
func (b *Backend) tool(ctx context.Context, op, bin string, log io.Writer, args ...string) ([]byte, error) {
	cmd := command(ctx, bin, args...)
	var out tailBuffer
	var stdout strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &out
	if log != nil {
		fmt.Fprintf(log, "+ %s %s\n", bin, strings.Join(args, " "))
		cmd.Stdout = io.MultiWriter(&stdout, log)
		cmd.Stderr = io.MultiWriter(&out, log)
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("local: %s: %w", op, context.Cause(ctx))
		}
		return nil, &ToolError{Op: op, Tool: bin, Args: args, Output: out.tail(), Err: err}
	}
	return []byte(stdout.String()), nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) tail() string { return strings.TrimSpace(string(t.b)) }

func itoa(i int) string { return strconv.Itoa(i) }
