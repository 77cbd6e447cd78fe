package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/rida-build/rida/state"
)

const compactHelp = `
Rewrite <data_dir>/rida.db without its free pages. bbolt reuses the pages
that retention frees but never shrinks the file; compact gives that space
back to the filesystem. rida serve must be stopped (the store allows one
process); a crash during compact leaves the old file or the new one.`

func runCompact(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("compact", "[flags]", compactHelp, stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the built-in configuration)")
	dataDir := fs.String("data-dir", "", "override data_dir")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "rida compact:", err)
		return exitUsage
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	before, after, err := state.Compact(filepath.Join(cfg.DataDir, "rida.db"))
	if err != nil {
		fmt.Fprintln(stderr, "rida compact:", err)
		return exitInfra
	}
	fmt.Fprintf(stdout, "rida.db: %d bytes before, %d after\n", before, after)
	return exitOK
}
