package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Exit codes scripts can rely on.
const (
	exitOK    = 0 // the command did what was asked (a build: it succeeded)
	exitFail  = 1 // the command ran but the result is a failure (a build failed)
	exitUsage = 2 // bad arguments or configuration
	exitInfra = 3 // could not do the work: a tool, a repository or the disk failed
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"build-local":   {"build a module from its git repository on this machine", runBuildLocal},
		"cancel":        {"cancel a module build on a rida server", runCancel},
		"deliveries":    {"list pushes a rida server received, or show what one did", runDeliveries},
		"rerun":         {"queue a delivery's, a build's or a module stream's build again", runRerun},
		"status":        {"list module builds, or show (and --watch) one", runStatus},
		"submit":        {"submit a module build (MBS-style scmurl and branch)", runSubmit},
		"which-modules": {"list the module streams that include a component, or that buildrequire a module stream", runWhichModules},
		"demo":          {"the main job end to end: example git repos, rida serve, signed pushes, builds", runDemo},
		"serve":         {"run the server: webhooks, planner, runner, API", runServe},
		"index":         {"rebuild the component → module streams index from module repositories", runIndex},
		"compact":       {"give the space retention freed in rida.db back to the filesystem (server stopped)", runCompact},
		"check":         {"check that rida.db's records and indexes agree (server stopped)", runCheck},
		"validate":      {"check modulemd files with rida's rules, offline, before pushing", runValidate},
		"version": {"print rida's version", func(_ context.Context, _ []string, stdout, _ io.Writer) int {
			fmt.Fprintln(stdout, "rida", version)
			return exitOK
		}},
	}
}

// Main runs rida with args (without the program name) and returns the exit
// status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = []string{"version"}
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "rida: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return exitUsage
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "rida rebuilds RPM modules when dist-git changes.")
	fmt.Fprintln(w, "\nUsage: rida <command> [flags] [arguments]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'rida <command> --help' for a command's flags.")
}

// parseFlags parses fs and maps -h/--help to exit 0 and bad flags to 2.
// It returns ok=false with the exit code when the command must stop.
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, false
	case err != nil:
		return exitUsage, false
	}
	return 0, true
}

func newFlagSet(name, synopsis, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: rida %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(help))
		fs.PrintDefaults()
	}
	return fs
}
