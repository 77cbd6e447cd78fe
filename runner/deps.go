package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rida-build/rida/modgraph"
	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
)

// GraphStore is what the module graph's resolver reads (*state.Store
// implements it).
type GraphStore interface {
	StreamBuilds(ctx context.Context, module, stream string, states ...state.ModuleState) ([]state.ModuleBuild, error)
	StreamsWithState(ctx context.Context, module string, st state.ModuleState) ([]string, error)
	StreamBuildRequires(ctx context.Context, module, stream string) ([]modgraph.Requirement, error)
	IndexedStreams(ctx context.Context, module string) ([]string, error)
	QueueSlot(ctx context.Context, key string) (running, pending *state.BuildRequest, err error)
	GetModuleBuild(ctx context.Context, id uint64) (*state.ModuleBuild, error)
	RequestOptionsFor(ctx context.Context, id uint64) (state.RequestOptions, error)
}

// DepWaitError means a buildrequired module stream has a build queued or
// running: the build waits in state wait until it ends, then resolves
// again. It is neither a failure nor an infrastructure error.
type DepWaitError struct {
	// Stream is the buildrequired stream waited for.
	Stream modgraph.StreamRef
	// Reason says what is awaited, for people.
	Reason string
}

// Error implements error.
func (e *DepWaitError) Error() string { return e.Reason }

// resolver chooses the module builds a build is built against, the same
// for every backend: for each buildrequired stream other than platform the
// newest ready build for the same platform (modgraph.Choose), and
// transitively the builds those were built against for the modules they
// require at run time.
type resolver struct {
	store GraphStore
	// self is the stream being built and request its request: a stream's
	// own queue slot is never waited for.
	self    modgraph.StreamRef
	request uint64
}

// available lists, for every module s buildrequires with an empty stream
// list or exclusions, the streams that can be built against: those with a
// ready build, and for platform the configured platform stream.
func (res *resolver) available(ctx context.Context, s *modulemd.Stream, platform string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, d := range s.Dependencies {
		for name, streams := range d.BuildRequires {
			open := len(streams) == 0
			for _, st := range streams {
				open = open || strings.HasPrefix(st, "-")
			}
			if !open || out[name] != nil {
				continue
			}
			if name == modulemd.PlatformModule {
				out[name] = []string{platform}
				continue
			}
			avail, err := res.store.StreamsWithState(ctx, name, state.ModuleStateReady)
			if err != nil {
				return nil, &InfraError{Op: "list the ready streams of " + name, Err: err}
			}
			out[name] = avail
		}
	}
	return out, nil
}

// checkCycle refuses a stream whose buildrequires lead back to itself,
// following the component index's record of every other stream's
// buildrequires and s's own (it may be newer than the index).
func (res *resolver) checkCycle(ctx context.Context, s *modulemd.Stream) error {
	own := modgraph.BuildRequirements(s)
	edges := func(x modgraph.StreamRef) ([]modgraph.StreamRef, error) {
		reqs := own
		if x != res.self {
			var err error
			if reqs, err = res.store.StreamBuildRequires(ctx, x.Name, x.Stream); err != nil {
				return nil, err
			}
		}
		var out []modgraph.StreamRef
		for _, r := range reqs {
			streams, err := res.store.IndexedStreams(ctx, r.Name)
			if err != nil {
				return nil, err
			}
			if r.Name == res.self.Name && !slices.Contains(streams, res.self.Stream) {
				streams = append(streams, res.self.Stream)
			}
			for _, st := range streams {
				if r.Matches(st) {
					out = append(out, modgraph.StreamRef{Name: r.Name, Stream: st})
				}
			}
		}
		return out, nil
	}
	err := modgraph.FindCycle(res.self, edges)
	var ce *modgraph.CycleError
	if errors.As(err, &ce) {
		return &InvalidModuleError{Module: res.self.String(), Err: fmt.Errorf("%w; break the cycle in one of these modulemd files", err)}
	}
	if err != nil {
		return &InfraError{Op: "read the module graph", Err: err}
	}
	return nil
}

