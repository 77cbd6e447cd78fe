package statuses

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/forge"
	"github.com/rida-build/rida/forge/forgetest"
	"github.com/rida-build/rida/state"
)

// fakeClock is a settable clock shared by the store and the worker. It
// starts at the real time, because the fake forges compute rate-limit reset
// times from the real clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testBundle is a store, a fake clock, one fake forge per kind and a worker
// posting to them.
type testBundle struct {
	store   *state.Store
	clock   *fakeClock
	worker  *Worker
	servers map[string]*forgetest.Server
	mapper  *Mapper
}

type setupOptions struct {
	kinds  []forge.Kind
	worker func(*WorkerOptions)
	// realClock uses time.Now everywhere (for Start).
	realClock bool
}

// setup opens a store with the mapper installed and a worker whose
// reporters reach one forgetest server per kind. The store is checked and
// closed on cleanup.
func setup(t testing.TB, o setupOptions) *testBundle {
	t.Helper()
	if len(o.kinds) == 0 {
		o.kinds = []forge.Kind{forge.KindGitHub}
	}
	b := &testBundle{clock: newClock(), servers: map[string]*forgetest.Server{}}
	now := b.clock.Now
	if o.realClock {
		now = time.Now
	}
	m, err := NewMapper(MapperOptions{PublicURL: "https://rida.example"})
	if err != nil {
		t.Fatal(err)
	}
	b.mapper = m
	var w *Worker
	s, err := state.Open(filepath.Join(t.TempDir(), "rida.db"), state.Options{
		Now: now, StatusesFor: m.StatusesFor, OnStatusQueued: func() { w.Notify() },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("Check on cleanup: %v", err)
		}
		s.Close()
	})
	b.store = s
	reporters := map[string]Poster{}
	for _, k := range o.kinds {
		srv := forgetest.NewServer(t, k)
		rep, err := forge.New(srv.Options())
		if err != nil {
			t.Fatal(err)
		}
		b.servers[string(k)] = srv
		reporters[string(k)] = rep
	}
	opts := WorkerOptions{Store: s, Reporters: reporters, Now: now, RatePerForge: 100, Burst: 100}
	if o.worker != nil {
		o.worker(&opts)
	}
	w, err = NewWorker(opts)
	if err != nil {
		t.Fatal(err)
	}
	b.worker = w
	return b
}

func sha(n int) string { return fmt.Sprintf("%040x", n) }

func update(kind forge.Kind, n int, st forge.State, desc string) state.StatusUpdate {
	repo := "modules/foo"
	return state.StatusUpdate{Forge: string(kind), Repo: repo, SHA: sha(n), Context: "rida/foo:main", State: string(st), Description: desc, TargetURL: "https://rida.example/builds/1"}
}

func (b *testBundle) upsert(t testing.TB, u state.StatusUpdate) *state.OutboxEntry {
	t.Helper()
	e, err := b.store.UpsertStatus(context.Background(), u)
	if err != nil {
		t.Fatalf("UpsertStatus: %v", err)
	}
	return e
}

func (b *testBundle) run(t testing.TB) int {
	t.Helper()
	n, err := b.worker.runOnce(context.Background())
	if err != nil {
		t.Fatalf("runOnce: %v", err)
	}
	return n
}

func (b *testBundle) entry(t testing.TB, u state.StatusUpdate) *state.OutboxEntry {
	t.Helper()
	e, err := b.store.OutboxEntry(context.Background(), u.Key())
	if err != nil {
		t.Fatalf("OutboxEntry: %v", err)
	}
	return e
}

func forgeKey(u state.StatusUpdate) forgetest.Key {
	return forgetest.Key{Repo: u.Repo, SHA: u.SHA, Context: u.Context}
}

// wireState is what the fake forge records for a rida state.
func wireState(kind forge.Kind, st forge.State) string {
	if kind == forge.KindGitLab {
		switch st {
		case forge.StateFailure, forge.StateError:
			return "failed"
		}
		return string(st)
	}
	switch st {
	case forge.StateRunning:
		return "pending"
	case forge.StateCanceled:
		return "error"
	}
	return string(st)
}

