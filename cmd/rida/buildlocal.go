package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/scm"
)

const buildLocalHelp = `
Build a module on this machine, as MBS's build_module_locally does: read the
modulemd at the commit, validate it, enrich it (stream from the branch,
version from the commit time, context, component refs resolved to commits),
then build module-build-macros and every batch with rpmbuild, regenerating a
createrepo_c repository after each batch so later batches build against
earlier ones.

SOURCE is the module's git repository, a path or a file://, https:// URL,
optionally followed by #REF (a branch, tag or commit). The modulemd file is
<name>.yaml at the repository root, <name> being the repository's name.

Components without a repository: key are taken from --component-base/<name>;
the default is the directory beside the module repository's parent, i.e. for
/srv/git/modules/foo it is /srv/git/rpms.

Exit status: 0 the module built; 1 it did not (a component failed, or the
modulemd is invalid: the reason is printed); 2 usage error; 3 infrastructure
trouble (a tool missing, a repository unreachable, disk full).`

type buildLocalOptions struct {
	source        string
	branch        string
	workDir       string
	parallel      int
	sandbox       string
	onFailure     string
	platform      string
	componentBase string
	moduleFile    string
	lookaside     string
	nodeps        bool
	id            int64
	verbose       bool
}

func runBuildLocal(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("build-local", "[flags] SOURCE[#REF]", buildLocalHelp, stderr)
	var o buildLocalOptions
	home, _ := os.UserHomeDir()
	fs.StringVar(&o.branch, "branch", "", "branch, which becomes the stream (default: REF if it is a branch, else the repository's default branch)")
	fs.StringVar(&o.workDir, "workdir", filepath.Join(home, "rida-builds"), "directory for mirrors, build trees, logs and the output repository")
	fs.IntVar(&o.parallel, "parallel", 2, "component builds to run at once inside a batch")
	fs.StringVar(&o.sandbox, "sandbox", "auto", "run rpmbuild in the bubblewrap sandbox (no network, no secrets, writes only in its work directory): auto (when bwrap works, else a loud warning), on, off")
	fs.StringVar(&o.onFailure, "on-failure", "finish-batch", "when a component fails: finish-batch (let its batch siblings finish, as MBS) or cancel-batch")
	fs.StringVar(&o.platform, "platform", "el9", "platform stream when the module buildrequires none; also the dist tag marking")
	fs.StringVar(&o.componentBase, "component-base", "", "base URL of component repositories without an explicit repository")
	fs.StringVar(&o.moduleFile, "file", "", "modulemd file name in the repository (default <name>.yaml)")
	fs.BoolVar(&o.nodeps, "nodeps", false, "do not check BuildRequires (rpmbuild --nodeps): for components that need host tools this host does not have as RPMs")
	fs.StringVar(&o.lookaside, "lookaside", "", "dist-git lookaside cache base URL for components with a sources file, e.g. https://src.fedoraproject.org/repo/pkgs/rpms")
	fs.Int64Var(&o.id, "id", 1, "build id, the <index> part of the dist tag")
	fs.BoolVar(&o.verbose, "v", false, "log debug details to stderr")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "rida build-local: exactly one SOURCE is required")
		fs.Usage()
		return exitUsage
	}
	o.source = fs.Arg(0)
	return buildLocal(ctx, o, stdout, stderr)
}

