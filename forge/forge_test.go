package forge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rida-build/rida/forge"
	"github.com/rida-build/rida/forge/forgetest"
)

// poster is what a consumer (the status outbox) declares.
type poster interface {
	Post(context.Context, forge.Status) error
}

var (
	_ poster = (*forge.GitHub)(nil)
	_ poster = (*forge.Gitea)(nil)
	_ poster = (*forge.GitLab)(nil)
	_ poster = (*forge.Reporter)(nil)
)

const sha = "0123456789abcdef0123456789abcdef01234567"

// repoFor returns a repository name in the form the kind uses.
func repoFor(kind forge.Kind) string {
	if kind == forge.KindGitLab {
		return "group/sub/project"
	}
	return "owner/name"
}

// setup starts a fake forge and a reporter wired to it through New.
func setup(t *testing.T, kind forge.Kind) (*forgetest.Server, *forge.Reporter) {
	t.Helper()
	srv := forgetest.NewServer(t, kind)
	r, err := forge.New(srv.Options())
	if err != nil {
		t.Fatalf("New(%v): %v", srv.Options(), err)
	}
	return srv, r
}

func status(kind forge.Kind, st forge.State) forge.Status {
	return forge.Status{
		Repo:        repoFor(kind),
		SHA:         sha,
		Context:     "rida/nodejs:20",
		State:       st,
		Description: "built",
		TargetURL:   "https://rida.example/builds/7",
	}
}

func TestReporter_Post_OK(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind       forge.Kind
		wantPath   string
		wantFields map[string]any
		wantHeader map[string]string
		noHeader   []string
	}{
		{
			kind:     forge.KindGitHub,
			wantPath: "/repos/owner/name/statuses/" + sha,
			wantFields: map[string]any{"state": "success", "context": "rida/nodejs:20",
				"description": "built", "target_url": "https://rida.example/builds/7"},
			wantHeader: map[string]string{"Authorization": "Bearer ghp_forgetestR1daT0ken0000000000000000",
				"Content-Type": "application/json", "Accept": "application/vnd.github.v3+json",
				"X-Github-Api-Version": "2022-11-28", "User-Agent": "rida"},
		},
		{
			kind:     forge.KindGHE,
			wantPath: "/api/v3/repos/owner/name/statuses/" + sha,
			wantFields: map[string]any{"state": "success", "context": "rida/nodejs:20",
				"description": "built", "target_url": "https://rida.example/builds/7"},
			wantHeader: map[string]string{"Authorization": "Bearer ghp_forgetestR1daT0ken0000000000000000",
				"Content-Type": "application/json", "User-Agent": "rida"},
		},
		{
			kind:     forge.KindGitea,
			wantPath: "/api/v1/repos/owner/name/statuses/" + sha,
			wantFields: map[string]any{"state": "success", "context": "rida/nodejs:20",
				"description": "built", "target_url": "https://rida.example/builds/7"},
			wantHeader: map[string]string{"Authorization": "Bearer 5eca1ed70c3e4f0b9d2a6c8e1f3b5d7a9c0e2f41",
				"Content-Type": "application/json", "User-Agent": "rida"},
		},
		{
			kind:     forge.KindForgejo,
			wantPath: "/api/v1/repos/owner/name/statuses/" + sha,
			wantFields: map[string]any{"state": "success", "context": "rida/nodejs:20",
				"description": "built", "target_url": "https://rida.example/builds/7"},
			wantHeader: map[string]string{"Authorization": "Bearer 5eca1ed70c3e4f0b9d2a6c8e1f3b5d7a9c0e2f41"},
		},
		{
			kind:     forge.KindGitLab,
			wantPath: "/api/v4/projects/group%2Fsub%2Fproject/statuses/" + sha,
			wantFields: map[string]any{"state": "success", "name": "rida/nodejs:20",
				"description": "built", "target_url": "https://rida.example/builds/7"},
			wantHeader: map[string]string{"Private-Token": "glpat-forgetestR1daT0ken00",
				"Content-Type": "application/json", "User-Agent": "rida"},
			noHeader: []string{"Authorization"},
		},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			srv, r := setup(t, tt.kind)
			if err := r.Post(context.Background(), status(tt.kind, forge.StateSuccess)); err != nil {
				t.Fatalf("Post: %v", err)
			}
			hist := srv.History()
			if len(hist) != 1 || srv.Requests() != 1 {
				t.Fatalf("history %d, requests %d; want 1, 1", len(hist), srv.Requests())
			}
			got := hist[0]
			if got.Path != tt.wantPath {
				t.Errorf("path = %q, want %q", got.Path, tt.wantPath)
			}
			if !reflect.DeepEqual(got.Fields, tt.wantFields) {
				t.Errorf("fields = %v, want %v", got.Fields, tt.wantFields)
			}
			for k, v := range tt.wantHeader {
				if g := got.Header.Get(k); g != v {
					t.Errorf("header %s = %q, want %q", k, g, v)
				}
			}
			for _, k := range tt.noHeader {
				if g := got.Header.Get(k); g != "" {
					t.Errorf("header %s = %q, want none", k, g)
				}
			}
			key := forgetest.Key{Repo: repoFor(tt.kind), SHA: sha, Context: "rida/nodejs:20"}
			if st := srv.Statuses()[key]; st.State != "success" {
				t.Errorf("Statuses()[%v].State = %q, want success", key, st.State)
			}
		})
	}
}

