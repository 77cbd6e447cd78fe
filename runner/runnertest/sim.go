// Package runnertest holds a simulated runner.Backend for benchmarks and
// tests of the runner's own overhead: component builds take configured
// durations and nothing else happens.
package runnertest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rida-build/rida/runner"
)

// SimBackend builds every component of a batch in parallel by sleeping its
// duration, then "regenerates the repository" for RepoRegen. It implements
// runner.Backend and runner.Reuser.
type SimBackend struct {
	// Durations gives a component's build time by key; Default applies
	// otherwise.
	Durations map[string]time.Duration
	Default   time.Duration
	// RepoRegen is the time after each batch before the next may start.
	RepoRegen time.Duration
	// Fail lists component keys whose build fails.
	Fail map[string]bool

	builds atomic.Int64
	mu     sync.Mutex
}

var (
	_ runner.Backend = (*SimBackend)(nil)
	_ runner.Reuser  = (*SimBackend)(nil)
)

// Builds returns how many component builds ran.
func (s *SimBackend) Builds() int64 { return s.builds.Load() }

// Duration returns the build time of component key.
func (s *SimBackend) Duration(key string) time.Duration {
	if d, ok := s.Durations[key]; ok {
		return d
	}
	return s.Default
}

// Prepare does nothing.
func (s *SimBackend) Prepare(context.Context, *runner.Build) error { return nil }

// BuildBatch sleeps each component's duration in parallel, then RepoRegen.
func (s *SimBackend) BuildBatch(ctx context.Context, b *runner.Build, batch *runner.Batch, report func(runner.ComponentUpdate)) error {
	var wg sync.WaitGroup
	for _, c := range batch.Components {
		wg.Go(func() {
			s.builds.Add(1)
			report(runner.ComponentUpdate{Key: c.Key, State: runner.ComponentBuilding})
			select {
			case <-time.After(s.Duration(c.Key)):
			case <-ctx.Done():
				report(runner.ComponentUpdate{Key: c.Key, State: runner.ComponentCanceled, Reason: "canceled"})
				return
			}
			if s.Fail[c.Key] {
				report(runner.ComponentUpdate{Key: c.Key, State: runner.ComponentFailed, Reason: c.Key + " failed (simulated)"})
				return
			}
			nevra := fmt.Sprintf("%s-0:1-1%s.noarch", c.Package, b.DistTag)
			report(runner.ComponentUpdate{Key: c.Key, State: runner.ComponentComplete, NVR: c.Package + "-1-1" + b.DistTag, RPMs: []string{nevra}})
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-time.After(s.RepoRegen):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Reuse does nothing: the simulated output is already "there".
func (s *SimBackend) Reuse(context.Context, *runner.Build, *runner.Component) error { return nil }

// Finish returns the final modulemd: the build's stream with
// artifacts.rpms set to every component's NEVRAs (module-build-macros
// excluded, as its package is not part of the module).
func (s *SimBackend) Finish(_ context.Context, b *runner.Build) (*runner.Result, error) {
	res := &runner.Result{Location: "simulated"}
	if b.Modulemd == nil {
		return res, nil
	}
	var rpms []string
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			if c.Key != runner.MacrosComponent {
				rpms = append(rpms, c.RPMs...)
			}
		}
	}
	slices.Sort(rpms)
	final := b.Modulemd.Clone()
	final.Artifacts.RPMs = rpms
	mmd, err := final.Marshal()
	if err != nil {
		return nil, fmt.Errorf("runnertest: final modulemd: %w", err)
	}
	res.Modulemd = mmd
	return res, nil
}

// CriticalPath is the shortest possible wall time of b on this backend:
// per batch, its longest component plus the repository regeneration.
func (s *SimBackend) CriticalPath(b *runner.Build) time.Duration {
	var total time.Duration
	for _, batch := range b.Batches {
		var longest time.Duration
		for _, c := range batch.Components {
			longest = max(longest, s.Duration(c.Key))
		}
		total += longest + s.RepoRegen
	}
	return total
}