func allKinds() []forge.Kind {
	return []forge.Kind{forge.KindGitHub, forge.KindGitea, forge.KindGitLab}
}

func TestWorker_RunOnce_FinalStatusArrives(t *testing.T) {
	t.Parallel()
	for _, kind := range allKinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOptions{kinds: []forge.Kind{kind}})
			u := update(kind, 1, forge.StateFailure, "build failed: bar did not build")
			b.upsert(t, u)
			if n := b.run(t); n != 1 {
				t.Fatalf("posted %d, want 1", n)
			}
			got, ok := b.servers[string(kind)].Statuses()[forgeKey(u)]
			if !ok || got.State != wireState(kind, forge.StateFailure) || got.Description != u.Description || got.TargetURL != u.TargetURL {
				t.Fatalf("forge shows %+v (found %v)", got, ok)
			}
			e := b.entry(t, u)
			if !e.Done || e.LastPosted == nil || e.LastPosted.State != "failure" || e.Attempts != 0 {
				t.Fatalf("entry = %+v, want done with LastPosted", e)
			}
			if n := b.run(t); n != 0 {
				t.Fatalf("second round posted %d, want 0", n)
			}
		})
	}
}

func TestWorker_RunOnce_Retries5xx(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	srv := b.servers["github"]
	srv.FailNext(1, forgetest.Fail500)
	srv.FailNext(1, forgetest.Fail502)
	u := update(forge.KindGitHub, 1, forge.StateSuccess, "built")
	b.upsert(t, u)

	if n := b.run(t); n != 0 {
		t.Fatalf("posted %d during a 500", n)
	}
	e := b.entry(t, u)
	if e.Attempts != 1 || !e.NextAttempt.Equal(b.clock.Now().Add(forge.BackoffBase)) || !strings.Contains(e.LastError, "500") {
		t.Fatalf("after 500: %+v, want 1 attempt, retry in %s", e, forge.BackoffBase)
	}
	b.run(t) // not due yet
	if srv.Requests() != 1 {
		t.Fatalf("forge saw %d requests before the backoff passed, want 1", srv.Requests())
	}
	b.clock.Advance(forge.BackoffBase)
	b.run(t) // 502
	if e = b.entry(t, u); e.Attempts != 2 || !e.NextAttempt.Equal(b.clock.Now().Add(2*forge.BackoffBase)) {
		t.Fatalf("after 502: %+v, want 2 attempts, retry in %s", e, 2*forge.BackoffBase)
	}
	b.clock.Advance(2 * forge.BackoffBase)
	if n := b.run(t); n != 1 {
		t.Fatalf("posted %d after the forge recovered, want 1", n)
	}
	if e = b.entry(t, u); !e.Done || e.LastError != "" || e.Attempts != 0 {
		t.Fatalf("entry = %+v, want done, error cleared", e)
	}
}

