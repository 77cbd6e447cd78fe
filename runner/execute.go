package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// ExecuteOptions configures Execute.
type ExecuteOptions struct {
	// Progress, if set, is called after every component state change and at
	// each batch boundary, from one goroutine at a time.
	Progress func(Event)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// Resumed says the build was started by an earlier process: its
	// completed components are kept. A backend that is an Adopter takes
	// their output over, batch by batch; with any other backend the
	// completed components of the first unfinished batch are handed to it
	// again (the Koji backend finds their tasks and builds again instead of
	// building anew).
	Resumed bool
}

// Event is one step of a module build, as Execute reports it.
type Event struct {
	Time time.Time
	// Batch is the batch the event belongs to.
	Batch int
	// Component is a snapshot of the component after the change; nil for
	// batch events.
	Component *Component
	// Message describes batch events ("batch 2 started").
	Message string
}

// Execute builds b with be: Prepare, every batch in order, then Finish. It
// returns a *BuildFailure when a component failed (the other components of
// its batch are allowed to finish, as in MBS, and no later batch starts) and
// an *InfraError when the backend could not do its job. Component states in b
// are kept up to date as the backend reports them.
func Execute(ctx context.Context, be Backend, b *Build, opts ExecuteOptions) (*Result, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ex := &execution{b: b, opts: opts, byKey: map[string]*Component{}}
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			ex.byKey[c.Key] = c
		}
	}
	if err := be.Prepare(ctx, b); err != nil {
		return nil, &InfraError{Op: "prepare " + b.NSVC(), Err: err}
	}
	reuser, canReuse := be.(Reuser)
	adopter, canAdopt := be.(Adopter)
	unfinishedSeen := false
	for _, batch := range b.Batches {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if opts.Resumed {
			var done []*Component
			unfinished := false
			for _, c := range batch.Components {
				switch c.State {
				case ComponentComplete:
					done = append(done, c)
				case ComponentReused:
				default:
					unfinished = true
				}
			}
			switch {
			case len(done) == 0:
			case canAdopt:
				lost, err := adopter.AdoptBatch(ctx, b, batch, done)
				if err != nil {
					return nil, &InfraError{Op: fmt.Sprintf("take over batch %d of %s", batch.Number, b.NSVC()), Err: err}
				}
				for _, c := range done {
					if slices.Contains(lost, c.Key) {
						ex.opts.Logger.Warn("runner: completed component's output is gone, building again", "component", c.Key)
						c.State, c.Reason, c.NVR, c.RPMs = ComponentQueued, "", "", nil
					}
				}
			case unfinished && !unfinishedSeen:
				for _, c := range done {
					c.State, c.Reason = ComponentQueued, ""
				}
			}
			unfinishedSeen = unfinishedSeen || unfinished
		}
		// A batch whose components all built already (a resumed build) is
		// not handed to the backend again; reused components are taken
		// over first, the rest are built.
		todo := &Batch{Number: batch.Number}
		var reused []*Component
		for _, c := range batch.Components {
			switch {
			case c.State == ComponentComplete:
			case c.State == ComponentReused && canReuse:
				reused = append(reused, c)
			default:
				if c.State == ComponentReused {
					ex.opts.Logger.Info("runner: backend cannot reuse, building", "component", c.Key)
				}
				c.State, c.Reason, c.ReusedFrom, c.ReusedLocation = ComponentQueued, "", 0, ""
				todo.Components = append(todo.Components, c)
			}
		}
		if len(todo.Components) == 0 && len(reused) == 0 {
			continue
		}
		var unavailable []*Component
		for _, c := range reused {
			if err := reuser.Reuse(ctx, b, c); err != nil {
				if !errors.Is(err, ErrReuseUnavailable) {
					return nil, &InfraError{Op: fmt.Sprintf("reuse %s from build %d", c.Key, c.ReusedFrom), Err: err}
				}
				// The earlier output is gone: build the component after all.
				ex.opts.Logger.Warn("runner: cannot reuse, building", "component", c.Key, "reason", err)
				unavailable = append(unavailable, c)
			}
		}
		for _, c := range unavailable {
			c.State, c.Reason, c.ReusedFrom, c.ReusedLocation, c.NVR, c.RPMs = ComponentQueued, "", 0, "", "", nil
			todo.Components = append(todo.Components, c)
		}
		ex.batchEvent(batch.Number, fmt.Sprintf("batch %d/%d started (%d to build, %d reused)", batch.Number, len(b.Batches), len(todo.Components), len(reused)-len(unavailable)))
		err := be.BuildBatch(ctx, b, todo, ex.apply)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return nil, err
			}
			return nil, &InfraError{Op: fmt.Sprintf("build batch %d of %s", batch.Number, b.NSVC()), Err: err}
		}
		failure := &BuildFailure{}
		for _, c := range todo.Components {
			ex.mu.Lock()
			state, reason := c.State, c.Reason
			ex.mu.Unlock()
			switch {
			case state == ComponentFailed || state == ComponentCanceled:
				failure.Components = append(failure.Components, c.Key)
				if reason != "" {
					failure.Details = append(failure.Details, reason)
				}
			case !state.Terminal():
				return nil, &InfraError{Op: fmt.Sprintf("build batch %d of %s", batch.Number, b.NSVC()),
					Err: fmt.Errorf("backend returned with component %s still %s", c.Key, state)}
			}
		}
		if len(failure.Components) > 0 {
			ex.batchEvent(batch.Number, fmt.Sprintf("batch %d/%d failed", batch.Number, len(b.Batches)))
			return nil, failure
		}
		ex.batchEvent(batch.Number, fmt.Sprintf("batch %d/%d done", batch.Number, len(b.Batches)))
	}
	res, err := be.Finish(ctx, b)
	if err != nil {
		return nil, &InfraError{Op: "finish " + b.NSVC(), Err: err}
	}
	return res, nil
}

type execution struct {
	b     *Build
	opts  ExecuteOptions
	byKey map[string]*Component
	mu    sync.Mutex
}

// apply records a backend's update. It ignores updates for unknown
// components and for components already in a terminal state, so a confused
// backend cannot resurrect a finished component.
func (ex *execution) apply(u ComponentUpdate) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	c, ok := ex.byKey[u.Key]
	if !ok {
		ex.opts.Logger.Warn("runner: update for unknown component", "component", u.Key, "build", ex.b.NSVC())
		return
	}
	if c.State.Terminal() {
		ex.opts.Logger.Warn("runner: update after terminal state ignored", "component", u.Key, "state", c.State, "update", u.State)
		return
	}
	t := u.Time
	if t.IsZero() {
		t = ex.opts.Now()
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
	if u.TaskID != 0 {
		c.TaskID = u.TaskID
	}
	if u.RPMs != nil {
		c.RPMs = append([]string(nil), u.RPMs...)
	}
	if u.State == ComponentBuilding && c.Started.IsZero() {
		c.Started = t
	}
	if u.State.Terminal() {
		c.Finished = t
	}
	if ex.opts.Progress != nil {
		snap := *c
		snap.RPMs = append([]string(nil), c.RPMs...)
		ex.opts.Progress(Event{Time: t, Batch: c.Batch, Component: &snap})
	}
}

func (ex *execution) batchEvent(n int, msg string) {
	ex.opts.Logger.Info("runner: "+msg, "build", ex.b.NSVC())
	if ex.opts.Progress != nil {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		ex.opts.Progress(Event{Time: ex.opts.Now(), Batch: n, Message: msg})
	}
}
