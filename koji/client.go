package koji

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rida-build/rida/koji/internal/wire"
)

// KW holds keyword arguments. Passed as the last argument of Call or of a
// MultiCallEntry it goes on the wire as a struct with "__starstar": true,
// which the hub turns into Python keyword arguments.
type KW map[string]any

// XMLRPCValue implements the wire encoder's hook.
func (kw KW) XMLRPCValue() any {
	m := make(map[string]any, len(kw)+1)
	for k, v := range kw {
		m[k] = v
	}
	m["__starstar"] = true
	return m
}

// RetryOptions configures how Client retries a call. Only transport errors
// (connection refused, reset, timeout) and HTTP 5xx answers are retried;
// every retry carries a new callnum. Faults are never retried.
type RetryOptions struct {
	// Attempts is the total number of requests per call. Default 5; 1
	// disables retries.
	Attempts int
	// Base is the delay before the first retry; each later retry doubles
	// it (with jitter). Default 500ms.
	Base time.Duration
	// Max caps the delay. Default 30s.
	Max time.Duration
}

// ClientOptions configures NewClient.
type ClientOptions struct {
	// HubURL is the hub's XML-RPC endpoint, e.g.
	// "https://koji.example.com/kojihub". Required.
	HubURL string
	// HTTPClient makes the requests. For SSLLogin its transport's TLS
	// config carries the client certificate. Default: a client with a 10
	// minute timeout (the Python client's default).
	HTTPClient *http.Client
	// Logger receives one debug record per request and a warning per
	// retry. Arguments and credentials are never logged. Default
	// slog.Default().
	Logger *slog.Logger
	// Retry configures retries; see RetryOptions for defaults.
	Retry RetryOptions
}

// Client calls a Koji hub. It is safe for concurrent use. Requests are
// serialised, as the hub requires for one session (each authenticated
// request carries the next callnum, and the hub rejects one that arrives
// after a higher one committed), but only for the time of one HTTP
// exchange: a call waiting to retry holds nothing, so other calls go on.
// Work that must not wait behind another's slow call gets a session of its
// own with Subsession.
//
// A session the hub no longer accepts (AuthExpired 1007: older than the
// hub's SessionRenewalTimeout, 24 hours by default; AuthError 1002: closed
// or unknown) is opened again once per call, the way it was opened (the
// same login, or a new subsession of the same parent), and the call is
// sent again: the hub checks the session before it runs the method, so
// the refused call did nothing.
type Client struct {
	hubURL string
	http   *http.Client
	log    *slog.Logger
	retry  RetryOptions

	// reqMu is held for one request (callnum taken, sent, answered),
	// never across a retry's wait.
	reqMu sync.Mutex
	// authMu serialises opening the session (login, renewal, new
	// subsession), so that calls refused together renew it once.
	authMu sync.Mutex
	// parent is the client whose session this one is a subsession of.
	parent *Client

	mu sync.Mutex // guards the fields below; held briefly, never for a request
	// session is the current session (nil: anonymous). Its callnum is
	// guarded by reqMu.
	session *session
	// open opens a new session the way the current one was opened; nil
	// when there is nothing to renew (never logged in, logged out).
	open func(ctx context.Context) (*session, error)
	// closed: a subsession ended with Logout; it is not opened again.
	closed bool
}

type session struct {
	id      int64
	key     string
	callnum int64
}

// ErrSessionClosed is returned by calls on a subsession after its Logout.
var ErrSessionClosed = errors.New("subsession closed")

// NewClient returns a client for opts.HubURL. It makes no request.
func NewClient(opts ClientOptions) (*Client, error) {
	u, err := url.Parse(opts.HubURL)
	if opts.HubURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("koji: new client: %w (got %q)", ErrHubURL, opts.HubURL)
	}
	if opts.Retry.Attempts < 0 || opts.Retry.Base < 0 || opts.Retry.Max < 0 {
		return nil, errors.New("koji: new client: ClientOptions.Retry values must not be negative")
	}
	c := &Client{
		hubURL: strings.TrimRight(opts.HubURL, "/"),
		http:   cmp.Or(opts.HTTPClient, &http.Client{Timeout: 10 * time.Minute}),
		log:    cmp.Or(opts.Logger, slog.Default()),
		retry: RetryOptions{
			Attempts: cmp.Or(opts.Retry.Attempts, 5),
			Base:     cmp.Or(opts.Retry.Base, 500*time.Millisecond),
			Max:      cmp.Or(opts.Retry.Max, 30*time.Second),
		},
	}
	return c, nil
}

// Value is a decoded XML-RPC value: nil, bool, int64, float64, string,
// []byte, []any or map[string]any.
type Value struct{ v any }

