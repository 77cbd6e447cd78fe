package runner

import (
	"context"
	"errors"
	"time"

	"github.com/rida-build/rida/state"
)

// initOrWait runs init for req; while a buildrequired stream has a build
// queued or running (*DepWaitError), the build waits in state wait with a
// reason naming it, without holding one of the MaxBuilds slots (the build
// it waits for may need that slot), and tries again when a build ends or
// every DepPollInterval. ended is true when the build was cancelled, or
// the runner stopped, while it waited; the caller then has nothing to do.
func (r *Runner) initOrWait(ctx context.Context, req *state.BuildRequest, mb *state.ModuleBuild) (src ModuleSource, builds []*Build, ended bool, err error) {
	for {
		r.mu.Lock()
		ch := r.ended
		r.mu.Unlock()
		src, builds, err = r.init(ctx, req, mb)
		var we *DepWaitError
		if !errors.As(err, &we) {
			return src, builds, false, err
		}
		// Re-read the record so a cancel recorded meanwhile is kept.
		cur, gerr := r.opts.Store.GetModuleBuild(ctx, mb.ID)
		if gerr != nil {
			return src, nil, false, &InfraError{Op: "reload the waiting build", Err: gerr}
		}
		if cur.CancelRequestedBy != "" {
			if !cur.State.Terminal() {
				_, _ = r.finish(ctx, cur, state.ModuleStateFailed, cur.CancelRequestedBy, state.ResultCanceled)
			}
			return src, nil, true, nil
		}
		if cur.State.Terminal() {
			return src, nil, true, nil
		}
		if cur.State != state.ModuleStateWait || cur.StateReason != we.Reason {
			cur.State, cur.StateReason = state.ModuleStateWait, we.Reason
			stored, perr := r.opts.Store.PutModuleBuild(ctx, *cur)
			if perr != nil {
				return src, nil, false, &InfraError{Op: "record the wait", Err: perr}
			}
			cur = stored
			r.opts.Logger.Info("runner: build waits for a buildrequired stream", "build", cur.ID, "key", req.Key, "reason", we.Reason)
		}
		*mb = *cur
		r.release()
		select {
		case <-ctx.Done():
		case <-ch:
		case <-time.After(r.opts.DepPollInterval):
		}
		r.reacquire(ctx)
		if ctx.Err() != nil {
			return src, nil, true, nil // recover picks it up after a restart
		}
	}
}

// release gives up the build's MaxBuilds slot while it waits.
func (r *Runner) release() {
	r.mu.Lock()
	r.active--
	r.mu.Unlock()
	r.Notify()
}

// reacquire takes a slot again, waiting for one to free up; when ctx ends
// it takes it regardless, so the launch goroutine's accounting balances.
func (r *Runner) reacquire(ctx context.Context) {
	for {
		r.mu.Lock()
		if r.active < r.opts.MaxBuilds || ctx.Err() != nil {
			r.active++
			r.mu.Unlock()
			return
		}
		ch := r.ended
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-ch:
		case <-time.After(r.opts.PollInterval):
		}
	}
}

// sameDeps reports whether a recorded build was built against exactly the
// builds deps names.
func sameDeps(recorded []state.BuiltAgainst, deps []ModuleDep) bool {
	if len(recorded) != len(deps) {
		return false
	}
	for i, d := range deps {
		o := recorded[i]
		if o.Name != d.Name || o.Stream != d.Stream || o.Version != d.Version || o.Context != d.Context || o.BuildID != d.BuildID {
			return false
		}
	}
	return true
}
