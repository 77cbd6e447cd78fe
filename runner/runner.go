package runner

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
)

// Rebuild strategies, as MBS names them.
const (
	// StrategyAll rebuilds every component.
	StrategyAll = "all"
	// StrategyChangedAndAfter (the default) reuses a component when its
	// commit, its batch and every earlier batch are unchanged since the last
	// successful build of the stream.
	StrategyChangedAndAfter = "changed-and-after"
	// StrategyOnlyChanged reuses every component whose commit and batch are
	// unchanged, whatever changed before it.
	StrategyOnlyChanged = "only-changed"
)

// RebuildStrategies lists the strategies rida accepts.
func RebuildStrategies() []string {
	return []string{StrategyAll, StrategyChangedAndAfter, StrategyOnlyChanged}
}

// Store is what the runner needs from the state store.
type Store interface {
	StartNext(ctx context.Context) (*state.BuildRequest, error)
	FinishRequest(ctx context.Context, key string, result state.RequestResult, reason string) (*state.BuildRequest, error)
	RequeueRunning(ctx context.Context, key string) (*state.BuildRequest, error)
	QueueSlot(ctx context.Context, key string) (running, pending *state.BuildRequest, err error)
	PutModuleBuild(ctx context.Context, mb state.ModuleBuild) (*state.ModuleBuild, error)
	GetModuleBuild(ctx context.Context, id uint64) (*state.ModuleBuild, error)
	UpdateComponentBuild(ctx context.Context, id uint64, c state.ComponentBuild) error
	// Lookups through the store's indexes (no build is decoded that is
	// not returned).
	RequestModuleBuilds(ctx context.Context, id uint64) ([]state.ModuleBuild, error)
	BuildsInState(ctx context.Context, states ...state.ModuleState) ([]state.ModuleBuild, error)
	BuildsWithIdentity(ctx context.Context, identity string, states ...state.ModuleState) ([]state.ModuleBuild, error)
	StreamBuilds(ctx context.Context, module, stream string, states ...state.ModuleState) ([]state.ModuleBuild, error)
	LatestStreamBuild(ctx context.Context, module, stream string, match func(*state.ModuleBuild) bool, states ...state.ModuleState) (*state.ModuleBuild, error)
	StreamMaxVersion(ctx context.Context, module, stream, context string) (uint64, error)
	RequestCancel(ctx context.Context, id uint64, who string) (*state.ModuleBuild, error)
	RecordBuildErrors(ctx context.Context, id uint64, errs []string) error
	FinishBuild(ctx context.Context, mb state.ModuleBuild) (*state.ModuleBuild, *state.BuildRequest, error)
	// CancelQueued fails a queued build whose request is still pending and
	// takes the request out of the queue, in one transaction.
	CancelQueued(ctx context.Context, id uint64, reason string) (*state.ModuleBuild, bool, error)
	// RequestOptionsFor returns the options a request was submitted with
	// (MBS's submit options: scratch, reuse_components_from, overrides).
	RequestOptionsFor(ctx context.Context, id uint64) (state.RequestOptions, error)
}

// ModuleReader reads a module's modulemd from its repository. An empty
// commit means the head of branch.
type ModuleReader interface {
	ReadModule(ctx context.Context, repoURL, name, branch, commit string) (ModuleSource, error)
}

// Options configures a Runner.
type Options struct {
	Store   Store
	Backend Backend
	Modules ModuleReader
	// Resolver resolves component refs; NotFound is the error it wraps for
	// a ref that does not exist (scm.ErrNotFound), which fails the build
	// instead of counting as infrastructure trouble.
	Resolver modulemd.RefResolver
	NotFound error
	// BackendName goes into the build identity ("local", "koji:<hub>").
	BackendName string
	// MaxBuilds is the number of module builds that run at once. Default 2.
	MaxBuilds int
	// DefaultRepository, Platform and Marking are passed to Init.
	DefaultRepository string
	Platform          string
	Marking           string
	// ComponentURLs is passed to Init: which repositories and caches a
	// modulemd may name itself. Default nil: any.
	ComponentURLs *ComponentURLs
	// RebuildStrategy is the default strategy. Default changed-and-after.
	RebuildStrategy string
	// CancelRunning cancels a running build when a newer request for the
	// same module stream is queued. Default false: the newer request waits.
	CancelRunning bool
	// ManualReady keeps finished builds in done until MarkReady; by default
	// done moves to ready at once.
	ManualReady bool
	// PollInterval is how often the dispatcher looks at the queue when
	// nobody calls Notify. Default 1s.
	PollInterval time.Duration
	// Graph resolves buildrequired module streams (see InitOptions.Graph).
	// Default: Store, when it implements GraphStore (*state.Store does).
	Graph GraphStore
	// DepPollInterval is how often a build waiting for a buildrequired
	// stream looks again when no build ends meanwhile. Default 5s.
	DepPollInterval time.Duration
	// Failpoint, if set, is called at each point between two of the
	// runner's transactions where a crash leaves work half done (the
	// Failpoint* names); crash tests kill the process there. Nil in
	// production.
	Failpoint func(name string)
	// OnFinish, if set, is called after a build reaches a final state
	// (done, ready or failed), outside any lock.
	OnFinish func(state.ModuleBuild)
	Logger   *slog.Logger
	Now      func() time.Time
}

