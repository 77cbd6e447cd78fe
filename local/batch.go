package local

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/rida-build/rida/buildmacros"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/scm"
)

// errSiblingFailed is the cancel cause of a batch under CancelBatch.
var errSiblingFailed = errors.New("another component of the batch failed")

// outcome is what one component build ended with.
type outcome struct {
	key   string
	state runner.ComponentState
	files []string // built RPM files (binary and source)
	infra error    // set when the failure was the backend's, not the package's
}

// BuildBatch builds the batch's components, up to Options.Parallel at once,
// reporting building and then complete, failed or canceled for each. Then it
// adds the completed components' RPMs to the build's rpm database and
// repository (createrepo_c), so the next batch can BuildRequire them.
//
// It returns nil when every component was reported in a terminal state,
// whether it built or not. It returns a *ToolError (or another error) for
// infrastructure trouble, ErrNotPrepared without Prepare, and ctx's error
// when ctx was cancelled (every component is then reported canceled first).
// No goroutine outlives the call.
func (b *Backend) BuildBatch(ctx context.Context, build *runner.Build, batch *runner.Batch, report func(runner.ComponentUpdate)) error {
	st, err := b.state(build)
	if err != nil {
		return err
	}
	// Preflight: a missing tool is an infrastructure error, reported before
	// any component starts.
	for _, bin := range []string{b.opts.Test.RPMBuild, b.opts.Test.RPM, b.opts.Test.CreateRepo} {
		if _, err := exec.LookPath(bin); err != nil {
			return &ToolError{Op: fmt.Sprintf("build batch %d", batch.Number), Tool: bin, Err: err}
		}
	}
	started := b.now()
	log := b.log.With("nsvc", build.NSVC(), "batch", batch.Number)
	log.Info("local: batch started", "components", len(batch.Components))

	var macrosComps, comps []*runner.Component
	for _, c := range batch.Components {
		if c.Key == runner.MacrosComponent {
			macrosComps = append(macrosComps, c)
		} else {
			comps = append(comps, c)
		}
	}
	if len(comps) > 0 && len(macrosComps) == 0 {
		if _, err := os.Stat(st.macros); err != nil {
			return fmt.Errorf("local: build batch %d of %s: %w (%v)", batch.Number, build.NSVC(), ErrNoModuleMacros, err)
		}
	}

	var outcomes []outcome
	// module-build-macros first: the other components need its macros.
	for _, c := range macrosComps {
		o := b.buildComponent(ctx, st, build, c, report)
		outcomes = append(outcomes, o)
		if o.state == runner.ComponentComplete {
			if err := b.installMacros(build, st); err != nil {
				return err
			}
		}
	}
	macrosOK := true
	for _, o := range outcomes {
		macrosOK = macrosOK && o.state == runner.ComponentComplete
	}
	if len(comps) > 0 && macrosOK {
		outcomes = append(outcomes, b.runParallel(ctx, st, build, comps, report)...)
	} else if len(comps) > 0 {
		mctx, cancel := context.WithCancelCause(ctx)
		cancel(fmt.Errorf("%s failed", runner.MacrosComponent))
		for _, c := range comps {
			outcomes = append(outcomes, b.cancelled(mctx, st, c, report))
		}
	}

	var infra []error
	var done []outcome
	for _, o := range outcomes {
		if o.infra != nil {
			infra = append(infra, o.infra)
		}
		if o.state == runner.ComponentComplete {
			done = append(done, o)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: build batch %d of %s: %w", batch.Number, build.NSVC(), context.Cause(ctx))
	}
	if len(infra) > 0 {
		return errors.Join(infra...)
	}
	// Publish what built, even if a sibling failed, so the repository and
	// the logs show everything that was produced.
	if err := b.publish(ctx, st, batch.Number, started, done); err != nil {
		return err
	}
	return nil
}

// runParallel builds comps with at most Options.Parallel at once and waits
// for all of them.
func (b *Backend) runParallel(ctx context.Context, st *buildState, build *runner.Build, comps []*runner.Component, report func(runner.ComponentUpdate)) []outcome {
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	outcomes := make([]outcome, len(comps))
	sem := make(chan struct{}, b.opts.Parallel)
	var wg sync.WaitGroup
	for i, c := range comps {
		// Wait for a slot, or for cancellation.
		select {
		case sem <- struct{}{}:
		case <-bctx.Done():
		}
		if bctx.Err() == nil && b.opts.Slots != nil {
			if err := b.opts.Slots.Acquire(bctx); err != nil {
				<-sem
			}
		}
		if bctx.Err() != nil {
			outcomes[i] = b.cancelled(bctx, st, c, report)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if b.opts.Slots != nil {
				defer b.opts.Slots.Release()
			}
			o := b.buildComponent(bctx, st, build, c, report)
			if o.state == runner.ComponentFailed && b.opts.OnFailure == CancelBatch {
				cancel(fmt.Errorf("%w: %s", errSiblingFailed, c.Key))
			}
			outcomes[i] = o
		})
	}
	wg.Wait()
	return outcomes
}

