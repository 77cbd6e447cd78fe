package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/state"
	"github.com/rida-build/rida/webhook"
)

const indexHelp = `
Rebuild the component → module streams index from the module repositories:
every tracked branch of each repository whose modulemd parses becomes one
module stream, and every component it includes is indexed at its ref. The
planner keeps the index current on every module push; run this once when you
start using rida on existing repositories, or after restoring a backup.

MODULE-REPO is a module repository URL (or path); the repositories listed
under repos.module_repos in the configuration are scanned too. rida serve
must not be running on the same data dir (the store allows one process).`

func runIndex(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("index", "[flags] [MODULE-REPO...]", indexHelp, stderr)
	cfgPath, dataDir := dataDirFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := loadConfigFor(*cfgPath, *dataDir)
	if err != nil {
		fmt.Fprintln(stderr, "rida index:", err)
		return exitUsage
	}
	repos := append(append([]string(nil), cfg.Repos.ModuleRepos...), fs.Args()...)
	if len(repos) == 0 {
		fmt.Fprintln(stderr, "rida index: no module repositories: pass them as arguments or list them in repos.module_repos")
		return exitUsage
	}
	level, _ := parseLevel(cfg.LogLevel)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		fmt.Fprintln(stderr, "rida index:", err)
		return exitInfra
	}
	store, err := state.Open(filepath.Join(cfg.DataDir, "rida.db"), state.Options{Logger: logger})
	if err != nil {
		fmt.Fprintln(stderr, "rida index:", err, "(is rida serve running on this data dir?)")
		return exitInfra
	}
	defer store.Close()
	mirrors, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(cfg.DataDir, "mirrors"), Logger: logger})
	if err != nil {
		fmt.Fprintln(stderr, "rida index:", err)
		return exitInfra
	}
	planner, err := webhook.NewPlanner(webhook.PlannerOptions{
		Store: store, Mirrors: mirrors, Classifier: cfg.classifier(), ModuleFile: cfg.Repos.ModuleFile,
		TrackedBranches: cfg.Repos.TrackedBranches, ComponentBaseURL: cfg.Repos.ComponentBaseURL, Logger: logger,
	})
	if err != nil {
		fmt.Fprintln(stderr, "rida index:", err)
		return exitUsage
	}
	code := exitOK
	for _, repo := range repos {
		n, err := planner.IndexModuleRepo(ctx, repo, webhook.RepoName(repo))
		if err != nil {
			fmt.Fprintf(stderr, "rida index: %s: %v\n", repo, err)
			code = exitFail
		}
		fmt.Fprintf(stdout, "%s: %d module streams indexed\n", repo, n)
	}
	return code
}
