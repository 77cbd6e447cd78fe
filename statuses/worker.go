package statuses

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rida-build/rida/forge"
	"github.com/rida-build/rida/state"
)

// Store is what the worker needs from the state store's status outbox.
type Store interface {
	DueStatusesBy(ctx context.Context, now time.Time, limit int, budget func(forge string) int) ([]state.OutboxEntry, error)
	NextStatusDue(ctx context.Context) (time.Time, bool, error)
	RecordPost(ctx context.Context, key string, res state.PostResult) (*state.OutboxEntry, error)
	ExpireStatuses(ctx context.Context, before time.Time, expire func(state.OutboxEntry) (state.StatusUpdate, bool)) (int, error)
}

var _ Store = (*state.Store)(nil)

// Poster posts one commit status; *forge.Reporter is one. Errors should be
// the forge package's (*forge.RateLimitError, *forge.HTTPError, ...), which
// forge.RetryDelay classifies.
type Poster interface {
	Post(ctx context.Context, s forge.Status) error
}

var _ Poster = (*forge.Reporter)(nil)

// WorkerOptions configures NewWorker.
type WorkerOptions struct {
	// Store holds the outbox. Required.
	Store Store
	// Reporters posts statuses per forge kind (state.Delivery.Forge:
	// "github", "gitea", "forgejo", "gitlab"). Entries of a forge without
	// a reporter are recorded as failed permanently. Required, non-empty.
	Reporters map[string]Poster
	// RatePerForge is the most posts per second sent to one forge (token
	// bucket, refilled continuously). Default 1, below GitHub's secondary
	// limit of 80 content-creating requests per minute.
	RatePerForge float64
	// Burst is how many posts may go to one forge at once after a quiet
	// period. Default 10.
	Burst int
	// PendingDeadline is how long a status may stay pending or running
	// without any change before the watchdog turns it into error.
	// Default 6h.
	PendingDeadline time.Duration
	// WatchdogInterval is how often the watchdog scans the outbox.
	// Default 1m.
	WatchdogInterval time.Duration
	// PollInterval bounds how long the worker sleeps when nobody calls
	// Notify and nothing is due sooner. Default 10s.
	PollInterval time.Duration
	// PostTimeout bounds one post. Default 30s.
	PostTimeout time.Duration
	// BatchSize is how many due entries one round reads. Default 100.
	BatchSize int
	// OnPost, when set, is told the outcome of every post ("ok",
	// "rate_limited", "retry", "failed"), whether it was the first status
	// successfully posted for its key, and how long ago the entry was
	// created (for metrics).
	OnPost func(forge, outcome string, first bool, age time.Duration)
	// Logger receives one record per failed post. Default: discard.
	Logger *slog.Logger
	// Now is the clock for due times, backoff and the watchdog. Default
	// time.Now.
	Now func() time.Time
}

// Worker posts the outbox's due statuses: per forge at most RatePerForge
// per second, one key at a time (so a stale state is never posted after a
// newer one), pausing a forge entirely while it rate-limits rida, and backing
// off per entry on other retryable errors (forge.RetryDelay). Start it once;
// Stop waits for it.
type Worker struct {
	opts WorkerOptions
	log  *slog.Logger
	wake chan struct{}

	mu           sync.Mutex
	forges       map[string]*forgeState
	lastWatchdog time.Time

	runMu sync.Mutex // one round at a time
	stop  context.CancelFunc
	done  chan struct{}
}

// forgeState is one forge's token bucket and rate-limit pause.
type forgeState struct {
	tokens      float64
	last        time.Time
	pausedUntil time.Time
}

// NewWorker validates opts, fills defaults and returns a Worker.
func NewWorker(opts WorkerOptions) (*Worker, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("statuses: WorkerOptions.Store is required")
	case len(opts.Reporters) == 0:
		return nil, errors.New("statuses: WorkerOptions.Reporters is required (one reporter per forge kind)")
	case opts.RatePerForge < 0:
		return nil, errors.New("statuses: WorkerOptions.RatePerForge must not be negative")
	case opts.Burst < 0, opts.PendingDeadline < 0, opts.WatchdogInterval < 0, opts.PollInterval < 0, opts.PostTimeout < 0, opts.BatchSize < 0:
		return nil, errors.New("statuses: WorkerOptions durations and sizes must not be negative")
	}
	for k, p := range opts.Reporters {
		if p == nil {
			return nil, fmt.Errorf("statuses: WorkerOptions.Reporters[%q] is nil", k)
		}
	}
	opts.RatePerForge = cmp.Or(opts.RatePerForge, 1)
	opts.Burst = cmp.Or(opts.Burst, 10)
	opts.PendingDeadline = cmp.Or(opts.PendingDeadline, 6*time.Hour)
	opts.WatchdogInterval = cmp.Or(opts.WatchdogInterval, time.Minute)
	opts.PollInterval = cmp.Or(opts.PollInterval, 10*time.Second)
	opts.PostTimeout = cmp.Or(opts.PostTimeout, 30*time.Second)
	opts.BatchSize = cmp.Or(opts.BatchSize, 100)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Worker{opts: opts, log: log, wake: make(chan struct{}, 1), forges: map[string]*forgeState{}}, nil
}

