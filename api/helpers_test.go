package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/state"
)

const testToken = "s3cret-token"

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// fakeBranches says every commit in onBranch is on every branch; others are
// not. Full hashes are the rev padded with "0".
type fakeBranches struct{ onBranch map[string]bool }

func (f fakeBranches) CommitOnBranch(_ context.Context, _, _, rev string) (string, bool, error) {
	full := rev + strings.Repeat("0", max(0, 40-len(rev)))
	return full, f.onBranch[rev], nil
}

// storeCanceler cancels like the runner does for a build that is not
// running in this process: record the request, then end the build failed.
type storeCanceler struct{ st *state.Store }

func (c storeCanceler) Cancel(ctx context.Context, id uint64, who string) error {
	mb, err := c.st.RequestCancel(ctx, id, "cancelled by "+who)
	if err != nil {
		return err
	}
	mb.State, mb.StateReason = state.ModuleStateFailed, mb.CancelRequestedBy
	_, err = c.st.PutModuleBuild(ctx, *mb)
	return err
}

type bundle struct {
	t        *testing.T
	store    *state.Store
	clock    *clock
	srv      *api.Server
	http     *httptest.Server
	dataDir  string
	reg      *prometheus.Registry
	enqueued int
	closed   bool
	mu       sync.Mutex
}

type setupOpts struct {
	mutate func(*api.Options)
}

// setup opens a real bbolt store in a temp dir and serves the API on
// httptest. The store is checked for consistency on cleanup.
func setup(t *testing.T, so ...setupOpts) *bundle {
	t.Helper()
	dir := t.TempDir()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st, err := state.Open(filepath.Join(dir, "rida.db"), state.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{t: t, store: st, clock: clk, dataDir: dir, reg: prometheus.NewRegistry()}
	m, err := api.NewMetrics(api.MetricsOptions{Registry: b.reg, Store: st, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	opts := api.Options{
		Store: st, Canceler: storeCanceler{st}, Tokens: map[string]string{"alice": testToken, "empty": ""},
		Branches: fakeBranches{onBranch: map[string]bool{"abc1234": true, "def5678": true}}, SCMURLPrefixes: []string{"https://src.example.org/modules/"},
		OnEnqueue: func() { b.mu.Lock(); b.enqueued++; b.mu.Unlock() }, DataDir: dir,
		EventPoll: 20 * time.Millisecond, Metrics: m, Version: "test", Now: clk.Now,
	}
	for _, o := range so {
		if o.mutate != nil {
			o.mutate(&opts)
		}
	}
	b.srv, err = api.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	b.http = httptest.NewServer(b.srv)
	t.Cleanup(func() {
		b.http.Close()
		if b.closed {
			return
		}
		if err := st.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		st.Close()
	})
	return b
}

// tick advances the clock by d.
func (b *bundle) tick(d time.Duration) { b.clock.Set(b.clock.Now().Add(d)) }

// putBuild stores a module build and moves it through states, one minute
// apart, ending in the last one.
func (b *bundle) putBuild(mb state.ModuleBuild, states ...state.ModuleState) *state.ModuleBuild {
	b.t.Helper()
	ctx := context.Background()
	if len(states) == 0 {
		states = []state.ModuleState{mb.State}
	}
	// Like the runner, fill in the init record StartNext (or a submission)
	// made for the request rather than adding a second one.
	if mb.ID == 0 && mb.RequestID != 0 {
		recs, err := b.store.RequestModuleBuilds(ctx, mb.RequestID)
		if err != nil {
			b.t.Fatal(err)
		}
		if len(recs) == 1 && recs[0].State == state.ModuleStateInit && recs[0].Identity == "" {
			mb.ID = recs[0].ID
		}
	}
	mb.State = states[0]
	out, err := b.store.PutModuleBuild(ctx, mb)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, s := range states[1:] {
		b.tick(time.Minute)
		out.State, out.StateReason = s, "moved to "+s.String()
		if out, err = b.store.PutModuleBuild(ctx, *out); err != nil {
			b.t.Fatal(err)
		}
	}
	b.tick(time.Minute)
	return out
}

// delivery records a push and plans it with requests (or a reason).
func (b *bundle) delivery(repo, after string, reqs ...state.BuildRequest) *state.Delivery {
	b.t.Helper()
	ctx := context.Background()
	d := &state.Delivery{Forge: "github", Event: "push", Repo: repo, Ref: "refs/heads/main", Before: strings.Repeat("1", 40), After: after, Sender: "bob", DeliveryGUID: "g-" + after}
	if _, err := b.store.RecordDelivery(ctx, d); err != nil {
		b.t.Fatal(err)
	}
	job, err := b.store.LeasePlanJob(ctx, "w", time.Minute)
	if err != nil {
		b.t.Fatal(err)
	}
	res := state.PlanResult{Worker: "w", Requests: reqs}
	if len(reqs) == 0 {
		res.Reason = "no relevant paths changed"
	}
	out, err := b.store.CompletePlanJob(ctx, job.ID, res)
	if err != nil {
		b.t.Fatal(err)
	}
	b.tick(time.Second)
	return out
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return m
}

// do sends a request; token "" sends none. Every error answer must have
// MBS's shape.
func (b *bundle) do(method, path, token, body string) response {
	b.t.Helper()
	req, err := http.NewRequest(method, b.http.URL+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.http.Client().Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, body: data}
	if resp.StatusCode >= 400 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		m := r.json(b.t)
		if int(m["status"].(float64)) != resp.StatusCode || m["error"] != http.StatusText(resp.StatusCode) || m["message"] == "" {
			b.t.Errorf("%s %s: error body %s does not have MBS's shape", method, path, data)
		}
	}
	return r
}

func (b *bundle) get(path string) response { return b.do(http.MethodGet, path, "", "") }

// expect checks status and that the message contains want.
func expect(t *testing.T, r response, status int, want string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	var m struct{ Message string }
	_ = json.Unmarshal(r.body, &m)
	if want != "" && !strings.Contains(string(r.body), want) && !strings.Contains(m.Message, want) {
		t.Fatalf("body %s does not contain %q", r.body, want)
	}
}
