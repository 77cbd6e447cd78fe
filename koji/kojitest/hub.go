// Package kojitest is an in-process Koji hub for tests: an httptest server
// that speaks the hub's XML-RPC dialect byte for byte as recorded from Koji
// 1.35.3, binds arguments against the real hub's method signatures
// (ParameterError 1019 with Python's wording), answers "Invalid method" for
// unknown methods, enforces sessions and callnum sequencing (SequenceError
// 1008, RetryError 1009), has subsessions (subsession, logoutChild; logout
// and expiry of a session take its subsessions along; ExpireSession makes
// the hub answer AuthExpired 1007), refuses writes from anonymous callers,
// and keeps
// tags, inheritance, groups, package lists, targets, builds, tasks, uploads
// and repos in memory.
//
// There is no builder: a test plays kojid. Tasks either complete after a
// configured duration (SetBuildDuration, SetRepoDuration, SetTagDuration;
// time advances lazily, at each request) or wait for CompleteTask and
// FailTask. Completing a build task creates a COMPLETE build whose NVR comes
// from the SRPM name or the SCM URL (see Options.NVR).
//
// Every request is recorded (Calls, FlatCalls) for assertions; Hold stalls
// the requests a test picks (a slow hub call) while the others are
// answered.
package kojitest

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/koji/internal/wire"
)

// Manual is a task duration meaning "never on its own": the task waits for
// CompleteTask or FailTask.
const Manual time.Duration = -1