func TestReporter_Post_StateMapping(t *testing.T) {
	t.Parallel()
	githubLike := map[forge.State]string{
		forge.StatePending: "pending", forge.StateRunning: "pending", forge.StateSuccess: "success",
		forge.StateFailure: "failure", forge.StateError: "error", forge.StateCanceled: "error",
	}
	gitlab := map[forge.State]string{
		forge.StatePending: "pending", forge.StateRunning: "running", forge.StateSuccess: "success",
		forge.StateFailure: "failed", forge.StateError: "failed", forge.StateCanceled: "canceled",
	}
	want := map[forge.Kind]map[forge.State]string{
		forge.KindGitHub: githubLike, forge.KindGHE: githubLike, forge.KindGitea: githubLike,
		forge.KindForgejo: githubLike, forge.KindGitLab: gitlab,
	}
	for _, kind := range forge.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			srv, r := setup(t, kind)
			for _, st := range forge.States() {
				s := status(kind, st)
				s.Context = "rida/" + string(st)
				if err := r.Post(context.Background(), s); err != nil {
					t.Fatalf("Post(%s): %v", st, err)
				}
				got := srv.Statuses()[forgetest.Key{Repo: s.Repo, SHA: sha, Context: s.Context}]
				if got.State != want[kind][st] {
					t.Errorf("%s -> %q, want %q", st, got.State, want[kind][st])
				}
			}
		})
	}
}

func TestReporter_Post_CanceledDescription(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind forge.Kind
		desc string
		want any // description field sent; nil = absent
	}{
		{forge.KindGitHub, "", "canceled"},
		{forge.KindGitHub, "superseded by abc1234", "superseded by abc1234"},
		{forge.KindGitea, "", "canceled"},
		{forge.KindGitLab, "", nil},
		{forge.KindGitLab, "superseded by abc1234", "superseded by abc1234"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%q", tt.kind, tt.desc), func(t *testing.T) {
			t.Parallel()
			srv, r := setup(t, tt.kind)
			s := status(tt.kind, forge.StateCanceled)
			s.Description = tt.desc
			if err := r.Post(context.Background(), s); err != nil {
				t.Fatalf("Post: %v", err)
			}
			got, ok := srv.History()[0].Fields["description"]
			if tt.want == nil && ok || tt.want != nil && got != tt.want {
				t.Errorf("description = %v (present %t), want %v", got, ok, tt.want)
			}
		})
	}
}