// cancelled reports a component that never started as canceled.
func (b *Backend) cancelled(ctx context.Context, st *buildState, c *runner.Component, report func(runner.ComponentUpdate)) outcome {
	report(runner.ComponentUpdate{
		Key: c.Key, State: runner.ComponentCanceled, Time: b.now(),
		Reason: fmt.Sprintf("component %s canceled before it started: %v", c.Key, context.Cause(ctx)),
	})
	return outcome{key: c.Key, state: runner.ComponentCanceled}
}

// buildComponent checks out and builds one component, reporting building
// and then its terminal state.
func (b *Backend) buildComponent(ctx context.Context, st *buildState, build *runner.Build, c *runner.Component, report func(runner.ComponentUpdate)) outcome {
	key := c.Key
	infraFail := func(err error) outcome {
		report(runner.ComponentUpdate{Key: key, State: runner.ComponentFailed, Time: b.now(),
			Reason: fmt.Sprintf("component %s: infrastructure error: %v", key, err)})
		return outcome{key: key, state: runner.ComponentFailed, infra: err}
	}
	if key == "" || strings.ContainsAny(key, "/\\") || key == "." || key == ".." {
		return infraFail(fmt.Errorf("invalid component key %q", key))
	}
	logPath := filepath.Join(st.logs, key+".log")
	report(runner.ComponentUpdate{Key: key, State: runner.ComponentBuilding, LogPath: logPath, Time: b.now()})

	logf, err := os.Create(logPath)
	if err != nil {
		return infraFail(fmt.Errorf("create log: %w", err))
	}
	defer logf.Close()
	// The log is written by several goroutines of exec; serialise.
	log := &lockedWriter{w: logf}

	fail := func(why string) outcome {
		if ctx.Err() != nil {
			fmt.Fprintf(log, "\n*** canceled: %v\n", context.Cause(ctx))
			report(runner.ComponentUpdate{Key: key, State: runner.ComponentCanceled, LogPath: logPath, Time: b.now(),
				Reason: fmt.Sprintf("component %s canceled: %v, see %s", key, context.Cause(ctx), logPath)})
			return outcome{key: key, state: runner.ComponentCanceled}
		}
		fmt.Fprintf(log, "\n*** failed: %s\n", why)
		report(runner.ComponentUpdate{Key: key, State: runner.ComponentFailed, LogPath: logPath, Time: b.now(),
			Reason: fmt.Sprintf("component %s failed to build: %s, see %s", key, why, logPath)})
		return outcome{key: key, state: runner.ComponentFailed}
	}

	work := filepath.Join(st.work, key)
	src, top, tmp, home := filepath.Join(work, "src"), filepath.Join(work, "rpmbuild"), filepath.Join(work, "tmp"), filepath.Join(work, "home")
	if err := os.RemoveAll(work); err != nil {
		return infraFail(fmt.Errorf("clean %s: %w", work, err))
	}
	for _, d := range []string{src, top, tmp, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return infraFail(fmt.Errorf("create %s: %w", d, err))
		}
	}

	var spec string
	mode := "-ba"
	if c.SRPM != "" && key != runner.MacrosComponent {
		// Built from an uploaded SRPM (a scratch build's srpms): rpmbuild
		// installs it into _sourcedir and _specdir and builds source and
		// binary packages from it, with this module's %dist and macros.
		mode = "-ra"
	}
	args := []string{mode,
		"--define", "_topdir " + top,
		"--define", "_sourcedir " + src,
		"--define", "_specdir " + src,
		"--define", "_tmppath " + tmp,
		"--define", "_dbpath " + st.rpmdb,
	}
	if key == runner.MacrosComponent {
		var err error
		if spec, err = writeMacrosSources(build, src); err != nil {
			return fail(err.Error())
		}
	} else if c.SRPM != "" {
		var why string
		spec, why, err = b.takeSRPM(ctx, st, c, filepath.Join(work, "srpm"), log)
		switch {
		case err != nil:
			return infraFail(err)
		case why != "":
			return fail(why)
		}
		args = append(args, "--load", st.macros)
	} else {
		if err := b.export(ctx, c, src, log); err != nil {
			return fail(err.Error())
		}
		if err := checkTree(src); err != nil {
			var re *repoFileError
			if errors.As(err, &re) {
				return fail("repository: " + err.Error())
			}
			return infraFail(err)
		}
		cache := c.Cache
		if cache == "" && b.opts.Lookaside != "" {
			cache = strings.TrimRight(b.opts.Lookaside, "/") + "/" + cmp.Or(c.Package, key)
		}
		if err := b.fetchSources(ctx, src, cache, log); err != nil {
			var le *lookasideError
			var re *repoFileError
			if errors.As(err, &le) || errors.As(err, &re) || ctx.Err() != nil {
				return fail("sources: " + err.Error())
			}
			return infraFail(err)
		}
		if spec, err = findSpec(src, cmp.Or(c.Package, key)); err != nil {
			return fail(err.Error())
		}
		args = append(args, "--load", st.macros)
	}
	if b.opts.NoDeps {
		args = append(args, "--nodeps")
	}
	args = append(args, "--define", "dist "+build.DistTag, spec)

	bin, cmdArgs := b.opts.Test.RPMBuild, args
	if b.sandbox != nil {
		// Writable: the work directory only. Read-only: the rpm database
		// (BuildRequires check) and, for components, the module macros.
		ro := []string{st.rpmdb}
		if key != runner.MacrosComponent {
			ro = append(ro, st.macros)
		}
		bin, cmdArgs = b.sandbox.bwrap, append(append(b.sandbox.args(work, ro...), b.opts.Test.RPMBuild), args...)
	}
	if len(build.Deps) > 0 {
		deps := make([]string, 0, len(build.Deps))
		for i := range build.Deps {
			deps = append(deps, depNSVC(&build.Deps[i]))
		}
		fmt.Fprintf(log, "*** build root: this module's earlier batches and the packages of %s (see %s)\n",
			strings.Join(deps, ", "), filepath.Join(st.dir, depsFile))
	}
	fmt.Fprintf(log, "%s\n+ %s %s\n", rpmbuildMarker, bin, strings.Join(cmdArgs, " "))
	cmd := command(ctx, bin, cmdArgs...)
	cmd.Dir = work
	cmd.Env = sandboxEnv(b.sandbox != nil, home, tmp)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) && ctx.Err() == nil {
			return infraFail(&ToolError{Op: "build component " + key, Tool: bin, Args: cmdArgs, Err: err})
		}
		why := fmt.Sprintf("rpmbuild exited %d", exitCode(err))
		if tail := errorLines(logPath); tail != "" {
			return fail(why + ": " + tail)
		}
		return fail(why)
	}

	// What rpmbuild left in _topdir is the spec's to shape: only regular
	// files with one link are taken, never followed out of the tree.
	files, err := findRPMs(top)
	if err != nil {
		var re *repoFileError
		if errors.As(err, &re) {
			return fail("built files: " + err.Error())
		}
		return infraFail(err)
	}
	pkgs, err := b.queryRPMs(ctx, st, files, log)
	if err != nil {
		var te *ToolError
		if errors.As(err, &te) && ctx.Err() == nil {
			// rpm is there (checked before the batch): it could not read
			// what the build produced. Its output is in the log.
			return fail(fmt.Sprintf("built files are not RPM packages rpm can read (rpm: %v)", te.Err))
		}
		return infraFail(err)
	}
	var nvr string
	nevras := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		nevras = append(nevras, p.nevra())
		if p.arch == "src" {
			nvr = p.name + "-" + p.version + "-" + p.release
		}
	}
	slices.Sort(nevras)
	if nvr == "" {
		return fail("rpmbuild produced no source RPM")
	}
	st.mu.Lock()
	st.rpms[key] = nevras
	st.mu.Unlock()
	fmt.Fprintf(log, "\n*** complete: %s\n", nvr)
	report(runner.ComponentUpdate{Key: key, State: runner.ComponentComplete, NVR: nvr, LogPath: logPath, RPMs: nevras, Time: b.now()})
	return outcome{key: key, state: runner.ComponentComplete, files: files}
}

