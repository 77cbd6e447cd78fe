package webhook

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/state"
	"github.com/rida-build/rida/urlpolicy"
)

// PlannerStore is the part of the state store the planner uses;
// *state.Store implements it.
type PlannerStore interface {
	LeasePlanJob(ctx context.Context, worker string, leaseFor time.Duration) (*state.PlanJob, error)
	CompletePlanJob(ctx context.Context, jobID uint64, res state.PlanResult) (*state.Delivery, error)
	RescueExpiredLeases(ctx context.Context, now time.Time) (int, error)
	RedeliveryDecision(ctx context.Context, contentKey string) (state.Redelivery, error)
	ReReport(ctx context.Context, deliveryID uint64, requests []uint64) ([]string, error)
	Request(ctx context.Context, id uint64) (*state.BuildRequest, error)
	SetModuleStream(ctx context.Context, is state.IndexedStream) error
	ModulesForComponent(ctx context.Context, component, ref string) ([]state.ModuleStream, error)
}

// lastBuilt is the optional store capability the planner uses for force
// pushes to module repositories (*state.Store implements it); without it a
// force push is diffed from the commit it replaced.
type lastBuilt interface {
	LastBuiltCommit(ctx context.Context, module, stream string) (string, error)
}

// MirrorFetcher brings a repository's bare mirror up to date and returns
// it, and lists a remote's refs; *scm.Mirrors implements it (one lock per
// repository, incremental fetch, its URL policy applied to both).
type MirrorFetcher interface {
	Fetch(ctx context.Context, url string) (*scm.Repo, error)
	ListRemoteRefs(ctx context.Context, url string) (map[string]string, error)
}

// Defaults of PlannerOptions.
const (
	DefaultModuleFile     = "{name}.yaml"
	DefaultLeaseFor       = 5 * time.Minute
	DefaultPollInterval   = time.Second
	DefaultRescueInterval = time.Minute
)

// maxModulemdSize bounds the modulemd file the planner reads.
const maxModulemdSize = 8 << 20

// skipTrailer in the pushed head commit's message opts the push out of
// rebuilds (matched case-insensitively anywhere in the message).
const skipTrailer = "[skip rebuild]"

// PlannerOptions configures NewPlanner. Each field documents its default.
type PlannerOptions struct {
	// Store holds plan jobs, the build queue and the component index.
	// Required.
	Store PlannerStore
	// Mirrors fetches repositories. Required.
	Mirrors MirrorFetcher
	// Classifier says which repositories are modules and which components.
	// A repository it does not classify gets the disposition "repository
	// not configured". Default: classifies nothing.
	Classifier Classifier
	// ModuleFile is the path of the modulemd file inside a module
	// repository; "{name}" is replaced by the module name (the last path
	// element of the repository name). Default "{name}.yaml".
	ModuleFile string
	// IgnorePaths are changed paths that do not make a component push
	// relevant (see pathIgnored for the syntax: "README*", "docs/**",
	// "ci/*.yml"). Default none: with %autorelease every commit changes
	// the release, so even an empty commit is relevant.
	IgnorePaths []string
	// TrackedBranches are path.Match patterns of the branches the planner
	// acts on; pushes to other branches get "branch not tracked" and
	// IndexModuleRepo skips them. Default: every branch.
	TrackedBranches []string
	// ComponentDefaultRef is the ref indexed for a component whose
	// modulemd entry has no ref. Default: the module's stream (its
	// branch), as modulemd.Enrich does with an empty DefaultRef.
	ComponentDefaultRef string
	// ComponentBaseURL is the base URL of the repositories of components
	// whose modulemd entry names none (a component is indexed by its
	// repository's full name); it must be the runner's DefaultRepository.
	// Default: runner.DefaultComponentBase of the module repository
	// (".../modules/foo" gives ".../rpms"), as the runner does.
	ComponentBaseURL string
	// CloneURLs maps a forge kind (a delivery's Forge: "github", "gitea",
	// "forgejo", "gitlab") to the policy its payloads' clone URLs must
	// pass: the forge that signed a delivery vouches only for
	// repositories on its own hosts. A delivery from a forge without an
	// entry, or whose clone URL its entry refuses, gets the disposition
	// "clone URL not allowed" and nothing is fetched. Default nil: clone
	// URLs are not checked here (the mirrors' own policy still applies).
	CloneURLs map[string]*urlpolicy.Policy
	// Worker names this planner in plan job leases; it must be unique
	// among running planners. Default "planner-<hostname>-<pid>".
	Worker string
	// LeaseFor is how long a plan job is leased; planning one delivery is
	// cut off after it. Default 5m.
	LeaseFor time.Duration
	// PollInterval is how often the loop looks for work when nobody calls
	// Notify. Default 1s.
	PollInterval time.Duration
	// RescueInterval is how often the loop returns plan jobs whose lease
	// expired (a dead planner's) to the queue. Default 1m.
	RescueInterval time.Duration
	// OnEnqueue, when set, is called once per build request created or
	// merged, after the transaction that made it committed (so a runner
	// can be woken). It must not block for long.
	OnEnqueue func(state.EnqueueResult)
	// Logger receives one record per planned delivery. Default: discard.
	Logger *slog.Logger
	// Now is the clock for lease rescue. Default time.Now.
	Now func() time.Time
}

