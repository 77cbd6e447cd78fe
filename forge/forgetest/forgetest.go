// Package forgetest provides fake forges for tests: httptest servers shaped
// like the commit status APIs of GitHub, GitHub Enterprise Server, Gitea,
// Forgejo and GitLab. A Server checks the credentials and the request the
// way the forge does, records every status it accepts, answers with a
// realistic body, and can be told to fail: with HTTP errors and rate
// limits (FailNext) or by refusing connections altogether (SetDown).
//
// Paths served:
//
//	github          POST /repos/{owner}/{repo}/statuses/{sha}
//	ghe             POST /api/v3/repos/{owner}/{repo}/statuses/{sha}
//	gitea, forgejo  POST /api/v1/repos/{owner}/{repo}/statuses/{sha}
//	gitlab          POST /api/v4/projects/{id}/statuses/{sha}
//
// A Server is safe for concurrent use.
package forgetest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rida-build/rida/forge"
)

// Failure is a way for the Server to fail a request; see FailNext.
type Failure int

// Failures the Server can inject. Bodies and headers follow the forge's
// kind where the forges differ.
const (
	// Fail500 answers 500 with the forge's error body.
	Fail500 Failure = iota + 1
	// Fail502 answers 502 with an HTML body, like a reverse proxy.
	Fail502
	// Fail429 answers 429 with "Retry-After: <seconds>" (see SetRetryAfter).
	Fail429
	// Fail429Date answers 429 with Retry-After as an HTTP date, and a
	// Date header, both in whole seconds.
	Fail429Date
	// FailPrimaryLimit answers like an exhausted primary rate limit: on
	// GitHub-style kinds 403 with X-RateLimit-Remaining: 0 and
	// X-RateLimit-Reset = now + retry-after; on GitLab 429 with
	// RateLimit-Remaining: 0 and RateLimit-Reset. No Retry-After.
	FailPrimaryLimit
	// FailSecondaryLimit answers GitHub's 403 secondary rate limit body
	// with "Retry-After: <seconds>".
	FailSecondaryLimit
	// FailSecondaryLimitNoHeader answers GitHub's 403 secondary rate
	// limit body without Retry-After or rate-limit headers.
	FailSecondaryLimitNoHeader
	// Fail401 answers 401 with the forge's bad-credentials body.
	Fail401
	// Fail403 answers 403 with the forge's permission-denied body.
	Fail403
	// Fail404 answers 404 with the forge's not-found body.
	Fail404
	// Fail422 answers 422 with a GitHub-style validation failure (on
	// GitLab: 400 with a field message, GitLab's equivalent).
	Fail422
	// FailCannotTransition answers GitLab's 400 "Cannot transition
	// status" (on every kind).
	FailCannotTransition
)

// String names f.
func (f Failure) String() string {
	switch f {
	case Fail500:
		return "500"
	case Fail502:
		return "502"
	case Fail429:
		return "429"
	case Fail429Date:
		return "429-date"
	case FailPrimaryLimit:
		return "primary-limit"
	case FailSecondaryLimit:
		return "secondary-limit"
	case FailSecondaryLimitNoHeader:
		return "secondary-limit-no-header"
	case Fail401:
		return "401"
	case Fail403:
		return "403"
	case Fail404:
		return "404"
	case Fail422:
		return "422"
	case FailCannotTransition:
		return "cannot-transition"
	}
	return "Failure(" + strconv.Itoa(int(f)) + ")"
}

// Key identifies one commit status on a forge: the forge keeps the last
// write per key.
type Key struct {
	// Repo is "owner/name", or GitLab's unescaped project id.
	Repo string
	// SHA is the commit id from the path.
	SHA string
	// Context is the status context (GitLab: name); "default" if absent.
	Context string
}

// Received is one status the Server accepted.
type Received struct {
	Key
	// State is the forge-level state sent (e.g. "failure" or GitLab's
	// "failed").
	State string
	// Description is the description sent, "" if absent.
	Description string
	// TargetURL is the target_url sent, "" if absent.
	TargetURL string
	// Fields is the decoded JSON request body, to assert exactly what was
	// sent.
	Fields map[string]any
	// Path is the escaped request path, e.g.
	// /api/v4/projects/group%2Fproject/statuses/<sha>.
	Path string
	// Header is the request's header.
	Header http.Header
}