// Options configures New. The zero value is a 1.35.3 hub with one admin
// user "kojiadmin" (password "kojipass") whose tasks complete at the next
// request.
type Options struct {
	// Version is what getKojiVersion answers. Default "1.35.3". Below 1.35
	// the repo.* methods do not exist, as on a real hub.
	Version string
	// Users maps user name to password; every user is an admin. Default
	// {"kojiadmin": "kojipass"}.
	Users map[string]string
	// BuildDuration, TagDuration and RepoDuration set how long build,
	// tagBuild and newRepo tasks take: 0 means they complete at the next
	// request, Manual that they wait for CompleteTask/FailTask.
	BuildDuration time.Duration
	TagDuration   time.Duration
	RepoDuration  time.Duration
	// StallRepoRequests leaves repo requests (repo.request) unworked: no
	// newRepo task is ever started for them, as on a hub whose repo queue
	// nothing works. newRepo itself still works.
	StallRepoRequests bool
	// NVR names the build a build task produces from its source. Default:
	// an uploaded SRPM gives the NVR in its file name; an SCM URL gives
	// the repository's base name, version "1.0" and release "1" followed by
	// the module dist tag found in the release of the module-build-macros
	// build tagged in the target's build tag (as building with that
	// package installed does).
	NVR func(src, target string) (name, version, release string)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Call is one recorded request (or, in FlatCalls, one call inside a
// multiCall).
type Call struct {
	Method string
	// Args are the positional parameters; KW the keyword arguments (nil
	// when none were sent).
	Args []any
	KW   map[string]any
	// Session is the session id sent, 0 for anonymous calls; Callnum the
	// callnum sent, -1 when none.
	Session int64
	Callnum int64
	// Fault is the fault code the call got, 0 if none.
	Fault int
	// Sub holds the calls of a multiCall.
	Sub []Call
}

// Hub is the hub double. Its methods are safe for concurrent use.
type Hub struct {
	// URL is the XML-RPC endpoint, "<server>/kojihub".
	URL    string
	server *httptest.Server
	sigs   map[string]*signature

	holdMu sync.Mutex
	holds  []*hold

	mu       sync.Mutex
	opts     Options
	calls    []Call
	failHTTP []int // statuses to answer instead of handling, in order

	users    map[string]*user
	sessions map[int64]*session
	event    int64

	tags     map[int]*tag
	tagNames map[string]int
	targets  map[int]*target
	builds   map[int]*build
	tasks    map[int]*task
	repos    map[int]*repo
	requests map[int]*repoRequest
	uploads  map[string][]byte
	packages map[string]int
	failSrc  map[string]string
	nextID   map[string]int
}

// New starts a hub double; it is closed when the test ends.
func New(t testing.TB, opts Options) *Hub {
	t.Helper()
	h, err := NewHub(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// NewHub starts a hub double; call Close when done.
func NewHub(opts Options) (*Hub, error) {
	sigs, err := loadSignatures()
	if err != nil {
		return nil, err
	}
	opts.Version = cmp.Or(opts.Version, "1.35.3")
	if opts.Users == nil {
		opts.Users = map[string]string{"kojiadmin": "kojipass"}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Hub{
		sigs: sigs, opts: opts,
		users: map[string]*user{}, sessions: map[int64]*session{},
		tags: map[int]*tag{}, tagNames: map[string]int{}, targets: map[int]*target{},
		builds: map[int]*build{}, tasks: map[int]*task{}, repos: map[int]*repo{},
		requests: map[int]*repoRequest{}, uploads: map[string][]byte{}, packages: map[string]int{},
		failSrc: map[string]string{}, nextID: map[string]int{},
	}
	for _, name := range sortedKeys(opts.Users) {
		h.users[name] = &user{id: h.id("user"), name: name, password: opts.Users[name]}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/kojihub", h.serve)
	mux.HandleFunc("/kojihub/ssllogin", h.serve)
	h.server = httptest.NewServer(mux)
	h.URL = h.server.URL + "/kojihub"
	return h, nil
}

// Close releases every held request (Hold) and stops the server.
func (h *Hub) Close() {
	h.holdMu.Lock()
	holds := slices.Clone(h.holds)
	h.holdMu.Unlock()
	for _, hd := range holds {
		hd.release()
	}
	h.server.Close()
}

// hold is one Hold: the requests it matches wait until it is released.
type hold struct {
	match    func(Call) bool
	held     chan Call
	released chan struct{}
	once     sync.Once
	h        *Hub
}

func (hd *hold) release() {
	hd.once.Do(func() {
		close(hd.released)
		hd.h.holdMu.Lock()
		hd.h.holds = slices.DeleteFunc(hd.h.holds, func(x *hold) bool { return x == hd })
		hd.h.holdMu.Unlock()
	})
}

// Hold makes every request for which match returns true wait, before the
// hub handles it, until release is called (or the client gives up on the
// request): a hub call that stalls, e.g. for one session, while every
// other request is answered as usual (the wait holds no lock of the
// double). match sees the request as Calls records it, before handling:
// Method, Args, KW, Session, Callnum and, for a multiCall, Sub with each
// call's Method, Args and KW. Each held request is sent on held as it
// starts waiting (requests beyond the channel's 64 slots are held but not
// sent). Close releases every hold.
func (h *Hub) Hold(match func(Call) bool) (held <-chan Call, release func()) {
	hd := &hold{match: match, held: make(chan Call, 64), released: make(chan struct{}), h: h}
	h.holdMu.Lock()
	h.holds = append(h.holds, hd)
	h.holdMu.Unlock()
	return hd.held, hd.release
}

// wait holds a request that a Hold matches until it is released or the
// client goes away.
func (h *Hub) wait(r *http.Request, rec Call) {
	h.holdMu.Lock()
	var hd *hold
	for _, x := range h.holds {
		if x.match(rec) {
			hd = x
			break
		}
	}
	h.holdMu.Unlock()
	if hd == nil {
		return
	}
	select {
	case hd.held <- rec:
	default:
	}
	select {
	case <-hd.released:
	case <-r.Context().Done():
	}
}

// Server returns the underlying httptest server.
func (h *Hub) Server() *httptest.Server { return h.server }

func (h *Hub) id(kind string) int {
	h.nextID[kind]++
	return h.nextID[kind]
}

type user struct {
	id       int
	name     string
	password string
}

type session struct {
	id      int64
	key     string
	user    *user
	master  int64  // the session this is a subsession of, 0 if none
	callnum *int64 // stored only when a call commits a write
	closed  bool
	expired bool
}

// SessionInfo is one session the hub double holds.
type SessionInfo struct {
	ID int64
	// Master is the session this one is a subsession of, 0 if none.
	Master int64
	User   string
	// Closed: logged out (logout, logoutChild); Expired: refused with
	// AuthExpired (ExpireSession, or closed).
	Closed, Expired bool
}

// Sessions returns every session opened, by id.
func (h *Hub) Sessions() []SessionInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]SessionInfo, 0, len(h.sessions))
	for _, s := range h.sessions {
		out = append(out, SessionInfo{ID: s.id, Master: s.master, User: s.user.name, Closed: s.closed, Expired: s.expired})
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// ExpireSession expires session id and its subsessions, as the hub does
// when a session is used after its SessionRenewalTimeout (24 hours by
// default): their calls, but login and sslLogin, get AuthExpired (1007,
// 'session "N" has expired').
func (h *Hub) ExpireSession(id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.sessions {
		if s.id == id || s.master == id {
			s.expired = true
		}
	}
}

// SetBuildDuration sets how long build tasks created from now on take (0:
// done at the next request; Manual: wait for CompleteTask/FailTask).
func (h *Hub) SetBuildDuration(d time.Duration) { h.mu.Lock(); h.opts.BuildDuration = d; h.mu.Unlock() }

// SetTagDuration sets how long tagBuild tasks take.
func (h *Hub) SetTagDuration(d time.Duration) { h.mu.Lock(); h.opts.TagDuration = d; h.mu.Unlock() }

// SetRepoDuration sets how long repo regenerations (newRepo tasks, also
// those serving repo.request) take.
func (h *Hub) SetRepoDuration(d time.Duration) { h.mu.Lock(); h.opts.RepoDuration = d; h.mu.Unlock() }

// FailBuildsMatching makes every build task whose source contains substr
// fail with BuildError msg when it would complete.
func (h *Hub) FailBuildsMatching(substr, msg string) {
	h.mu.Lock()
	h.failSrc[substr] = msg
	h.mu.Unlock()
}

// FailRequests makes the next len(statuses) requests answer with these HTTP
// statuses (e.g. 503) instead of being handled; they are still recorded.
func (h *Hub) FailRequests(statuses ...int) {
	h.mu.Lock()
	h.failHTTP = append(h.failHTTP, statuses...)
	h.mu.Unlock()
}

// Calls returns the recorded requests, in order.
func (h *Hub) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// FlatCalls returns the recorded calls with every multiCall replaced by the
// calls it carried.
func (h *Hub) FlatCalls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Call
	for _, c := range h.calls {
		if c.Method == "multiCall" || c.Method == "system.multicall" {
			out = append(out, c.Sub...)
			continue
		}
		out = append(out, c)
	}
	return out
}

// ResetCalls forgets the recorded calls.
func (h *Hub) ResetCalls() { h.mu.Lock(); h.calls = nil; h.mu.Unlock() }

func (h *Hub) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusMethodNotAllowed)
		io.WriteString(w, "Method Not Allowed\n")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	method, params, err := wire.DecodeCall(body)
	if err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	rec := Call{Method: method, Callnum: -1}
	rec.Args, rec.KW = splitKW(params)
	if sid, err := strconv.ParseInt(r.Header.Get("Koji-Session-Id"), 10, 64); err == nil {
		rec.Session = sid
	}
	cn := cmp.Or(r.Header.Get("Koji-Session-Callnum"), r.Header.Get("Koji-Callnum"))
	if n, err := strconv.ParseInt(cn, 10, 64); err == nil {
		rec.Callnum = n
	}
	h.wait(r, previewCall(rec))
	h.mu.Lock()
	if len(h.failHTTP) > 0 {
		status := h.failHTTP[0]
		h.failHTTP = h.failHTTP[1:]
		h.calls = append(h.calls, rec)
		h.mu.Unlock()
		http.Error(w, http.StatusText(status), status)
		return
	}
	h.advance()
	result, fault := h.handle(r, method, params, &rec)
	if fault != nil {
		rec.Fault = fault.Code
	}
	h.calls = append(h.calls, rec)
	h.mu.Unlock()

	var out []byte
	if fault != nil {
		out = wire.EncodeFault(fault)
	} else if out, err = wire.EncodeResponse(result); err != nil {
		out = wire.EncodeFault(&wire.Fault{Code: 1, String: "<class 'TypeError'>: cannot marshal " + err.Error()})
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Koji-Version", h.opts.Version)
	w.Write(out)
}

// previewCall returns rec with, for a multiCall, the calls it carries in
// Sub (what a Hold matches before the request is handled).
func previewCall(rec Call) Call {
	if rec.Method != "multiCall" && rec.Method != "system.multicall" || len(rec.Args) != 1 {
		return rec
	}
	list, _ := rec.Args[0].([]any)
	for _, entry := range list {
		m, _ := entry.(map[string]any)
		name, _ := m["methodName"].(string)
		ps, _ := m["params"].([]any)
		sub := Call{Method: name, Session: rec.Session, Callnum: rec.Callnum}
		sub.Args, sub.KW = splitKW(ps)
		rec.Sub = append(rec.Sub, sub)
	}
	return rec
}

// splitKW separates a trailing __starstar struct from the positional params.
func splitKW(params []any) ([]any, map[string]any) {
	if n := len(params); n > 0 {
		if m, ok := params[n-1].(map[string]any); ok {
			if ss, ok := m["__starstar"].(bool); ok && ss {
				kw := make(map[string]any, len(m))
				for k, v := range m {
					if k != "__starstar" {
						kw[k] = v
					}
				}
				return params[:n-1], kw
			}
		}
	}
	return params, nil
}

// callCtx is what a method handler sees.
type callCtx struct {
	r       *http.Request
	session *session // nil: anonymous
	wrote   bool     // the call changed state (commit)
}

func (h *Hub) handle(r *http.Request, method string, params []any, rec *Call) (any, *wire.Fault) {
	c := &callCtx{r: r}
	if rec.Session != 0 || r.Header.Get("Koji-Session-Key") != "" {
		s, ok := h.sessions[rec.Session]
		if !ok || s.closed || s.key != r.Header.Get("Koji-Session-Key") {
			return nil, authFault("Invalid session or bad credentials")
		}
		if s.expired && method != "login" && method != "sslLogin" {
			return nil, &wire.Fault{Code: 1007, String: fmt.Sprintf("session \"%d\" has expired", s.id)}
		}
		if s.callnum != nil && rec.Callnum >= 0 {
			switch {
			case rec.Callnum < *s.callnum:
				return nil, &wire.Fault{Code: 1008, String: fmt.Sprintf("%d > %d (session %d)", *s.callnum, rec.Callnum, s.id)}
			case rec.Callnum == *s.callnum && !retryWhitelisted(method):
				return nil, &wire.Fault{Code: 1009, String: fmt.Sprintf("unable to retry call %d (method %s) for session %d", rec.Callnum, method, s.id)}
			}
		}
		c.session = s
	}
	var result any
	var fault *wire.Fault
	if method == "multiCall" || method == "system.multicall" {
		result, fault = h.multiCall(c, params, rec)
	} else {
		result, fault = h.dispatch(c, method, params)
	}
	if c.wrote && c.session != nil && rec.Callnum >= 0 && !c.session.closed {
		n := rec.Callnum
		c.session.callnum = &n
	}
	return result, fault
}

func retryWhitelisted(method string) bool {
	return strings.HasPrefix(method, "host.") || strings.HasPrefix(method, "repo")
}

func (h *Hub) multiCall(c *callCtx, params []any, rec *Call) (any, *wire.Fault) {
	args, fault := h.sigsBind("multiCall", params)
	if fault != nil {
		return nil, fault
	}
	list, ok := args["calls"].([]any)
	if !ok {
		return nil, &wire.Fault{Code: 1000, String: "multiCall: calls must be a list"}
	}
	out := make([]any, 0, len(list))
	for _, entry := range list {
		m, _ := entry.(map[string]any)
		name, _ := m["methodName"].(string)
		ps, _ := m["params"].([]any)
		sub := Call{Method: name, Session: rec.Session, Callnum: rec.Callnum}
		sub.Args, sub.KW = splitKW(ps)
		var v any
		var f *wire.Fault
		if name == "multiCall" || name == "system.multicall" {
			f = &wire.Fault{Code: 1000, String: "multicall is not allowed inside a multicall"}
		} else if name == "" {
			f = &wire.Fault{Code: 1000, String: "multiCall entry has no methodName"}
		} else {
			v, f = h.dispatch(c, name, ps)
		}
		if f != nil {
			sub.Fault = f.Code
			// Koji errors raised inside a multiCall carry a traceback.
			tb := []string{"Traceback (most recent call last):\n", "  ... kojitest hub double ...\n",
				fmt.Sprintf("koji.%s: %s\n", faultClass(f.Code), f.String)}
			out = append(out, wire.FaultValue(&wire.Fault{Code: f.Code, String: f.String, Traceback: tb}))
		} else {
			out = append(out, []any{v})
		}
		rec.Sub = append(rec.Sub, sub)
	}
	return out, nil
}

func (h *Hub) sigsBind(method string, params []any) (map[string]any, *wire.Fault) {
	if method == "multiCall" {
		if len(params) != 1 {
			return nil, paramError("multiCall() takes 1 positional argument but %d were given", len(params))
		}
		return map[string]any{"calls": params[0]}, nil
	}
	sig, ok := h.sigs[method]
	if !ok {
		return nil, &wire.Fault{Code: 1000, String: "Invalid method: " + method}
	}
	pos, kw := splitKW(params)
	return sig.bind(pos, kw)
}

// dispatch runs one method.
func (h *Hub) dispatch(c *callCtx, method string, params []any) (any, *wire.Fault) {
	if strings.HasPrefix(method, "repo.") && !h.versionAtLeast(1, 35) {
		return nil, &wire.Fault{Code: 1000, String: "Invalid method: " + method}
	}
	args, fault := h.sigsBind(method, params)
	if fault != nil {
		return nil, fault
	}
	m, ok := h.methods()[method]
	if !ok {
		return nil, &wire.Fault{Code: 1000, String: "kojitest: the hub double does not implement " + method}
	}
	if m.perm != "" {
		if c.session == nil {
			return nil, &wire.Fault{Code: 1004, String: m.perm + " permission required (user not logged in)"}
		}
	} else if m.login && c.session == nil {
		return nil, &wire.Fault{Code: 1004, String: "you must be logged in for this operation"}
	}
	// Handlers check everything before they change anything, so a
	// fault leaves the state as it was (the hub's savepoint per call).
	v, f := m.fn(h, c, bound(args))
	if f != nil {
		return nil, f
	}
	if m.write {
		c.wrote = true
		h.event++
	}
	if m.commit {
		c.wrote = true
	}
	return v, nil
}

func (h *Hub) versionAtLeast(major, minor int) bool {
	parts := strings.SplitN(h.opts.Version, ".", 3)
	if len(parts) < 2 {
		return true
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(parts[1])
	return ma > major || (ma == major && mi >= minor)
}

func authFault(msg string) *wire.Fault { return &wire.Fault{Code: 1002, String: msg} }

func genericf(format string, a ...any) *wire.Fault {
	return &wire.Fault{Code: 1000, String: fmt.Sprintf(format, a...)}
}

func faultClass(code int) string {
	switch code {
	case 1000:
		return "GenericError"
	case 1002:
		return "AuthError"
	case 1007:
		return "AuthExpired"
	case 1003:
		return "TagError"
	case 1004:
		return "ActionNotAllowed"
	case 1005:
		return "BuildError"
	case 1019:
		return "ParameterError"
	}
	return "GenericError"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