// Planner turns recorded deliveries into build requests: for each plan job
// it fetches the repository's mirror, diffs the pushed range itself (never
// the payload's file lists), decides what the push means, and completes the
// job with build requests or a disposition saying why there are none.
//
// Run it with Start/Stop; any number of planners (distinct Worker names) may
// share one store. Its methods are safe for concurrent use.
type Planner struct {
	store       PlannerStore
	mirrors     MirrorFetcher
	classifier  Classifier
	moduleFile  string
	ignore      []string
	tracked     []string
	defaultRef  string
	compBase    string
	cloneURLs   map[string]*urlpolicy.Policy
	worker      string
	leaseFor    time.Duration
	poll        time.Duration
	rescueEvery time.Duration
	onEnqueue   func(state.EnqueueResult)
	log         *slog.Logger
	now         func() time.Time

	notify chan struct{}

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewPlanner validates opts, fills defaults and returns a Planner. Errors
// name the field at fault.
func NewPlanner(opts PlannerOptions) (*Planner, error) {
	if opts.Store == nil {
		return nil, errors.New("webhook: PlannerOptions.Store is required")
	}
	if opts.Mirrors == nil {
		return nil, errors.New("webhook: PlannerOptions.Mirrors is required")
	}
	if err := opts.Classifier.Validate(); err != nil {
		return nil, fmt.Errorf("webhook: PlannerOptions.%w", err)
	}
	for field, pats := range map[string][]string{"IgnorePaths": opts.IgnorePaths, "TrackedBranches": opts.TrackedBranches} {
		for i, p := range pats {
			if err := checkGlob(p); err != nil {
				return nil, fmt.Errorf("webhook: PlannerOptions.%s[%d] %q: %w", field, i, p, err)
			}
		}
	}
	mf := cmp.Or(opts.ModuleFile, DefaultModuleFile)
	if probe := strings.ReplaceAll(mf, "{name}", "x"); path.IsAbs(probe) || path.Clean(probe) != probe || strings.HasPrefix(probe, "../") {
		return nil, fmt.Errorf("webhook: PlannerOptions.ModuleFile %q must be a clean relative path inside the repository", mf)
	}
	for field, d := range map[string]time.Duration{"LeaseFor": opts.LeaseFor, "PollInterval": opts.PollInterval, "RescueInterval": opts.RescueInterval} {
		if d < 0 {
			return nil, fmt.Errorf("webhook: PlannerOptions.%s must not be negative (%s)", field, d)
		}
	}
	worker := opts.Worker
	if worker == "" {
		host, _ := os.Hostname()
		worker = fmt.Sprintf("planner-%s-%d", cmp.Or(host, "localhost"), os.Getpid())
	}
	p := &Planner{
		store: opts.Store, mirrors: opts.Mirrors, classifier: opts.Classifier,
		moduleFile: mf, ignore: opts.IgnorePaths, tracked: opts.TrackedBranches,
		defaultRef: opts.ComponentDefaultRef, compBase: opts.ComponentBaseURL, cloneURLs: opts.CloneURLs, worker: worker,
		leaseFor:    cmp.Or(opts.LeaseFor, DefaultLeaseFor),
		poll:        cmp.Or(opts.PollInterval, DefaultPollInterval),
		rescueEvery: cmp.Or(opts.RescueInterval, DefaultRescueInterval),
		onEnqueue:   opts.OnEnqueue,
		log:         cmp.Or(opts.Logger, slog.New(slog.NewTextHandler(io.Discard, nil))),
		now:         opts.Now,
		notify:      make(chan struct{}, 1),
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// Worker returns the name this planner leases plan jobs under.
func (p *Planner) Worker() string { return p.worker }

// Start runs the planning loop in a goroutine until ctx ends or Stop is
// called: it plans every available job, then waits for Notify or
// PollInterval, and rescues expired leases at start and every
// RescueInterval. It returns an error if the loop is already running.
func (p *Planner) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		return errors.New("webhook: planner already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	p.cancel, p.done = cancel, make(chan struct{})
	go p.loop(ctx, p.done)
	return nil
}

// Stop ends the loop and waits for it: no goroutine of the planner outlives
// Stop. A delivery being planned is abandoned; its lease expires and the job
// is planned again. Stop without Start does nothing; Start may be called
// again afterwards.
func (p *Planner) Stop() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.cancel, p.done = nil, nil
	p.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Notify wakes the loop to look for work now (the receiver's OnRecorded
// hook calls it). It never blocks.
func (p *Planner) Notify() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *Planner) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	poll := time.NewTicker(p.poll)
	defer poll.Stop()
	rescue := time.NewTicker(p.rescueEvery)
	defer rescue.Stop()
	p.rescueExpired(ctx)
	for ctx.Err() == nil {
		select {
		case <-rescue.C:
			p.rescueExpired(ctx)
		default:
		}
		worked, err := p.runOnce(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.Error("planner: planning failed", slog.String("worker", p.worker), slog.String("error", err.Error()))
		}
		if worked {
			continue // drain the queue before waiting
		}
		select {
		case <-ctx.Done():
		case <-p.notify:
		case <-poll.C:
		case <-rescue.C:
			p.rescueExpired(ctx)
		}
	}
}

// rescueExpired hands jobs of dead planners back to the queue.
func (p *Planner) rescueExpired(ctx context.Context) {
	n, err := p.store.RescueExpiredLeases(ctx, p.now())
	switch {
	case err != nil && ctx.Err() == nil:
		p.log.Error("planner: rescuing expired leases failed", slog.String("error", err.Error()))
	case n > 0:
		p.log.Info("planner: rescued expired plan jobs", slog.Int("jobs", n))
	}
}

// runOnce leases one plan job, plans it and completes it. worked reports
// whether a job was leased. A planning error (a fetch failed, the store
// failed) leaves the job leased: it is planned again once
// RescueExpiredLeases finds the lease expired, up to the store's
// MaxPlanAttempts.
func (p *Planner) runOnce(ctx context.Context) (worked bool, err error) {
	job, err := p.store.LeasePlanJob(ctx, p.worker, p.leaseFor)
	if errors.Is(err, state.ErrNoJob) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("webhook: planner: lease a plan job: %w", err)
	}
	d := job.Delivery
	if d == nil {
		return true, fmt.Errorf("webhook: planner: plan job %d came without its delivery", job.ID)
	}
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, p.leaseFor)
	res, err := p.plan(pctx, d)
	cancel()
	if err != nil {
		return true, fmt.Errorf("webhook: planner: delivery %d (%s %s %s, attempt %d): %w", d.ID, d.Repo, d.Ref, short(d.After), job.Attempt, err)
	}
	res.Worker = p.worker
	stored, err := p.store.CompletePlanJob(ctx, job.ID, res)
	if err != nil {
		return true, fmt.Errorf("webhook: planner: complete plan job %d of delivery %d: %w", job.ID, d.ID, err)
	}
	attrs := []slog.Attr{
		slog.Uint64("delivery", d.ID), slog.String("repo", d.Repo), slog.String("ref", d.Ref),
		slog.String("after", short(d.After)), slog.Int("requests", len(res.Requests)),
		slog.String("reason", res.Reason), slog.Duration("took", time.Since(start)),
	}
	p.log.LogAttrs(ctx, slog.LevelInfo, "planner: delivery planned", attrs...)
	if p.onEnqueue != nil && stored.Disposition != nil {
		for _, s := range stored.Disposition.Requests {
			r, err := p.store.Request(ctx, s.RequestID)
			if err != nil {
				p.log.Warn("planner: reading enqueued request", slog.Uint64("request", s.RequestID), slog.String("error", err.Error()))
				r = &state.BuildRequest{ID: s.RequestID, Key: s.Key}
			}
			p.onEnqueue(state.EnqueueResult{Action: s.Action, Request: r})
		}
	}
	return true, nil
}