// writeMacrosSources writes module-build-macros' spec and macros file into
// src and returns the spec path.
func writeMacrosSources(build *runner.Build, src string) (string, error) {
	m, err := macrosModule(build)
	if err != nil {
		return "", err
	}
	spec, err := buildmacros.Spec(m)
	if err != nil {
		return "", err
	}
	macros, err := buildmacros.Macros(m)
	if err != nil {
		return "", err
	}
	path := filepath.Join(src, buildmacros.PackageName+".spec")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, buildmacros.SourceName), []byte(macros), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// installMacros makes the module macros apply to later builds: it copies
// the macros file the package installs to <build>/macros.zz-modules, which
// every later rpmbuild loads. The file is read back from the work
// directory the build could write (buildopts macros are the packager's),
// so only as a regular file inside it.
func (b *Backend) installMacros(build *runner.Build, st *buildState) error {
	root, err := os.OpenRoot(filepath.Join(st.work, runner.MacrosComponent))
	if err != nil {
		return fmt.Errorf("local: install module macros of %s: %w", build.NSVC(), err)
	}
	defer root.Close()
	data, err := readRegular(root, filepath.Join("src", buildmacros.SourceName), maxMacrosFile)
	if err != nil {
		return fmt.Errorf("local: install module macros of %s: %w", build.NSVC(), err)
	}
	tmp := st.macros + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("local: install module macros of %s: %w", build.NSVC(), err)
	}
	if err := os.Rename(tmp, st.macros); err != nil {
		return fmt.Errorf("local: install module macros of %s: %w", build.NSVC(), err)
	}
	return nil
}