// buildLocal is build-local's body, shared with the demo.
func buildLocal(ctx context.Context, o buildLocalOptions, stdout, stderr io.Writer) int {
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	source, ref, _ := strings.Cut(o.source, "#")
	repoURL, err := scm.NormalizeURL(source)
	if err != nil {
		fmt.Fprintln(stderr, "rida build-local:", err)
		return exitUsage
	}
	mirrors, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(o.workDir, "mirrors"), Logger: logger})
	if err != nil {
		fmt.Fprintln(stderr, "rida build-local:", err)
		return exitInfra
	}
	repo, err := mirrors.Fetch(ctx, repoURL)
	if err != nil {
		fmt.Fprintln(stderr, "rida build-local:", err)
		return exitInfra
	}
	branch := o.branch
	if branch == "" {
		switch {
		case ref != "" && !scm.IsHash(ref):
			branch = ref
		default:
			if branch, err = repo.DefaultBranch(); err != nil {
				fmt.Fprintln(stderr, "rida build-local: cannot tell the branch, pass --branch:", err)
				return exitUsage
			}
		}
	}
	if ref == "" {
		ref = branch
	}
	commit, err := repo.Commit(ref)
	if err != nil {
		fmt.Fprintln(stderr, "rida build-local:", err)
		return exitFail
	}
	name := strings.TrimSuffix(path.Base(strings.TrimRight(repoURL, "/")), ".git")
	file := o.moduleFile
	if file == "" {
		file = name + ".yaml"
	}
	data, err := repo.ReadFile(commit.Hash, file, 8<<20)
	if err != nil {
		fmt.Fprintln(stderr, "rida build-local:", err)
		return exitFail
	}
	base := o.componentBase
	if base == "" {
		base = runner.DefaultComponentBase(repoURL)
	}
	fmt.Fprintf(stdout, "rida: module %s branch %s at %.12s (%s)\n", name, branch, commit.Hash, repoURL)

	builds, err := runner.Init(ctx, runner.ModuleSource{
		Name: name, Branch: branch, Commit: commit.Hash, CommitTime: commit.Time,
		ScmURL: repoURL + "?#" + commit.Hash, Modulemd: data,
	}, scm.ErrNotFound, runner.InitOptions{
		Resolver: scm.Resolver{Mirrors: mirrors}, DefaultRepository: strings.TrimSuffix(base, "/"),
		Platform: o.platform, ID: o.id, Modules: runner.SCMModules{Mirrors: mirrors},
	})
	if err != nil {
		return reportErr(stderr, err)
	}

	be, err := local.New(local.Options{
		WorkDir: filepath.Join(o.workDir, "builds"), Parallel: o.parallel,
		Sandbox: o.sandbox, OnFailure: o.onFailure, Logger: logger, Lookaside: o.lookaside, NoDeps: o.nodeps,
		Sources: mirrors, // the component mirrors ref resolution fetched: no second fetch
	})
	if err != nil {
		fmt.Fprintln(stderr, "rida build-local:", err)
		if errors.Is(err, local.ErrSandboxUnavailable) {
			fmt.Fprintln(stderr, "rida build-local: install bubblewrap and allow unprivileged user namespaces, or pass --sandbox off")
			return exitInfra
		}
		if strings.Contains(err.Error(), "Options.") {
			return exitUsage
		}
		return exitInfra
	}
	if p := be.SandboxProblem(); p != nil {
		fmt.Fprintf(stderr, "rida build-local: WARNING: building WITHOUT the sandbox: %v\n"+
			"rida build-local: WARNING: the specs run as you, with network, and can read and write everything you can.\n"+
			"rida build-local: WARNING: install bubblewrap and allow unprivileged user namespaces, or pass --sandbox off to build unsandboxed on purpose.\n", p)
	}
	code := exitOK
	for _, b := range builds {
		if c := executeLocal(ctx, be, b, logger, stdout, stderr); c != exitOK {
			code = c
		}
	}
	return code
}

func executeLocal(ctx context.Context, be runner.Backend, b *runner.Build, logger *slog.Logger, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "rida: building %s, dist tag %s, %d batches\n", b.NSVC(), b.DistTag, len(b.Batches))
	start := time.Now()
	var mu sync.Mutex
	res, err := runner.Execute(ctx, be, b, runner.ExecuteOptions{
		Logger: logger,
		Progress: func(e runner.Event) {
			mu.Lock()
			defer mu.Unlock()
			ts := e.Time.Sub(start).Round(100 * time.Millisecond)
			if e.Component == nil {
				fmt.Fprintf(stdout, "%7s  %s\n", ts, e.Message)
				return
			}
			c := e.Component
			line := fmt.Sprintf("%7s  batch %d  %-24s %s", ts, c.Batch, c.Key, c.State)
			switch c.State {
			case runner.ComponentComplete:
				line += "  " + c.NVR
			case runner.ComponentFailed, runner.ComponentCanceled:
				line += "  " + c.Reason
			}
			fmt.Fprintln(stdout, line)
		},
	})
	printSummary(stdout, b)
	if err != nil {
		fmt.Fprintf(stdout, "rida: %s failed after %s\n", b.NSVC(), time.Since(start).Round(time.Second))
		return reportErr(stderr, err)
	}
	fmt.Fprintf(stdout, "rida: %s done in %s\n", b.NSVC(), time.Since(start).Round(time.Second))
	fmt.Fprintf(stdout, "rida: RPMs and repository: %s\n", res.Dir)
	fmt.Fprintf(stdout, "rida: final modulemd:      %s\n", filepath.Join(res.Dir, "modules.yaml"))
	return exitOK
}

func printSummary(w io.Writer, b *runner.Build) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nBATCH\tCOMPONENT\tSTATE\tTIME\tNVR / REASON")
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			d := "-"
			if !c.Finished.IsZero() && !c.Started.IsZero() {
				d = c.Finished.Sub(c.Started).Round(100 * time.Millisecond).String()
			}
			detail := c.NVR
			if c.State == runner.ComponentFailed || c.State == runner.ComponentCanceled {
				detail = c.Reason
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", c.Batch, c.Key, c.State, d, detail)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// reportErr prints err and maps its type to an exit status.
func reportErr(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "rida:", err)
	var infra *runner.InfraError
	switch {
	case errors.As(err, &infra):
		return exitInfra
	case errors.Is(err, context.Canceled):
		return exitInfra
	}
	return exitFail
}
