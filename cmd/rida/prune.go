package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/state"
)

// pruner is rida serve's retention: the store's records (state.Prune),
// the local backend's build trees (state.TreeCandidates, removed here,
// then recorded on the build) and the git mirrors nobody used for a while.
type pruner struct {
	store *state.Store
	log   *slog.Logger
	r     state.Retention
	// treesDir is the local backend's work directory (data_dir/builds);
	// "" when the backend keeps no trees (Koji).
	treesDir string
	// mirrors and mirrorAge: mirrors unused for mirrorAge go; nil or 0
	// keeps them.
	mirrors   *scm.Mirrors
	mirrorAge time.Duration
}

// pruneResult counts what one runOnce removed.
type pruneResult struct {
	state.Pruned
	Trees     int
	TreeBytes int64
	Mirrors   int
}

// runOnce applies the retention once, as of now. It goes on after an
// error in one part and returns them all.
func (p *pruner) runOnce(ctx context.Context, now time.Time) (pruneResult, error) {
	var res pruneResult
	var errs []error
	pr, err := p.store.Prune(ctx, now, p.r)
	res.Pruned = pr
	errs = append(errs, err)
	if p.treesDir != "" {
		errs = append(errs, p.pruneTrees(ctx, now, &res))
	}
	if p.mirrors != nil && p.mirrorAge > 0 {
		removed, err := p.mirrors.Prune(now.Add(-p.mirrorAge))
		res.Mirrors = len(removed)
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// pruneTrees removes the trees retention no longer keeps: each tree goes
// first, then the build records it, so a crash between leaves a build the
// next run finds again (removing a tree that is gone is no error).
func (p *pruner) pruneTrees(ctx context.Context, now time.Time, res *pruneResult) error {
	for {
		builds, err := p.store.TreeCandidates(ctx, now, p.r)
		if err != nil || len(builds) == 0 {
			return err
		}
		for _, mb := range builds {
			n, err := local.RemoveTree(p.treesDir, mb.Name, mb.Stream, mb.Version, mb.Context, int64(mb.ID))
			if err != nil {
				return fmt.Errorf("build %d: %w", mb.ID, err)
			}
			if err := p.store.MarkTreePruned(ctx, mb.ID); err != nil {
				return err
			}
			res.Trees++
			res.TreeBytes += n
		}
	}
}

func (r pruneResult) empty() bool { return r == pruneResult{} }

func (r pruneResult) logAttrs() []any {
	return []any{"events", r.Events, "deliveries", r.Deliveries, "delivery_commits", r.DeliveryCommits, "statuses", r.Statuses,
		"trees", r.Trees, "tree_bytes", r.TreeBytes, "mirrors", r.Mirrors}
}