// macrosModule maps a build to the buildmacros input; buildopts macros come
// from the modulemd's data.buildopts.rpms.macros.
func macrosModule(build *runner.Build) (buildmacros.Module, error) {
	bo, err := buildoptsMacros(build)
	if err != nil {
		return buildmacros.Module{}, err
	}
	return buildmacros.Module{
		Name: build.Name, Stream: build.Stream, Version: build.Version, Context: build.Context,
		DistTag:         build.DistTag,
		BuildoptsMacros: bo,
	}, nil
}

// export writes c's tree at c.Commit (or, when Commit is empty, the branch
// or tag c.Ref) into dir through Options.Sources: no history, no .git.
func (b *Backend) export(ctx context.Context, c *runner.Component, dir string, log io.Writer) error {
	// The URL may carry credentials: logs and errors show it redacted.
	shown := scm.Redact(c.Repository)
	rev := cmp.Or(c.Commit, c.Ref)
	fmt.Fprintf(log, "+ export %s at %s into %s (the tree only, from rida's mirror)\n", shown, rev, dir)
	switch {
	case c.Repository == "":
		return errors.New("no repository URL")
	case rev == "":
		return errors.New("neither commit nor ref given")
	case c.Commit != "" && !scm.IsHash(c.Commit):
		return fmt.Errorf("commit %q is not a full hash", c.Commit)
	}
	if err := b.opts.Sources.Export(ctx, c.Repository, rev, dir); err != nil {
		return fmt.Errorf("export %s at %s: %s", shown, rev, redactIn(err.Error(), c.Repository, shown))
	}
	fmt.Fprintf(log, "exported %s\n", rev)
	return nil
}

// redactIn replaces raw by shown in s (an error text that may quote the
// URL with its credentials).
func redactIn(s, raw, shown string) string {
	if raw == shown || raw == "" {
		return s
	}
	return strings.ReplaceAll(s, raw, shown)
}

// findSpec returns <pkg>.spec at the root of dir, else the only *.spec; it
// must be a regular file (not a symlink).
func findSpec(dir, pkg string) (string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("open checkout: %w", err)
	}
	defer root.Close()
	name := pkg + ".spec"
	if _, err := root.Lstat(name); err != nil {
		specs, _ := filepath.Glob(filepath.Join(dir, "*.spec"))
		if len(specs) != 1 {
			return "", fmt.Errorf("no %s.spec at the repository root and %d other .spec files", pkg, len(specs))
		}
		name = filepath.Base(specs[0])
	}
	f, _, err := openRegular(root, name, -1)
	if err != nil {
		return "", err
	}
	f.Close()
	return filepath.Join(dir, name), nil
}

