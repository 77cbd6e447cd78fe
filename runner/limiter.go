package runner

import "context"

// Limiter bounds how many component builds run at once across every module
// build of a process ("max concurrent component builds"). Backends that run
// component builds themselves (local) take a slot for each; backends whose
// builds run elsewhere (Koji) need none.
type Limiter interface {
	// Acquire blocks until a slot is free or ctx ends.
	Acquire(ctx context.Context) error
	// Release frees a slot taken by Acquire.
	Release()
}

// NewLimiter returns a Limiter with n slots (n < 1 means 1).
func NewLimiter(n int) Limiter { return semaphore(make(chan struct{}, max(n, 1))) }

type semaphore chan struct{}

func (s semaphore) Acquire(ctx context.Context) error {
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s semaphore) Release() { <-s }