func TestWorker_RunOnce_RateLimitPausesForge(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		kind    forge.Kind
		failure forgetest.Failure
		wait    time.Duration // the pause the failure asks for
		slack   time.Duration // reset-based waits add a second and depend on the real clock
	}{
		{"github/429-retry-after", forge.KindGitHub, forgetest.Fail429, 30 * time.Second, 0},
		{"gitea/429-retry-after", forge.KindGitea, forgetest.Fail429, 30 * time.Second, 0},
		{"gitlab/429-retry-after", forge.KindGitLab, forgetest.Fail429, 30 * time.Second, 0},
		{"github/403-secondary-retry-after", forge.KindGitHub, forgetest.FailSecondaryLimit, 45 * time.Second, 0},
		{"github/403-secondary-no-header", forge.KindGitHub, forgetest.FailSecondaryLimitNoHeader, forge.RateLimitMinDelay, 0},
		{"github/403-primary-reset", forge.KindGitHub, forgetest.FailPrimaryLimit, 30 * time.Second, 3 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var srv *forgetest.Server
			b := setup(t, setupOptions{kinds: []forge.Kind{tc.kind}, worker: func(o *WorkerOptions) {
				// go-github remembers a 403 limit on the real clock and
				// refuses calls itself until it passes; a fresh client per
				// post leaves the pause to the worker, on the fake clock.
				o.Reporters[string(tc.kind)] = freshPoster{t: t, srv: &srv}
			}})
			srv = b.servers[string(tc.kind)]
			if tc.failure != forgetest.FailSecondaryLimitNoHeader {
				srv.SetRetryAfter(tc.wait)
			}
			srv.FailNext(1, tc.failure)
			u1 := update(tc.kind, 1, forge.StateSuccess, "built")
			u2 := update(tc.kind, 2, forge.StateSuccess, "built")
			b.upsert(t, u1)
			b.upsert(t, u2)
			start := b.clock.Now()

			if n := b.run(t); n != 0 || srv.Requests() != 1 {
				t.Fatalf("posted %d with %d requests, want 0 posted and only 1 request (forge paused)", n, srv.Requests())
			}
			e := b.entry(t, u1)
			if d := e.NextAttempt.Sub(start); d < tc.wait || d > tc.wait+tc.slack {
				t.Fatalf("next attempt in %s, want %s (+%s)", d, tc.wait, tc.slack)
			}
			if !strings.Contains(e.LastError, "rate limited") {
				t.Fatalf("LastError = %q", e.LastError)
			}
			b.clock.Advance(tc.wait - time.Second)
			if n := b.run(t); n != 0 || srv.Requests() != 1 {
				t.Fatalf("during the pause: posted %d, %d requests", n, srv.Requests())
			}
			b.clock.Advance(time.Second + tc.slack)
			if n := b.run(t); n != 2 {
				t.Fatalf("after the pause posted %d, want 2", n)
			}
			if got := srv.Statuses(); len(got) != 2 {
				t.Fatalf("forge shows %d statuses, want 2", len(got))
			}
		})
	}
}

// freshPoster posts with a new reporter each time (no client-side memory of
// rate limits).
type freshPoster struct {
	t   testing.TB
	srv **forgetest.Server
}

func (p freshPoster) Post(ctx context.Context, s forge.Status) error {
	rep, err := forge.New((*p.srv).Options())
	if err != nil {
		p.t.Errorf("forge.New: %v", err)
		return err
	}
	return rep.Post(ctx, s)
}

func TestWorker_RunOnce_ForgeDownThenBack(t *testing.T) {
	t.Parallel()
	for _, kind := range allKinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOptions{kinds: []forge.Kind{kind}})
			srv := b.servers[string(kind)]
			srv.SetDown(true)
			var ups []state.StatusUpdate
			for i := range 3 {
				ups = append(ups, update(kind, i+1, []forge.State{forge.StateSuccess, forge.StateFailure, forge.StateError}[i], "final"))
				b.upsert(t, ups[i])
			}
			for range 5 { // five rounds while down, each after the backoff
				if n := b.run(t); n != 0 {
					t.Fatalf("posted %d while down", n)
				}
				b.clock.Advance(forge.BackoffMax)
			}
			if e := b.entry(t, ups[0]); e.Attempts != 5 || e.Done {
				t.Fatalf("entry after 5 failures = %+v", e)
			}
			srv.SetDown(false)
			if n := b.run(t); n != 3 {
				t.Fatalf("posted %d once back, want 3", n)
			}
			hist := srv.History()
			if len(hist) != 3 {
				t.Fatalf("forge received %d statuses, want each of 3 once: %+v", len(hist), hist)
			}
			for i, u := range ups {
				if got := srv.Statuses()[forgeKey(u)]; got.State != wireState(kind, forge.State(u.State)) {
					t.Errorf("status %d: forge shows %q, want %q", i, got.State, wireState(kind, forge.State(u.State)))
				}
			}
		})
	}
}