func TestReporter_Post_TruncatesDescription(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("ü", 100) + strings.Repeat("日本", 50) // 200 runes, multi-byte
	for _, kind := range forge.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			srv, r := setup(t, kind)
			s := status(kind, forge.StateFailure)
			s.Description = long
			// The GitHub fakes answer 422 beyond 140 characters, like GitHub.
			if err := r.Post(context.Background(), s); err != nil {
				t.Fatalf("Post: %v", err)
			}
			d := srv.History()[0].Description
			if n := utf8.RuneCountInString(d); n != forge.MaxDescriptionRunes || !utf8.ValidString(d) || !strings.HasSuffix(d, "…") {
				t.Errorf("description has %d runes (valid %t): %q", n, utf8.ValidString(d), d)
			}
			if !strings.HasPrefix(long, strings.TrimSuffix(d, "…")) {
				t.Errorf("description %q is not a prefix of the original", d)
			}
		})
	}
}

func TestReporter_Post_Errors(t *testing.T) {
	t.Parallel()
	type check func(t *testing.T, err error, now time.Time)
	permanent := func(code int, msgParts ...string) check {
		return func(t *testing.T, err error, now time.Time) {
			var he *forge.HTTPError
			if !errors.As(err, &he) || he.StatusCode != code || he.Retryable {
				t.Fatalf("err = %#v (%v), want permanent *HTTPError %d", he, err, code)
			}
			for _, p := range msgParts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not mention %q", err, p)
				}
			}
			if d, ok := forge.RetryDelay(err, 0, now); ok {
				t.Errorf("RetryDelay = %v, true; want false", d)
			}
		}
	}
	retryable := func(code int) check {
		return func(t *testing.T, err error, now time.Time) {
			var he *forge.HTTPError
			if !errors.As(err, &he) || he.StatusCode != code || !he.Retryable {
				t.Fatalf("err = %v, want retryable *HTTPError %d", err, code)
			}
			if d, ok := forge.RetryDelay(err, 3, now); !ok || d != 16*time.Second {
				t.Errorf("RetryDelay(attempt 3) = %v, %t; want 16s, true", d, ok)
			}
		}
	}
	rateLimited := func(code int, retryAfter time.Duration, hasReset bool, wantDelay func(time.Duration) bool) check {
		return func(t *testing.T, err error, now time.Time) {
			var rl *forge.RateLimitError
			if !errors.As(err, &rl) {
				t.Fatalf("err = %v (%T), want *RateLimitError", err, errors.Unwrap(err))
			}
			if rl.StatusCode != code || rl.RetryAfter != retryAfter || rl.Reset.IsZero() == hasReset {
				t.Errorf("got %+v; want status %d, RetryAfter %v, reset set %t", rl, code, retryAfter, hasReset)
			}
			if d, ok := forge.RetryDelay(err, 0, now); !ok || !wantDelay(d) {
				t.Errorf("RetryDelay = %v, %t", d, ok)
			}
		}
	}
	exactly := func(want time.Duration) func(time.Duration) bool {
		return func(d time.Duration) bool { return d == want }
	}
	aboutResetIn30s := func(d time.Duration) bool { return d > 29*time.Second && d <= 32*time.Second }

	type tc struct {
		fail  forgetest.Failure
		check check
	}
	common := []tc{
		{forgetest.Fail500, retryable(500)},
		{forgetest.Fail502, retryable(502)},
		{forgetest.Fail429, rateLimited(429, 30*time.Second, false, exactly(30*time.Second))},
		{forgetest.Fail429Date, rateLimited(429, 30*time.Second, false, exactly(30*time.Second))},
		{forgetest.Fail401, permanent(401, "token")},
		{forgetest.Fail404, permanent(404, `"`, "repository name", "commit 0123456789ab")},
	}
	githubLike := append(append([]tc(nil), common...),
		tc{forgetest.FailPrimaryLimit, rateLimited(403, 0, true, aboutResetIn30s)},
		tc{forgetest.FailSecondaryLimit, rateLimited(403, 30*time.Second, false, exactly(30*time.Second))},
		tc{forgetest.FailSecondaryLimitNoHeader, rateLimited(403, 0, false, exactly(time.Minute))},
		tc{forgetest.Fail403, permanent(403, "scope")},
		tc{forgetest.Fail422, permanent(422, "target_url is not a valid URL")},
		tc{forgetest.FailCannotTransition, permanent(400)},
	)
	tests := map[forge.Kind][]tc{
		forge.KindGitHub:  githubLike,
		forge.KindGHE:     githubLike,
		forge.KindGitea:   githubLike,
		forge.KindForgejo: githubLike,
		forge.KindGitLab: append(append([]tc(nil), common...),
			tc{forgetest.FailPrimaryLimit, rateLimited(429, 0, true, aboutResetIn30s)},
			tc{forgetest.Fail403, permanent(403, "Developer role")},
			tc{forgetest.Fail422, permanent(400, "is blocked")},
			tc{forgetest.FailCannotTransition, func(t *testing.T, err error, _ time.Time) {
				if err != nil {
					t.Errorf("Cannot transition status: err = %v, want nil", err)
				}
			}},
		),
	}
	for kind, cases := range tests {
		for _, c := range cases {
			t.Run(string(kind)+"/"+c.fail.String(), func(t *testing.T) {
				t.Parallel()
				srv, r := setup(t, kind)
				srv.FailNext(1, c.fail)
				err := r.Post(context.Background(), status(kind, forge.StatePending))
				c.check(t, err, time.Now())
				if err != nil && strings.Contains(err.Error(), srv.Token()) {
					t.Errorf("error contains the token: %v", err)
				}
				if err != nil && !strings.Contains(err.Error(), "rida/nodejs:20") {
					t.Errorf("error %q does not name the status context", err)
				}
				if srv.Requests() != 1 {
					t.Errorf("requests = %d, want 1", srv.Requests())
				}
			})
		}
	}
}

