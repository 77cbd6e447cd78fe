package runner_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rida-build/rida/runner"
)

// fakeBackend behaves like a backend: it reports building then complete or
// failed for every component, and records the order of its calls.
type fakeBackend struct {
	mu       sync.Mutex
	calls    []string
	fail     map[string]bool // component key → its build fails
	batchErr map[int]error   // batch number → infrastructure error
	forget   string          // a component never reported
}

func (f *fakeBackend) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeBackend) Prepare(_ context.Context, b *runner.Build) error {
	f.record("prepare")
	return nil
}

func (f *fakeBackend) BuildBatch(_ context.Context, b *runner.Build, batch *runner.Batch, report func(runner.ComponentUpdate)) error {
	f.record(fmt.Sprintf("batch %d", batch.Number))
	if err := f.batchErr[batch.Number]; err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, c := range batch.Components {
		if c.Key == f.forget {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			report(runner.ComponentUpdate{Key: c.Key, State: runner.ComponentBuilding})
			if f.fail[c.Key] {
				report(runner.ComponentUpdate{Key: c.Key, State: runner.ComponentFailed, Reason: c.Key + ": see " + c.Key + ".log"})
				return
			}
			report(runner.ComponentUpdate{Key: c.Key, State: runner.ComponentComplete, NVR: c.Package + "-1-1" + b.DistTag,
				RPMs: []string{c.Package + "-0:1-1" + b.DistTag + ".noarch"}})
		}()
	}
	wg.Wait()
	return nil
}

func (f *fakeBackend) Finish(_ context.Context, b *runner.Build) (*runner.Result, error) {
	f.record("finish")
	return &runner.Result{Location: "fake"}, nil
}

var _ runner.Backend = (*fakeBackend)(nil)

func threeBatchBuild() *runner.Build {
	b := &runner.Build{ID: 7, Name: "m", Stream: "s", Version: 1, Context: "c", DistTag: ".module+el9+7+abcdef12"}
	mk := func(n int, keys ...string) *runner.Batch {
		batch := &runner.Batch{Number: n}
		for _, k := range keys {
			batch.Components = append(batch.Components, &runner.Component{Key: k, Package: k, Batch: n, State: runner.ComponentQueued})
		}
		return batch
	}
	b.Batches = []*runner.Batch{mk(1, runner.MacrosComponent), mk(2, "a", "b"), mk(3, "c")}
	return b
}