// Failpoint names: the points between two of the runner's transactions.
const (
	// FailpointRequestStarted: a request is running and its init record
	// made (one transaction), the runner has not read the modulemd yet.
	FailpointRequestStarted = "request-started"
	// FailpointBuildEnded: a build's final state (and its request's end)
	// are recorded, nothing after that has run (OnFinish, the log).
	FailpointBuildEnded = "build-ended"
)

// Failpoints lists every failpoint name.
func Failpoints() []string { return []string{FailpointRequestStarted, FailpointBuildEnded} }

func (r *Runner) failpoint(name string) {
	if r.opts.Failpoint != nil {
		r.opts.Failpoint(name)
	}
}

// Runner takes build requests from the queue and drives each through init →
// wait → build → done | failed → ready, recording every step in the store.
// Start it once; Stop waits for every build goroutine it started.
type Runner struct {
	opts    Options
	wake    chan struct{}
	mu      sync.Mutex
	running map[uint64]context.CancelCauseFunc // module build id → cancel
	active  int
	wg      sync.WaitGroup
	stop    context.CancelFunc
	done    chan struct{}
	// ended is closed and replaced whenever a build ends, waking the
	// builds that wait for a buildrequired stream.
	ended chan struct{}
}

// New validates opts and returns a Runner.
func New(opts Options) (*Runner, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("runner: Options.Store is required")
	case opts.Backend == nil:
		return nil, errors.New("runner: Options.Backend is required")
	case opts.Modules == nil:
		return nil, errors.New("runner: Options.Modules is required")
	case opts.Resolver == nil:
		return nil, errors.New("runner: Options.Resolver is required")
	}
	opts.MaxBuilds = cmp.Or(opts.MaxBuilds, 2)
	opts.RebuildStrategy = cmp.Or(opts.RebuildStrategy, StrategyChangedAndAfter)
	if !slices.Contains(RebuildStrategies(), opts.RebuildStrategy) {
		return nil, fmt.Errorf("runner: Options.RebuildStrategy %q: want one of %s", opts.RebuildStrategy, strings.Join(RebuildStrategies(), ", "))
	}
	opts.PollInterval = cmp.Or(opts.PollInterval, time.Second)
	opts.BackendName = cmp.Or(opts.BackendName, "default")
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Graph == nil {
		opts.Graph, _ = opts.Store.(GraphStore)
	}
	opts.DepPollInterval = cmp.Or(opts.DepPollInterval, 5*time.Second)
	return &Runner{opts: opts, wake: make(chan struct{}, 1), running: map[uint64]context.CancelCauseFunc{}, ended: make(chan struct{})}, nil
}

