package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/state"
)

// ControlStore is a Store that also keeps the per-request options given
// through the API (*state.Store implements it).
type ControlStore interface {
	Store
	RequestOptionsFor(ctx context.Context, id uint64) (state.RequestOptions, error)
}

// WithAPIControls wraps s so that a new module build record takes the
// rebuild strategy and owner that were given with its request (POST
// module-builds, /api/v1/rebuild). (Paused streams need no wrapper: the
// store's StartNext skips them.)
//
// Wire it as runner.Options{Store: runner.WithAPIControls(store), ...}.
func WithAPIControls(s ControlStore) Store { return controlledStore{s} }

type controlledStore struct{ ControlStore }

func (c controlledStore) PutModuleBuild(ctx context.Context, mb state.ModuleBuild) (*state.ModuleBuild, error) {
	if mb.ID == 0 && mb.RequestID != 0 {
		o, err := c.ControlStore.RequestOptionsFor(ctx, mb.RequestID)
		if err != nil {
			return nil, err
		}
		if o.RebuildStrategy != "" {
			mb.RebuildStrategy = o.RebuildStrategy
		}
		if o.Owner != "" {
			mb.Owner = o.Owner
		}
	}
	return c.ControlStore.PutModuleBuild(ctx, mb)
}

// SCMBranches answers the API's "is this commit on that branch?" through
// scm's bare mirrors. It implements api.Branches.
type SCMBranches struct {
	Mirrors *scm.Mirrors
}

// CommitOnBranch fetches repoURL's mirror, resolves rev to a full commit hash
// and reports whether branch's head is that commit or descends from it. A
// missing branch or commit gives onBranch=false and no error.
func (b SCMBranches) CommitOnBranch(ctx context.Context, repoURL, branch, rev string) (commit string, onBranch bool, err error) {
	repo, err := b.Mirrors.Fetch(ctx, repoURL)
	if err != nil {
		return "", false, err
	}
	commit, err = repo.Resolve(rev)
	if errors.Is(err, scm.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	head, err := repo.Resolve("refs/heads/" + branch)
	if errors.Is(err, scm.ErrNotFound) {
		return commit, false, nil
	}
	if err != nil {
		return "", false, err
	}
	if head == commit {
		return commit, true, nil
	}
	g, err := git.PlainOpen(repo.Dir)
	if err != nil {
		return "", false, fmt.Errorf("runner: open mirror %s: %w", scm.Redact(repo.URL), err)
	}
	hc, err := g.CommitObject(plumbing.NewHash(head))
	if err != nil {
		return "", false, fmt.Errorf("runner: read %s: %w", head, err)
	}
	cc, err := g.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return "", false, fmt.Errorf("runner: read %s: %w", commit, err)
	}
	ok, err := cc.IsAncestor(hc)
	if err != nil {
		return "", false, fmt.Errorf("runner: is %s on %s: %w", commit, branch, err)
	}
	return commit, ok, nil
}