// Notify wakes the worker: something became due. It never blocks and may be
// called on a nil *Worker (before it is wired), which does nothing; install
// it as state.Options.OnStatusQueued.
func (w *Worker) Notify() {
	if w == nil {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Start runs the worker until ctx ends or Stop is called.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return errors.New("statuses: worker already started")
	}
	ctx, w.stop = context.WithCancel(ctx)
	w.done = make(chan struct{})
	go w.loop(ctx, w.done)
	return nil
}

// Stop stops the worker and waits for a post in flight to be recorded.
func (w *Worker) Stop() {
	w.mu.Lock()
	stop, done := w.stop, w.done
	w.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	<-done
}

func (w *Worker) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		if _, err := w.runOnce(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("statuses: round failed", slog.Any("err", err))
		}
		timer.Reset(w.nextWait(ctx))
	}
}

// nextWait is how long to sleep: until the next entry is due, at most
// PollInterval. Entries still due (held back by a rate limit or pause) are
// looked at again after one token's time.
func (w *Worker) nextWait(ctx context.Context) time.Duration {
	wait := w.opts.PollInterval
	next, ok, err := w.opts.Store.NextStatusDue(ctx)
	if err != nil || !ok {
		return wait
	}
	floor := min(max(time.Duration(float64(time.Second)/w.opts.RatePerForge), 10*time.Millisecond), wait)
	return min(wait, max(next.Sub(w.opts.Now()), floor))
}