func TestReporter_Post_Down(t *testing.T) {
	t.Parallel()
	for _, kind := range forge.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			srv, r := setup(t, kind)
			ctx := context.Background()
			if err := r.Post(ctx, status(kind, forge.StatePending)); err != nil {
				t.Fatalf("Post before down: %v", err)
			}
			srv.SetDown(true)
			err := r.Post(ctx, status(kind, forge.StateRunning))
			var he *forge.HTTPError
			if !errors.As(err, &he) || he.StatusCode != 0 || !he.Retryable {
				t.Fatalf("Post while down: err = %v, want retryable transport *HTTPError", err)
			}
			if d, ok := forge.RetryDelay(err, 0, time.Now()); !ok || d != 2*time.Second {
				t.Errorf("RetryDelay = %v, %t; want 2s, true", d, ok)
			}
			srv.SetDown(false)
			if err := r.Post(ctx, status(kind, forge.StateSuccess)); err != nil {
				t.Fatalf("Post after restart: %v", err)
			}
			if got := len(srv.History()); got != 2 {
				t.Errorf("history = %d statuses, want 2", got)
			}
		})
	}
}

func TestReporter_Post_RecoversAfterFailures(t *testing.T) {
	t.Parallel()
	for _, kind := range forge.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			srv, r := setup(t, kind)
			srv.FailNext(2, forgetest.Fail500)
			var errs int
			for attempt := range 3 {
				if err := r.Post(context.Background(), status(kind, forge.StateSuccess)); err != nil {
					errs++
					if _, ok := forge.RetryDelay(err, attempt, time.Now()); !ok {
						t.Fatalf("attempt %d: not retryable: %v", attempt, err)
					}
				}
			}
			if errs != 2 || srv.Requests() != 3 || len(srv.Statuses()) != 1 {
				t.Errorf("errors %d, requests %d, statuses %d; want 2, 3, 1", errs, srv.Requests(), len(srv.Statuses()))
			}
		})
	}
}

