package forge_test

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rida-build/rida/forge"
)

// A status outbox worker decides from the typed error whether and when to
// retry a post.
func ExampleRetryDelay() {
	now := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	errs := []error{
		&forge.HTTPError{StatusCode: 502, Message: "bad gateway", Retryable: true},
		&forge.RateLimitError{StatusCode: 429, RetryAfter: 30 * time.Second},
		&forge.RateLimitError{StatusCode: 403, Reset: now.Add(5 * time.Minute)},
		&forge.RateLimitError{StatusCode: 403},
		&forge.HTTPError{StatusCode: 401, Message: "authentication failed"},
	}
	for _, err := range errs {
		d, retry := forge.RetryDelay(err, 2, now)
		fmt.Printf("%-60s retry=%-5t after %s\n", err, retry, d)
	}
	// Output:
	// HTTP 502: bad gateway                                        retry=true  after 8s
	// rate limited (HTTP 429), retry after 30s                     retry=true  after 30s
	// rate limited (HTTP 403), limit resets at 2026-08-01T12:05:00Z retry=true  after 5m1s
	// rate limited (HTTP 403)                                      retry=true  after 1m0s
	// HTTP 401: authentication failed                              retry=false after 0s
}

// Truncation keeps descriptions within GitHub's 140-character limit
// without splitting a character.
func ExampleTruncateDescription() {
	long := "Büild failed: " + strings.Repeat("ö", 200)
	d := forge.TruncateDescription(long)
	fmt.Println(utf8.RuneCountInString(d), strings.HasSuffix(d, "ö…"))
	fmt.Println(forge.TruncateDescription("built in 3m"))
	// Output:
	// 140 true
	// built in 3m
}