// runOnce runs the watchdog when it is due, then posts the entries due now,
// each forge in its own goroutine, and returns how many posts succeeded.
func (w *Worker) runOnce(ctx context.Context) (posted int, err error) {
	w.runMu.Lock()
	defer w.runMu.Unlock()
	now := w.opts.Now()
	if err := w.watchdog(ctx, now); err != nil {
		return 0, err
	}
	// Each forge gets as many entries as it may post now: none while it
	// rate-limits rida or its tokens are spent, so the oldest entries of a
	// limited forge never fill the batch and starve the other forges.
	due, err := w.opts.Store.DueStatusesBy(ctx, now, w.opts.BatchSize, func(f string) int { return w.budget(f, now) })
	if err != nil {
		return 0, err
	}
	byForge := map[string][]state.OutboxEntry{}
	var order []string
	for _, e := range due {
		if _, ok := byForge[e.Forge]; !ok {
			order = append(order, e.Forge)
		}
		byForge[e.Forge] = append(byForge[e.Forge], e)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, f := range order {
		wg.Go(func() {
			n, err := w.postForge(ctx, f, byForge[f])
			mu.Lock()
			posted += n
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	return posted, errors.Join(errs...)
}

// watchdog turns statuses left pending or running past PendingDeadline into
// error, at most once per WatchdogInterval.
func (w *Worker) watchdog(ctx context.Context, now time.Time) error {
	w.mu.Lock()
	if !w.lastWatchdog.IsZero() && now.Sub(w.lastWatchdog) < w.opts.WatchdogInterval {
		w.mu.Unlock()
		return nil
	}
	w.lastWatchdog = now
	w.mu.Unlock()
	desc := forge.TruncateDescription(fmt.Sprintf(DescLost, shortDuration(w.opts.PendingDeadline)))
	n, err := w.opts.Store.ExpireStatuses(ctx, now.Add(-w.opts.PendingDeadline), func(e state.OutboxEntry) (state.StatusUpdate, bool) {
		if e.State != string(forge.StatePending) && e.State != string(forge.StateRunning) {
			return state.StatusUpdate{}, false
		}
		u := e.Update()
		u.State, u.Description = string(forge.StateError), desc
		return u, true
	})
	if err != nil {
		return fmt.Errorf("statuses: watchdog: %w", err)
	}
	if n > 0 {
		w.log.Warn("statuses: statuses left pending turned into error", slog.Int("count", n), slog.Duration("deadline", w.opts.PendingDeadline))
	}
	return nil
}

// postForge posts one forge's due entries in order until the forge's
// tokens run out or it rate-limits rida.
func (w *Worker) postForge(ctx context.Context, name string, entries []state.OutboxEntry) (int, error) {
	reporter := w.opts.Reporters[name]
	posted := 0
	for _, e := range entries {
		if ctx.Err() != nil {
			return posted, nil
		}
		now := w.opts.Now()
		if reporter == nil {
			if _, err := w.opts.Store.RecordPost(ctx, e.Key(), state.PostResult{
				Version: e.Version, Posted: posted0(e, now),
				Err: fmt.Sprintf("no reporter configured for forge %q (add a token for it to the configuration)", name),
			}); err != nil {
				return posted, err
			}
			continue
		}
		if !w.take(name, now) {
			return posted, nil
		}
		pctx, cancel := context.WithTimeout(ctx, w.opts.PostTimeout)
		err := reporter.Post(pctx, forge.Status{
			Repo: e.Repo, SHA: e.SHA, Context: e.Context, State: forge.State(e.State),
			Description: e.Description, TargetURL: e.TargetURL,
		})
		cancel()
		if err != nil && ctx.Err() != nil {
			return posted, nil // stopping: the entry stays due
		}
		res := state.PostResult{Version: e.Version, Posted: posted0(e, w.opts.Now())}
		var rl *forge.RateLimitError
		if err != nil {
			res.Err = err.Error()
			delay, retry := forge.RetryDelay(err, e.Attempts, now)
			res.Retry, res.NextAttempt = retry, now.Add(delay)
			if errors.As(err, &rl) {
				w.pause(name, res.NextAttempt)
			}
			lvl := slog.LevelWarn
			if !retry {
				lvl = slog.LevelError
			}
			w.log.Log(ctx, lvl, "statuses: post failed", slog.String("forge", name), slog.String("repo", e.Repo),
				slog.String("sha", e.SHA), slog.String("context", e.Context), slog.String("state", e.State),
				slog.Int("attempt", e.Attempts+1), slog.Bool("retry", retry), slog.Duration("retry_in", delay), slog.Any("err", err))
		} else {
			posted++
		}
		if w.opts.OnPost != nil {
			outcome := "ok"
			switch {
			case rl != nil:
				outcome = "rate_limited"
			case err != nil && res.Retry:
				outcome = "retry"
			case err != nil:
				outcome = "failed"
			}
			w.opts.OnPost(name, outcome, err == nil && e.LastPosted == nil, w.opts.Now().Sub(e.CreatedAt))
		}
		if _, rerr := w.opts.Store.RecordPost(ctx, e.Key(), res); rerr != nil {
			return posted, rerr
		}
		if rl != nil {
			return posted, nil // the forge is paused: leave the rest due
		}
	}
	return posted, nil
}

func posted0(e state.OutboxEntry, at time.Time) state.PostedStatus {
	return state.PostedStatus{State: e.State, Description: e.Description, TargetURL: e.TargetURL, At: at}
}

// budget is how many posts the forge may send at now: its whole tokens, 0
// while it is paused; a forge without a reporter is not rate limited (its
// entries are recorded as failed without a post).
func (w *Worker) budget(name string, now time.Time) int {
	if w.opts.Reporters[name] == nil {
		return w.opts.BatchSize
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.refill(name, now)
	if now.Before(f.pausedUntil) {
		return 0
	}
	return int(f.tokens)
}

// refill returns the forge's state with its tokens refilled up to now;
// w.mu must be held.
func (w *Worker) refill(name string, now time.Time) *forgeState {
	f := w.forges[name]
	if f == nil {
		f = &forgeState{tokens: float64(w.opts.Burst), last: now}
		w.forges[name] = f
	}
	if elapsed := now.Sub(f.last); elapsed > 0 {
		f.tokens = min(float64(w.opts.Burst), f.tokens+elapsed.Seconds()*w.opts.RatePerForge)
		f.last = now
	}
	return f
}

// take spends one of the forge's tokens, reporting false when the forge is
// paused or out of tokens.
func (w *Worker) take(name string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.refill(name, now)
	if now.Before(f.pausedUntil) {
		return false
	}
	if f.tokens < 1 {
		return false
	}
	f.tokens--
	return true
}

// pause stops every post to the forge until until.
func (w *Worker) pause(name string, until time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if f := w.forges[name]; f != nil && until.After(f.pausedUntil) {
		f.pausedUntil = until
	}
}

// shortDuration prints 6h0m0s as "6h" and 90m as "1h30m".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
