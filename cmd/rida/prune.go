package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/state"
)

// pruner is rida serve's retention: the store's records (state.Prune:
// events, deliveries, statuses, module builds, requests), the trees of the
// builds it deleted (state.DeletedTrees), the local backend's build trees
// retention no longer keeps (state.TreeCandidates, removed here, then
// recorded on the build), uploaded SRPMs no request owns any more, and
// the git mirrors nobody used for a while.
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
	// uploadsDir is where scratch builds' uploaded SRPMs are stored
	// (data_dir/uploads); "" leaves it alone.
	uploadsDir string
	// metrics, when set, counts what each run removed and its errors.
	metrics *pruneMetrics
}

// uploadGrace is how old an upload directory no request owns must be
// before it goes: a submission writes its files before the transaction
// that makes its request commits.
const uploadGrace = time.Hour

// pruneResult counts what one runOnce removed.
type pruneResult struct {
	state.Pruned
	// Trees and TreeBytes count the build trees removed from disk: those
	// retention no longer keeps and those of deleted builds.
	Trees     int
	TreeBytes int64
	Mirrors   int
	// Uploads counts the upload directories removed.
	Uploads int
}

// runOnce applies the retention once, as of now. It goes on after an
// error in one part and returns them all.
func (p *pruner) runOnce(ctx context.Context, now time.Time) (pruneResult, error) {
	start := time.Now()
	var res pruneResult
	var errs []error
	pr, err := p.store.Prune(ctx, now, p.r)
	res.Pruned = pr
	p.metrics.failed("store", err)
	errs = append(errs, err)
	err = p.removeDeletedTrees(ctx, &res)
	if p.treesDir != "" {
		err = errors.Join(err, p.pruneTrees(ctx, now, &res))
	}
	p.metrics.failed("trees", err)
	errs = append(errs, err)
	if p.uploadsDir != "" {
		err := p.pruneUploads(ctx, now, &res)
		p.metrics.failed("uploads", err)
		errs = append(errs, err)
	}
	if p.mirrors != nil && p.mirrorAge > 0 {
		removed, err := p.mirrors.Prune(now.Add(-p.mirrorAge))
		res.Mirrors = len(removed)
		p.metrics.failed("mirrors", err)
		errs = append(errs, err)
	}
	p.metrics.ran(res, time.Now(), time.Since(start))
	return res, errors.Join(errs...)
}

// removeDeletedTrees removes the trees of the builds the store deleted
// (nothing to remove with Koji), then forgets them; a crash in between
// removes them again at the next run (removing a tree that is gone is no
// error).
func (p *pruner) removeDeletedTrees(ctx context.Context, res *pruneResult) error {
	for {
		trees, err := p.store.DeletedTrees(ctx, 0)
		if err != nil || len(trees) == 0 {
			return err
		}
		ids := make([]uint64, 0, len(trees))
		var rmErr error
		for _, t := range trees {
			if p.treesDir != "" {
				_, statErr := os.Stat(local.TreeDir(p.treesDir, t.Name, t.Stream, t.Version, t.Context, int64(t.ID)))
				n, err := local.RemoveTree(p.treesDir, t.Name, t.Stream, t.Version, t.Context, int64(t.ID))
				if err != nil {
					rmErr = fmt.Errorf("deleted build %d: %w", t.ID, err)
					break
				}
				if statErr == nil {
					res.Trees++
					res.TreeBytes += n
				}
			}
			ids = append(ids, t.ID)
		}
		if err := p.store.ForgetDeletedTrees(ctx, ids...); err != nil {
			return err
		}
		if rmErr != nil {
			return rmErr
		}
	}
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

// pruneUploads removes the upload directories no stored request owns
// (state.UploadsOwned) that are older than uploadGrace: those of deleted
// requests, of uploads a push merging in dropped, and those a crash left
// before their submission committed. Only directories directly in
// uploadsDir go; a symlink there is removed as a link, never followed.
func (p *pruner) pruneUploads(ctx context.Context, now time.Time, res *pruneResult) error {
	entries, err := os.ReadDir(p.uploadsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("uploads: %w", err)
	}
	var old []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < uploadGrace {
			continue
		}
		old = append(old, e.Name())
	}
	if len(old) == 0 {
		return nil
	}
	owned, err := p.store.UploadsOwned(ctx, old)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range old {
		if owned[name] {
			continue
		}
		// RemoveAll removes a symlink itself and never follows one.
		if err := os.RemoveAll(filepath.Join(p.uploadsDir, name)); err != nil {
			errs = append(errs, fmt.Errorf("uploads: %w", err))
			continue
		}
		res.Uploads++
	}
	return errors.Join(errs...)
}

func (r pruneResult) empty() bool { return r == pruneResult{} }

func (r pruneResult) logAttrs() []any {
	return []any{"events", r.Events, "deliveries", r.Deliveries, "delivery_commits", r.DeliveryCommits, "statuses", r.Statuses,
		"superseded_builds", r.SupersededBuilds, "failed_builds", r.FailedBuilds, "requests", r.Requests,
		"trees", r.Trees, "tree_bytes", r.TreeBytes, "mirrors", r.Mirrors, "uploads", r.Uploads}
}
