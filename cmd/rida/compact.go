package main

import (
	"context"
	"flag"
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
	cfgPath, dataDir := dataDirFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := loadConfigFor(*cfgPath, *dataDir)
	if err != nil {
		fmt.Fprintln(stderr, "rida compact:", err)
		return exitUsage
	}
	before, after, err := state.Compact(filepath.Join(cfg.DataDir, "rida.db"))
	if err != nil {
		fmt.Fprintln(stderr, "rida compact:", err)
		return exitInfra
	}
	fmt.Fprintf(stdout, "rida.db: %d bytes before, %d after\n", before, after)
	return exitOK
}

// dataDirFlags adds the --config and --data-dir flags of the commands that
// work on a data directory while rida serve is stopped (index, compact).
func dataDirFlags(fs *flag.FlagSet) (cfgPath, dataDir *string) {
	return fs.String("config", "", "configuration file (default: the built-in configuration)"),
		fs.String("data-dir", "", "override data_dir")
}

// loadConfigFor loads the configuration at cfgPath with data_dir replaced
// by dataDir when given.
func loadConfigFor(cfgPath, dataDir string) (*config, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	return cfg, nil
}