func TestWorker_RunOnce_OnlyLastOfQuickUpdates(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	srv := b.servers["github"]
	srv.SetDown(true)
	b.upsert(t, update(forge.KindGitHub, 1, forge.StatePending, "queued"))
	b.run(t) // fails: down
	b.upsert(t, update(forge.KindGitHub, 1, forge.StateRunning, "building batch 1/3"))
	b.upsert(t, update(forge.KindGitHub, 1, forge.StateRunning, "building batch 2/3"))
	last := b.upsert(t, update(forge.KindGitHub, 1, forge.StateSuccess, "built"))
	if last.Version != 4 {
		t.Fatalf("Version = %d, want 4", last.Version)
	}
	srv.SetDown(false)
	b.clock.Advance(time.Hour)
	if n := b.run(t); n != 1 {
		t.Fatalf("posted %d, want 1", n)
	}
	hist := srv.History()
	if len(hist) != 1 || hist[0].State != "success" || hist[0].Description != "built" {
		t.Fatalf("forge received %+v, want only the success", hist)
	}
}

// racePoster upserts newer content while a post is in flight.
type racePoster struct {
	Poster
	during func()
	once   sync.Once
}

func (p *racePoster) Post(ctx context.Context, s forge.Status) error {
	err := p.Poster.Post(ctx, s)
	p.once.Do(p.during)
	return err
}

func TestWorker_RunOnce_NewerUpdateDuringPost(t *testing.T) {
	t.Parallel()
	var b *testBundle
	rp := &racePoster{}
	b = setup(t, setupOptions{worker: func(o *WorkerOptions) {
		rp.Poster = o.Reporters["github"]
		o.Reporters["github"] = rp
	}})
	u := update(forge.KindGitHub, 1, forge.StatePending, "queued")
	final := update(forge.KindGitHub, 1, forge.StateSuccess, "built")
	rp.during = func() { b.upsert(t, final) }
	b.upsert(t, u)
	b.run(t)
	if e := b.entry(t, u); e.Done || e.State != "success" || e.LastPosted.State != "pending" {
		t.Fatalf("entry = %+v, want success still owed", e)
	}
	b.run(t)
	hist := b.servers["github"].History()
	if len(hist) != 2 || hist[0].State != "pending" || hist[1].State != "success" {
		t.Fatalf("forge received %+v, want pending then success", hist)
	}
	if !b.entry(t, u).Done {
		t.Fatal("entry not done after the newer content was posted")
	}
}

func TestWorker_RunOnce_Watchdog(t *testing.T) {
	t.Parallel()
	for _, kind := range allKinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOptions{kinds: []forge.Kind{kind}})
			srv := b.servers[string(kind)]
			stale := update(kind, 1, forge.StatePending, "queued")
			done := update(kind, 2, forge.StateSuccess, "built")
			b.upsert(t, stale)
			b.upsert(t, done)
			if n := b.run(t); n != 2 {
				t.Fatalf("posted %d, want 2", n)
			}
			b.clock.Advance(5 * time.Hour)
			if n := b.run(t); n != 0 {
				t.Fatalf("watchdog fired early: posted %d", n)
			}
			b.clock.Advance(time.Hour + time.Minute)
			if n := b.run(t); n != 1 {
				t.Fatalf("posted %d after the deadline, want the 1 error", n)
			}
			got := srv.Statuses()[forgeKey(stale)]
			want := "rida lost track of this build (pending for 6h); re-run it with rida rerun or redeliver the webhook"
			if got.State != wireState(kind, forge.StateError) || got.Description != want {
				t.Fatalf("forge shows %q %q, want error %q", got.State, got.Description, want)
			}
			if srv.Statuses()[forgeKey(done)].State != "success" {
				t.Fatal("watchdog touched a final status")
			}
		})
	}
}

