package webhook

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/rida-build/rida/modgraph"
	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/state"
)

// indexResult says what indexStream found.
type indexResult struct {
	missing    bool     // no modulemd file at the head: the stream was removed from the index
	invalid    error    // the modulemd could not be read or parsed: the index was left alone
	components int      // components indexed (each under several names, see componentIndexNames)
	unread     []string // included modules that could not be read, each with its error; the rest was indexed
}

// indexStream refreshes the component→module index of module:branch from the
// modulemd at commit head of repo: the components it builds, its included
// modules' components among them, and what it buildrequires (the store's
// dependents index). A missing file removes the stream from the index; an
// unreadable or unparsable one leaves the last good entry alone and is
// reported in indexResult.invalid. An included module that cannot be read
// is left out and named in indexResult.unread. The error is the store's.
func (p *Planner) indexStream(ctx context.Context, repo *scm.Repo, repoURL, module, branch, head string) (indexResult, error) {
	file := p.moduleFilePath(module)
	data, err := repo.ReadFile(head, file, maxModulemdSize)
	switch {
	case errors.Is(err, scm.ErrNotFound):
		if err := p.store.SetModuleStream(ctx, state.IndexedStream{Module: module, Stream: branch, ModuleRepo: repoURL}); err != nil {
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
	base := p.componentBase(repoURL)
	comps := indexedComponents(streams, branch, p.defaultRef, base)
	included, unread := p.includedComponents(ctx, streams, repoURL, branch, base)
	comps = append(comps, included...)
	if err := p.store.SetModuleStream(ctx, state.IndexedStream{
		Module: module, Stream: branch, ModuleRepo: repoURL,
		Components: indexEntries(comps), BuildRequires: buildRequirements(streams),
	}); err != nil {
		return indexResult{}, err
	}
	for _, u := range unread {
		p.log.Warn("planner: included module not indexed", slog.String("module", state.RequestKey(module, branch)), slog.String("error", u))
	}
	return indexResult{components: len(comps), unread: unread}, nil
}

// componentBase is the base URL of the repositories of components that name
// none: PlannerOptions.ComponentBaseURL, else the runner's default beside
// the module repository (".../modules/foo" gives ".../rpms"), so the index
// names the repositories the build will use.
func (p *Planner) componentBase(moduleRepoURL string) string {
	return strings.TrimSuffix(cmp.Or(p.compBase, runner.DefaultComponentBase(moduleRepoURL)), "/")
}

// componentRef is one RPM component a stream builds, as the index sees it.
type componentRef struct {
	Name       string // package name
	Repository string // its repository's URL; "" when none is known
	Ref        string
}

// componentRefOf gives component c (under key) the repository and ref
// modulemd.Enrich will: its own repository, else base/<package name>; its
// own ref, else the first non-empty of refs.
func componentRefOf(key string, c *modulemd.Component, base string, refs ...string) componentRef {
	name := cmp.Or(c.Name, c.Key, key)
	repo := c.Repository
	if repo == "" && base != "" {
		repo = base + "/" + name
	}
	return componentRef{Name: name, Repository: repo, Ref: cmp.Or(append([]string{c.Ref}, refs...)...)}
}

// indexedComponents lists the RPM components of streams (a packager v3 file
// yields one stream per configuration; their components are united) with
// the repository and ref the build will use: the component's own
// repository, else base + "/" + its package name; its own ref, else
// defaultRef, else the stream (the document's, else the branch) — the
// defaults modulemd.Enrich applies.
func indexedComponents(streams []*modulemd.Stream, branch, defaultRef, base string) []componentRef {
	var out []componentRef
	for _, s := range streams {
		for key, c := range s.Components.RPMs {
			if c == nil {
				continue
			}
			out = append(out, componentRefOf(key, c, base, defaultRef, s.Stream, branch))
		}
	}
	return sortRefs(out)
}

func sortRefs(rs []componentRef) []componentRef {
	slices.SortFunc(rs, func(a, b componentRef) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Ref, b.Ref), strings.Compare(a.Repository, b.Repository))
	})
	return slices.Compact(rs)
}