func TestExecute(t *testing.T) {
	infra := errors.New("disk full")
	for _, tc := range []struct {
		name      string
		be        *fakeBackend
		wantCalls []string
		wantErr   string
		failure   bool // want *BuildFailure
		infra     bool // want *InfraError
		states    map[string]runner.ComponentState
	}{
		{
			name:      "OK",
			be:        &fakeBackend{},
			wantCalls: []string{"prepare", "batch 1", "batch 2", "batch 3", "finish"},
			states:    map[string]runner.ComponentState{"a": runner.ComponentComplete, "b": runner.ComponentComplete, "c": runner.ComponentComplete},
		},
		{
			name:      "ComponentFails_SiblingsFinish_NoLaterBatch",
			be:        &fakeBackend{fail: map[string]bool{"a": true}},
			wantCalls: []string{"prepare", "batch 1", "batch 2"},
			wantErr:   "Component(s) a failed to build. a: see a.log",
			failure:   true,
			states:    map[string]runner.ComponentState{"a": runner.ComponentFailed, "b": runner.ComponentComplete, "c": runner.ComponentQueued},
		},
		{
			name:      "MacrosFail",
			be:        &fakeBackend{fail: map[string]bool{runner.MacrosComponent: true}},
			wantCalls: []string{"prepare", "batch 1"},
			wantErr:   "Component(s) module-build-macros failed to build.",
			failure:   true,
		},
		{
			name:      "BackendError",
			be:        &fakeBackend{batchErr: map[int]error{2: infra}},
			wantCalls: []string{"prepare", "batch 1", "batch 2"},
			wantErr:   "infrastructure error: build batch 2 of m:s:1:c: disk full",
			infra:     true,
		},
		{
			name:      "BackendForgetsComponent",
			be:        &fakeBackend{forget: "b"},
			wantCalls: []string{"prepare", "batch 1", "batch 2"},
			wantErr:   "component b still queued",
			infra:     true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := threeBatchBuild()
			var events []runner.Event
			res, err := runner.Execute(context.Background(), tc.be, b, runner.ExecuteOptions{
				Progress: func(e runner.Event) { events = append(events, e) },
			})
			if !slices.Equal(tc.be.calls, tc.wantCalls) {
				t.Errorf("calls = %v, want %v", tc.be.calls, tc.wantCalls)
			}
			if tc.wantErr == "" {
				if err != nil || res == nil {
					t.Fatalf("Execute = %v, %v", res, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			var bf *runner.BuildFailure
			var ie *runner.InfraError
			if got := errors.As(err, &bf); got != tc.failure {
				t.Errorf("BuildFailure = %v, want %v (err %v)", got, tc.failure, err)
			}
			if got := errors.As(err, &ie); got != tc.infra {
				t.Errorf("InfraError = %v, want %v (err %v)", got, tc.infra, err)
			}
			for _, batch := range b.Batches {
				for _, c := range batch.Components {
					if want, ok := tc.states[c.Key]; ok && c.State != want {
						t.Errorf("component %s state = %s, want %s", c.Key, c.State, want)
					}
					if c.State == runner.ComponentComplete && (c.Started.IsZero() || c.Finished.Before(c.Started) || len(c.RPMs) != 1) {
						t.Errorf("component %s complete without times or RPMs: %+v", c.Key, c)
					}
				}
			}
			if len(events) == 0 {
				t.Error("no progress events")
			}
		})
	}
}

func TestExecute_IgnoresUpdatesAfterTerminal(t *testing.T) {
	b := threeBatchBuild()
	be := &replayBackend{}
	_, err := runner.Execute(context.Background(), be, b, runner.ExecuteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := b.Batches[1].Components[0]; c.State != runner.ComponentComplete {
		t.Errorf("a late 'failed' after 'complete' changed the state to %s", c.State)
	}
}

// replayBackend reports complete and then, wrongly, failed.
type replayBackend struct{ fakeBackend }

func (r *replayBackend) BuildBatch(ctx context.Context, b *runner.Build, batch *runner.Batch, report func(runner.ComponentUpdate)) error {
	for _, c := range batch.Components {
		report(runner.ComponentUpdate{Key: c.Key, State: runner.ComponentComplete})
		report(runner.ComponentUpdate{Key: c.Key, State: runner.ComponentFailed})
	}
	return nil
}

// adoptingBackend is a fakeBackend that can take over completed components
// of a resumed build; lose names components whose output is gone.
type adoptingBackend struct {
	fakeBackend
	lose    map[string]bool
	adopted []string
	built   []string
}

func (a *adoptingBackend) AdoptBatch(_ context.Context, _ *runner.Build, batch *runner.Batch, done []*runner.Component) ([]string, error) {
	var lost []string
	for _, c := range done {
		if a.lose[c.Key] {
			lost = append(lost, c.Key)
		} else {
			a.adopted = append(a.adopted, c.Key)
		}
	}
	return lost, nil
}

func (a *adoptingBackend) BuildBatch(ctx context.Context, b *runner.Build, batch *runner.Batch, report func(runner.ComponentUpdate)) error {
	for _, c := range batch.Components {
		a.built = append(a.built, c.Key)
	}
	return a.fakeBackend.BuildBatch(ctx, b, batch, report)
}

// resumedBuild is threeBatchBuild as a killed rida left it: batch 1
// complete, batch 2 half done (a complete, b interrupted).
func resumedBuild() *runner.Build {
	b := threeBatchBuild()
	for _, c := range []*runner.Component{b.Batches[0].Components[0], b.Batches[1].Components[0]} {
		c.State, c.NVR, c.RPMs = runner.ComponentComplete, c.Package+"-1-1", []string{c.Package + "-0:1-1.noarch"}
	}
	return b
}

// A resumed build keeps every completed component: an Adopter takes them
// over and only the rest is built; what the Adopter lost is built again; a
// backend that cannot adopt gets the interrupted batch's completed
// components again (Koji finds their builds), never earlier batches'.
func TestExecute_Resumed(t *testing.T) {
	for _, tc := range []struct {
		name        string
		lose        map[string]bool
		adopt       bool
		wantBuilt   []string
		wantAdopted []string
	}{
		{name: "adopter", adopt: true, wantBuilt: []string{"b", "c"}, wantAdopted: []string{runner.MacrosComponent, "a"}},
		{name: "adopter lost a", adopt: true, lose: map[string]bool{"a": true}, wantBuilt: []string{"a", "b", "c"}, wantAdopted: []string{runner.MacrosComponent}},
		{name: "no adopter", wantBuilt: []string{"a", "b", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := resumedBuild()
			ab := &adoptingBackend{lose: tc.lose}
			var be runner.Backend = ab
			if !tc.adopt {
				be = plainBackend{ab}
			}
			if _, err := runner.Execute(context.Background(), be, b, runner.ExecuteOptions{Resumed: true}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ab.built, tc.wantBuilt) || !slices.Equal(ab.adopted, tc.wantAdopted) {
				t.Errorf("built %v adopted %v, want built %v adopted %v", ab.built, ab.adopted, tc.wantBuilt, tc.wantAdopted)
			}
			for _, batch := range b.Batches {
				for _, c := range batch.Components {
					if c.State != runner.ComponentComplete {
						t.Errorf("%s ended %s", c.Key, c.State)
					}
				}
			}
		})
	}
}

// plainBackend hides adoptingBackend's AdoptBatch.
type plainBackend struct{ ab *adoptingBackend }

func (p plainBackend) Prepare(ctx context.Context, b *runner.Build) error {
	return p.ab.Prepare(ctx, b)
}
func (p plainBackend) BuildBatch(ctx context.Context, b *runner.Build, batch *runner.Batch, report func(runner.ComponentUpdate)) error {
	return p.ab.BuildBatch(ctx, b, batch, report)
}
func (p plainBackend) Finish(ctx context.Context, b *runner.Build) (*runner.Result, error) {
	return p.ab.Finish(ctx, b)
}
