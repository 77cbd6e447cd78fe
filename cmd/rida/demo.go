package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rida-build/rida/examples"
)

const demoHelp = `
Create the example module's git repositories (the module rida-demo and its
component repositories, embedded in this binary) in a new directory, then
build the module with the local backend exactly as 'rida build-local' would.
It prints the equivalent build-local command and where the RPMs are. The
directory is kept so you can look at the RPMs, logs and repositories.`

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "[flags]", demoHelp, stderr)
	dir := fs.String("dir", "", "directory to create the repositories and builds in (default: a new temp dir)")
	parallel := fs.Int("parallel", 2, "component builds to run at once inside a batch")
	sandbox := fs.String("sandbox", "auto", "auto, on or off: see 'rida build-local --help'")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "rida-demo-")
		if err != nil {
			fmt.Fprintln(stderr, "rida demo:", err)
			return exitInfra
		}
		*dir = d
	}
	if err := os.MkdirAll(filepath.Join(*dir, "git"), 0o755); err != nil {
		fmt.Fprintln(stderr, "rida demo:", err)
		return exitInfra
	}
	layout, err := examples.CreateRepos(filepath.Join(*dir, "git"), examples.Options{})
	if err != nil {
		fmt.Fprintln(stderr, "rida demo:", err)
		return exitInfra
	}
	fmt.Fprintf(stdout, "rida demo: created the module repository %s (branch %s)\n", layout.Module.Path, layout.Module.Branch)
	fmt.Fprintf(stdout, "rida demo: and %d component repositories under %s\n", len(layout.Components), filepath.Join(layout.Dir, "rpms"))
	workDir := filepath.Join(*dir, "work")
	fmt.Fprintf(stdout, "rida demo: running: rida build-local --workdir %s --branch %s %s\n\n", workDir, layout.Module.Branch, layout.Module.Path)
	return buildLocal(ctx, buildLocalOptions{
		source: layout.Module.Path, branch: layout.Module.Branch, workDir: workDir,
		parallel: *parallel, sandbox: *sandbox, onFailure: "finish-batch", platform: "el9",
		componentBase: layout.ComponentsBaseURL, id: 1,
	}, stdout, stderr)
}