// Raw returns the decoded value.
func (v Value) Raw() any { return v.v }

// IsNil reports whether the hub answered None.
func (v Value) IsNil() bool { return v.v == nil }

// Decode stores the value in target, a non-nil pointer. Structs are filled
// by their json tags (a <nil/> leaves a pointer field nil); *any receives
// the raw value. Koji's *_ts fields and task weight are doubles: use
// float64 for them.
func (v Value) Decode(target any) error {
	return decodeInto(v.v, target)
}

func decodeInto(v any, target any) error {
	if target == nil {
		return nil
	}
	rv := reflect.ValueOf(target)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("koji: decode target must be a non-nil pointer, got %T", target)
	}
	if p, ok := target.(*any); ok {
		*p = v
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("koji: decode: %w", err)
	}
	if err := json.Unmarshal(raw, target); err != nil {
		return fmt.Errorf("koji: decode into %T: %w", target, err)
	}
	return nil
}

// Call invokes method with args (a trailing KW is sent as keyword
// arguments) and returns its result. A hub fault is returned as a *Fault
// (wrapped; use errors.As or IsFault); anything else as a *CallError.
// Transport errors and HTTP 5xx are retried per ClientOptions.Retry, each
// attempt with a new callnum.
func (c *Client) Call(ctx context.Context, method string, args ...any) (Value, error) {
	return c.call(ctx, c.hubURL, method, args, c.retry.Attempts, renewSession)
}

// CallInto is Call followed by Decode into target (nil discards).
func (c *Client) CallInto(ctx context.Context, target any, method string, args ...any) error {
	v, err := c.Call(ctx, method, args...)
	if err != nil {
		return err
	}
	if err := v.Decode(target); err != nil {
		return fmt.Errorf("koji: %s: %w", method, err)
	}
	return nil
}

// CallOnce is Call without retries, for calls that are not safe to repeat
// blindly (build submission): after a transport error the caller must find
// out whether the hub acted before trying again.
func (c *Client) CallOnce(ctx context.Context, method string, args ...any) (Value, error) {
	return c.call(ctx, c.hubURL, method, args, 1, renewSession)
}

// MultiCallEntry is one call of a MultiCall.
type MultiCallEntry struct {
	Method string
	// Args are the positional arguments; a trailing KW is sent as keyword
	// arguments.
	Args []any
}

// MultiCallResult is the outcome of one MultiCallEntry: a value, or the
// fault the hub raised for that call alone.
type MultiCallResult struct {
	Value Value
	Fault *Fault
}

// MultiCall sends calls in one request (one hub transaction; each call is
// rolled back alone if it fails). It returns one result per call, in order.
// The error is non-nil only if the request as a whole failed.
func (c *Client) MultiCall(ctx context.Context, calls []MultiCallEntry) ([]MultiCallResult, error) {
	if len(calls) == 0 {
		return nil, nil
	}
	v, err := c.Call(ctx, "multiCall", multiCallParams(calls))
	if err != nil {
		return nil, err
	}
	return multiCallResults(calls, v)
}

// multiCallParams is the argument of a multiCall request.
func multiCallParams(calls []MultiCallEntry) []any {
	list := make([]any, len(calls))
	for i, e := range calls {
		list[i] = map[string]any{"methodName": e.Method, "params": append([]any{}, e.Args...)}
	}
	return list
}

// multiCallResults reads a multiCall answer.
func multiCallResults(calls []MultiCallEntry, v Value) ([]MultiCallResult, error) {
	entries, ok := v.v.([]any)
	if !ok || len(entries) != len(calls) {
		return nil, &CallError{Method: "multiCall", Attempts: 1, Err: fmt.Errorf("hub returned %T with %d entries for %d calls", v.v, len(entries), len(calls))}
	}
	out := make([]MultiCallResult, len(calls))
	for i, e := range entries {
		switch e := e.(type) {
		case []any:
			if len(e) != 1 {
				return nil, &CallError{Method: "multiCall", Attempts: 1, Err: fmt.Errorf("entry %d (%s) has %d values", i, calls[i].Method, len(e))}
			}
			out[i].Value = Value{e[0]}
		default:
			f, ok := wire.AsFault(e)
			if !ok {
				return nil, &CallError{Method: "multiCall", Attempts: 1, Err: fmt.Errorf("entry %d (%s) is neither a result nor a fault", i, calls[i].Method)}
			}
			out[i].Fault = &Fault{Code: f.Code, String: f.String, Traceback: f.Traceback}
		}
	}
	return out, nil
}