// resolve returns the module builds s (expanded: one stream per
// buildrequired module) is built against, sorted by name, and the same as
// modulemd.Enrich wants them for xmd.mbs.buildrequires.
func (res *resolver) resolve(ctx context.Context, s *modulemd.Stream, platform string) ([]ModuleDep, map[string]modulemd.ResolvedModule, error) {
	if len(s.Dependencies) == 0 {
		return nil, nil, nil
	}
	chosen := map[string]*state.ModuleBuild{}
	var direct []string
	for _, name := range sortedNames(s.Dependencies[0].BuildRequires) {
		streams := s.Dependencies[0].BuildRequires[name]
		if name == modulemd.PlatformModule || len(streams) != 1 {
			continue
		}
		ref := modgraph.StreamRef{Name: name, Stream: streams[0]}
		mb, err := res.choose(ctx, ref, platform)
		if err != nil {
			return nil, nil, err
		}
		chosen[name] = mb
		direct = append(direct, name)
	}
	// Transitive: what the chosen builds require at run time, taken from
	// what they were built against.
	queue := slices.Clone(direct)
	for len(queue) > 0 {
		mb := chosen[queue[0]]
		queue = queue[1:]
		runtime := map[string]bool{}
		if streams, err := modulemd.Parse([]byte(mb.Modulemd)); err == nil && len(streams) > 0 {
			for _, r := range modgraph.RuntimeRequirements(streams[0]) {
				runtime[r.Name] = true
			}
		}
		for _, ba := range mb.BuildRequires {
			if !runtime[ba.Name] || chosen[ba.Name] != nil || ba.Name == res.self.Name {
				continue
			}
			dep, err := res.store.GetModuleBuild(ctx, ba.BuildID)
			if err != nil {
				return nil, nil, &InfraError{Op: fmt.Sprintf("read build %d (%s:%s, required by %s:%s)", ba.BuildID, ba.Name, ba.Stream, mb.Name, mb.Stream), Err: err}
			}
			chosen[ba.Name] = dep
			queue = append(queue, ba.Name)
		}
	}
	var deps []ModuleDep
	brs := map[string]modulemd.ResolvedModule{}
	for _, name := range sortedNames(chosen) {
		d := moduleDep(chosen[name], slices.Contains(direct, name))
		deps = append(deps, d)
		brs[name] = modulemd.ResolvedModule{
			Stream: d.Stream, Version: d.Version, Context: d.Context, Ref: d.Ref, KojiTag: d.KojiTag,
			FilteredRPMs: filteredNEVRs(d),
		}
	}
	return deps, brs, nil
}

// choose picks the build of ref to build against, or says why there is
// none: a build of it queued or running (wait), or none at all (the
// packager's failure).
func (res *resolver) choose(ctx context.Context, ref modgraph.StreamRef, platform string) (*state.ModuleBuild, error) {
	if ref != res.self {
		running, pending, err := res.store.QueueSlot(ctx, state.RequestKey(ref.Name, ref.Stream))
		if err != nil {
			return nil, &InfraError{Op: "read the queue of " + ref.String(), Err: err}
		}
		// A build of it on the way is waited for even when an older one
		// is ready, so a cascade builds every stream once, against the
		// newest builds.
		for _, r := range []*state.BuildRequest{running, pending} {
			if r == nil || r.ID == res.request {
				continue
			}
			// A scratch build is never built against (MBS): nothing to
			// wait for.
			o, err := res.store.RequestOptionsFor(ctx, r.ID)
			if err != nil {
				return nil, &InfraError{Op: "read the options of request " + r.Key, Err: err}
			}
			if !o.Scratch {
				return nil, &DepWaitError{Stream: ref, Reason: fmt.Sprintf("waiting for buildrequired %s: request %d is %s", ref, r.ID, r.State)}
			}
		}
	}
	ready, err := res.store.StreamBuilds(ctx, ref.Name, ref.Stream, state.ModuleStateReady)
	if err != nil {
		return nil, &InfraError{Op: "look up the builds of " + ref.String(), Err: err}
	}
	// A scratch build is never built against (it stays done; this also
	// holds for one marked ready by other means).
	ready = slices.DeleteFunc(ready, func(mb state.ModuleBuild) bool { return mb.Scratch })
	cands := make([]modgraph.Candidate, len(ready))
	for i, mb := range ready {
		cands[i] = modgraph.Candidate{ID: mb.ID, Name: mb.Name, Stream: mb.Stream, Version: mb.Version, Context: mb.Context, Platform: mb.Platform}
	}
	if c, ok := modgraph.Choose(cands, platform); ok {
		for i := range ready {
			if ready[i].ID == c.ID {
				return &ready[i], nil
			}
		}
	}
	all, err := res.store.StreamBuilds(ctx, ref.Name, ref.Stream)
	if err != nil {
		return nil, &InfraError{Op: "look up the builds of " + ref.String(), Err: err}
	}
	how := fmt.Sprintf("build it first: push to its module repository, or `rida submit` it (modules/%s, branch %s)", ref.Name, ref.Stream)
	var why string
	switch {
	case len(ready) > 0:
		why = fmt.Sprintf("buildrequires %s, which has no ready build for platform %s (its ready builds are for other platforms)", ref, platform)
	case len(all) > 0:
		why = fmt.Sprintf("buildrequires %s, which has no ready build (its last build, %d, is %s: %s)", ref, all[0].ID, all[0].State, firstLine(all[0].StateReason))
	default:
		why = fmt.Sprintf("buildrequires %s, which rida has never built", ref)
	}
	return nil, &InvalidModuleError{Module: res.self.String(), Err: errors.New(why + "; " + how)}
}

