package runner

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
)

// MBS's submit options as the runner applies them: scratch builds,
// reuse_components_from, buildrequire_overrides and require_overrides
// (state.RequestOptions, given with POST module-builds).

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