// Login opens a session with a user name and password (the hub's login
// method). Later calls send the session in the Koji-Session-* headers. The
// client keeps the password in memory to log in again when the hub no
// longer accepts the session.
func (c *Client) Login(ctx context.Context, user, password string) error {
	return c.start(ctx, "login", func(ctx context.Context) (*session, error) {
		return c.openSession(ctx, c.hubURL, "login", []any{user, password})
	})
}

// SSLLogin opens a session authenticated by the TLS client certificate in
// ClientOptions.HTTPClient, posting sslLogin to <HubURL>/ssllogin as the
// Python client does.
func (c *Client) SSLLogin(ctx context.Context) error {
	return c.start(ctx, "sslLogin", func(ctx context.Context) (*session, error) {
		return c.openSession(ctx, c.hubURL+"/ssllogin", "sslLogin", nil)
	})
}

// Subsession opens a subsession of c's session (the hub's subsession
// method: a new session id and key for the same user, tied to c's
// session, which must be open) and returns a Client that uses it, with its
// own callnum and its own lock: its calls neither wait for c's nor make c's
// wait. A subsession the hub no longer accepts is replaced by a new
// subsession of c (c logs in again first if it must). Logout on the
// returned client ends the subsession through c (logoutChild). Logging c
// out ends all its subsessions on the hub.
//
// A subsession of a subsession is, on the hub, one more child of the same
// master session.
func (c *Client) Subsession(ctx context.Context) (*Client, error) {
	child := &Client{hubURL: c.hubURL, http: c.http, log: c.log, retry: c.retry, parent: c}
	if err := child.start(ctx, "subsession", c.subsession); err != nil {
		return nil, err
	}
	return child, nil
}

// subsession asks the hub for a new subsession of c's session.
func (c *Client) subsession(ctx context.Context) (*session, error) {
	v, err := c.Call(ctx, "subsession")
	if err != nil {
		return nil, err
	}
	return decodeSession("subsession", v)
}

// start opens the client's first session with open and keeps open for
// renewals.
func (c *Client) start(ctx context.Context, how string, open func(context.Context) (*session, error)) error {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	c.mu.Lock()
	c.session, c.open = nil, nil
	c.mu.Unlock()
	s, err := open(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.session, c.open = s, open
	c.mu.Unlock()
	attrs := []any{"method", how, "session_id", s.id}
	if c.parent != nil {
		attrs = append(attrs, "master_session_id", c.parent.SessionID())
	}
	c.log.Info("koji: logged in", attrs...)
	return nil
}

// openSession makes an anonymous login call and returns its session.
func (c *Client) openSession(ctx context.Context, endpoint, method string, args []any) (*session, error) {
	v, err := c.call(ctx, endpoint, method, args, c.retry.Attempts, noSession)
	if err != nil {
		return nil, err
	}
	return decodeSession(method, v)
}

func decodeSession(method string, v Value) (*session, error) {
	var s struct {
		ID  *int64 `json:"session-id"`
		Key string `json:"session-key"`
	}
	if err := v.Decode(&s); err != nil || s.ID == nil || s.Key == "" {
		return nil, fmt.Errorf("koji: %s: %w", method, ErrNoSession)
	}
	return &session{id: *s.ID, key: s.Key}, nil
}

// renew opens a new session after the hub refused used (with fault f),
// unless another call did so meanwhile.
func (c *Client) renew(ctx context.Context, used *session, f *Fault) error {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	c.mu.Lock()
	cur, open, closed := c.session, c.open, c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return ErrSessionClosed
	case open == nil:
		return f // logged out meanwhile: nothing to renew
	case cur != nil && cur != used:
		return nil // renewed by another call
	}
	s, err := open(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrSessionClosed
	}
	c.session = s
	c.mu.Unlock()
	c.log.Warn("koji: the hub refused the session; opened a new one", "fault", FaultName(f.Code),
		"old_session_id", used.id, "session_id", s.id, "subsession", c.parent != nil)
	return nil
}

// Logout closes the session; later calls are anonymous. On a subsession
// it is the parent that closes it (logoutChild), so that Logout does not
// wait behind a call the subsession has in flight; later calls on the
// subsession fail with ErrSessionClosed. Logout without a session does
// nothing.
func (c *Client) Logout(ctx context.Context) error {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	c.mu.Lock()
	s := c.session
	if c.parent != nil {
		c.session, c.open, c.closed = nil, nil, true
	}
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	if c.parent != nil {
		_, err := c.parent.Call(ctx, "logoutChild", s.id)
		return err
	}
	_, err := c.call(ctx, c.hubURL, "logout", nil, c.retry.Attempts, keepSession)
	c.mu.Lock()
	c.session, c.open = nil, nil
	c.mu.Unlock()
	return err
}

// LoggedIn reports whether the client holds a session.
func (c *Client) LoggedIn() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session != nil
}