// moduleDep describes a chosen build for the backends.
func moduleDep(mb *state.ModuleBuild, direct bool) ModuleDep {
	d := ModuleDep{
		Name: mb.Name, Stream: mb.Stream, Version: mb.Version, Context: mb.Context, BuildID: mb.ID,
		Ref: mb.ModuleCommit, ResultDir: mb.ResultDir, Direct: direct,
	}
	if mb.ResultDir == "" {
		// The Koji backend reports the module tag as the location.
		d.KojiTag = mb.Location
	}
	for _, c := range mb.Components {
		if c.Key != MacrosComponent {
			d.RPMs = append(d.RPMs, c.RPMs...)
		}
	}
	if streams, err := modulemd.Parse([]byte(mb.Modulemd)); err == nil && len(streams) > 0 {
		d.Filtered = slices.Clone(streams[0].Filter)
	}
	return d
}

// filteredNEVRs lists N-E:V-R of d's binary packages its filter names
// (MBS's filtered_rpms).
func filteredNEVRs(d ModuleDep) []string {
	var out []string
	for _, nevra := range d.RPMs {
		dot := strings.LastIndex(nevra, ".")
		if dot < 0 || strings.HasSuffix(nevra, ".src") {
			continue
		}
		nevr := nevra[:dot]
		parts := strings.Split(nevr, "-")
		if len(parts) < 3 {
			continue
		}
		name := strings.Join(parts[:len(parts)-2], "-")
		if slices.Contains(d.Filtered, name) && !slices.Contains(out, nevr) {
			out = append(out, nevr)
		}
	}
	slices.Sort(out)
	return out
}

// builtAgainst records deps on the build record.
func builtAgainst(deps []ModuleDep) []state.BuiltAgainst {
	var out []state.BuiltAgainst
	for _, d := range deps {
		out = append(out, state.BuiltAgainst{Name: d.Name, Stream: d.Stream, Version: d.Version, Context: d.Context, BuildID: d.BuildID, Direct: d.Direct})
	}
	return out
}

// depsFromRecord reloads the builds a recorded build was built against,
// for a resumed build.
func depsFromRecord(ctx context.Context, store GraphStore, mb *state.ModuleBuild) ([]ModuleDep, error) {
	var out []ModuleDep
	for _, ba := range mb.BuildRequires {
		dep, err := store.GetModuleBuild(ctx, ba.BuildID)
		if err != nil {
			return nil, fmt.Errorf("build %d (%s:%s) it was built against: %w", ba.BuildID, ba.Name, ba.Stream, err)
		}
		out = append(out, moduleDep(dep, ba.Direct))
	}
	return out, nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