// Dispositions for deliveries that ask for no build. Reasons built from them
// add details after a colon.
const (
	ReasonTestDelivery      = "test delivery"
	ReasonDeletion          = "deletion"
	ReasonTagPush           = "tag push"
	ReasonNotABranch        = "not a branch"
	ReasonRepoNotConfigured = "repository not configured"
	ReasonBranchNotTracked  = "branch not tracked"
	ReasonNoRelevantPaths   = "no relevant paths"
	ReasonNoModule          = "component in no module on this branch"
	ReasonSkipTrailer       = "skip rebuild trailer"
	ReasonCommitGone        = "commit not in repository"
	ReasonModulemdMissing   = "modulemd missing"
	ReasonModulemdInvalid   = "modulemd unreadable"
	ReasonCloneURLRefused   = "clone URL not allowed"
	ReasonAlreadyQueued     = "redelivery: already queued"
	ReasonAlreadyBuilt      = "redelivery: already built"
)

func because(reason, format string, args ...any) state.PlanResult {
	return state.PlanResult{Reason: reason + ": " + fmt.Sprintf(format, args...)}
}

// plan decides what delivery d asks for. An error means "try again later"
// (the mirror or the store failed); everything the push itself decides is a
// PlanResult.
func (p *Planner) plan(ctx context.Context, d *state.Delivery) (state.PlanResult, error) {
	kind := p.classifier.Classify(d.Repo)
	branch, isBranch := strings.CutPrefix(d.Ref, "refs/heads/")
	if d.Before != d.After && d.CloneURL != "" && p.cloneURLs != nil {
		// Before anything reads or records the URL: the payload names it,
		// the forge's signature vouches only for its own hosts.
		pol, ok := p.cloneURLs[d.Forge]
		if !ok {
			return because(ReasonCloneURLRefused, "%s: forge %q has no allowed hosts", scm.Redact(d.CloneURL), d.Forge), nil
		}
		canon, err := pol.Check(d.CloneURL)
		if err != nil {
			return because(ReasonCloneURLRefused, "%s deliveries clone from %s only: %v", d.Forge, pol, err), nil
		}
		own := *d
		own.CloneURL = canon
		d = &own
	}
	switch {
	case d.Before == d.After:
		return because(ReasonTestDelivery, "before == after (%s), nothing was pushed", short(d.After)), nil
	case isZero(d.After):
		if kind == RepoModule && isBranch && branchTracked(p.tracked, branch) {
			// The stream is gone: its components must stop triggering it.
			name := RepoName(d.Repo)
			if err := p.store.SetModuleStream(ctx, state.IndexedStream{Module: name, Stream: branch, ModuleRepo: d.CloneURL}); err != nil {
				return state.PlanResult{}, err
			}
			return because(ReasonDeletion, "%s deleted; module stream %s removed from the component index", d.Ref, state.RequestKey(name, branch)), nil
		}
		return because(ReasonDeletion, "%s deleted", d.Ref), nil
	case strings.HasPrefix(d.Ref, "refs/tags/"):
		return because(ReasonTagPush, "%s: rida builds branches only", d.Ref), nil
	case !isBranch || branch == "":
		return because(ReasonNotABranch, "ref %q is not a branch (refs/heads/...)", d.Ref), nil
	case kind == RepoUnknown:
		return because(ReasonRepoNotConfigured, "%s is neither a module nor a component repository in the planner's configuration", d.Repo), nil
	case !branchTracked(p.tracked, branch):
		return because(ReasonBranchNotTracked, "%s matches none of %s", branch, strings.Join(p.tracked, ", ")), nil
	case d.CloneURL == "":
		return because(ReasonRepoNotConfigured, "the delivery names no clone URL for %s", d.Repo), nil
	}

	redo, err := p.store.RedeliveryDecision(ctx, d.ContentKey)
	if err != nil {
		return state.PlanResult{}, err
	}
	switch redo.Action {
	case state.RedeliveryInProgress:
		return state.PlanResult{Reason: ReasonAlreadyQueued + " as " + describeRequests(redo.Requests, "state")}, nil
	case state.RedeliveryReport:
		// Redelivery is how an operator repairs a forge's view: post the
		// final statuses again on the pushed commit.
		ids := make([]uint64, len(redo.Requests))
		for i, r := range redo.Requests {
			ids[i] = r.ID
		}
		reported, err := p.store.ReReport(ctx, d.ID, ids)
		if err != nil {
			return state.PlanResult{}, err
		}
		reason := ReasonAlreadyBuilt + " by " + describeRequests(redo.Requests, "")
		if len(reported) > 0 {
			reason += "; re-reported: " + limitList(reported, 5)
		}
		return state.PlanResult{Reason: reason}, nil
	}

	repo, err := p.mirrors.Fetch(ctx, d.CloneURL)
	if err != nil {
		return state.PlanResult{}, err
	}
	pushed, err := repo.Commit(d.After)
	if errors.Is(err, scm.ErrNotFound) {
		return because(ReasonCommitGone, "%s is not in %s after fetching (force-pushed away?)", short(d.After), d.Repo), nil
	}
	if err != nil {
		return state.PlanResult{}, err
	}
	// Build what the branch holds now: deliveries may arrive out of order,
	// and a request merges newest-wins, so building `after` could build
	// an older commit than one already queued.
	head, err := repo.Resolve("refs/heads/" + branch)
	if errors.Is(err, scm.ErrNotFound) {
		return because(ReasonCommitGone, "branch %s no longer exists in %s", branch, d.Repo), nil
	}
	if err != nil {
		return state.PlanResult{}, err
	}
	base := d.Before
	var forcedNote string
	if d.Forced && kind == RepoModule {
		// A force push replaces history: diff from what was last built, so
		// a change that was pushed, never built, then force-pushed over is
		// not missed.
		if lb, ok := p.store.(lastBuilt); ok {
			built, err := lb.LastBuiltCommit(ctx, RepoName(d.Repo), branch)
			if err != nil {
				return state.PlanResult{}, err
			}
			if _, err := repo.Commit(built); built != "" && err == nil {
				base, forcedNote = built, "force push: diffed from the last built commit "+short(built)
			}
		}
	}
	rng, err := changedRange(ctx, repo, base, d.After)
	if err != nil {
		return state.PlanResult{}, err
	}
	if forcedNote != "" && rng.note == "" {
		rng.note = forcedNote
	}
	skip := strings.Contains(strings.ToLower(pushed.Message), skipTrailer)

	var res state.PlanResult
	if kind == RepoModule {
		res, err = p.planModule(ctx, d, repo, branch, head, rng, skip)
	} else {
		res, err = p.planComponent(ctx, d, branch, rng, skip)
	}
	if err != nil || redo.Action != state.RedeliveryRebuild || len(res.Requests) == 0 {
		return res, err
	}
	// A redelivery of a push whose builds failed: rebuild those keys only
	// (the others succeeded), or everything if the push now asks for other
	// streams altogether.
	failed := map[string]uint64{}
	for _, r := range redo.Requests {
		failed[r.Key] = r.ID
	}
	kept := slices.DeleteFunc(slices.Clone(res.Requests), func(r state.BuildRequest) bool {
		_, ok := failed[state.RequestKey(r.Module, r.Stream)]
		return !ok
	})
	if len(kept) > 0 {
		res.Requests = kept
	}
	res.Reason = "redelivery: rebuilding after " + describeRequests(redo.Requests, "result") + "; " + res.Reason
	for i := range res.Requests {
		if id, ok := failed[state.RequestKey(res.Requests[i].Module, res.Requests[i].Stream)]; ok {
			res.Requests[i].Reasons = append(res.Requests[i].Reasons, fmt.Sprintf("redelivered after request %d ended %s", id, resultOf(redo.Requests, id)))
		}
	}
	return res, nil
}