// go-github remembers GitHub's rate limits and refuses further calls
// itself; the reporter must still report them as *RateLimitError.
func TestGitHub_Post_RemembersRateLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fail      forgetest.Failure
		wantDelay func(time.Duration) bool
	}{
		{forgetest.FailSecondaryLimit, func(d time.Duration) bool { return d > 25*time.Second && d <= 30*time.Second }},
		{forgetest.FailPrimaryLimit, func(d time.Duration) bool { return d > 25*time.Second && d <= 32*time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.fail.String(), func(t *testing.T) {
			t.Parallel()
			srv, r := setup(t, forge.KindGitHub)
			srv.FailNext(1, tt.fail)
			ctx := context.Background()
			if err := r.Post(ctx, status(forge.KindGitHub, forge.StatePending)); err == nil {
				t.Fatal("first Post: want rate limit error")
			}
			err := r.Post(ctx, status(forge.KindGitHub, forge.StatePending))
			var rl *forge.RateLimitError
			if !errors.As(err, &rl) {
				t.Fatalf("second Post: err = %v, want *RateLimitError", err)
			}
			if srv.Requests() != 1 {
				t.Errorf("requests = %d, want 1 (second call answered by go-github)", srv.Requests())
			}
			if d, ok := forge.RetryDelay(err, 1, time.Now()); !ok || !tt.wantDelay(d) {
				t.Errorf("RetryDelay = %v, %t", d, ok)
			}
		})
	}
}

func TestGitLab_Post(t *testing.T) {
	t.Parallel()
	t.Run("CannotTransitionIsSuccess", func(t *testing.T) {
		t.Parallel()
		srv, r := setup(t, forge.KindGitLab)
		ctx := context.Background()
		for range 2 {
			if err := r.Post(ctx, status(forge.KindGitLab, forge.StateRunning)); err != nil {
				t.Fatalf("Post running: %v", err)
			}
		}
		if srv.Requests() != 2 || len(srv.History()) != 1 {
			t.Errorf("requests %d, accepted %d; want 2, 1", srv.Requests(), len(srv.History()))
		}
	})
	t.Run("NumericProjectID", func(t *testing.T) {
		t.Parallel()
		srv, r := setup(t, forge.KindGitLab)
		s := status(forge.KindGitLab, forge.StateSuccess)
		s.Repo = "42"
		if err := r.Post(context.Background(), s); err != nil {
			t.Fatalf("Post: %v", err)
		}
		if p := srv.History()[0].Path; p != "/api/v4/projects/42/statuses/"+sha {
			t.Errorf("path = %q", p)
		}
	})
	t.Run("Bearer", func(t *testing.T) {
		t.Parallel()
		srv := forgetest.NewServer(t, forge.KindGitLab)
		g, err := forge.NewGitLab(forge.GitLabOptions{BaseURL: srv.URL() + "/api/v4/", Token: srv.Token(), Bearer: true, UserAgent: "rida-test"})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Post(context.Background(), status(forge.KindGitLab, forge.StateSuccess)); err != nil {
			t.Fatalf("Post: %v", err)
		}
		h := srv.History()[0].Header
		if h.Get("Authorization") != "Bearer "+srv.Token() || h.Get("Private-Token") != "" || h.Get("User-Agent") != "rida-test" {
			t.Errorf("headers = %v", h)
		}
	})
}

func TestReporter_Post_ContextCanceled(t *testing.T) {
	t.Parallel()
	for _, kind := range []forge.Kind{forge.KindGitHub, forge.KindGitLab} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			_, r := setup(t, kind)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := r.Post(ctx, status(kind, forge.StatePending))
			var he *forge.HTTPError
			if !errors.Is(err, context.Canceled) || !errors.As(err, &he) || !he.Retryable {
				t.Errorf("err = %v, want retryable *HTTPError wrapping context.Canceled", err)
			}
		})
	}
}

