package koji

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// buildSession is the hub session of one module build: a Koji subsession
// of the backend's Client, opened at the build's first call and closed
// (logoutChild, by the master session) when the build ends. A build
// resumed after a restart opens a new one: subsessions are not kept across
// processes (their keys are credentials, and the master session they hang
// on is gone with the old process).
//
// Why subsessions and not one login per module build (what MBS does: each
// KojiModuleBuilder logs in anew with get_session):
//
//   - Koji's own builder does exactly this for concurrent work under one
//     login: kojid opens a subsession for each task it forks
//     (koji/daemon.py, TaskManager.forkTask, session.subsession()) and ends
//     it with logoutChild when the task is done.
//   - No credential is used per build. A login per build would send the
//     password again, or make a TLS client-certificate handshake (or, with
//     Kerberos, need a ticket) for every module build; a subsession only
//     needs the master session.
//   - The hub ties a subsession to its master: logging the master out
//     closes every subsession, and the master's expiry (the hub's
//     SessionRenewalTimeout) expires them too, so no build's session
//     outlives rida's login.
//   - A subsession is the same user: permissions and task ownership (cancel,
//     the listTasks owner filter that finds an unconfirmed submission) are
//     those of the master.
//
// What it buys: each session has its own callnum sequence, which the hub
// requires to be increasing, so a client serialises the requests of one
// session; with one session per module build a call that takes minutes
// (the client's timeout is 10 minutes) holds up only its own build.
type buildSession struct {
	master *Client
	nsvc   string
	log    *slog.Logger

	mu sync.Mutex // held while the subsession is opened
	c  *Client    // nil until the first call, and after close
}

var _ Caller = (*buildSession)(nil)

// sessionCloseTimeout bounds logoutChild when a build ends.
const sessionCloseTimeout = 30 * time.Second

// get returns the build's subsession, opening it if need be.
func (s *buildSession) get(ctx context.Context) (*Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		c, err := s.master.Subsession(ctx)
		if err != nil {
			return nil, fmt.Errorf("koji: open the session of %s: %w", s.nsvc, err)
		}
		s.c = c
		s.log.Info("koji: build session opened", "nsvc", s.nsvc, "session_id", c.SessionID(),
			"master_session_id", s.master.SessionID())
	}
	return s.c, nil
}

// do runs f on the build's subsession. When the subsession was closed
// under f (close ran meanwhile: the build was canceled while a call was
// on its way), f runs once more on a new one: a closed session makes the
// client refuse to send, or the hub refuse the call before running it.
func (s *buildSession) do(ctx context.Context, f func(*Client) error) error {
	for attempt := 1; ; attempt++ {
		c, err := s.get(ctx)
		if err != nil {
			return err
		}
		err = f(c)
		if attempt == 1 && errors.Is(err, ErrSessionClosed) {
			continue
		}
		return err
	}
}

// Call implements Caller.
func (s *buildSession) Call(ctx context.Context, method string, args ...any) (v Value, err error) {
	err = s.do(ctx, func(c *Client) error { v, err = c.Call(ctx, method, args...); return err })
	return v, err
}

// CallOnce implements Caller.
func (s *buildSession) CallOnce(ctx context.Context, method string, args ...any) (v Value, err error) {
	err = s.do(ctx, func(c *Client) error { v, err = c.CallOnce(ctx, method, args...); return err })
	return v, err
}

// MultiCall implements Caller.
func (s *buildSession) MultiCall(ctx context.Context, calls []MultiCallEntry) (res []MultiCallResult, err error) {
	err = s.do(ctx, func(c *Client) error { res, err = c.MultiCall(ctx, calls); return err })
	return res, err
}

// close ends the subsession, if open, through the master (so a call the
// build still has in flight does not hold it up), even when ctx is
// canceled. A later call opens a new one.
func (s *buildSession) close(ctx context.Context) {
	s.mu.Lock()
	c := s.c
	s.c = nil
	s.mu.Unlock()
	if c == nil {
		return
	}
	id := c.SessionID()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionCloseTimeout)
	defer cancel()
	if err := c.Logout(ctx); err != nil {
		// It expires on the hub with its master.
		s.log.Warn("koji: could not close the build session", "nsvc", s.nsvc, "session_id", id, "error", err.Error())
		return
	}
	s.log.Info("koji: build session closed", "nsvc", s.nsvc, "session_id", id)
}

// forBuild returns be bound to st's session: the calls it makes for the
// build go through the build's own subsession (or BackendOptions.Client
// when it cannot open subsessions).
func (be *Backend) forBuild(st *buildState) *Backend {
	if st.session == nil {
		return be
	}
	return &Backend{core: be.core, c: st.session}
}

// endSession closes st's session: the module build is over (finished,
// failed or canceled), as far as the runner's contract tells (see
// BuildBatch). Closing early only costs a new subsession.
func (be *Backend) endSession(ctx context.Context, st *buildState) {
	if st.session != nil {
		st.session.close(ctx)
	}
}