// pushRange is what changed in before..after.
type pushRange struct {
	paths []string // changed paths (both sides of a rename)
	all   bool     // no usable base: treat every path as changed
	note  string   // why all is set
}

// changedRange diffs before..after in the mirror. A new branch (before all
// zeros) counts as all changed: a new module branch is a new stream that was
// never built, and a new component branch is new to every stream that
// includes it, so a merge-base diff would hide exactly the first build. A
// force push is a plain tree diff (what changed on the ref); when before is
// no longer in the mirror, everything counts as changed.
func changedRange(ctx context.Context, repo *scm.Repo, before, after string) (pushRange, error) {
	if isZero(before) {
		return pushRange{all: true, note: "new branch"}, nil
	}
	paths, err := repo.ChangedPaths(ctx, before, after)
	if errors.Is(err, scm.ErrNotFound) {
		return pushRange{all: true, note: "previous head " + short(before) + " not in the mirror"}, nil
	}
	if err != nil {
		return pushRange{}, err
	}
	return pushRange{paths: paths}, nil
}

func (r pushRange) suffix() string {
	if r.note == "" {
		return ""
	}
	return " (" + r.note + ")"
}

// moduleFilePath returns the modulemd path of module name.
func (p *Planner) moduleFilePath(name string) string {
	return strings.ReplaceAll(p.moduleFile, "{name}", name)
}

