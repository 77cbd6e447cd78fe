package forge

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidStatus is wrapped by the error Post returns when the Status
// itself is unusable (empty or malformed Repo, SHA or Context, unknown
// State). Retrying cannot help; RetryDelay reports false.
var ErrInvalidStatus = errors.New("forge: invalid status")

// RateLimitError means the forge refused the request because a rate limit
// was hit: HTTP 429 from any forge, or GitHub's 403 for its primary limit
// (X-RateLimit-Remaining: 0) or its secondary limit. The request may be
// repeated after the limit lifts; RetryDelay computes when.
//
// Continuing to call a GitHub API while limited can get the integration
// banned, so a worker should pause every post to the same forge account,
// not just this one.
type RateLimitError struct {
	// StatusCode is the HTTP status (429 or 403). It is 403 also when
	// go-github refused the call itself because it remembered an earlier
	// limit, without contacting the forge.
	StatusCode int
	// RetryAfter is the forge's Retry-After hint (seconds, or an HTTP date
	// converted using the response's Date header), or 0 if there was none.
	RetryAfter time.Duration
	// Reset is when the exhausted limit window resets
	// (X-RateLimit-Reset on GitHub, RateLimit-Reset on GitLab), or the
	// zero time if the forge did not say.
	Reset time.Time
	// Message is the forge's explanation, with any credential removed.
	Message string
}

