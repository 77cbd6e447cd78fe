package backendtest

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/rida-build/rida/runner"
)

// checker sits between a caller (runner.Execute or a case) and a backend
// and enforces the reporting protocol on every BuildBatch call.
type checker struct {
	t *testing.T

	mu      sync.Mutex
	byKey   map[string][]runner.ComponentState // every update, all calls
	batches []int                              // batch numbers, in call order
	errs    []error                            // BuildBatch results, in call order
}

func newChecker(t *testing.T) *checker {
	return &checker{t: t, byKey: map[string][]runner.ComponentState{}}
}

// wrap returns be behind the checker, keeping runner.Reuser when be has
// it so the runner's view of the backend does not change.
func (ck *checker) wrap(be runner.Backend) runner.Backend {
	cb := &checkedBackend{ck: ck, be: be}
	if r, ok := be.(runner.Reuser); ok {
		return &checkedReuser{checkedBackend: cb, r: r}
	}
	return cb
}

// states returns the states reported for key, in order.
func (ck *checker) states(key string) []runner.ComponentState {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	return append([]runner.ComponentState(nil), ck.byKey[key]...)
}

func (ck *checker) batchNumbers() []int {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	return append([]int(nil), ck.batches...)
}

func (ck *checker) batchErrors() []error {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	return append([]error(nil), ck.errs...)
}

type checkedBackend struct {
	ck *checker
	be runner.Backend
}

type checkedReuser struct {
	*checkedBackend
	r runner.Reuser
}

func (c *checkedReuser) Reuse(ctx context.Context, b *runner.Build, comp *runner.Component) error {
	return c.r.Reuse(ctx, b, comp)
}

func (c *checkedBackend) Prepare(ctx context.Context, b *runner.Build) error {
	return c.be.Prepare(ctx, b)
}

func (c *checkedBackend) Finish(ctx context.Context, b *runner.Build) (*runner.Result, error) {
	return c.be.Finish(ctx, b)
}

// BuildBatch checks, per call: every update names a component of the batch
// and a known state; complete and failed follow building (canceled may
// come without it: a build that never started); nothing follows a
// terminal update; nothing is reported after return; and a nil return
// means every component got its terminal update. Violations are test
// errors; updates after return are not passed on.
func (c *checkedBackend) BuildBatch(ctx context.Context, b *runner.Build, batch *runner.Batch, report func(runner.ComponentUpdate)) error {
	ck := c.ck
	ck.mu.Lock()
	ck.batches = append(ck.batches, batch.Number)
	ck.mu.Unlock()

	var mu sync.Mutex
	inBatch := map[string]bool{}
	for _, comp := range batch.Components {
		inBatch[comp.Key] = true
	}
	building := map[string]bool{}
	terminal := map[string]runner.ComponentState{}
	returned := false
	err := c.be.BuildBatch(ctx, b, batch, func(u runner.ComponentUpdate) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case returned:
			ck.t.Errorf("batch %d: %s reported %s after BuildBatch returned", batch.Number, u.Key, u.State)
			return
		case !inBatch[u.Key]:
			ck.t.Errorf("batch %d: update for %q, which is not a component of the batch: %+v", batch.Number, u.Key, u)
			return
		case terminal[u.Key] != "":
			ck.t.Errorf("batch %d: %s reported %s after its terminal state %s", batch.Number, u.Key, u.State, terminal[u.Key])
			return
		}
		ck.mu.Lock()
		ck.byKey[u.Key] = append(ck.byKey[u.Key], u.State)
		ck.mu.Unlock()
		switch u.State {
		case runner.ComponentBuilding:
			building[u.Key] = true
		case runner.ComponentComplete, runner.ComponentFailed:
			if !building[u.Key] {
				ck.t.Errorf("batch %d: %s reported %s without being reported building first", batch.Number, u.Key, u.State)
			}
			terminal[u.Key] = u.State
		case runner.ComponentCanceled:
			terminal[u.Key] = u.State
		default:
			ck.t.Errorf("batch %d: %s reported state %q; a backend reports building, complete, failed or canceled", batch.Number, u.Key, u.State)
		}
		if u.State == runner.ComponentFailed && u.Reason == "" {
			ck.t.Errorf("batch %d: %s failed without a reason", batch.Number, u.Key)
		}
		report(u)
	})
	mu.Lock()
	returned = true
	if err == nil {
		for _, comp := range batch.Components {
			if terminal[comp.Key] == "" {
				ck.t.Errorf("batch %d: BuildBatch returned nil but %s got no terminal update", batch.Number, comp.Key)
			}
		}
	}
	mu.Unlock()
	ck.mu.Lock()
	ck.errs = append(ck.errs, err)
	ck.mu.Unlock()
	return err
}

// applier applies updates to a build's components as runner.Execute does,
// for cases that call BuildBatch directly.
type applier struct {
	mu    sync.Mutex
	byKey map[string]*runner.Component
}

func newApplier(b *runner.Build) *applier {
	return &applier{byKey: keyed(b)}
}

func (a *applier) apply(u runner.ComponentUpdate) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.byKey[u.Key]
	if c == nil || c.State.Terminal() {
		return
	}
	c.State = u.State
	if u.Reason != "" {
		c.Reason = u.Reason
	}
	if u.NVR != "" {
		c.NVR = u.NVR
	}
	if u.LogPath != "" {
		c.LogPath = u.LogPath
	}
	if u.RPMs != nil {
		c.RPMs = append([]string(nil), u.RPMs...)
	}
}

func (a *applier) state(key string) runner.ComponentState {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.byKey[key]; c != nil {
		return c.State
	}
	return ""
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