// planModule handles a push to branch of a module repository: it refreshes
// the component index for the stream from the modulemd at the branch head,
// and asks for a build when the modulemd changed.
func (p *Planner) planModule(ctx context.Context, d *state.Delivery, repo *scm.Repo, branch, head string, rng pushRange, skip bool) (state.PlanResult, error) {
	name := RepoName(d.Repo)
	if name == "" || strings.ContainsAny(name, ":\x00") {
		return because(ReasonRepoNotConfigured, "module name %q (from %s) is not usable", name, d.Repo), nil
	}
	file := p.moduleFilePath(name)
	key := state.RequestKey(name, branch)
	ix, err := p.indexStream(ctx, repo, d.CloneURL, name, branch, head)
	if err != nil {
		return state.PlanResult{}, err
	}
	indexNote := "component index of " + key + " refreshed"
	if ix.invalid != nil {
		indexNote = "component index of " + key + " not refreshed: the modulemd does not parse"
	}
	if len(ix.unread) > 0 {
		indexNote += " without " + strings.Join(ix.unread, "; ")
	}
	changed := rng.all || slices.Contains(rng.paths, file)
	switch {
	case ix.missing:
		return because(ReasonModulemdMissing, "%s not found on branch %s at %s; %s removed from the component index", file, branch, short(head), key), nil
	case skip:
		return because(ReasonSkipTrailer, "%s in %s (%s)", skipTrailer, short(d.After), indexNote), nil
	case !changed && ix.invalid != nil:
		return because(ReasonModulemdInvalid, "%s at %s: %v (%s)", file, short(head), ix.invalid, indexNote), nil
	case !changed:
		return because(ReasonNoRelevantPaths, "%s unchanged in %s..%s (%s)", file, short(d.Before), short(d.After), indexNote), nil
	}
	reason := "modulemd changed in " + short(d.After) + rng.suffix()
	if head != d.After {
		reason += "; building branch head " + short(head)
	}
	// A changed modulemd that does not parse is built all the same: the
	// build fails at init with the exact error, which reaches the packager
	// as a failure status on the commit (a disposition alone would be
	// silent in the forge).
	if ix.invalid != nil || len(ix.unread) > 0 {
		reason += "; " + indexNote
	}
	return state.PlanResult{
		Reason: reason,
		Requests: []state.BuildRequest{{
			Module: name, Stream: branch, Kind: state.RequestModule,
			ModuleCommit: head, ModuleRepo: d.CloneURL, Reasons: []string{reason},
		}},
	}, nil
}

