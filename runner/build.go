// Package runner drives module builds: it turns a validated, enriched
// modulemd stream into batches of component builds and hands each batch to a
// Backend, in order, recording every component state change.
//
// The runner defines the Backend interface; the local and koji packages
// implement it. It never does I/O of its own beyond calling the backend.
package runner

import (
	"context"
	"time"

	"github.com/rida-build/rida/modulemd"
)

// MacrosComponent is the key of the generated component that carries the
// module's RPM macros (%dist, %modularitylabel, ...). As in MBS it is the only
// component of batch 1 and is built before every other component.
const MacrosComponent = "module-build-macros"

// Build is one module build as the runner hands it to a backend. The runner
// owns it; backends read it and report progress through ComponentUpdate, they
// never mutate it.
type Build struct {
	// ID identifies the build; it is stable across restarts and is the
	// <index> part of the dist tag, as MBS's build id is.
	ID int64
	// Name, Stream, Version and Context are the module's NSVC.
	Name    string
	Stream  string
	Version uint64
	Context string
	// DistTag is the RPM %dist value including its leading dot, e.g.
	// ".module+el9+1+0d3b5e6c"; Marking is its <marking> part.
	DistTag string
	Marking string
	// Scratch marks an MBS scratch build: its context has a suffix _N and
	// its Koji tags are scrmod- ones (modulemd.ScratchKojiTag).
	Scratch bool
	// Modulemd is the enriched stream (refs resolved, xmd.mbs filled).
	Modulemd *modulemd.Stream
	// Batches lists the batches in build order; Batches[0] is batch 1 and
	// holds only MacrosComponent.
	Batches []*Batch
	// Deps lists the module builds this build builds against: every
	// buildrequired module stream other than the base module (platform),
	// resolved by the runner to one ready build, plus, transitively, the
	// modules those require. Their packages (minus Filtered) belong in the
	// buildroot of every batch. Sorted by Name.
	Deps []ModuleDep
}

// ModuleDep is one module build a build is built against, as the runner's
// resolver chose it (MBS: xmd.mbs.buildrequires.<name>).
type ModuleDep struct {
	// Name, Stream, Version and Context are the dependency's NSVC.
	Name    string
	Stream  string
	Version uint64
	Context string
	// BuildID is rida's id of that module build.
	BuildID uint64
	// Ref is its module commit (its xmd.mbs.commit).
	Ref string
	// KojiTag is its Koji module tag (the Location the Koji backend
	// reported for it); empty for builds made elsewhere.
	KojiTag string
	// ResultDir is the local backend's result directory of that build
	// (the Result.Dir it reported: its RPMs and repodata); empty for
	// builds made elsewhere.
	ResultDir string
	// RPMs lists the NEVRAs (name-epoch:version-release.arch) of the
	// packages it built, source RPMs included.
	RPMs []string
	// Filtered lists the binary package names its filter.rpms keeps out of
	// the module: they are not installed into dependents' buildroots.
	Filtered []string
	// Direct is true for a stream the build buildrequires itself, false
	// for one it gets through another module's requires.
	Direct bool
}

// NSVC returns name:stream:version:context.
func (b *Build) NSVC() string {
	return modulemd.NSVC(b.Name, b.Stream, b.Version, b.Context)
}

// Batch is a set of components that may build in parallel once every earlier
// batch has finished and its output is visible to the buildroot.
type Batch struct {
	// Number is the batch number; 1 is module-build-macros, components start
	// at 2, as in MBS.
	Number     int
	Components []*Component
}

// Component is one RPM component of a module build.
type Component struct {
	// Key is the key under components.rpms (or MacrosComponent).
	Key string
	// Package is the package name (components.rpms.<key>.name, else Key).
	Package string
	// Repository is the component's git repository URL; Cache its
	// lookaside cache URL (components.rpms.<key>.cache), if the modulemd
	// names one.
	Repository string
	Cache      string
	// Ref is the ref the modulemd asked for; Commit is the full hash it
	// resolved to at init (empty for a component built from SRPM).
	Ref    string
	Commit string
	// SRPM, when set, is the source RPM the component is built from
	// instead of its repository (MBS's srpms of a scratch build): a Koji
	// upload path ("cli-build/…") for the Koji backend, a path relative to
	// the uploads directory for the local backend (state.SRPM.Path).
	SRPM string
	// Batch is the batch number this component builds in.
	Batch int

	// State is the component's current state, applied by the runner from
	// the backend's ComponentUpdates.
	State   ComponentState
	Reason  string
	NVR     string
	LogPath string
	// TaskID is the backend's id of the component's build task (Koji's
	// build task id); 0 when the backend has none.
	TaskID int64
	// RPMs lists the NEVRAs (name-epoch:version-release.arch) of every
	// package the build produced, source RPM included.
	RPMs     []string
	Started  time.Time
	Finished time.Time
	// ReusedFrom is the id of the module build a reused component is taken
	// from, and ReusedLocation where that build's output is (its result
	// directory for the local backend, its module tag for Koji); both are
	// set only in state ComponentReused.
	ReusedFrom     int64
	ReusedLocation string
}