// Server is a fake forge. Create it with NewServer; it is closed by
// t.Cleanup.
type Server struct {
	t     testing.TB
	kind  forge.Kind
	token string
	addr  string // fixed host:port, kept across SetDown

	lifeMu sync.Mutex // serialises SetDown and Close
	srv    *httptest.Server

	mu         sync.Mutex
	down       bool
	closed     bool
	failures   []Failure
	requests   int
	history    []Received
	last       map[Key]Received
	retryAfter time.Duration
	nextID     int64
}

// NewServer starts a fake forge of the given kind on a loopback port and
// registers its shutdown with t.Cleanup. It accepts the token returned by
// Token.
func NewServer(t testing.TB, kind forge.Kind) *Server {
	t.Helper()
	s := &Server{
		t:          t,
		kind:       kind,
		last:       map[Key]Received{},
		retryAfter: 30 * time.Second,
		nextID:     1000,
	}
	switch kind {
	case forge.KindGitHub, forge.KindGHE:
		s.token = "ghp_forgetestR1daT0ken0000000000000000"
	case forge.KindGitea, forge.KindForgejo:
		s.token = "5eca1ed70c3e4f0b9d2a6c8e1f3b5d7a9c0e2f41"
	case forge.KindGitLab:
		s.token = "glpat-forgetestR1daT0ken00"
	default:
		t.Fatalf("forgetest: unknown kind %q", kind)
	}
	hs := httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.srv = hs
	s.addr = hs.Listener.Addr().String()
	t.Cleanup(s.Close)
	return s
}

// Kind reports the forge kind the Server imitates.
func (s *Server) Kind() forge.Kind { return s.kind }

// Token reports the only token the Server accepts.
func (s *Server) Token() string { return s.token }

// URL reports the base URL to configure a reporter with: the API root for
// GitHub ("http://HOST/"), GHE ("http://HOST/api/v3/"), Gitea and Forgejo
// ("http://HOST/api/v1/"), and the instance root for GitLab
// ("http://HOST"). It stays the same across SetDown.
func (s *Server) URL() string {
	root := "http://" + s.addr
	switch s.kind {
	case forge.KindGHE:
		return root + "/api/v3/"
	case forge.KindGitea, forge.KindForgejo:
		return root + "/api/v1/"
	case forge.KindGitLab:
		return root
	}
	return root + "/"
}

// Options returns forge.Options that reach this Server.
func (s *Server) Options() forge.Options {
	return forge.Options{Kind: s.kind, BaseURL: s.URL(), Token: s.token}
}

// Statuses returns the last status accepted per key. The map is a copy.
func (s *Server) Statuses() map[Key]Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Key]Received, len(s.last))
	for k, v := range s.last {
		out[k] = v
	}
	return out
}

// Forget drops the last status of every key, as a forge that lost its
// statuses (restored from a backup, a commit pushed to a new repository)
// would; History is kept.
func (s *Server) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.last)
}

// History returns every status accepted, oldest first. The slice is a
// copy.
func (s *Server) History() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.history...)
}

// Requests reports how many HTTP requests reached the Server, including
// failed and rejected ones. Connections refused while down do not count.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// FailNext makes the next n requests fail with f, after any failures
// already queued.
func (s *Server) FailNext(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, f)
	}
}

// SetRetryAfter sets the delay the rate-limit failures announce (default
// 30 s; rounded down to whole seconds, at least 1 s).
func (s *Server) SetRetryAfter(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryAfter = max(d.Truncate(time.Second), time.Second)
}

// SetDown stops (true) or restarts (false) the Server. While down, its
// port refuses connections and open connections are closed, so clients
// see a transport error. Restarting reuses the same address; if that
// fails, the test is marked failed and the Server stays down.
func (s *Server) SetDown(down bool) {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.mu.Lock()
	if s.closed || s.down == down {
		s.mu.Unlock()
		return
	}
	s.down = down
	s.mu.Unlock()

	if down {
		s.srv.Close()
		s.srv = nil
		return
	}
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after Close
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Errorf("forgetest: restart on %s: %v", s.addr, err)
		s.mu.Lock()
		s.down = true
		s.mu.Unlock()
		return
	}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	s.srv = hs
}