// planComponent handles a push to branch of a component repository: every
// indexed module stream that includes the component at that branch gets a
// request at its module branch's current head. The component is looked up
// by the repository's full name (d.Repo), which the index holds for every
// component (componentIndexNames): a same-named repository in another
// namespace is another component.
func (p *Planner) planComponent(ctx context.Context, d *state.Delivery, branch string, rng pushRange, skip bool) (state.PlanResult, error) {
	name := RepoName(d.Repo)
	fullName := strings.Trim(d.Repo, "/")
	if skip {
		return because(ReasonSkipTrailer, "%s in %s", skipTrailer, short(d.After)), nil
	}
	if !rng.all && len(rng.paths) > 0 {
		relevant := slices.DeleteFunc(slices.Clone(rng.paths), func(s string) bool { return pathIgnored(p.ignore, s) })
		if len(relevant) == 0 {
			return because(ReasonNoRelevantPaths, "only ignored paths changed in %s..%s: %s", short(d.Before), short(d.After), limitList(rng.paths, 5)), nil
		}
	}
	// An empty diff (empty commit, revert) is relevant: with %autorelease
	// every commit changes the release.
	streams, err := p.store.ModulesForComponent(ctx, fullName, branch)
	if err != nil {
		return state.PlanResult{}, err
	}
	if len(streams) == 0 {
		if n := strings.Count(fullName, "/") + 1; n > maxFullNameSegments {
			return because(ReasonNoModule, "no indexed module stream includes component %s at ref %s (the index holds full names of up to %d segments, this one has %d)", fullName, branch, maxFullNameSegments, n), nil
		}
		return because(ReasonNoModule, "no indexed module stream includes component %s at ref %s", fullName, branch), nil
	}
	reason := "component " + name + " changed in " + short(d.After) + rng.suffix()
	res := state.PlanResult{Reason: reason}
	var notes []string
	repos := map[string]*scm.Repo{}
	for _, ms := range streams {
		if ms.ModuleRepo == "" {
			notes = append(notes, fmt.Sprintf("%s skipped: its module repository is not indexed", state.RequestKey(ms.Module, ms.Stream)))
			continue
		}
		mr, ok := repos[ms.ModuleRepo]
		if !ok {
			if mr, err = p.mirrors.Fetch(ctx, ms.ModuleRepo); err != nil {
				return state.PlanResult{}, err
			}
			repos[ms.ModuleRepo] = mr
		}
		mhead, err := mr.Resolve("refs/heads/" + ms.Stream)
		if errors.Is(err, scm.ErrNotFound) {
			notes = append(notes, fmt.Sprintf("%s skipped: branch %s is gone from its module repository", state.RequestKey(ms.Module, ms.Stream), ms.Stream))
			continue
		}
		if err != nil {
			return state.PlanResult{}, err
		}
		res.Requests = append(res.Requests, state.BuildRequest{
			Module: ms.Module, Stream: ms.Stream, Kind: state.RequestComponent,
			ModuleCommit: mhead, ModuleRepo: ms.ModuleRepo, Reasons: []string{reason},
			ComponentCommits: []state.ComponentCommit{{Name: name, Ref: branch, Commit: d.After}},
		})
	}
	if len(notes) > 0 {
		res.Reason += "; " + strings.Join(notes, "; ")
	}
	if len(res.Requests) == 0 {
		res.Reason = ReasonNoModule + ": " + res.Reason
	}
	return res, nil
}

// describeRequests lists requests as "request N (key[, state|result])".
func describeRequests(rs []state.BuildRequest, detail string) string {
	var parts []string
	for _, r := range rs {
		s := fmt.Sprintf("request %d (%s", r.ID, r.Key)
		switch detail {
		case "state":
			s += ", " + string(r.State)
		case "result":
			s += ", " + string(r.Result)
		}
		parts = append(parts, s+")")
	}
	return strings.Join(parts, ", ")
}

func resultOf(rs []state.BuildRequest, id uint64) state.RequestResult {
	for _, r := range rs {
		if r.ID == id {
			return r.Result
		}
	}
	return ""
}

func limitList(xs []string, n int) string {
	if len(xs) <= n {
		return strings.Join(xs, ", ")
	}
	return strings.Join(xs[:n], ", ") + fmt.Sprintf(" and %d more", len(xs)-n)
}

func isZero(h string) bool { return h != "" && strings.Trim(h, "0") == "" }

func short(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}