// includedComponents reads the modules streams include (components.modules)
// through the mirrors, as the runner's init does: an included module without
// repository lives beside the including one (.../modules/<key>), its ref
// defaults to the including module's branch, its modulemd is the planner's
// ModuleFile with {name} = key. Their RPM components are listed with the
// refs modulemd.Include gives them (their own, else the included
// document's stream, else the ref it was read at) and the including
// module's component base, as Enrich applies it after Include. An included
// module that cannot be read, fetched or parsed is left out and described
// in unread.
func (p *Planner) includedComponents(ctx context.Context, streams []*modulemd.Stream, moduleRepoURL, branch, base string) (out []componentRef, unread []string) {
	type source struct{ key, repo, ref string }
	done := map[source]bool{}
	for _, s := range streams {
		keys := make([]string, 0, len(s.Components.Modules))
		for key := range s.Components.Modules {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		for _, key := range keys {
			mc := s.Components.Modules[key]
			if mc == nil {
				continue
			}
			src := source{key: key, repo: mc.Repository, ref: cmp.Or(mc.Ref, branch)}
			if src.repo == "" {
				// runner.includeModules' default: beside the including module.
				src.repo = strings.TrimSuffix(moduleRepoURL, "/"+path.Base(moduleRepoURL)) + "/" + key
			}
			if done[src] {
				continue
			}
			done[src] = true
			inc, err := p.readIncluded(ctx, src.repo, key, src.ref)
			if err != nil {
				unread = append(unread, fmt.Sprintf("components.modules.%s: reading %s at %s: %v", key, scm.Redact(src.repo), src.ref, err))
				continue
			}
			for _, is := range inc {
				for k, c := range is.Components.RPMs {
					if c != nil {
						out = append(out, componentRefOf(k, c, base, is.Stream, src.ref))
					}
				}
			}
		}
	}
	return sortRefs(out), unread
}

// readIncluded reads and parses the modulemd of included module key at ref
// of repoURL.
func (p *Planner) readIncluded(ctx context.Context, repoURL, key, ref string) ([]*modulemd.Stream, error) {
	repo, err := p.mirrors.Fetch(ctx, repoURL)
	if err != nil {
		return nil, err
	}
	head, err := repo.Resolve(ref)
	if err != nil {
		return nil, err
	}
	data, err := repo.ReadFile(head, p.moduleFilePath(key), maxModulemdSize)
	if err != nil {
		return nil, err
	}
	streams, err := modulemd.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("does not parse: %w", err)
	}
	return streams, nil
}

// maxFullNameSegments bounds the full names a component is indexed under
// (see componentIndexNames). GitHub and Gitea names have 2 segments, GitLab
// names one per group level; a push whose full name is deeper than this
// finds nothing, and its disposition says why.
const maxFullNameSegments = 6

// componentIndexNames returns the names component c is indexed under. A
// push is matched by the forge's full name of the repository (d.Repo:
// "rpms/liblow", GitLab's "group/sub/liblow"), exactly, and the component
// index is an exact-name lookup. A repository URL does not say which part
// of its path is the forge's full name (a host may serve under a prefix,
// "https://host/git/rpms/liblow.git"; tests use "file:///tmp/x/rpms/liblow"),
// so c is indexed under every suffix of its URL path (".git" trimmed) of 2
// to maxFullNameSegments segments: "rpms/liblow", "git/rpms/liblow", ...;
// whichever the full name is, it is among them, and a same-named repository
// in another namespace ("tests/liblow") matches none. The bare package name
// is indexed too, for lookups by name (`rida which-modules liblow`, the
// API); no forge sends a full name without a "/", so pushes never match it.
func componentIndexNames(c componentRef) []string {
	names := []string{c.Name}
	segs := repoPathSegments(c.Repository)
	for n := 2; n <= min(len(segs), maxFullNameSegments); n++ {
		names = append(names, strings.Join(segs[len(segs)-n:], "/"))
	}
	return slices.DeleteFunc(names, func(s string) bool { return s == "" || strings.ContainsRune(s, 0) })
}