// Close shuts the Server down. It is called by t.Cleanup and may be called
// earlier; later calls do nothing.
func (s *Server) Close() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	repo, sha, ok := s.route(r)
	ok = ok && r.Method == http.MethodPost
	s.mu.Lock()
	s.requests++
	var fail Failure
	if ok && len(s.failures) > 0 {
		fail = s.failures[0]
		s.failures = s.failures[1:]
	}
	retryAfter := s.retryAfter
	s.mu.Unlock()

	if !ok {
		s.notFound(w)
		return
	}
	if fail != 0 {
		s.fail(w, fail, retryAfter)
		return
	}
	if !s.authorized(r.Header) {
		s.fail(w, Fail401, 0)
		return
	}
	fields, err := decodeBody(r)
	if err != nil {
		s.badRequest(w, err.Error())
		return
	}
	rec := Received{
		Key:    Key{Repo: repo, SHA: sha},
		Fields: fields,
		Path:   r.URL.EscapedPath(),
		Header: r.Header.Clone(),
	}
	rec.State, _ = fields["state"].(string)
	rec.Description, _ = fields["description"].(string)
	rec.TargetURL, _ = fields["target_url"].(string)
	rec.Context, _ = fields["context"].(string)
	if s.kind == forge.KindGitLab {
		if name, _ := fields["name"].(string); name != "" {
			rec.Context = name
		}
	}
	if rec.Context == "" {
		rec.Context = "default"
	}
	if msg := s.validate(rec); msg != "" {
		s.invalid(w, msg)
		return
	}

	s.mu.Lock()
	prev, seen := s.last[rec.Key]
	if s.kind == forge.KindGitLab && seen && prev.State == rec.State && (rec.State == "pending" || rec.State == "running") {
		s.mu.Unlock()
		s.fail(w, FailCannotTransition, 0)
		return
	}
	s.nextID++
	id := s.nextID
	s.last[rec.Key] = rec
	s.history = append(s.history, rec)
	s.mu.Unlock()

	s.created(w, r, rec, id)
}

// route extracts repo and sha from the kind's status path.
func (s *Server) route(r *http.Request) (repo, sha string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	unescape := func(p string) (string, bool) {
		v, err := url.PathUnescape(p)
		return v, err == nil && v != ""
	}
	var prefix []string
	switch s.kind {
	case forge.KindGHE:
		prefix = []string{"api", "v3"}
	case forge.KindGitea, forge.KindForgejo:
		prefix = []string{"api", "v1"}
	case forge.KindGitLab:
		// api/v4/projects/{id}/statuses/{sha}; id is one escaped segment.
		if len(parts) != 6 || parts[0] != "api" || parts[1] != "v4" || parts[2] != "projects" || parts[4] != "statuses" {
			return "", "", false
		}
		id, ok1 := unescape(parts[3])
		sha, ok2 := unescape(parts[5])
		return id, sha, ok1 && ok2
	}
	if len(parts) != len(prefix)+5 {
		return "", "", false
	}
	for i, p := range prefix {
		if parts[i] != p {
			return "", "", false
		}
	}
	parts = parts[len(prefix):]
	if parts[0] != "repos" || parts[3] != "statuses" {
		return "", "", false
	}
	owner, ok1 := unescape(parts[1])
	name, ok2 := unescape(parts[2])
	sha, ok3 := unescape(parts[4])
	return owner + "/" + name, sha, ok1 && ok2 && ok3
}

// authorized accepts the credentials each forge accepts.
func (s *Server) authorized(h http.Header) bool {
	auth := h.Get("Authorization")
	scheme, cred, _ := strings.Cut(auth, " ")
	switch s.kind {
	case forge.KindGitLab:
		return h.Get("PRIVATE-TOKEN") == s.token || (strings.EqualFold(scheme, "bearer") && cred == s.token)
	default:
		return (strings.EqualFold(scheme, "bearer") || strings.EqualFold(scheme, "token")) && cred == s.token
	}
}

func decodeBody(r *http.Request) (map[string]any, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, fmt.Errorf("Content-Type %q: want application/json", r.Header.Get("Content-Type"))
	}
	var fields map[string]any
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err := dec.Decode(&fields); err != nil {
		return nil, errors.New("Problems parsing JSON")
	}
	for _, k := range []string{"state", "description", "target_url", "context", "name"} {
		if v, ok := fields[k]; ok {
			if _, isString := v.(string); !isString && v != nil {
				return nil, fmt.Errorf("%s must be a string", k)
			}
		}
	}
	return fields, nil
}