// ComponentState is the state of one component build.
type ComponentState string

// Component states; MBS's koji_state values map onto them.
const (
	// ComponentQueued: planned, not yet handed to the backend.
	ComponentQueued ComponentState = "queued"
	// ComponentBuilding: the backend started the build.
	ComponentBuilding ComponentState = "building"
	// ComponentComplete: built; its RPMs are known.
	ComponentComplete ComponentState = "complete"
	// ComponentFailed: the package did not build; Reason says why.
	ComponentFailed ComponentState = "failed"
	// ComponentCanceled: stopped before it finished (sibling failed, or the
	// module build was cancelled).
	ComponentCanceled ComponentState = "canceled"
	// ComponentReused: taken from an earlier build of the same stream.
	ComponentReused ComponentState = "reused"
)

// Terminal reports whether no further state change can follow.
func (s ComponentState) Terminal() bool {
	switch s {
	case ComponentComplete, ComponentFailed, ComponentCanceled, ComponentReused:
		return true
	}
	return false
}

// ComponentUpdate is what a backend reports about one component. Backends
// send one update per state change; the runner applies it under its own lock,
// so backends may report from several goroutines.
type ComponentUpdate struct {
	Key     string
	State   ComponentState
	Reason  string
	NVR     string
	LogPath string
	TaskID  int64 // the backend's build task (Koji's task id); 0: none or not known yet
	RPMs    []string
	Time    time.Time
}

// Result is what a finished module build produced.
type Result struct {
	// Dir holds the RPMs, SRPMs, repodata/ and modules.yaml (local backend),
	// or is empty when the output lives elsewhere (Koji).
	Dir string
	// Modulemd is the final modulemd YAML with artifacts.rpms filled.
	Modulemd []byte
	// Location describes where the output is, for people (a path or a tag).
	Location string
}

// Backend builds the components of a module build. The runner calls Prepare
// once, then BuildBatch once per batch in increasing order (batch 1 holds only
// MacrosComponent, which the backend generates from the Build), then Finish if
// every component succeeded.
//
// BuildBatch returns nil when every component of the batch reached a terminal
// state and was reported, whether it built or failed: a package that does not
// build is a component failure, reported through report, not an error. A
// non-nil error means infrastructure trouble (disk full, hub unreachable)
// and is wrapped in an *InfraError by the runner.
type Backend interface {
	Prepare(ctx context.Context, b *Build) error
	BuildBatch(ctx context.Context, b *Build, batch *Batch, report func(ComponentUpdate)) error
	Finish(ctx context.Context, b *Build) (*Result, error)
}

// Canceler is implemented by backends whose work goes on elsewhere when the
// runner stops waiting (Koji tasks keep running on the builders): Cancel
// stops every open task of the build. The runner calls it, with retries,
// when a build is cancelled or superseded; backends without it are stopped by
// cancelling BuildBatch's context alone.
type Canceler interface {
	Cancel(ctx context.Context, b *Build) error
}

// Adopter is implemented by backends that can take over components that
// completed in an earlier run of the same build (rida was killed and the
// build resumed), so they are not built again. Execute calls AdoptBatch, on
// a resumed build, for every batch with completed components (done, in
// their recorded state: NVR and RPMs set) before building the rest of the
// batch; the backend makes their output part of the build again (in the
// buildroot of later batches). It returns the keys of components whose
// output is gone, which are built again; an error is infrastructure
// trouble. It must be idempotent: a build may be resumed twice.
type Adopter interface {
	AdoptBatch(ctx context.Context, b *Build, batch *Batch, done []*Component) (lost []string, err error)
}

// Reuser is implemented by backends that can take a component's output from
// an earlier module build (c.ReusedFrom, c.ReusedLocation, c.RPMs) instead of
// building it. Execute calls Reuse for a batch's reused components before
// BuildBatch for the rest, so the reused packages are in the buildroot of
// later batches. A backend without it gets every component to build.
type Reuser interface {
	Reuse(ctx context.Context, b *Build, c *Component) error
}