// Error implements error.
func (e *RateLimitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rate limited (HTTP %d)", e.StatusCode)
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	if !e.Reset.IsZero() {
		fmt.Fprintf(&b, ", limit resets at %s", e.Reset.UTC().Format(time.RFC3339))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// HTTPError is any other failure to post a status: a transport error
// (StatusCode 0: connection refused, timeout, TLS, canceled context) or an
// HTTP error status from the forge.
type HTTPError struct {
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int
	// Message says what failed and, for permanent errors, what to check
	// (token, scope, repository name, commit id). It never contains the
	// token.
	Message string
	// Retryable is true for transport errors, 5xx and 408: the same
	// request may succeed later. It is false for other 4xx (401, 403,
	// 404, 422, 400), which need a configuration or input change.
	Retryable bool
	// RetryAfter is the forge's Retry-After hint on a retryable response
	// (for example a 503), or 0.
	RetryAfter time.Duration
	// Err is the underlying transport or context error, if any, so
	// errors.Is(err, context.Canceled) works.
	Err error
}

// Error implements error.
func (e *HTTPError) Error() string {
	if e.StatusCode == 0 {
		return "request failed: " + e.Message
	}
	return fmt.Sprintf("HTTP %d: %s", e.StatusCode, e.Message)
}

// Unwrap returns the underlying transport or context error, if any.
func (e *HTTPError) Unwrap() error { return e.Err }

// Retry policy constants used by RetryDelay.
const (
	// BackoffBase is the delay after the first failed attempt of a
	// retryable error; it doubles with each further attempt.
	BackoffBase = 2 * time.Second
	// BackoffMax caps the exponential backoff for retryable errors.
	BackoffMax = 10 * time.Minute
	// RateLimitMinDelay is the least RetryDelay waits after a rate limit
	// that came with neither Retry-After nor a reset time, as GitHub asks.
	RateLimitMinDelay = time.Minute
	// RateLimitMaxDelay caps any rate-limit delay, so a wrong or hostile
	// header cannot stall reporting for longer than one GitHub window.
	RateLimitMaxDelay = time.Hour
)

// RetryDelay says whether and when to retry a post that failed with err.
// attempt counts the failed attempts before this one (0 after the first
// failure); now is the current time, used for X-RateLimit-Reset.
//
// The policy:
//   - *RateLimitError: Retry-After if given; else until Reset (plus one
//     second for clock granularity); else max(RateLimitMinDelay, backoff).
//     Capped at RateLimitMaxDelay.
//   - *HTTPError with Retryable: backoff = BackoffBase·2^attempt, capped at
//     BackoffMax, but at least the forge's Retry-After hint. Deterministic,
//     without jitter, so tests and operators can predict it; a worker that
//     wants jitter adds it.
//   - anything else (permanent HTTP errors, ErrInvalidStatus, nil): false.
func RetryDelay(err error, attempt int, now time.Time) (time.Duration, bool) {
	if err == nil {
		return 0, false
	}
	var rl *RateLimitError
	if errors.As(err, &rl) {
		var d time.Duration
		switch {
		case rl.RetryAfter > 0:
			d = rl.RetryAfter
		case !rl.Reset.IsZero():
			d = max(rl.Reset.Sub(now), 0) + time.Second
		default:
			d = max(RateLimitMinDelay, backoff(attempt))
		}
		return min(d, RateLimitMaxDelay), true
	}
	var he *HTTPError
	if errors.As(err, &he) && he.Retryable {
		return max(backoff(attempt), min(he.RetryAfter, BackoffMax)), true
	}
	return 0, false
}

// backoff returns BackoffBase·2^attempt, capped at BackoffMax.
func backoff(attempt int) time.Duration {
	attempt = max(attempt, 0)
	if attempt >= 30 {
		return BackoffMax
	}
	return min(BackoffBase<<attempt, BackoffMax)
}

// maxMessage bounds how much of a forge's error text goes into an error.
const maxMessage = 300

// responseInfo is what classification needs from an HTTP answer.
type responseInfo struct {
	status  int
	header  http.Header
	message string // the forge's own message, possibly empty
}

// errorFor turns a non-2xx answer into *RateLimitError or *HTTPError,
// adding guidance that names what to check. redact removes credentials.
func errorFor(kind Kind, s Status, r responseInfo, redact func(string) string) error {
	msg := redact(clip(strings.TrimSpace(r.message)))
	if isRateLimited(r) {
		rl := &RateLimitError{StatusCode: r.status, Message: msg}
		rl.RetryAfter = retryAfter(r.header)
		if reset, ok := resetTime(r.header); ok {
			rl.Reset = reset
		}
		return rl
	}
	he := &HTTPError{StatusCode: r.status}
	switch {
	case r.status >= 500 || r.status == http.StatusRequestTimeout:
		he.Retryable = true
		he.RetryAfter = retryAfter(r.header)
		he.Message = "forge unavailable, will retry"
	case r.status == http.StatusUnauthorized:
		he.Message = "authentication failed: check that the token for " + string(kind) + " is set, valid and not expired or revoked"
	case r.status == http.StatusForbidden:
		he.Message = fmt.Sprintf("permission denied on %q: %s", s.Repo, scopeHint(kind))
	case r.status == http.StatusNotFound:
		he.Message = fmt.Sprintf("not found: check the repository name %q and the commit %s, and that the token can see the repository (private repositories answer 404 to tokens without access)", s.Repo, shortSHA(s.SHA))
	case r.status == http.StatusUnprocessableEntity:
		he.Message = fmt.Sprintf("rejected: check that commit %s exists in %q and the status fields are valid", shortSHA(s.SHA), s.Repo)
	default:
		he.Message = "rejected by the forge"
	}
	if msg != "" {
		he.Message += "; forge said: " + msg
	}
	return he
}

func scopeHint(kind Kind) string {
	switch kind {
	case KindGitLab:
		return "the token needs the api scope and at least the Developer role in the project"
	case KindGitea, KindForgejo:
		return "the token needs the write:repository scope and write access to the repository"
	default:
		return "the token needs the repo:status scope (classic), \"Commit statuses: write\" (fine-grained) or statuses: write (GitHub App), and push access to the repository"
	}
}

// isRateLimited applies GitHub's documented rules, which also cover
// GitLab's and Gitea's 429s.
func isRateLimited(r responseInfo) bool {
	switch r.status {
	case http.StatusTooManyRequests:
		return true
	case http.StatusForbidden:
		if r.header.Get("X-RateLimit-Remaining") == "0" || r.header.Get("Retry-After") != "" {
			return true
		}
		m := strings.ToLower(r.message)
		return strings.Contains(m, "secondary rate limit") || strings.Contains(m, "rate limit exceeded") || strings.Contains(m, "abuse detection")
	}
	return false
}

// retryAfter parses Retry-After as delay seconds or an HTTP date. A date
// is measured from the response's Date header when present (immune to
// clock skew between rida and the forge), else from time.Now.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(RateLimitMaxDelay/time.Second) {
			return RateLimitMaxDelay
		}
		return time.Duration(secs) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	now := time.Now()
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		now = d
	}
	return max(at.Sub(now), 0)
}

// resetTime reads X-RateLimit-Reset (GitHub, Gitea) or RateLimit-Reset
// (GitLab) as Unix seconds. It is only meaningful when the remaining count
// is exhausted or unknown; a secondary limit may carry the headers of a
// primary window that still has room.
func resetTime(h http.Header) (time.Time, bool) {
	for _, p := range [][2]string{{"X-RateLimit-Reset", "X-RateLimit-Remaining"}, {"RateLimit-Reset", "RateLimit-Remaining"}} {
		v := h.Get(p[0])
		if v == "" {
			continue
		}
		if rem := h.Get(p[1]); rem != "" && rem != "0" {
			continue
		}
		secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || secs <= 0 {
			continue
		}
		return time.Unix(secs, 0), true
	}
	return time.Time{}, false
}

// clip bounds a forge message and folds it onto one line.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// redactor returns a function that replaces token in text.
func redactor(token string) func(string) string {
	return func(s string) string {
		if token == "" {
			return s
		}
		return strings.ReplaceAll(s, token, "[REDACTED]")
	}
}

// transportError wraps an error that prevented any HTTP answer.
func transportError(err error, redact func(string) string) *HTTPError {
	return &HTTPError{Message: redact(clip(err.Error())), Retryable: true, Err: err}
}