// findRPMs lists the RPM files under an rpmbuild _topdir. The build wrote
// that tree: anything named *.rpm there that is not a regular file with a
// single link (a symlink to a file of the host, a FIFO, a hard link) is a
// *repoFileError, and symlinked directories are not entered.
func findRPMs(top string) ([]string, error) {
	var files []string
	for _, sub := range []string{"RPMS", "SRPMS"} {
		err := filepath.WalkDir(filepath.Join(top, sub), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() || !strings.HasSuffix(p, ".rpm") {
				return nil
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(top, p)
			if err := checkRegular(rel, fi, -1); err != nil {
				return err
			}
			files = append(files, p)
			return nil
		})
		var re *repoFileError
		if errors.As(err, &re) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("list built RPMs in %s: %w", top, err)
		}
	}
	slices.Sort(files)
	return files, nil
}

// pkg is one RPM file's identity.
type pkg struct{ name, epoch, version, release, arch string }

// nevra is name-epoch:version-release.arch with an explicit epoch.
func (p pkg) nevra() string {
	return p.name + "-" + p.epoch + ":" + p.version + "-" + p.release + "." + p.arch
}

// queryRPMs reads name, epoch, version, release and arch from RPM files;
// source RPMs get arch "src".
func (b *Backend) queryRPMs(ctx context.Context, st *buildState, files []string, log io.Writer) ([]pkg, error) {
	if len(files) == 0 {
		return nil, nil
	}
	args := append([]string{"--dbpath", st.rpmdb, "-qp", "--qf", `%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n`}, files...)
	out, err := b.tool(ctx, "query built RPMs", b.opts.Test.RPM, log, args...)
	if err != nil {
		return nil, err
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 6 {
			continue
		}
		p := pkg{name: f[0], epoch: f[1], version: f[2], release: f[3], arch: f[4]}
		if f[5] == "(none)" {
			p.arch = "src"
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) != len(files) {
		return nil, &ToolError{Op: "query built RPMs", Tool: b.opts.Test.RPM, Args: args, Output: string(out),
			Err: fmt.Errorf("got %d packages for %d files", len(pkgs), len(files))}
	}
	return pkgs, nil
}

// exitCode returns the exit status of an exec error, or -1.
func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	return -1
}

// rpmbuildMarker precedes the rpmbuild command in a component log.
const rpmbuildMarker = "*** rpmbuild"

// errorLines returns the meaningful end of a failed build's log: the last
// output lines of the failing step (shell traces skipped) and rpmbuild's
// "error:" lines with their indented continuations (e.g. the list of missing
// BuildRequires), else the last non-empty lines.
func errorLines(logPath string) string {
	data, err := readTail(logPath, 64<<10)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(data), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i] == rpmbuildMarker {
			lines = lines[i+1:]
			break
		}
	}
	if i := slices.Index(lines, "RPM build errors:"); i >= 0 {
		lines = lines[:i] // rpmbuild's summary repeats the errors
	}
	meaningful := func(l string) bool {
		return l != "" && !strings.HasPrefix(l, "+ ") && !strings.HasPrefix(l, "Executing(") && !strings.HasPrefix(l, "*** ")
	}
	var errs []string
	first := -1
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "error:"):
			errs = append(errs, strings.TrimSpace(l))
			if first < 0 {
				first = i
			}
		case len(errs) > 0 && first >= 0 && (strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "    ")):
			errs[len(errs)-1] = strings.TrimSuffix(errs[len(errs)-1], ";") + " " + strings.TrimSpace(l) + ";"
		}
	}
	for i := range errs {
		errs[i] = strings.TrimSuffix(errs[i], ";")
	}
	// Output of the failing step just before a "Bad exit status" error.
	var context []string
	end := first
	if end < 0 {
		end = len(lines)
	} else if !strings.Contains(lines[first], "Bad exit status") {
		end = 0
	}
	for i := end - 1; i >= 0 && len(context) < 3; i-- {
		if l := strings.TrimSpace(lines[i]); meaningful(l) && !strings.HasPrefix(l, "error:") {
			context = append([]string{l}, context...)
		}
	}
	if first >= 0 && len(context) > 2 {
		context = context[len(context)-2:]
	}
	picked := append(context, errs...)
	if len(picked) > 6 {
		picked = picked[len(picked)-6:]
	}
	return strings.Join(picked, "; ")
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// readTail returns the last n bytes of the file at path (a build log can
// be as large as the build made it).
func readTail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if off := fi.Size() - n; off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, n))
}