// validate returns the forge's complaint about rec, or "".
func (s *Server) validate(rec Received) string {
	var states []string
	switch s.kind {
	case forge.KindGitHub, forge.KindGHE:
		states = []string{"error", "failure", "pending", "success"}
	case forge.KindGitea, forge.KindForgejo:
		states = []string{"pending", "success", "error", "failure", "warning", "skipped"}
	case forge.KindGitLab:
		states = []string{"pending", "running", "success", "failed", "canceled", "skipped"}
	}
	valid := false
	for _, st := range states {
		valid = valid || st == rec.State
	}
	switch {
	case !valid:
		return "state is not included in the list"
	case !isFullSHA(rec.SHA):
		return "No commit found for SHA: " + rec.SHA
	case (s.kind == forge.KindGitHub || s.kind == forge.KindGHE) && utf8.RuneCountInString(rec.Description) > 140:
		return "description is too long (maximum is 140 characters)"
	}
	return ""
}

func isFullSHA(sha string) bool {
	if len(sha) != 40 && len(sha) != 64 {
		return false
	}
	for _, c := range sha {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// created answers 201 with the body the forge returns.
func (s *Server) created(w http.ResponseWriter, r *http.Request, rec Received, id int64) {
	now := time.Now().UTC().Format(time.RFC3339)
	self := "http://" + r.Host + r.URL.EscapedPath()
	var body map[string]any
	switch s.kind {
	case forge.KindGitHub, forge.KindGHE:
		s.githubRateHeaders(w)
		body = map[string]any{
			"url": self, "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4",
			"id": id, "node_id": fmt.Sprintf("SC_kwDOAAAAAc4%08d", id),
			"state": rec.State, "description": nullable(rec.Description), "target_url": nullable(rec.TargetURL),
			"context": rec.Context, "created_at": now, "updated_at": now,
			"creator": map[string]any{"login": "rida-bot", "id": 1, "node_id": "MDQ6VXNlcjE=", "type": "User", "site_admin": false},
		}
	case forge.KindGitea, forge.KindForgejo:
		// Gitea and Forgejo name the state "status", not "state".
		body = map[string]any{
			"id": id, "status": rec.State, "target_url": rec.TargetURL, "description": rec.Description,
			"url": self, "context": rec.Context, "created_at": now, "updated_at": now,
			"creator": map[string]any{"id": 1, "login": "rida-bot", "login_name": "", "full_name": "", "email": "rida-bot@noreply.localhost"},
		}
	case forge.KindGitLab:
		finished := any(nil)
		if rec.State != "pending" && rec.State != "running" {
			finished = now
		}
		body = map[string]any{
			"id": id, "sha": rec.SHA, "ref": "main", "status": rec.State, "name": rec.Context,
			"target_url": nullable(rec.TargetURL), "description": nullable(rec.Description),
			"created_at": now, "started_at": nil, "finished_at": finished, "allow_failure": false,
			"coverage": nil, "pipeline_id": 77,
			"author": map[string]any{"id": 1, "username": "rida-bot", "name": "rida", "state": "active"},
		}
	}
	writeJSON(w, http.StatusCreated, body)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) githubRateHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("X-GitHub-Request-Id", "F00D:1234:5678:9ABC:DEF0")
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "4999")
	h.Set("X-RateLimit-Used", "1")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

func (s *Server) github() bool { return s.kind == forge.KindGitHub || s.kind == forge.KindGHE }

// errorBody returns the forge's error body for status and message.
func (s *Server) errorBody(status int, message, docs string) map[string]any {
	switch s.kind {
	case forge.KindGitLab:
		return map[string]any{"message": message}
	case forge.KindGitea, forge.KindForgejo:
		return map[string]any{"message": message, "url": "http://" + s.addr + "/api/swagger"}
	}
	return map[string]any{"message": message, "documentation_url": cmp.Or(docs, "https://docs.github.com/rest/commits/statuses#create-a-commit-status"), "status": strconv.Itoa(status)}
}

func (s *Server) notFound(w http.ResponseWriter) {
	msg := "Not Found"
	if s.kind == forge.KindGitLab {
		msg = "404 Not Found"
	}
	writeJSON(w, http.StatusNotFound, s.errorBody(http.StatusNotFound, msg, "https://docs.github.com/rest"))
}

func (s *Server) badRequest(w http.ResponseWriter, msg string) {
	status := http.StatusBadRequest
	if s.kind == forge.KindGitea || s.kind == forge.KindForgejo {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, s.errorBody(status, msg, ""))
}

func (s *Server) invalid(w http.ResponseWriter, msg string) {
	switch s.kind {
	case forge.KindGitLab:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": msg})
	case forge.KindGitea, forge.KindForgejo:
		writeJSON(w, http.StatusUnprocessableEntity, s.errorBody(http.StatusUnprocessableEntity, msg, ""))
	default:
		body := s.errorBody(http.StatusUnprocessableEntity, "Validation Failed", "")
		body["errors"] = []any{map[string]any{"resource": "Status", "code": "custom", "message": msg}}
		writeJSON(w, http.StatusUnprocessableEntity, body)
	}
}

// fail writes the answer for an injected (or emulated) failure.
func (s *Server) fail(w http.ResponseWriter, f Failure, retryAfter time.Duration) {
	h := w.Header()
	secs := strconv.Itoa(int(retryAfter / time.Second))
	const secondaryMsg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID F00D:1234:5678:9ABC:DEF0."
	const secondaryDocs = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	switch f {
	case Fail500:
		msg := "Server Error"
		if s.kind == forge.KindGitLab {
			msg = "500 Internal Server Error"
		}
		writeJSON(w, http.StatusInternalServerError, s.errorBody(500, msg, ""))
	case Fail502:
		h.Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
	case Fail429, Fail429Date:
		if f == Fail429Date {
			now := time.Now().UTC().Truncate(time.Second)
			h.Set("Date", now.Format(http.TimeFormat))
			h.Set("Retry-After", now.Add(retryAfter).Format(http.TimeFormat))
		} else {
			h.Set("Retry-After", secs)
		}
		if s.kind == forge.KindGitLab {
			h.Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, "Retry later\n")
			return
		}
		writeJSON(w, http.StatusTooManyRequests, s.errorBody(429, "API rate limit exceeded. Please wait and try again.", "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"))
	case FailPrimaryLimit:
		reset := strconv.FormatInt(time.Now().Add(retryAfter).Unix(), 10)
		if s.kind == forge.KindGitLab {
			h.Set("RateLimit-Limit", "600")
			h.Set("RateLimit-Remaining", "0")
			h.Set("RateLimit-Reset", reset)
			h.Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, "Retry later\n")
			return
		}
		h.Set("X-RateLimit-Limit", "5000")
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", "5000")
		h.Set("X-RateLimit-Reset", reset)
		h.Set("X-RateLimit-Resource", "core")
		writeJSON(w, http.StatusForbidden, s.errorBody(403, "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID F00D:1234:5678:9ABC:DEF0.", "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit"))
	case FailSecondaryLimit:
		h.Set("Retry-After", secs)
		writeJSON(w, http.StatusForbidden, s.errorBody(403, secondaryMsg, secondaryDocs))
	case FailSecondaryLimitNoHeader:
		writeJSON(w, http.StatusForbidden, s.errorBody(403, secondaryMsg, secondaryDocs))
	case Fail401:
		msg := "Bad credentials"
		switch s.kind {
		case forge.KindGitLab:
			msg = "401 Unauthorized"
		case forge.KindGitea, forge.KindForgejo:
			msg = "user does not exist [uid: 0, name: ]"
		}
		writeJSON(w, http.StatusUnauthorized, s.errorBody(401, msg, "https://docs.github.com/rest"))
	case Fail403:
		msg := "Resource not accessible by personal access token"
		switch s.kind {
		case forge.KindGitLab:
			msg = "403 Forbidden"
		case forge.KindGitea, forge.KindForgejo:
			msg = "user should have a permission to write to a repo"
		}
		writeJSON(w, http.StatusForbidden, s.errorBody(403, msg, ""))
	case Fail404:
		s.notFound(w)
	case Fail422:
		if s.kind == forge.KindGitLab {
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": map[string]any{"target_url": []string{"is blocked: Only allowed schemes are http, https"}}})
			return
		}
		s.invalid(w, "target_url is not a valid URL")
	case FailCannotTransition:
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": `Cannot transition status via :run from :running (Reason(s): Status cannot transition via "run")`})
	default:
		writeJSON(w, http.StatusInternalServerError, s.errorBody(500, "forgetest: unknown failure "+f.String(), ""))
	}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