// Notify wakes the dispatcher, e.g. after a request was queued.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Start recovers builds a previous process left unfinished, then runs the
// dispatcher until Stop or ctx ends.
func (r *Runner) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	r.stop = cancel
	r.done = make(chan struct{})
	if err := r.recover(ctx); err != nil {
		cancel()
		close(r.done)
		return err
	}
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.opts.PollInterval)
		defer t.Stop()
		for {
			if _, err := r.runOnce(ctx); err != nil && ctx.Err() == nil {
				r.opts.Logger.Error("runner: dispatch", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop ends the dispatcher and every running build (they stay in state build
// and are resumed by the next Start), and waits for them.
func (r *Runner) Stop() {
	if r.stop == nil {
		return
	}
	r.stop()
	<-r.done
	r.wg.Wait()
}

// runOnce starts as many queued requests as capacity allows and applies the
// cancel_running policy. It returns how many builds it started.
func (r *Runner) runOnce(ctx context.Context) (int, error) {
	if r.opts.CancelRunning {
		if err := r.supersede(ctx); err != nil {
			return 0, err
		}
	}
	started := 0
	for {
		r.mu.Lock()
		full := r.active >= r.opts.MaxBuilds
		r.mu.Unlock()
		if full {
			return started, nil
		}
		req, err := r.opts.Store.StartNext(ctx)
		if errors.Is(err, state.ErrNoJob) {
			return started, nil
		}
		if err != nil {
			return started, err
		}
		r.failpoint(FailpointRequestStarted)
		started++
		r.launch(ctx, func(ctx context.Context) { r.runRequest(ctx, req) })
	}
}

func (r *Runner) launch(ctx context.Context, fn func(context.Context)) {
	r.mu.Lock()
	r.active++
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			r.active--
			r.mu.Unlock()
			r.Notify()
		}()
		fn(ctx)
	}()
}

// supersede cancels running builds whose stream has a newer pending request.
func (r *Runner) supersede(ctx context.Context) error {
	builds, err := r.opts.Store.BuildsInState(ctx, state.ModuleStateInit, state.ModuleStateWait, state.ModuleStateBuild)
	if err != nil {
		return err
	}
	for _, mb := range builds {
		if mb.CancelRequestedBy != "" {
			continue
		}
		_, pending, err := r.opts.Store.QueueSlot(ctx, state.RequestKey(mb.Name, mb.Stream))
		if err != nil {
			return err
		}
		if pending != nil && pending.ID != mb.RequestID {
			reason := fmt.Sprintf("superseded by request %d", pending.ID)
			if pending.ModuleCommit != "" {
				reason = fmt.Sprintf("superseded by request %d (%.7s)", pending.ID, pending.ModuleCommit)
			}
			if err := r.cancel(ctx, mb.ID, reason); err != nil {
				return err
			}
		}
	}
	return nil
}

// Cancel stops module build id on behalf of who: first the request is
// recorded in the store (so it survives a crash), then the build's work is
// stopped. The build ends failed with "cancelled by <who>".
func (r *Runner) Cancel(ctx context.Context, id uint64, who string) error {
	return r.cancel(ctx, id, "cancelled by "+who)
}

func (r *Runner) cancel(ctx context.Context, id uint64, reason string) error {
	mb, err := r.opts.Store.RequestCancel(ctx, id, reason)
	if err != nil {
		return fmt.Errorf("runner: cancel build %d: %w", id, err)
	}
	r.mu.Lock()
	stop, ok := r.running[id]
	r.mu.Unlock()
	if ok {
		stop(errors.New(mb.CancelRequestedBy))
		return nil
	}
	// Queued (its request still pending): the build fails and the request
	// leaves the queue, in one transaction.
	if _, done, err := r.opts.Store.CancelQueued(ctx, id, mb.CancelRequestedBy); err != nil || done {
		return err
	}
	// Not running in this process (init/wait before a restart): end it now.
	_, err = r.finish(ctx, mb, state.ModuleStateFailed, mb.CancelRequestedBy, state.ResultCanceled)
	return err
}

// MarkReady moves a done build to ready (an external test result accepted
// it).
func (r *Runner) MarkReady(ctx context.Context, id uint64) (*state.ModuleBuild, error) {
	mb, err := r.opts.Store.GetModuleBuild(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("runner: mark build %d ready: %w", id, err)
	}
	if mb.State != state.ModuleStateDone {
		return nil, fmt.Errorf("runner: mark build %d ready: it is %s, only done builds can become ready", id, mb.State)
	}
	if mb.Scratch {
		return nil, fmt.Errorf("runner: mark build %d ready: it is a scratch build, which stays done", id)
	}
	mb.State, mb.StateReason = state.ModuleStateReady, "marked ready"
	return r.opts.Store.PutModuleBuild(ctx, *mb)
}

// recover handles what a previous process left: builds in init or wait go
// back to the queue (their request is requeued and the record is reused when
// it starts again); builds in build are resumed, redoing only the batch that
// was interrupted.
func (r *Runner) recover(ctx context.Context) error {
	builds, err := r.opts.Store.BuildsInState(ctx, state.ModuleStateInit, state.ModuleStateWait, state.ModuleStateBuild)
	if err != nil {
		return fmt.Errorf("runner: recover: %w", err)
	}
	for _, mb := range builds {
		switch {
		case mb.CancelRequestedBy != "":
			if _, err := r.finish(ctx, &mb, state.ModuleStateFailed, mb.CancelRequestedBy, state.ResultCanceled); err != nil {
				return err
			}
		case mb.State == state.ModuleStateBuild:
			r.opts.Logger.Info("runner: resuming build", "build", mb.ID, "nsvc", nsvcOf(&mb))
			r.launch(ctx, func(ctx context.Context) { r.resume(ctx, mb) })
		default:
			// A build queued at submit whose request is still pending
			// starts with its request; only a running request is requeued.
			running, _, err := r.opts.Store.QueueSlot(ctx, state.RequestKey(mb.Name, mb.Stream))
			if err != nil {
				return fmt.Errorf("runner: recover build %d: %w", mb.ID, err)
			}
			if running == nil || running.ID != mb.RequestID {
				continue
			}
			r.opts.Logger.Info("runner: requeueing build interrupted before it started", "build", mb.ID, "state", mb.State)
			if _, err := r.opts.Store.RequeueRunning(ctx, state.RequestKey(mb.Name, mb.Stream)); err != nil && !errors.Is(err, state.ErrNotFound) {
				return fmt.Errorf("runner: recover build %d: %w", mb.ID, err)
			}
		}
	}
	return nil
}

func nsvcOf(mb *state.ModuleBuild) string {
	return modulemd.NSVC(mb.Name, mb.Stream, mb.Version, mb.Context)
}

// runRequest is one request's life: init, then for each module stream the
// modulemd gives (a packager v3 file gives one per configuration) an
// identity check, a reuse plan and the build. Every stream gets its own
// build record, created before any of them builds, and the request ends
// when the last of them does.
func (r *Runner) runRequest(ctx context.Context, req *state.BuildRequest) {
	log := r.opts.Logger.With("request", req.ID, "key", req.Key)
	// Records left by a restart are picked up again.
	records, err := r.opts.Store.RequestModuleBuilds(ctx, req.ID)
	if err != nil {
		log.Error("runner: look up the request's builds", "err", err)
		_, _ = r.opts.Store.FinishRequest(ctx, req.Key, state.ResultErrored, "could not read the store: "+err.Error())
		return
	}
	var first *state.ModuleBuild
	for i := range records {
		if records[i].State == state.ModuleStateInit || records[i].State == state.ModuleStateWait {
			first = &records[i]
			break
		}
	}
	if first == nil {
		if first, err = r.newRecord(ctx, req, false); err != nil {
			log.Error("runner: record build", "err", err)
			_, _ = r.opts.Store.FinishRequest(ctx, req.Key, state.ResultErrored, "could not record the build: "+err.Error())
			return
		}
	}
	src, builds, ended, err := r.initOrWait(ctx, req, first)
	if ended {
		return // cancelled, or the runner is stopping, while it waited
	}
	if err != nil {
		result := state.ResultErrored
		var invalid *InvalidModuleError
		if errors.As(err, &invalid) {
			result = state.ResultFailed
		}
		// The reason names the first few unresolvable components; the
		// event log (the build's messages) keeps them all.
		var many *modulemd.ResolveErrors
		if errors.As(err, &many) && len(many.Errs) > 3 {
			all := make([]string, len(many.Errs))
			for i, e := range many.Errs {
				all[i] = e.Error()
			}
			if rerr := r.opts.Store.RecordBuildErrors(ctx, first.ID, all); rerr != nil {
				log.Error("runner: record the build's errors", "err", rerr)
			}
		}
		_, _ = r.finish(ctx, first, state.ModuleStateFailed, err.Error(), result)
		return
	}
	// One record per stream, matched by context to records of an earlier
	// run of this request; a stream whose record is final, or in build
	// (recover resumes it), is not started again.
	targets := make([]*state.ModuleBuild, len(builds))
	usedFirst := false
	for i, b := range builds {
		var mb *state.ModuleBuild
		for j := range records {
			if records[j].Identity != "" && (records[j].Context == b.Context ||
				records[j].Scratch && strings.HasPrefix(records[j].Context, b.Context+"_")) {
				mb = &records[j]
				break
			}
		}
		switch {
		case mb != nil && (mb.State.Terminal() || mb.State == state.ModuleStateBuild):
			continue
		case mb == nil && !usedFirst && first.Identity == "":
			mb, usedFirst = first, true
		case mb == nil:
			if mb, err = r.newRecord(ctx, req, first.Scratch); err != nil {
				_, _ = r.finish(ctx, first, state.ModuleStateFailed, "could not record the build: "+err.Error(), state.ResultErrored)
				return
			}
		}
		if mb.ID == first.ID {
			usedFirst = true
		}
		if int64(mb.ID) != b.ID {
			b.ID = int64(mb.ID)
			b.DistTag = modulemd.DistTag(b.Name, b.Stream, b.Version, b.Context, cmp.Or(b.Marking, r.marking()), b.ID)
		}
		targets[i] = mb
	}
	if !usedFirst && !first.State.Terminal() {
		_, _ = r.finish(ctx, first, state.ModuleStateGarbage, "replaced by the builds of its module streams", state.ResultSucceeded)
	}
	for i, b := range builds {
		mb := targets[i]
		if mb == nil {
			continue
		}
		// A sibling may have been cancelled while the one before it built.
		if cur, err := r.opts.Store.GetModuleBuild(ctx, mb.ID); err == nil && (cur.State.Terminal() || cur.CancelRequestedBy != "") {
			if !cur.State.Terminal() {
				_, _ = r.finish(ctx, cur, state.ModuleStateFailed, cur.CancelRequestedBy, state.ResultCanceled)
			}
			continue
		}
		build, err := r.plan(ctx, req, src, mb, b)
		if err != nil {
			result := state.ResultErrored
			var invalid *InvalidModuleError
			if errors.As(err, &invalid) {
				result = state.ResultFailed
			}
			_, _ = r.finish(ctx, mb, state.ModuleStateFailed, err.Error(), result)
			continue
		}
		if build {
			r.build(ctx, mb, b)
		}
		if ctx.Err() != nil {
			return // stopping: recover picks the rest up
		}
	}
}

func (r *Runner) newRecord(ctx context.Context, req *state.BuildRequest, scratch bool) (*state.ModuleBuild, error) {
	return r.opts.Store.PutModuleBuild(ctx, state.ModuleBuild{
		Name: req.Module, Stream: req.Stream, RequestID: req.ID, State: state.ModuleStateInit,
		StateReason: strings.Join(req.Reasons, "; "), ModuleRepo: req.ModuleRepo,
		RebuildStrategy: r.opts.RebuildStrategy, Owner: "webhook", Scratch: scratch,
	})
}

// init reads the modulemd at the request's commit (or, for a scratch
// build submitted with a modulemd, takes that one), validates and enriches
// it: one Build per module stream it defines.
func (r *Runner) init(ctx context.Context, req *state.BuildRequest, mb *state.ModuleBuild) (ModuleSource, []*Build, error) {
	opts, err := r.opts.Store.RequestOptionsFor(ctx, req.ID)
	if err != nil {
		return ModuleSource{}, nil, &InfraError{Op: "read the options of request " + req.Key, Err: err}
	}
	src, err := r.moduleSource(ctx, req, opts)
	if err != nil {
		return src, nil, err
	}
	builds, err := Init(ctx, src, r.opts.NotFound, InitOptions{
		Resolver: r.opts.Resolver, DefaultRepository: cmp.Or(r.opts.DefaultRepository, DefaultComponentBase(req.ModuleRepo)),
		Platform: r.opts.Platform, Marking: r.opts.Marking, ID: int64(mb.ID), Modules: r.opts.Modules,
		Graph: r.opts.Graph, RequestID: req.ID,
		BuildRequireOverrides: opts.BuildRequireOverrides, RequireOverrides: opts.RequireOverrides,
		ComponentURLs: r.opts.ComponentURLs, SRPMs: srpmOverrides(opts),
	})
	return src, builds, err
}

// plan checks b's identity against earlier builds, makes its version
// unique, plans component reuse, records the plan and moves mb to wait. It
// returns false when an identical build already succeeded (mb then ends as
// satisfied by it).
func (r *Runner) plan(ctx context.Context, req *state.BuildRequest, src ModuleSource, mb *state.ModuleBuild, b *Build) (bool, error) {
	if mb.Scratch {
		// MBS: a scratch build is always built, under a context of its own.
		if err := r.scratchContext(ctx, mb, b); err != nil {
			return false, err
		}
	}
	identity := r.identity(src.Commit, b)
	same, err := r.opts.Store.BuildsWithIdentity(ctx, identity, state.ModuleStateDone, state.ModuleStateReady)
	if err != nil {
		return false, &InfraError{Op: "look up identical builds", Err: err}
	}
	same = slices.DeleteFunc(same, func(o state.ModuleBuild) bool { return o.ID == mb.ID || o.Scratch })
	if len(same) > 0 && !mb.Scratch {
		reason := fmt.Sprintf("identical to build %d (%s), which succeeded: not rebuilt", same[0].ID, same[0].State)
		mb.Context, mb.Identity, mb.Version = b.Context, identity, same[0].Version
		_, err := r.finish(ctx, mb, state.ModuleStateGarbage, reason, state.ResultSucceeded)
		return false, err
	}
	if !mb.Scratch {
		if err := r.uniqueVersion(ctx, mb, b, identity); err != nil {
			return false, err
		}
	}
	last, explicit, err := r.reuseSource(ctx, req, b)
	if err != nil {
		return false, err
	}
	if last != nil && !explicit && !sameDeps(last.BuildRequires, b.Deps) {
		// Components built against other module builds are not reused:
		// a cascade rebuilds against the new build.
		r.opts.Logger.Info("runner: no reuse: built against other module builds", "build", mb.ID, "last", last.ID)
		last = nil
	}
	planReuse(b, last, cmp.Or(mb.RebuildStrategy, r.opts.RebuildStrategy))

	mmd, err := b.Modulemd.Marshal()
	if err != nil {
		return false, &InfraError{Op: "encode modulemd", Err: err}
	}
	mb.Version, mb.Context, mb.ModuleCommit, mb.Identity = b.Version, b.Context, src.Commit, identity
	mb.ModuleRepo = cmp.Or(mb.ModuleRepo, req.ModuleRepo)
	mb.Modulemd, mb.DistTag = string(mmd), b.DistTag
	mb.Components = componentRecords(b)
	mb.SRPMs = srpmPaths(b)
	mb.Platform, mb.BuildRequires = platformStream(b.Modulemd), builtAgainst(b.Deps)
	mb.RebuildStrategy = cmp.Or(mb.RebuildStrategy, r.opts.RebuildStrategy)
	mb.State, mb.StateReason = state.ModuleStateWait, fmt.Sprintf("planned %d batches", len(b.Batches))
	stored, err := r.opts.Store.PutModuleBuild(ctx, *mb)
	if err != nil {
		return false, &InfraError{Op: "record plan", Err: err}
	}
	*mb = *stored
	return true, nil
}

// identity is the build's content: the module commit, every resolved
// component commit and batch, the module's context and the backend.
func (r *Runner) identity(moduleCommit string, b *Build) string {
	h := sha256.New()
	fmt.Fprintf(h, "module %s\ncontext %s\nbackend %s\n", moduleCommit, b.Context, r.opts.BackendName)
	if strings.HasPrefix(b.DistTag, scratchDistPrefix) {
		fmt.Fprintf(h, "scratch\n")
	}
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			fmt.Fprintf(h, "%d %s %s %s\n", batch.Number, c.Key, c.Repository, c.Commit)
			if c.SRPM != "" {
				fmt.Fprintf(h, "srpm %s\n", c.SRPM)
			}
		}
	}
	// A new build of a buildrequired module makes a new build: the
	// context names streams only, so the builds themselves go in here.
	for _, d := range b.Deps {
		fmt.Fprintf(h, "dep %s\n", modulemd.NSVC(d.Name, d.Stream, d.Version, d.Context))
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// uniqueVersion makes sure a component-only change (same module commit,
// hence same commit-time version) still gets a new module version, as Koji
// needs unique NSVCs: if another build of the stream already used the
// version, the version becomes one more than the highest used.
func (r *Runner) uniqueVersion(ctx context.Context, mb *state.ModuleBuild, b *Build, identity string) error {
	// The store keeps each stream's highest version: no build is read.
	highest, err := r.opts.Store.StreamMaxVersion(ctx, b.Name, b.Stream, b.Context)
	if err != nil {
		return &InfraError{Op: "look up versions", Err: err}
	}
	if highest >= b.Version {
		b.Version = highest + 1
		b.Modulemd.Version = b.Version
		b.DistTag = modulemd.DistTag(b.Name, b.Stream, b.Version, b.Context, cmp.Or(b.Marking, r.marking()), b.ID)
	}
	return nil
}

func (r *Runner) marking() string { return cmp.Or(r.opts.Marking, r.opts.Platform, "el9") }

func componentRecords(b *Build) []state.ComponentBuild {
	var out []state.ComponentBuild
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			out = append(out, componentRecord(c))
		}
	}
	return out
}

