package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/rida-build/rida/state"
)

const checkHelp = `
Check <data_dir>/rida.db: bbolt's own page check, then that records and
indexes agree (deliveries and plan jobs, the queue, the component and
dependents indexes, the event log, the module build indexes and counters,
the status outbox). Prints every problem found; exit status 1 when there
is one. rida serve must be stopped (the store allows one process).`

func runCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "[flags]", checkHelp, stderr)
	cfgPath, dataDir := dataDirFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := loadConfigFor(*cfgPath, *dataDir)
	if err != nil {
		fmt.Fprintln(stderr, "rida check:", err)
		return exitUsage
	}
	path := filepath.Join(cfg.DataDir, "rida.db")
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintln(stderr, "rida check:", err)
		return exitInfra
	}
	store, err := state.Open(path, state.Options{})
	if err != nil {
		hint := ""
		if errors.Is(err, berrors.ErrTimeout) {
			hint = " (is rida serve running on it?)"
		}
		fmt.Fprintf(stderr, "rida check: %v%s\n", err, hint)
		return exitInfra
	}
	defer store.Close()
	err = store.Check()
	var ce *state.CheckError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(stdout, "%s: %d problem(s):\n", path, len(ce.Problems))
		for _, p := range ce.Problems {
			fmt.Fprintln(stdout, "  "+p)
		}
		return exitFail
	case err != nil:
		fmt.Fprintln(stderr, "rida check:", err)
		return exitInfra
	}
	fmt.Fprintf(stdout, "%s: consistent\n", path)
	return exitOK
}