// SessionID returns the hub's id of the client's session, 0 when it holds
// none. (The session key is never exposed.)
func (c *Client) SessionID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return 0
	}
	return c.session.id
}

const maxErrBody = 512

// How a call uses the client's session.
type sessionUse int

const (
	// renewSession: the client's session, opened again once if the hub
	// refuses it.
	renewSession sessionUse = iota
	// keepSession: the client's session, never renewed (logout).
	keepSession
	// noSession: anonymous (the login calls).
	noSession
)

func (c *Client) call(ctx context.Context, endpoint, method string, args []any, attempts int, use sessionUse) (Value, error) {
	body, err := wire.EncodeCall(method, args)
	if err != nil {
		return Value{}, &CallError{Method: method, Err: fmt.Errorf("encode: %w", err)}
	}
	var lastErr error
	renewed := false
	for attempt := 1; ; attempt++ {
		v, used, retryable, err := c.roundTrip(ctx, endpoint, method, body, attempt, use)
		if err == nil {
			return v, nil
		}
		var f *Fault
		if errors.As(err, &f) {
			if use == renewSession && used != nil && !renewed && (f.Code == AuthExpired || f.Code == AuthError) {
				// The hub checks the session before it runs the
				// method: the call did nothing and can be sent again
				// on a new session.
				renewed = true
				if rerr := c.renew(ctx, used, f); rerr != nil {
					return Value{}, fmt.Errorf("koji: %s: %w (opening a new session: %w)", method, f, rerr)
				}
				attempt--
				continue
			}
			return Value{}, fmt.Errorf("koji: %s: %w", method, f)
		}
		if errors.Is(err, ErrSessionClosed) {
			return Value{}, fmt.Errorf("koji: %s: %w", method, err)
		}
		lastErr = err
		if ctx.Err() != nil {
			return Value{}, &CallError{Method: method, Attempts: attempt, Err: errors.Join(ctx.Err(), lastErr)}
		}
		if !retryable || attempt >= attempts {
			return Value{}, &CallError{Method: method, Attempts: attempt, Err: lastErr}
		}
		delay := c.backoff(attempt)
		c.log.Warn("koji: call failed, retrying", "method", method, "attempt", attempt, "delay", delay, "error", err.Error())
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Value{}, &CallError{Method: method, Attempts: attempt, Err: errors.Join(ctx.Err(), lastErr)}
		case <-t.C:
		}
	}
}

// backoff returns the delay before retry number attempt (1-based): Base
// doubled per attempt, capped at Max, with up to 25% jitter taken off.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.Base
	for i := 1; i < attempt && d < c.retry.Max; i++ {
		d *= 2
	}
	d = min(d, c.retry.Max)
	if d > 4 {
		d -= rand.N(d / 4)
	}
	return d
}

// roundTrip makes one request, holding c.reqMu from taking the callnum
// until the answer is read, so that requests reach the hub in callnum order. It
// returns the session it used (nil: anonymous).
func (c *Client) roundTrip(ctx context.Context, endpoint, method string, body []byte, attempt int, use sessionUse) (Value, *session, bool, error) {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	c.mu.Lock()
	s, closed := c.session, c.closed
	c.mu.Unlock()
	if use == noSession {
		s = nil
	} else if closed {
		return Value{}, nil, false, ErrSessionClosed
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return Value{}, nil, false, err
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "rida-koji/1")
	callnum := int64(-1)
	if s != nil {
		callnum = s.callnum
		s.callnum++ // never reused, even if this request fails
		req.Header.Set("Koji-Session-Id", strconv.FormatInt(s.id, 10))
		req.Header.Set("Koji-Session-Key", s.key)
		req.Header.Set("Koji-Session-Callnum", strconv.FormatInt(callnum, 10))
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return Value{}, s, true, fmt.Errorf("request: %w", redactURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	sid := int64(0)
	if s != nil {
		sid = s.id
	}
	c.log.Debug("koji: call", "method", method, "attempt", attempt, "session_id", sid, "callnum", callnum,
		"status", resp.StatusCode, "duration", time.Since(start))
	if err != nil {
		return Value{}, s, true, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &HTTPError{StatusCode: resp.StatusCode, Body: string(data[:min(len(data), maxErrBody)])}
		return Value{}, s, resp.StatusCode >= 500, e
	}
	v, f, err := wire.DecodeResponse(data)
	if err != nil {
		return Value{}, s, false, fmt.Errorf("decode response: %w", err)
	}
	if f != nil {
		return Value{}, s, false, &Fault{Code: f.Code, String: f.String, Traceback: f.Traceback}
	}
	return Value{v}, s, false, nil
}

// redactURLError drops the URL from a *url.Error: hub URLs may carry
// credentials in their user info or query.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