func componentRecord(c *Component) state.ComponentBuild {
	return state.ComponentBuild{
		Key: c.Key, Package: c.Package, Repository: c.Repository, Cache: c.Cache, Ref: c.Ref, Commit: c.Commit, SRPM: c.SRPM, Batch: c.Batch,
		State: string(c.State), Reason: c.Reason, NVR: c.NVR, LogPath: c.LogPath, TaskID: c.TaskID, RPMs: c.RPMs,
		ReusedFrom: uint64(max(c.ReusedFrom, 0)), Started: c.Started, Finished: c.Finished,
	}
}

// build runs the build phase and records the outcome.
func (r *Runner) build(ctx context.Context, mb *state.ModuleBuild, b *Build) {
	r.execute(ctx, mb, b, false)
}

// resumed is build for a build a previous process left in state build.
func (r *Runner) resumed(ctx context.Context, mb *state.ModuleBuild, b *Build) {
	r.execute(ctx, mb, b, true)
}

func (r *Runner) execute(ctx context.Context, mb *state.ModuleBuild, b *Build, resumed bool) {
	bctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	r.mu.Lock()
	r.running[mb.ID] = stop
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, mb.ID)
		r.mu.Unlock()
	}()
	// A cancel recorded before we registered is honoured now.
	if cur, err := r.opts.Store.GetModuleBuild(ctx, mb.ID); err == nil && cur.CancelRequestedBy != "" {
		_, _ = r.finish(ctx, cur, state.ModuleStateFailed, cur.CancelRequestedBy, state.ResultCanceled)
		return
	}
	if mb.State != state.ModuleStateBuild {
		mb.State, mb.StateReason = state.ModuleStateBuild, fmt.Sprintf("building %d batches", len(b.Batches))
		stored, err := r.opts.Store.PutModuleBuild(ctx, *mb)
		if err != nil {
			_, _ = r.finish(ctx, mb, state.ModuleStateFailed, "could not record state build: "+err.Error(), state.ResultErrored)
			return
		}
		*mb = *stored
	}
	res, err := Execute(bctx, r.opts.Backend, b, ExecuteOptions{
		Logger:  r.opts.Logger,
		Now:     r.opts.Now,
		Resumed: resumed,
		Progress: func(e Event) {
			if e.Component == nil {
				return
			}
			if err := r.opts.Store.UpdateComponentBuild(ctx, mb.ID, componentRecord(e.Component)); err != nil {
				r.opts.Logger.Error("runner: record component", "build", mb.ID, "component", e.Component.Key, "err", err)
			}
		},
	})
	if ctx.Err() != nil {
		// The runner is stopping: leave the build in state build so the
		// next Start resumes it.
		return
	}
	cur, gerr := r.opts.Store.GetModuleBuild(ctx, mb.ID)
	if gerr != nil {
		r.opts.Logger.Error("runner: reload build", "build", mb.ID, "err", gerr)
		return
	}
	var bf *BuildFailure
	switch {
	case err == nil:
		cur.ResultDir, cur.Location = res.Dir, res.Location
		if len(res.Modulemd) > 0 {
			cur.Modulemd = string(res.Modulemd)
		}
		if r.opts.ManualReady || cur.Scratch {
			// MBS: a scratch build stays done.
			_, _ = r.finish(ctx, cur, state.ModuleStateDone, "all components built", state.ResultSucceeded)
			return
		}
		cur.State, cur.StateReason = state.ModuleStateDone, "all components built"
		if stored, err := r.opts.Store.PutModuleBuild(ctx, *cur); err == nil {
			cur = stored
		}
		_, _ = r.finish(ctx, cur, state.ModuleStateReady, "ready: done, no gating configured", state.ResultSucceeded)
	case cur.CancelRequestedBy != "" && context.Cause(bctx) != nil:
		r.stopBackend(ctx, b)
		_, _ = r.finish(ctx, cur, state.ModuleStateFailed, cur.CancelRequestedBy, state.ResultCanceled)
	case errors.As(err, &bf):
		_, _ = r.finish(ctx, cur, state.ModuleStateFailed, err.Error(), state.ResultFailed)
	default:
		_, _ = r.finish(ctx, cur, state.ModuleStateFailed, err.Error(), state.ResultErrored)
	}
}