func TestReporter_Post_InvalidStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind forge.Kind
		edit func(*forge.Status)
	}{
		{"EmptyRepo", forge.KindGitHub, func(s *forge.Status) { s.Repo = "" }},
		{"RepoWithoutOwner", forge.KindGitHub, func(s *forge.Status) { s.Repo = "name" }},
		{"RepoDotDot", forge.KindGitea, func(s *forge.Status) { s.Repo = "owner/.." }},
		{"RepoThreeParts", forge.KindGitHub, func(s *forge.Status) { s.Repo = "a/b/c" }},
		{"RepoQuery", forge.KindGitHub, func(s *forge.Status) { s.Repo = "a/b?x=1" }},
		{"GitLabLeadingSlash", forge.KindGitLab, func(s *forge.Status) { s.Repo = "/group/project" }},
		{"ShortSHA", forge.KindGitHub, func(s *forge.Status) { s.SHA = "0123456" }},
		{"BranchNotSHA", forge.KindGitLab, func(s *forge.Status) { s.SHA = "main" }},
		{"EmptyContext", forge.KindGitea, func(s *forge.Status) { s.Context = " " }},
		{"UnknownState", forge.KindGitLab, func(s *forge.Status) { s.State = "failed" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, r := setup(t, tt.kind)
			s := status(tt.kind, forge.StateSuccess)
			tt.edit(&s)
			err := r.Post(context.Background(), s)
			if !errors.Is(err, forge.ErrInvalidStatus) {
				t.Fatalf("err = %v, want ErrInvalidStatus", err)
			}
			if _, ok := forge.RetryDelay(err, 0, time.Now()); ok {
				t.Error("RetryDelay says retry")
			}
			if srv.Requests() != 0 {
				t.Errorf("requests = %d, want 0", srv.Requests())
			}
		})
	}
}

// A forge that echoes credentials in its error body must not get them
// into rida's errors.
func TestReporter_Post_TokenNeverInErrors(t *testing.T) {
	t.Parallel()
	const token = "s3cr3t-T0KEN-value"
	echo := func(asJSON bool) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			msg := fmt.Sprintf("got Authorization=%q PRIVATE-TOKEN=%q", r.Header.Get("Authorization"), r.Header.Get("Private-Token"))
			if !asJSON {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, msg)
				return
			}
			body, _ := json.Marshal(map[string]string{"message": msg})
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write(body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	bases := map[string]string{"json": echo(true), "text": echo(false)}
	for _, kind := range forge.Kinds() {
		for body, base := range bases {
			t.Run(string(kind)+"/"+body, func(t *testing.T) {
				t.Parallel()
				if kind == forge.KindGitHub {
					base += "/"
				}
				r, err := forge.New(forge.Options{Kind: kind, BaseURL: base, Token: token})
				if err != nil {
					t.Fatal(err)
				}
				err = r.Post(context.Background(), status(kind, forge.StateError))
				if err == nil {
					t.Fatal("want error")
				}
				if strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "[REDACTED]") {
					t.Errorf("error = %q; want the token redacted", err)
				}
			})
		}
	}
}

