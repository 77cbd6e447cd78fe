package webhook

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/state"
)

// indexResult says what indexStream found.
type indexResult struct {
	missing    bool  // no modulemd file at the head: the stream was removed from the index
	invalid    error // the modulemd could not be read or parsed: the index was left alone
	components int   // components indexed
}

// indexStream refreshes the component→module index of module:branch from the
// modulemd at commit head of repo. A missing file removes the stream from the
// index; an unreadable or unparsable one leaves the last good entry alone and
// is reported in indexResult.invalid. The error is the store's.
func (p *Planner) indexStream(ctx context.Context, repo *scm.Repo, repoURL, module, branch, head string) (indexResult, error) {
	file := p.moduleFilePath(module)
	data, err := repo.ReadFile(head, file, maxModulemdSize)
	switch {
	case errors.Is(err, scm.ErrNotFound):
		if err := p.store.SetModuleComponents(ctx, module, branch, repoURL, nil); err != nil {
			return indexResult{}, err
		}
		return indexResult{missing: true}, nil
	case err != nil:
		// The mirror was just fetched: a file we cannot read (too large,
		// not a blob) is the content's problem, not a transient one.
		return indexResult{invalid: err}, nil
	}
	streams, err := modulemd.Parse(data)
	if err != nil {
		return indexResult{invalid: fmt.Errorf("does not parse: %w", err)}, nil
	}
	comps := indexedComponents(streams, branch, p.defaultRef)
	if err := p.store.SetModuleComponents(ctx, module, branch, repoURL, comps); err != nil {
		return indexResult{}, err
	}
	return indexResult{components: len(comps)}, nil
}

// indexedComponents lists the RPM components of streams (a packager v3 file
// yields one stream per configuration; their components are united) by
// package name, with the ref the build will use: the component's own ref,
// else defaultRef, else the stream (the document's, else the branch) —
// the defaults modulemd.Enrich applies.
func indexedComponents(streams []*modulemd.Stream, branch, defaultRef string) []state.IndexedComponent {
	var out []state.IndexedComponent
	for _, s := range streams {
		for key, c := range s.Components.RPMs {
			if c == nil {
				continue
			}
			name := c.Name
			if name == "" {
				name = cmp.Or(c.Key, key)
			}
			out = append(out, state.IndexedComponent{Name: name, Ref: cmp.Or(c.Ref, defaultRef, s.Stream, branch)})
		}
	}
	slices.SortFunc(out, func(a, b state.IndexedComponent) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Ref, b.Ref))
	})
	return slices.Compact(out)
}

// IndexModuleRepo rebuilds the component→module index entries of the module
// repository at repoURL: for every tracked branch (refs/heads/* as the
// remote advertises them) it reads the modulemd file at the branch head and
// records its components under module name:branch (name defaults to the
// repository's last path element). A branch without the file is removed
// from the index. It returns how many streams it indexed; branches whose
// modulemd does not parse are skipped and reported together in err (after
// every other branch was indexed), so streams may be non-zero with an
// error. It backs `rida index`; the planner keeps the index current on every
// module push after that.
func (p *Planner) IndexModuleRepo(ctx context.Context, repoURL, name string) (streams int, err error) {
	if name == "" {
		name = RepoName(repoURL)
	}
	if name == "" || strings.ContainsAny(name, ":\x00") {
		return 0, fmt.Errorf("webhook: index %s: module name %q is not usable", scm.Redact(repoURL), name)
	}
	// The mirror API has no branch listing: take the remote's, then fetch,
	// so every listed branch is in the mirror (unless deleted meanwhile).
	refs, err := scm.ListRemoteRefs(ctx, repoURL)
	if err != nil {
		return 0, fmt.Errorf("webhook: index %s: %w", scm.Redact(repoURL), err)
	}
	repo, err := p.mirrors.Fetch(ctx, repoURL)
	if err != nil {
		return 0, fmt.Errorf("webhook: index %s: %w", scm.Redact(repoURL), err)
	}
	var branches []string
	for ref := range refs {
		if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok && b != "" && branchTracked(p.tracked, b) {
			branches = append(branches, b)
		}
	}
	slices.Sort(branches)
	var errs []error
	for _, b := range branches {
		head, err := repo.Resolve("refs/heads/" + b)
		if errors.Is(err, scm.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return streams, fmt.Errorf("webhook: index %s: %w", scm.Redact(repoURL), err)
		}
		ix, err := p.indexStream(ctx, repo, repoURL, name, b, head)
		if err != nil {
			return streams, fmt.Errorf("webhook: index %s branch %s: %w", scm.Redact(repoURL), b, err)
		}
		switch {
		case ix.invalid != nil:
			errs = append(errs, fmt.Errorf("branch %s: %s at %s: %w", b, p.moduleFilePath(name), short(head), ix.invalid))
		case !ix.missing:
			streams++
			p.log.Info("planner: indexed module stream", slog.String("module", state.RequestKey(name, b)),
				slog.String("commit", short(head)), slog.Int("components", ix.components))
		}
	}
	if len(errs) > 0 {
		return streams, fmt.Errorf("webhook: index %s: %d of %d branches not indexed: %w", scm.Redact(repoURL), len(errs), len(branches), errors.Join(errs...))
	}
	return streams, nil
}