// resume continues a build a previous process left in state build. Every
// component that completed is kept (an Adopter backend takes its output
// over; see Execute); the components that had not completed are built
// again.
func (r *Runner) resume(ctx context.Context, mb state.ModuleBuild) {
	b, err := buildFromRecord(&mb, r.marking())
	if err == nil && r.opts.Graph != nil {
		b.Deps, err = depsFromRecord(ctx, r.opts.Graph, &mb)
	}
	if err != nil {
		_, _ = r.finish(ctx, &mb, state.ModuleStateFailed, "cannot resume: "+err.Error(), state.ResultErrored)
		return
	}
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			if c.State != ComponentReused && c.State != ComponentComplete {
				c.State, c.Reason, c.NVR, c.RPMs, c.LogPath = ComponentQueued, "", "", nil, ""
				c.Started, c.Finished = time.Time{}, time.Time{}
			}
		}
	}
	r.resumed(ctx, &mb, b)
}

// buildFromRecord rebuilds the runner's view of a build from its record.
func buildFromRecord(mb *state.ModuleBuild, marking string) (*Build, error) {
	streams, err := modulemd.Parse([]byte(mb.Modulemd))
	if err != nil || len(streams) == 0 {
		return nil, fmt.Errorf("recorded modulemd: %v", err)
	}
	b := &Build{
		ID: int64(mb.ID), Name: mb.Name, Stream: mb.Stream, Version: mb.Version, Context: mb.Context,
		DistTag: mb.DistTag, Modulemd: streams[0],
	}
	if b.DistTag == "" {
		b.DistTag = modulemd.DistTag(b.Name, b.Stream, b.Version, b.Context, marking, b.ID)
	}
	byNumber := map[int]*Batch{}
	for _, rc := range mb.Components {
		batch := byNumber[rc.Batch]
		if batch == nil {
			batch = &Batch{Number: rc.Batch}
			byNumber[rc.Batch] = batch
			b.Batches = append(b.Batches, batch)
		}
		batch.Components = append(batch.Components, &Component{
			Key: rc.Key, Package: rc.Package, Repository: rc.Repository, Cache: rc.Cache, Ref: rc.Ref, Commit: rc.Commit, SRPM: rc.SRPM,
			Batch: rc.Batch, State: ComponentState(rc.State), Reason: rc.Reason, NVR: rc.NVR, LogPath: rc.LogPath,
			TaskID: rc.TaskID, RPMs: rc.RPMs, ReusedFrom: int64(rc.ReusedFrom), Started: rc.Started, Finished: rc.Finished,
		})
	}
	slices.SortFunc(b.Batches, func(x, y *Batch) int { return x.Number - y.Number })
	return b, nil
}