func TestOptions_NeverPrintToken(t *testing.T) {
	t.Parallel()
	const token = "s3cr3t-T0KEN-value"
	gl, err := forge.NewGitLab(forge.GitLabOptions{BaseURL: "https://gitlab.example", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	gh, err := forge.NewGitHub(forge.GitHubOptions{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	gt, err := forge.NewGitea(forge.GiteaOptions{BaseURL: "https://gitea.example", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := forge.New(forge.Options{Kind: forge.KindGitLab, BaseURL: "https://gitlab.example", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	values := []any{
		gh, gt, rep,
		forge.Options{Kind: forge.KindGitHub, Token: token},
		forge.GitHubOptions{Token: token},
		forge.GiteaOptions{BaseURL: "https://gitea.example", Token: token},
		forge.GitLabOptions{BaseURL: "https://gitlab.example", Token: token},
		gl,
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if s := fmt.Sprintf(verb, v); strings.Contains(s, token) {
				t.Errorf("Sprintf(%q, %T) = %q", verb, v, s)
			}
		}
		logger.Info("configured", "forge", v)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("slog output contains the token: %s", logs.String())
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     forge.Options
		wantBase string
		wantErr  string
	}{
		{"GitHubDefault", forge.Options{Kind: forge.KindGitHub, Token: "t"}, "https://api.github.com/", ""},
		{"GHEBareHost", forge.Options{Kind: forge.KindGHE, BaseURL: "https://ghe.example", Token: "t"}, "https://ghe.example/api/v3/", ""},
		{"GHEFullPath", forge.Options{Kind: forge.KindGHE, BaseURL: "https://ghe.example/api/v3", Token: "t"}, "https://ghe.example/api/v3/", ""},
		{"GHEDotCom", forge.Options{Kind: forge.KindGHE, BaseURL: "https://api.acme.ghe.com", Token: "t"}, "https://api.acme.ghe.com/", ""},
		{"GiteaBareHost", forge.Options{Kind: forge.KindGitea, BaseURL: "https://gitea.example", Token: "t"}, "https://gitea.example/api/v1/", ""},
		{"ForgejoSubpath", forge.Options{Kind: forge.KindForgejo, BaseURL: "https://example.org/git/api/v1/", Token: "t"}, "https://example.org/git/api/v1/", ""},
		{"GitLabRoot", forge.Options{Kind: forge.KindGitLab, BaseURL: "https://gitlab.example/", Token: "t"}, "https://gitlab.example/api/v4", ""},
		{"GitLabAPIv4", forge.Options{Kind: forge.KindGitLab, BaseURL: "https://gitlab.example/api/v4", Token: "t"}, "https://gitlab.example/api/v4", ""},
		{"NoKind", forge.Options{Token: "t"}, "", "Options.Kind is required"},
		{"UnknownKind", forge.Options{Kind: "pagure", Token: "t"}, "", `Options.Kind "pagure" is unknown`},
		{"NoToken", forge.Options{Kind: forge.KindGitHub}, "", "GitHubOptions.Token is required"},
		{"GHENoURL", forge.Options{Kind: forge.KindGHE, Token: "t"}, "", "Options.BaseURL is required"},
		{"GiteaNoURL", forge.Options{Kind: forge.KindGitea, Token: "t"}, "", "GiteaOptions.BaseURL is required"},
		{"GitLabNoToken", forge.Options{Kind: forge.KindGitLab, BaseURL: "https://gitlab.example"}, "", "GitLabOptions.Token is required"},
		{"CredentialsInURL", forge.Options{Kind: forge.KindGitea, BaseURL: "https://u:secret@gitea.example", Token: "t"}, "", "credentials in the URL"},
		{"NotHTTP", forge.Options{Kind: forge.KindGitLab, BaseURL: "ftp://gitlab.example", Token: "t"}, "", `scheme "ftp"`},
		{"Relative", forge.Options{Kind: forge.KindGitHub, BaseURL: "/api", Token: "t"}, "", "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := forge.New(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error echoes credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.BaseURL() != tt.wantBase || r.Kind() != tt.opts.Kind {
				t.Errorf("BaseURL, Kind = %q, %q; want %q, %q", r.BaseURL(), r.Kind(), tt.wantBase, tt.opts.Kind)
			}
		})
	}
}

func TestNewGitHub_KindAndBaseURL(t *testing.T) {
	t.Parallel()
	g, err := forge.NewGitHub(forge.GitHubOptions{BaseURL: "https://ghe.example/api/v3", Token: "t", Kind: forge.KindGHE})
	if err != nil {
		t.Fatal(err)
	}
	if g.BaseURL() != "https://ghe.example/api/v3/" || g.Kind() != forge.KindGHE {
		t.Errorf("BaseURL, Kind = %q, %q", g.BaseURL(), g.Kind())
	}
	if _, err := forge.NewGitHub(forge.GitHubOptions{Token: "t", Kind: forge.KindGitea}); err == nil {
		t.Error("NewGitHub accepted Kind gitea")
	}
	if _, err := forge.NewGitea(forge.GiteaOptions{BaseURL: "https://x.example", Token: "t", Kind: forge.KindGitHub}); err == nil {
		t.Error("NewGitea accepted Kind github")
	}
}
