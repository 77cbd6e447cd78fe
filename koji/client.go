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
type Client struct {
	hubURL string
	http   *http.Client
	log    *slog.Logger
	retry  RetryOptions

	mu      sync.Mutex // held for one request (callnum taken, sent, answered), never across a retry's wait
	session *session
}

type session struct {
	id      int64
	key     string
	callnum int64
}

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
	return c.call(ctx, c.hubURL, method, args, c.retry.Attempts)
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
	return c.call(ctx, c.hubURL, method, args, 1)
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
// method). Later calls send the session in the Koji-Session-* headers.
func (c *Client) Login(ctx context.Context, user, password string) error {
	return c.login(ctx, c.hubURL, "login", []any{user, password})
}

// SSLLogin opens a session authenticated by the TLS client certificate in
// ClientOptions.HTTPClient, posting sslLogin to <HubURL>/ssllogin as the
// Python client does.
func (c *Client) SSLLogin(ctx context.Context) error {
	return c.login(ctx, c.hubURL+"/ssllogin", "sslLogin", nil)
}

func (c *Client) login(ctx context.Context, endpoint, method string, args []any) error {
	c.mu.Lock()
	c.session = nil // a login is anonymous
	c.mu.Unlock()
	v, err := c.call(ctx, endpoint, method, args, c.retry.Attempts)
	if err != nil {
		return err
	}
	var s struct {
		ID  *int64 `json:"session-id"`
		Key string `json:"session-key"`
	}
	if err := v.Decode(&s); err != nil || s.ID == nil || s.Key == "" {
		return fmt.Errorf("koji: %s: %w", method, ErrNoSession)
	}
	c.mu.Lock()
	c.session = &session{id: *s.ID, key: s.Key}
	c.mu.Unlock()
	c.log.Info("koji: logged in", "method", method, "session_id", *s.ID)
	return nil
}

// Logout closes the session; later calls are anonymous.
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.Call(ctx, "logout")
	c.mu.Lock()
	c.session = nil
	c.mu.Unlock()
	return err
}

// LoggedIn reports whether the client holds a session.
func (c *Client) LoggedIn() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session != nil
}

const maxErrBody = 512

func (c *Client) call(ctx context.Context, endpoint, method string, args []any, attempts int) (Value, error) {
	body, err := wire.EncodeCall(method, args)
	if err != nil {
		return Value{}, &CallError{Method: method, Err: fmt.Errorf("encode: %w", err)}
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		v, retryable, err := c.roundTrip(ctx, endpoint, method, body, attempt)
		if err == nil {
			return v, nil
		}
		var f *Fault
		if errors.As(err, &f) {
			return Value{}, fmt.Errorf("koji: %s: %w", method, f)
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

// roundTrip makes one request, holding c.mu from taking the callnum until
// the answer is read, so that requests reach the hub in callnum order.
func (c *Client) roundTrip(ctx context.Context, endpoint, method string, body []byte, attempt int) (Value, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return Value{}, false, err
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "rida-koji/1")
	callnum := int64(-1)
	if c.session != nil {
		callnum = c.session.callnum
		c.session.callnum++ // never reused, even if this request fails
		req.Header.Set("Koji-Session-Id", strconv.FormatInt(c.session.id, 10))
		req.Header.Set("Koji-Session-Key", c.session.key)
		req.Header.Set("Koji-Session-Callnum", strconv.FormatInt(callnum, 10))
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return Value{}, true, fmt.Errorf("request: %w", redactURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	c.log.Debug("koji: call", "method", method, "attempt", attempt, "callnum", callnum,
		"status", resp.StatusCode, "duration", time.Since(start))
	if err != nil {
		return Value{}, true, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &HTTPError{StatusCode: resp.StatusCode, Body: string(data[:min(len(data), maxErrBody)])}
		return Value{}, resp.StatusCode >= 500, e
	}
	v, f, err := wire.DecodeResponse(data)
	if err != nil {
		return Value{}, false, fmt.Errorf("decode response: %w", err)
	}
	if f != nil {
		return Value{}, false, &Fault{Code: f.Code, String: f.String, Traceback: f.Traceback}
	}
	return Value{v}, false, nil
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
