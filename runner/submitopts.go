package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
)

// MBS's submit options as the runner applies them: scratch builds,
// reuse_components_from, buildrequire_overrides and require_overrides, an
// uploaded modulemd and SRPMs (state.RequestOptions, given with POST
// module-builds).

// moduleSource is the modulemd request req builds: the one submitted with
// it (a scratch build's modulemd), else the file in the module repository
// at the request's commit.
func (r *Runner) moduleSource(ctx context.Context, req *state.BuildRequest, opts state.RequestOptions) (ModuleSource, error) {
	if opts.Modulemd != "" {
		return ModuleSource{
			Name: req.Module, Branch: req.Stream, CommitTime: opts.SubmittedAt,
			Modulemd: []byte(opts.Modulemd), Uploaded: true,
		}, nil
	}
	src, err := r.opts.Modules.ReadModule(ctx, req.ModuleRepo, req.Module, req.Stream, req.ModuleCommit)
	if err != nil {
		if r.opts.NotFound != nil && errors.Is(err, r.opts.NotFound) {
			return src, &InvalidModuleError{Module: req.Key, Err: err}
		}
		return src, &InfraError{Op: "read modulemd of " + req.Key, Err: err}
	}
	return src, nil
}

// srpmOverrides maps each SRPM's package to its path (nil without SRPMs).
func srpmOverrides(opts state.RequestOptions) map[string]string {
	if len(opts.SRPMs) == 0 {
		return nil
	}
	out := make(map[string]string, len(opts.SRPMs))
	for _, s := range opts.SRPMs {
		out[s.Package] = s.Path
	}
	return out
}

// srpmPaths lists the SRPMs b's components are built from, sorted (nil:
// none).
func srpmPaths(b *Build) []string {
	var out []string
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			if c.SRPM != "" {
				out = append(out, c.SRPM)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// applySRPMs marks the components of s that the SRPMs (package → path)
// replace, for Enrich, and records in used which packages it found.
func applySRPMs(s *modulemd.Stream, srpms map[string]string, used map[string]bool) map[string]bool {
	if len(srpms) == 0 {
		return nil
	}
	keys := map[string]bool{}
	for key, c := range s.Components.RPMs {
		if c == nil {
			continue
		}
		if _, ok := srpms[c.PackageName()]; ok {
			keys[key] = true
			used[c.PackageName()] = true
		}
	}
	return keys
}

// unusedSRPMs is the error for SRPMs that replace no component.
func unusedSRPMs(srpms map[string]string, used map[string]bool) error {
	var bad []string
	for pkg, p := range srpms {
		if !used[pkg] {
			bad = append(bad, fmt.Sprintf("%s (package %s)", p, pkg))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return fmt.Errorf("srpms: %s replaces no component of the module", strings.Join(bad, ", "))
}

// scratchDistPrefix starts a scratch build's %dist (MBS: "scrmod+" instead
// of "module+").
const scratchDistPrefix = ".scrmod+"

// scratchContext gives scratch build mb its context, MBS's way: the
// stream's context plus "_N", N being 1 + the number of scratch builds of
// the same name, stream and version whose context has that prefix. A
// record that already has one (a restarted build) keeps it. The dist tag
// becomes a scrmod one.
func (r *Runner) scratchContext(ctx context.Context, mb *state.ModuleBuild, b *Build) error {
	base := b.Context
	if !strings.HasPrefix(mb.Context, base+"_") {
		others, err := r.opts.Store.StreamBuilds(ctx, b.Name, b.Stream)
		if err != nil {
			return &InfraError{Op: "count scratch builds", Err: err}
		}
		n := 1
		for _, o := range others {
			if o.ID != mb.ID && o.Scratch && o.Version == b.Version && strings.HasPrefix(o.Context, base+"_") {
				n++
			}
		}
		mb.Context = fmt.Sprintf("%s_%d", base, n)
	}
	b.Context = mb.Context
	b.Scratch = true
	b.Modulemd.Context = b.Context
	marking := b.Marking
	if marking == "" {
		marking = r.marking()
	}
	b.DistTag = scratchDistPrefix + strings.TrimPrefix(modulemd.DistTag(b.Name, b.Stream, b.Version, b.Context, marking, b.ID), ".module+")
	return nil
}

// reuseSource is the build b's components may be reused from: the one the
// request named (reuse_components_from; explicit is then true), else the
// last good build of the stream. A named build that is gone, not ready or
// a scratch build gives no reuse.
func (r *Runner) reuseSource(ctx context.Context, req *state.BuildRequest, b *Build) (*state.ModuleBuild, bool, error) {
	opts, err := r.opts.Store.RequestOptionsFor(ctx, req.ID)
	if err != nil {
		return nil, false, &InfraError{Op: "read the options of request " + req.Key, Err: err}
	}
	if opts.ReuseFrom == 0 {
		last, err := r.lastGood(ctx, b.Name, b.Stream, b.Context)
		return last, false, err
	}
	from, err := r.opts.Store.GetModuleBuild(ctx, opts.ReuseFrom)
	if err != nil {
		r.opts.Logger.Warn("runner: reuse_components_from: no such build", "request", req.ID, "build", opts.ReuseFrom, "err", err)
		return nil, true, nil
	}
	if from.State != state.ModuleStateReady || from.Scratch || len(from.Components) == 0 {
		r.opts.Logger.Warn("runner: reuse_components_from: build not usable", "request", req.ID, "build", from.ID, "state", from.State, "scratch", from.Scratch)
		return nil, true, nil
	}
	return from, true, nil
}

// applyOverrides pins the streams of s's dependencies as MBS's
// buildrequire_overrides and require_overrides do: every dependency entry
// that names an overridden module takes the given streams. An override for
// a module no entry names is an error, with MBS's message.
func applyOverrides(s *modulemd.Stream, buildrequires, requires map[string][]string) error {
	apply := func(kind string, overrides map[string][]string, field func(*modulemd.Dependencies) map[string][]string) error {
		used := map[string]bool{}
		for i := range s.Dependencies {
			deps := field(&s.Dependencies[i])
			for name, streams := range overrides {
				if _, ok := deps[name]; ok {
					deps[name] = slices.Clone(streams)
					used[name] = true
				}
			}
		}
		var unused []string
		for name := range overrides {
			if !used[name] {
				unused = append(unused, name)
			}
		}
		if len(unused) > 0 {
			slices.Sort(unused)
			return fmt.Errorf("The %s overrides for the following modules aren't applicable: %s", kind, strings.Join(unused, ", "))
		}
		return nil
	}
	if err := apply("buildrequire", buildrequires, func(d *modulemd.Dependencies) map[string][]string { return d.BuildRequires }); err != nil {
		return err
	}
	return apply("require", requires, func(d *modulemd.Dependencies) map[string][]string { return d.Requires })
}
