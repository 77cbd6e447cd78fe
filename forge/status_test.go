package forge

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTruncateDescription(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"Empty", "", ""},
		{"Short", "built in 3m", "built in 3m"},
		{"Exactly140", strings.Repeat("a", 140), strings.Repeat("a", 140)},
		{"141", strings.Repeat("a", 141), strings.Repeat("a", 139) + "…"},
		{"MultiByteFits", strings.Repeat("日", 140), strings.Repeat("日", 140)},
		{"MultiByteCut", strings.Repeat("日", 141), strings.Repeat("日", 139) + "…"},
		{"EmojiCut", strings.Repeat("😀", 200), strings.Repeat("😀", 139) + "…"},
		{"TrailingSpaceTrimmed", strings.Repeat("a", 138) + "  tail", strings.Repeat("a", 138) + "…"},
		{"InvalidUTF8", "ok\xffok", "ok\uFFFDok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := TruncateDescription(tt.in)
			if got != tt.want {
				t.Errorf("TruncateDescription = %q, want %q", got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > MaxDescriptionRunes || !utf8.ValidString(got) {
				t.Errorf("result has %d runes, valid %t", n, utf8.ValidString(got))
			}
		})
	}
}

func TestStateMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state          State
		github, gitlab string
	}{
		{StatePending, "pending", "pending"},
		{StateRunning, "pending", "running"},
		{StateSuccess, "success", "success"},
		{StateFailure, "failure", "failed"},
		{StateError, "error", "failed"},
		{StateCanceled, "error", "canceled"},
		{"bogus", "", ""},
	}
	if len(tests)-1 != len(States()) {
		t.Fatalf("table covers %d states, States() has %d", len(tests)-1, len(States()))
	}
	for _, tt := range tests {
		if got := githubState(tt.state); got != tt.github {
			t.Errorf("githubState(%q) = %q, want %q", tt.state, got, tt.github)
		}
		if got := gitlabState(tt.state); got != tt.gitlab {
			t.Errorf("gitlabState(%q) = %q, want %q", tt.state, got, tt.gitlab)
		}
		if tt.state.Valid() != (tt.github != "") {
			t.Errorf("%q.Valid() = %t", tt.state, tt.state.Valid())
		}
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		err     error
		attempt int
		want    time.Duration
		wantOK  bool
	}{
		{"Nil", nil, 0, 0, false},
		{"Invalid", invalid("SHA", "bad"), 0, 0, false},
		{"Other", errors.New("boom"), 0, 0, false},
		{"Permanent401", &HTTPError{StatusCode: 401}, 0, 0, false},
		{"Retryable0", &HTTPError{StatusCode: 500, Retryable: true}, 0, 2 * time.Second, true},
		{"Retryable1", &HTTPError{StatusCode: 500, Retryable: true}, 1, 4 * time.Second, true},
		{"Retryable5", &HTTPError{Retryable: true}, 5, 64 * time.Second, true},
		{"RetryableCapped", &HTTPError{Retryable: true}, 9, 10 * time.Minute, true},
		{"RetryableHuge", &HTTPError{Retryable: true}, 1000, 10 * time.Minute, true},
		{"RetryableNegative", &HTTPError{Retryable: true}, -3, 2 * time.Second, true},
		{"RetryableHonoursRetryAfter", &HTTPError{Retryable: true, RetryAfter: 45 * time.Second}, 0, 45 * time.Second, true},
		{"RetryableBackoffBeatsRetryAfter", &HTTPError{Retryable: true, RetryAfter: 3 * time.Second}, 4, 32 * time.Second, true},
		{"RateRetryAfter", &RateLimitError{RetryAfter: 17 * time.Second, Reset: now.Add(time.Hour)}, 5, 17 * time.Second, true},
		{"RateReset", &RateLimitError{Reset: now.Add(90 * time.Second)}, 0, 91 * time.Second, true},
		{"RateResetPast", &RateLimitError{Reset: now.Add(-time.Minute)}, 0, time.Second, true},
		{"RateResetFar", &RateLimitError{Reset: now.Add(5 * time.Hour)}, 0, time.Hour, true},
		{"RateNoHint", &RateLimitError{}, 0, time.Minute, true},
		{"RateNoHintBackoff", &RateLimitError{}, 7, 256 * time.Second, true},
		{"RateNoHintCapped", &RateLimitError{}, 20, 10 * time.Minute, true},
		{"Wrapped", wrapPost(KindGitHub, Status{Repo: "o/r"}, &RateLimitError{RetryAfter: time.Second}), 0, time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := RetryDelay(tt.err, tt.attempt, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("RetryDelay = %v, %t; want %v, %t", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestErrorFor(t *testing.T) {
	t.Parallel()
	s := Status{Repo: "owner/name", SHA: strings.Repeat("ab", 20), Context: "rida/x"}
	date := "Sat, 01 Aug 2026 12:00:00 GMT"
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	type want struct {
		rate       bool
		status     int
		retryAfter time.Duration
		reset      int64 // Unix seconds, 0 = none
		retryable  bool
		contains   string
	}
	tests := []struct {
		name string
		kind Kind
		r    responseInfo
		want want
	}{
		{"429Seconds", KindGitLab, responseInfo{429, hdr("Retry-After", "12"), "Retry later"}, want{rate: true, status: 429, retryAfter: 12 * time.Second}},
		{"429Date", KindGitea, responseInfo{429, hdr("Retry-After", "Sat, 01 Aug 2026 12:01:30 GMT", "Date", date), ""}, want{rate: true, status: 429, retryAfter: 90 * time.Second}},
		{"429DatePast", KindGitea, responseInfo{429, hdr("Retry-After", "Sat, 01 Aug 2026 11:00:00 GMT", "Date", date), ""}, want{rate: true, status: 429}},
		{"429Garbage", KindGitea, responseInfo{429, hdr("Retry-After", "soon"), ""}, want{rate: true, status: 429}},
		{"429Huge", KindGitHub, responseInfo{429, hdr("Retry-After", "999999999"), ""}, want{rate: true, status: 429, retryAfter: time.Hour}},
		{"429GitHubPrimary", KindGitHub, responseInfo{429, hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1785585600"), ""}, want{rate: true, status: 429, reset: 1785585600}},
		{"429GitLabReset", KindGitLab, responseInfo{429, hdr("RateLimit-Remaining", "0", "RateLimit-Reset", "1785585600"), ""}, want{rate: true, status: 429, reset: 1785585600}},
		{"403Primary", KindGitHub, responseInfo{403, hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1785585600"), "API rate limit exceeded"}, want{rate: true, status: 403, reset: 1785585600}},
		{"403SecondaryBody", KindGitHub, responseInfo{403, hdr("X-RateLimit-Remaining", "4000", "X-RateLimit-Reset", "1785585600"), "You have exceeded a secondary rate limit"}, want{rate: true, status: 403}},
		{"403RetryAfter", KindGHE, responseInfo{403, hdr("Retry-After", "60"), ""}, want{rate: true, status: 403, retryAfter: time.Minute}},
		{"403Permission", KindGitHub, responseInfo{403, hdr("X-RateLimit-Remaining", "4000"), "Resource not accessible by integration"}, want{status: 403, contains: "repo:status"}},
		{"403GitLab", KindGitLab, responseInfo{403, hdr(), "403 Forbidden"}, want{status: 403, contains: "Developer role"}},
		{"401", KindGitea, responseInfo{401, hdr(), ""}, want{status: 401, contains: "token for gitea"}},
		{"404", KindGitHub, responseInfo{404, hdr(), "Not Found"}, want{status: 404, contains: `"owner/name" and the commit abababababab`}},
		{"422", KindGitHub, responseInfo{422, hdr(), "Validation Failed: No commit found for SHA"}, want{status: 422, contains: "forge said: Validation Failed: No commit found"}},
		{"400", KindGitLab, responseInfo{400, hdr(), "state is invalid"}, want{status: 400, contains: "state is invalid"}},
		{"408", KindGitLab, responseInfo{408, hdr(), ""}, want{status: 408, retryable: true}},
		{"500", KindGitHub, responseInfo{500, hdr(), ""}, want{status: 500, retryable: true}},
		{"503RetryAfter", KindGitHub, responseInfo{503, hdr("Retry-After", "120"), ""}, want{status: 503, retryable: true, retryAfter: 2 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := errorFor(tt.kind, s, tt.r, redactor("tok"))
			var rl *RateLimitError
			var he *HTTPError
			switch {
			case tt.want.rate:
				if !errors.As(err, &rl) {
					t.Fatalf("err = %v (%T), want *RateLimitError", err, err)
				}
				var reset int64
				if !rl.Reset.IsZero() {
					reset = rl.Reset.Unix()
				}
				if rl.StatusCode != tt.want.status || rl.RetryAfter != tt.want.retryAfter || reset != tt.want.reset {
					t.Errorf("got %+v, want %+v", rl, tt.want)
				}
			default:
				if !errors.As(err, &he) {
					t.Fatalf("err = %v (%T), want *HTTPError", err, err)
				}
				if he.StatusCode != tt.want.status || he.Retryable != tt.want.retryable || he.RetryAfter != tt.want.retryAfter {
					t.Errorf("got %+v, want %+v", he, tt.want)
				}
				if !strings.Contains(he.Message, tt.want.contains) {
					t.Errorf("message %q does not contain %q", he.Message, tt.want.contains)
				}
			}
		})
	}
}

func TestGitLabMessage(t *testing.T) {
	t.Parallel()
	tests := []struct{ body, want string }{
		{`{"message":"Cannot transition status via :run from :running"}`, "Cannot transition status via :run from :running"},
		{`{"message":{"target_url":["is blocked"]}}`, `{"target_url":["is blocked"]}`},
		{`{"error":"state does not have a valid value"}`, "state does not have a valid value"},
		{"Retry later\n", "Retry later\n"},
		{`{}`, `{}`},
	}
	for _, tt := range tests {
		if got := gitlabMessage([]byte(tt.body)); got != tt.want {
			t.Errorf("gitlabMessage(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	if got := clip("a\n  b\tc"); got != "a b c" {
		t.Errorf("clip folds whitespace: %q", got)
	}
	got := clip(strings.Repeat("é", 400))
	if !utf8.ValidString(got) || len(got) > maxMessage+len("…") {
		t.Errorf("clip(long) = %d bytes, valid %t", len(got), utf8.ValidString(got))
	}
}