// finish records a final (or done) state and ends the request.
func (r *Runner) finish(ctx context.Context, mb *state.ModuleBuild, st state.ModuleState, reason string, result state.RequestResult) (*state.ModuleBuild, error) {
	mb.State, mb.StateReason = st, reason
	// The commit status says failure only for a real build failure, error
	// for infrastructure trouble.
	mb.FailureKind = map[state.RequestResult]state.FailureKind{
		state.ResultFailed: state.FailureBuild, state.ResultErrored: state.FailureInfra, state.ResultCanceled: state.FailureCanceled,
	}[result]
	// The final state and, once every build of the request has ended, the
	// request's end are one transaction.
	stored, _, err := r.opts.Store.FinishBuild(ctx, *mb)
	if err != nil {
		r.opts.Logger.Error("runner: record final state", "build", mb.ID, "state", st, "err", err)
		return nil, err
	}
	r.failpoint(FailpointBuildEnded)
	r.mu.Lock()
	close(r.ended)
	r.ended = make(chan struct{})
	r.mu.Unlock()
	level := slog.LevelInfo
	if st == state.ModuleStateFailed {
		// A failed build is what an operator looks for first.
		level = slog.LevelWarn
		if result == state.ResultErrored {
			level = slog.LevelError
		}
	}
	r.opts.Logger.Log(ctx, level, "runner: build finished", "build", mb.ID, "nsvc", nsvcOf(stored), "state", st, "result", result, "reason", reason)
	if r.opts.OnFinish != nil {
		r.opts.OnFinish(*stored)
	}
	return stored, nil
}

// stopBackend is the second phase of a cancel for backends whose work runs
// elsewhere: it asks the backend to stop the build's tasks, retrying with
// backoff, because a task left running wastes builders and may still tag
// its output.
func (r *Runner) stopBackend(ctx context.Context, b *Build) {
	c, ok := r.opts.Backend.(Canceler)
	if !ok {
		return
	}
	delay := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := c.Cancel(ctx, b)
		if err == nil {
			return
		}
		if attempt == 5 || ctx.Err() != nil {
			r.opts.Logger.Error("runner: backend did not stop the build's tasks", "build", b.ID, "attempts", attempt, "err", err)
			return
		}
		r.opts.Logger.Warn("runner: stopping the build's tasks failed, retrying", "build", b.ID, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay *= 2
	}
}