// repoPathSegments splits the path of a repository URL (a URL, an scp-like
// "user@host:path" or a local path) into its segments, a trailing ".git"
// trimmed.
func repoPathSegments(repoURL string) []string {
	p := repoURL
	if strings.Contains(repoURL, "://") {
		u, err := url.Parse(repoURL)
		if err != nil {
			return nil
		}
		p = u.Path
	} else if i := strings.Index(repoURL, ":"); i > 0 && !strings.Contains(repoURL[:i], "/") {
		p = repoURL[i+1:] // scp-like
	}
	p = strings.TrimSuffix(strings.TrimRight(p, "/"), ".git")
	var segs []string
	for s := range strings.SplitSeq(p, "/") {
		if s != "" && s != "." {
			segs = append(segs, s)
		}
	}
	return segs
}

// indexEntries turns components into the index's entries: each component
// under every name componentIndexNames gives it, at its ref.
func indexEntries(comps []componentRef) []state.IndexedComponent {
	var out []state.IndexedComponent
	for _, c := range comps {
		for _, n := range componentIndexNames(c) {
			out = append(out, state.IndexedComponent{Name: n, Ref: c.Ref})
		}
	}
	slices.SortFunc(out, func(a, b state.IndexedComponent) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Ref, b.Ref))
	})
	return slices.Compact(out)
}

// buildRequirements unites modgraph.BuildRequirements over streams (a
// packager v3 file gives one stream per configuration) by module name: the
// streams named anywhere, or every stream when any entry names every stream
// (an empty list). Exclusions ("-el8") do not unite with other lists into a
// list, so a module whose lists differ and contain an exclusion is
// recorded as every stream: the dependents index may then list a stream
// that does not depend on the build, never miss one that does.
func buildRequirements(streams []*modulemd.Stream) []modgraph.Requirement {
	type union struct {
		streams []string
		every   bool
	}
	byName := map[string]*union{}
	for _, s := range streams {
		for _, r := range modgraph.BuildRequirements(s) {
			u, seen := byName[r.Name]
			switch {
			case !seen:
				byName[r.Name] = &union{streams: slices.Clone(r.Streams), every: len(r.Streams) == 0}
			case u.every:
			case len(r.Streams) == 0:
				u.every = true
			case (hasExclusion(u.streams) || hasExclusion(r.Streams)) && !sameSet(u.streams, r.Streams):
				u.every = true
			default:
				for _, st := range r.Streams {
					if !slices.Contains(u.streams, st) {
						u.streams = append(u.streams, st)
					}
				}
			}
		}
	}
	out := make([]modgraph.Requirement, 0, len(byName))
	for name, u := range byName {
		r := modgraph.Requirement{Name: name}
		if !u.every {
			r.Streams = u.streams
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b modgraph.Requirement) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func hasExclusion(streams []string) bool {
	return slices.ContainsFunc(streams, func(s string) bool { return strings.HasPrefix(s, "-") })
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// IndexModuleRepo rebuilds the component→module index entries of the module
// repository at repoURL: for every tracked branch (refs/heads/* as the
// remote advertises them) it reads the modulemd file at the branch head and
// records its components (under the same names a module push indexes them
// under, see componentIndexNames) and buildrequires under module
// name:branch (name defaults to the repository's last path element). A
// branch without the file is removed from the index; an included module
// that cannot be read is logged and left out. It returns how many streams it indexed; branches whose
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
	refs, err := p.mirrors.ListRemoteRefs(ctx, repoURL)
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
				slog.String("commit", short(head)), slog.Int("components", ix.components), slog.Int("included_unread", len(ix.unread)))
		}
	}
	if len(errs) > 0 {
		return streams, fmt.Errorf("webhook: index %s: %d of %d branches not indexed: %w", scm.Redact(repoURL), len(errs), len(branches), errors.Join(errs...))
	}
	return streams, nil
}