func TestWorker_RunOnce_PermanentError(t *testing.T) {
	t.Parallel()
	for _, f := range []forgetest.Failure{forgetest.Fail401, forgetest.Fail404, forgetest.Fail422} {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOptions{})
			srv := b.servers["github"]
			srv.FailNext(1, f)
			u := update(forge.KindGitHub, 1, forge.StateSuccess, "built")
			b.upsert(t, u)
			b.run(t)
			e := b.entry(t, u)
			if !e.Done || !e.Failed || !strings.Contains(e.LastError, "HTTP 4") {
				t.Fatalf("entry = %+v, want failed permanently with the forge's error", e)
			}
			b.clock.Advance(24 * time.Hour)
			b.run(t)
			if srv.Requests() != 1 {
				t.Fatalf("a permanent error was retried: %d requests", srv.Requests())
			}
		})
	}
}

func TestWorker_RunOnce_NoReporter(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	u := update(forge.KindGitHub, 1, forge.StateSuccess, "built")
	u.Forge = "pagure"
	b.upsert(t, u)
	b.run(t)
	if e := b.entry(t, u); !e.Failed || !strings.Contains(e.LastError, `no reporter configured for forge "pagure"`) {
		t.Fatalf("entry = %+v", e)
	}
}

func TestWorker_RunOnce_RatePerForge(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{kinds: []forge.Kind{forge.KindGitHub, forge.KindGitLab}, worker: func(o *WorkerOptions) {
		o.RatePerForge, o.Burst = 2, 2
	}})
	for i := range 5 {
		b.upsert(t, update(forge.KindGitHub, i+1, forge.StateSuccess, "built"))
		b.upsert(t, update(forge.KindGitLab, i+1, forge.StateSuccess, "built"))
	}
	for i, want := range []int{4, 4, 2, 0} { // 2 per forge per second
		if n := b.run(t); n != want {
			t.Fatalf("round %d posted %d, want %d", i, n, want)
		}
		b.clock.Advance(time.Second)
	}
	if len(b.servers["github"].History()) != 5 || len(b.servers["gitlab"].History()) != 5 {
		t.Fatal("not every status arrived")
	}
}

// signalPoster reports every successful post on a channel.
type signalPoster struct {
	Poster
	posted chan forge.Status
}

func (p *signalPoster) Post(ctx context.Context, s forge.Status) error {
	err := p.Poster.Post(ctx, s)
	if err == nil {
		p.posted <- s
	}
	return err
}

func TestWorker_Start_NotifiedByStore(t *testing.T) {
	t.Parallel()
	sp := &signalPoster{posted: make(chan forge.Status, 10)}
	b := setup(t, setupOptions{realClock: true, worker: func(o *WorkerOptions) {
		sp.Poster = o.Reporters["github"]
		o.Reporters["github"] = sp
		o.PollInterval = time.Hour // only Notify can wake it in time
	}})
	ctx := context.Background()
	if err := b.worker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.worker.Stop)
	b.upsert(t, update(forge.KindGitHub, 1, forge.StateSuccess, "built"))
	select {
	case s := <-sp.posted:
		if s.State != forge.StateSuccess {
			t.Fatalf("posted %+v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no post within 10s of the upsert")
	}
	if err := b.worker.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
}

func TestNewWorker_Validation(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	rep := b.worker.opts.Reporters
	for name, o := range map[string]WorkerOptions{
		"Store":        {Reporters: rep},
		"Reporters":    {Store: b.store},
		"NilReporter":  {Store: b.store, Reporters: map[string]Poster{"github": nil}},
		"RatePerForge": {Store: b.store, Reporters: rep, RatePerForge: -1},
		"Deadline":     {Store: b.store, Reporters: rep, PendingDeadline: -time.Second},
	} {
		if _, err := NewWorker(o); err == nil {
			t.Errorf("%s: NewWorker accepted invalid options", name)
		}
	}
	w, err := NewWorker(WorkerOptions{Store: b.store, Reporters: rep})
	if err != nil {
		t.Fatal(err)
	}
	if w.opts.RatePerForge != 1 || w.opts.Burst != 10 || w.opts.PendingDeadline != 6*time.Hour || w.opts.PollInterval != 10*time.Second {
		t.Fatalf("defaults = %+v", w.opts)
	}
	var nilWorker *Worker
	nilWorker.Notify() // must not panic
}
