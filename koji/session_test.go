package koji_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/koji"
	"github.com/rida-build/rida/koji/internal/wire"
	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/runner"
)

// sessionKeyRE matches a Koji session key ("<user id>-<19 alphanumerics>").
var sessionKeyRE = regexp.MustCompile(`\b\d+-[A-Za-z0-9]{19}\b`)

// methodsOf returns the recorded requests' methods, each with the name of
// its fault, if any.
func methodsOf(calls []kojitest.Call) []string {
	var out []string
	for _, c := range calls {
		s := c.Method
		if c.Fault != 0 {
			s += " fault " + koji.FaultName(c.Fault)
		}
		out = append(out, s)
	}
	return out
}

func TestClient_SubsessionHasItsOwnSessionAndCallnum(t *testing.T) {
	h := kojitest.New(t, kojitest.Options{})
	c := newClient(t, h)
	ctx := context.Background()
	if _, err := c.Call(ctx, "createTag", "m"); err != nil { // master callnum 0
		t.Fatal(err)
	}
	child, err := c.Subsession(ctx) // master callnum 1
	if err != nil {
		t.Fatal(err)
	}
	if child.SessionID() == 0 || child.SessionID() == c.SessionID() {
		t.Fatalf("subsession id %d, master %d", child.SessionID(), c.SessionID())
	}
	for _, name := range []string{"c1", "c2"} {
		if _, err := child.Call(ctx, "createTag", name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Call(ctx, "getTag", "m"); err != nil {
		t.Fatal(err)
	}
	type sc struct {
		method  string
		session int64
		callnum int64
	}
	var got []sc
	for _, call := range h.Calls()[1:] { // after the login
		got = append(got, sc{call.Method, call.Session, call.Callnum})
	}
	m, ch := c.SessionID(), child.SessionID()
	want := []sc{{"createTag", m, 0}, {"subsession", m, 1}, {"createTag", ch, 0}, {"createTag", ch, 1}, {"getTag", m, 2}}
	if !slices.Equal(got, want) {
		t.Errorf("calls\n got %v\nwant %v", got, want)
	}
	for _, s := range h.Sessions() {
		if s.ID == ch && s.Master != m {
			t.Errorf("subsession %+v, want master %d", s, m)
		}
	}
}

// An expired session is opened again the way it was opened (the same
// login) and the refused call sent again, once.
func TestClient_ExpiredSessionLogsInAgain(t *testing.T) {
	h := kojitest.New(t, kojitest.Options{})
	var logs strings.Builder
	c, err := koji.NewClient(koji.ClientOptions{HubURL: h.URL, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Login(ctx, "kojiadmin", "kojipass"); err != nil {
		t.Fatal(err)
	}
	old := c.SessionID()
	h.ExpireSession(old)
	var id int
	if err := c.CallInto(ctx, &id, "createTag", "after-expiry"); err != nil || id == 0 {
		t.Fatalf("createTag after expiry: %v %d", err, id)
	}
	if c.SessionID() == old {
		t.Error("still on the expired session")
	}
	want := []string{"login", "createTag fault AuthExpired", "login", "createTag"}
	if got := methodsOf(h.Calls()); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), "fault=AuthExpired") || sessionKeyRE.MatchString(logs.String()) || strings.Contains(logs.String(), "kojipass") {
		t.Errorf("log (renewal named, no key or password):\n%s", logs.String())
	}
}

// A subsession the hub refuses is replaced by a new subsession; when the
// master is refused too (the hub expires subsessions with their master),
// the master logs in again first.
func TestClient_RefusedSubsessionIsReplaced(t *testing.T) {
	h := kojitest.New(t, kojitest.Options{})
	c := newClient(t, h)
	ctx := context.Background()
	child, err := c.Subsession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("closed by someone else", func(t *testing.T) {
		old := child.SessionID()
		if _, err := c.Call(ctx, "logoutChild", old); err != nil {
			t.Fatal(err)
		}
		h.ResetCalls()
		if _, err := child.Call(ctx, "getTag", "x"); err != nil {
			t.Fatal(err)
		}
		want := []string{"getTag fault AuthError", "subsession", "getTag"}
		if got := methodsOf(h.Calls()); !slices.Equal(got, want) {
			t.Errorf("calls %v, want %v", got, want)
		}
		if child.SessionID() == old {
			t.Error("the subsession was not replaced")
		}
	})
	t.Run("master expired", func(t *testing.T) {
		master, old := c.SessionID(), child.SessionID()
		h.ExpireSession(master)
		h.ResetCalls()
		if _, err := child.Call(ctx, "getTag", "x"); err != nil {
			t.Fatal(err)
		}
		want := []string{"getTag fault AuthExpired", "subsession fault AuthExpired", "login", "subsession", "getTag"}
		if got := methodsOf(h.Calls()); !slices.Equal(got, want) {
			t.Errorf("calls %v, want %v", got, want)
		}
		if c.SessionID() == master || child.SessionID() == old {
			t.Errorf("sessions master %d → %d, child %d → %d", master, c.SessionID(), old, child.SessionID())
		}
		for _, s := range h.Sessions() {
			if s.ID == child.SessionID() && s.Master != c.SessionID() {
				t.Errorf("new subsession %+v, want master %d", s, c.SessionID())
			}
		}
	})
}

// A hub that keeps refusing the session: one renewal per call, then the
// fault is returned.
func TestClient_RenewsOncePerCall(t *testing.T) {
	var mu sync.Mutex
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := make([]byte, r.ContentLength)
		r.Body.Read(body)
		method, _, _ := wire.DecodeCall(body)
		mu.Lock()
		methods = append(methods, method)
		mu.Unlock()
		var out []byte
		if method == "login" {
			out, _ = wire.EncodeResponse(map[string]any{"session-id": 7, "session-key": "1-abcdefghijklmnopqrs", "header-auth": true})
		} else {
			out = wire.EncodeFault(&wire.Fault{Code: koji.AuthExpired, String: `session "7" has expired`})
		}
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	c, err := koji.NewClient(koji.ClientOptions{HubURL: srv.URL + "/kojihub", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Login(ctx, "kojiadmin", "kojipass"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Call(ctx, "getTag", "x")
	if !koji.IsFault(err, koji.AuthExpired) {
		t.Fatalf("got %v", err)
	}
	if want := []string{"login", "getTag", "login", "getTag"}; !slices.Equal(methods, want) {
		t.Errorf("requests %v, want %v", methods, want)
	}
}

// Calls refused together renew the session once.
func TestClient_ConcurrentRefusalsRenewOnce(t *testing.T) {
	h := kojitest.New(t, kojitest.Options{})
	c := newClient(t, h)
	ctx := context.Background()
	h.ExpireSession(c.SessionID())
	// Both calls reach the hub on the expired session before either is
	// answered.
	held, release := h.Hold(func(call kojitest.Call) bool { return call.Method == "getTag" && call.Session != 0 })
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, tag := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Call(ctx, "getTag", tag)
			errs <- err
		}()
	}
	<-held
	// The client sends one request of a session at a time: the second
	// waits for the first; release both.
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	logins := 0
	for _, call := range h.Calls() {
		if call.Method == "login" {
			logins++
		}
	}
	if logins != 2 {
		t.Errorf("%d logins (the first and one renewal), calls %v", logins, methodsOf(h.Calls()))
	}
}

// Logout of a subsession: the master closes it (logoutChild) without
// waiting for the call the subsession has in flight; the subsession is not
// opened again.
func TestClient_SubsessionLogout(t *testing.T) {
	h := kojitest.New(t, kojitest.Options{})
	c := newClient(t, h)
	ctx := context.Background()
	child, err := c.Subsession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := child.SessionID()
	held, release := h.Hold(func(call kojitest.Call) bool { return call.Session == id })
	defer release()
	inFlight := make(chan error, 1)
	go func() { _, err := child.Call(ctx, "getTag", "slow"); inFlight <- err }()
	<-held
	logoutCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := child.Logout(logoutCtx); err != nil {
		t.Fatalf("logout behind a held call: %v", err)
	}
	release()
	if err := <-inFlight; !errors.Is(err, koji.ErrSessionClosed) {
		t.Errorf("the call in flight during Logout: %v, want ErrSessionClosed", err)
	}
	n := len(h.Calls())
	if _, err := child.Call(ctx, "getTag", "x"); !errors.Is(err, koji.ErrSessionClosed) {
		t.Errorf("call after Logout: %v", err)
	}
	if len(h.Calls()) != n {
		t.Errorf("a call after Logout reached the hub: %v", methodsOf(h.Calls()[n:]))
	}
	for _, s := range h.Sessions() {
		if s.ID == id && !s.Closed {
			t.Errorf("subsession %+v not closed", s)
		}
		if s.ID == c.SessionID() && s.Closed {
			t.Errorf("master %+v closed", s)
		}
	}
	var logoutChild *kojitest.Call
	for _, call := range h.Calls() {
		if call.Method == "logoutChild" {
			logoutChild = &call
		}
	}
	if logoutChild == nil || logoutChild.Session != c.SessionID() || logoutChild.Args[0] != id {
		t.Errorf("logoutChild %+v, want by master %d of %d", logoutChild, c.SessionID(), id)
	}
}

// twoBuilds starts build A, whose getBuildTarget the hub holds, and, once
// that call is held, build B. It reports whether B ended within wait
// while A's call was held, and B's outcome, then releases A and waits for
// both. It returns the sessions of A's and B's getBuildTarget calls.
func twoBuilds(t *testing.T, h *kojitest.Hub, be *koji.Backend, wait time.Duration) (bInTime bool, bErr error, aSession, bSession int64) {
	t.Helper()
	a := mustPlan(t, testStream("stalla", map[string]int64{"x": 0}), 21)
	b := mustPlan(t, testStream("quickb", map[string]int64{"y": 0, "z": 1}), 22)
	aTarget := koji.TargetName(a.Name, a.Stream, a.Version, a.Context)
	held, release := h.Hold(func(c kojitest.Call) bool {
		return c.Method == "getBuildTarget" && len(c.Args) > 0 && c.Args[0] == aTarget
	})
	defer release()
	ctx := context.Background()
	aDone, bDone := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := runner.Execute(ctx, be, a, runner.ExecuteOptions{Logger: quiet})
		aDone <- err
	}()
	var aCall kojitest.Call
	select {
	case aCall = <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("build A's getBuildTarget never reached the hub")
	}
	go func() {
		_, err := runner.Execute(ctx, be, b, runner.ExecuteOptions{Logger: quiet})
		bDone <- err
	}()
	select {
	case bErr = <-bDone:
		bInTime = true
	case <-time.After(wait):
	}
	select {
	case err := <-aDone:
		t.Fatalf("build A ended while its call was held: %v", err)
	default:
	}
	release()
	if err := <-aDone; err != nil {
		t.Fatalf("build A after release: %v", err)
	}
	if !bInTime {
		if err := <-bDone; err != nil {
			t.Fatalf("build B after release: %v", err)
		}
	}
	for _, c := range h.Calls() {
		if c.Method == "getBuildTarget" && c.Args[0] != aTarget {
			bSession = c.Session
		}
	}
	return bInTime, bErr, aCall.Session, bSession
}

// Each module build has a session of its own: while the hub holds one of
// build A's calls, build B makes all its calls and becomes ready. With one
// session shared by both builds (a Caller that cannot open subsessions) B
// waits behind A's call: the test can tell the difference.
func TestBackend_StalledCallOfOneBuildDoesNotHoldUpAnother(t *testing.T) {
	t.Run("a subsession per build", func(t *testing.T) {
		bd := setup(t, kojitest.Options{})
		bInTime, bErr, aSession, bSession := twoBuilds(t, bd.hub, bd.backend, 30*time.Second)
		if !bInTime || bErr != nil {
			t.Fatalf("build B while A's call was held: ended %v, %v", bInTime, bErr)
		}
		master := bd.client.SessionID()
		if aSession == bSession || aSession == master || bSession == master {
			t.Errorf("sessions: A %d, B %d, master %d", aSession, bSession, master)
		}
		// Both subsessions of the master, both closed once the builds
		// ended; the master is still open.
		subs := 0
		for _, s := range bd.hub.Sessions() {
			switch {
			case s.ID == master:
				if s.Closed {
					t.Errorf("master %+v closed", s)
				}
			case s.ID == aSession || s.ID == bSession:
				subs++
				if s.Master != master || !s.Closed {
					t.Errorf("build session %+v: want a closed subsession of %d", s, master)
				}
			default:
				t.Errorf("unexpected session %+v", s)
			}
		}
		if subs != 2 {
			t.Errorf("%d build sessions, want 2", subs)
		}
		// No call of one build went on the other's session.
		for _, c := range bd.hub.FlatCalls() {
			for _, a := range c.Args {
				s, _ := a.(string)
				if strings.Contains(s, "stalla") && c.Session != aSession || strings.Contains(s, "quickb") && c.Session != bSession {
					t.Errorf("%s %v on session %d (A %d, B %d)", c.Method, c.Args, c.Session, aSession, bSession)
				}
			}
		}
	})
	t.Run("one shared session", func(t *testing.T) {
		bd := setup(t, kojitest.Options{})
		shared := struct{ koji.Caller }{bd.client} // hides Subsession
		be := newBackend(t, shared, &koji.MemoryIntentStore{})
		bInTime, bErr, aSession, bSession := twoBuilds(t, bd.hub, be, time.Second)
		if bInTime {
			t.Errorf("build B ended (%v) while A's call held the shared session", bErr)
		}
		if aSession != bSession {
			t.Errorf("sessions A %d, B %d: want one", aSession, bSession)
		}
	})
}

// The hub expires rida's sessions in the middle of a build (the master's
// expiry takes its subsessions along): the build's next call is refused,
// the master logs in again, the build gets a new subsession, and the
// build becomes ready.
func TestBackend_ExpiredSessionsRenewedMidBuild(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	b := mustPlan(t, testStream("expiry", map[string]int64{"a": 0, "b": 1}), 23)
	// Hold the first poll of build tasks, expire, release.
	held, release := bd.hub.Hold(func(c kojitest.Call) bool {
		return c.Method == "multiCall" && len(c.Sub) > 0 && c.Sub[0].Method == "getTaskInfo"
	})
	done := make(chan error, 1)
	go func() {
		_, err := runner.Execute(context.Background(), bd.backend, b, runner.ExecuteOptions{Logger: quiet})
		done <- err
	}()
	first := <-held
	master := bd.client.SessionID()
	bd.hub.ExpireSession(master)
	release()
	if err := <-done; err != nil {
		t.Fatalf("build across the expiry: %v", err)
	}
	var after []string
	for i, c := range bd.hub.Calls() {
		if c.Fault != 0 {
			for _, c := range bd.hub.Calls()[i:min(i+5, len(bd.hub.Calls()))] {
				after = append(after, methodsOf([]kojitest.Call{c})...)
			}
			if c.Session != first.Session {
				t.Errorf("first refused call on session %d, the held poll's %d", c.Session, first.Session)
			}
			break
		}
	}
	want := []string{"multiCall fault AuthExpired", "subsession fault AuthExpired", "login", "subsession", "multiCall"}
	if !slices.Equal(after, want) {
		t.Errorf("calls from the refused poll on: %v, want %v", after, want)
	}
	if bd.client.SessionID() == master {
		t.Error("the master session was not renewed")
	}
	for _, s := range bd.hub.Sessions() {
		if s.Master != 0 && !s.Closed && !s.Expired {
			t.Errorf("build session %+v left open", s)
		}
	}
}

// The build's session is closed whenever the module build ends: it became
// ready (Finish), a component failed, Prepare failed, or it was canceled.
func TestBackend_BuildSessionClosedWhenTheBuildEnds(t *testing.T) {
	openSubsessions := func(h *kojitest.Hub) []kojitest.SessionInfo {
		var out []kojitest.SessionInfo
		for _, s := range h.Sessions() {
			if s.Master != 0 && !s.Closed {
				out = append(out, s)
			}
		}
		return out
	}
	t.Run("ready", func(t *testing.T) {
		bd := setup(t, kojitest.Options{})
		b := mustPlan(t, testStream("endready", map[string]int64{"a": 0}), 31)
		if _, err := runner.Execute(context.Background(), bd.backend, b, runner.ExecuteOptions{Logger: quiet}); err != nil {
			t.Fatal(err)
		}
		if open := openSubsessions(bd.hub); len(open) > 0 {
			t.Errorf("open after ready: %+v", open)
		}
	})
	t.Run("component failed", func(t *testing.T) {
		bd := setup(t, kojitest.Options{})
		bd.hub.FailBuildsMatching("rpms/a#", "boom")
		b := mustPlan(t, testStream("endfail", map[string]int64{"a": 0, "b": 1}), 32)
		_, err := runner.Execute(context.Background(), bd.backend, b, runner.ExecuteOptions{Logger: quiet})
		var bf *runner.BuildFailure
		if !errors.As(err, &bf) {
			t.Fatalf("want a BuildFailure, got %v", err)
		}
		if open := openSubsessions(bd.hub); len(open) > 0 {
			t.Errorf("open after the failure: %+v", open)
		}
	})
	t.Run("prepare failed", func(t *testing.T) {
		h := kojitest.New(t, kojitest.Options{}) // no base module tag
		be := newBackend(t, newClient(t, h), &koji.MemoryIntentStore{})
		b := mustPlan(t, testStream("endprep", map[string]int64{"a": 0}), 33)
		if _, err := runner.Execute(context.Background(), be, b, runner.ExecuteOptions{Logger: quiet}); err == nil {
			t.Fatal("Prepare without the base module tag succeeded")
		}
		if len(h.Sessions()) < 2 {
			t.Fatalf("no build session was opened: %+v", h.Sessions())
		}
		if open := openSubsessions(h); len(open) > 0 {
			t.Errorf("open after Prepare failed: %+v", open)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		bd := setup(t, kojitest.Options{BuildDuration: kojitest.Manual})
		b := mustPlan(t, testStream("endcancel", map[string]int64{"a": 0}), 34)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := runner.Execute(ctx, bd.backend, b, runner.ExecuteOptions{Logger: quiet})
			done <- err
		}()
		for len(bd.hub.TaskIDs("build")) == 0 { // the macros build is submitted
			time.Sleep(time.Millisecond)
		}
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled build: %v", err)
		}
		if err := bd.backend.Cancel(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if open := openSubsessions(bd.hub); len(open) > 0 {
			t.Errorf("open after cancel: %+v", open)
		}
		// Cancel went through the master, not the build's session.
		for _, c := range bd.hub.FlatCalls() {
			if c.Method == "cancelTask" && c.Session != bd.client.SessionID() {
				t.Errorf("cancelTask on session %d, master %d", c.Session, bd.client.SessionID())
			}
		}
	})
}
