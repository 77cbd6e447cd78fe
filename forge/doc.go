// Package forge posts commit statuses to the forges rida serves: GitHub,
// GitHub Enterprise Server, Gitea, Forgejo and GitLab.
//
// # Reporters
//
// NewGitHub and NewGitea return reporters built on go-github v60's
// Repositories.CreateStatus (Gitea and Forgejo mirror GitHub's endpoint
// under /api/v1/); NewGitLab returns a small client for GitLab's
// POST /api/v4/projects/:id/statuses/:sha. New picks one from an Options
// value, for wiring from configuration. Every reporter has one method that
// matters, Post(ctx, Status) error; callers declare the interface they
// need. Reporters are safe for concurrent use, keep no package-level
// state, never log, and never put the token in an error.
//
// # States
//
// rida's states map onto each forge as follows:
//
//	rida      GitHub, GHES, Gitea, Forgejo   GitLab
//	pending   pending                        pending
//	running   pending                        running
//	success   success                        success
//	failure   failure                        failed
//	error     error                          failed
//	canceled  error (description kept)       canceled
//
// A canceled status with an empty description is sent as "canceled" on
// forges without a canceled state, so the error state explains itself.
// Descriptions are cut to MaxDescriptionRunes runes with a trailing "…"
// (TruncateDescription) on every forge.
//
// # Errors and retries
//
// Post returns nil once the forge has accepted the status (the answer's
// body is not read back). Otherwise the error is one of:
//
//   - wraps ErrInvalidStatus: the Status is malformed; do not retry.
//   - *RateLimitError: HTTP 429, or GitHub's 403 primary limit
//     (X-RateLimit-Remaining: 0) or secondary limit; retry later.
//   - *HTTPError with Retryable: transport failure, canceled or expired
//     context, 408 or 5xx; retry with backoff.
//   - *HTTPError without Retryable: 400, 401, 403, 404, 422 and other
//     4xx; the message says what to check (token, scope, repository,
//     commit). Retrying cannot help until the configuration changes.
//
// Use errors.As to get the typed error, and RetryDelay to turn any of them
// into "retry after d" or "give up". GitLab's 400 "Cannot transition
// status" (posting a state the commit already has) is reported as success.
//
// go-github remembers GitHub rate limits per client: after a limit it
// answers further calls with a *RateLimitError itself, without contacting
// the forge, until the limit lifts. Share one reporter per forge account.
//
// Package forgetest provides httptest servers shaped like each forge's
// status API, for tests of this package and its callers.
package forge
