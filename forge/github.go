package forge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// Kind names a forge dialect. It appears in error messages and is the
// "kind" key of rida's configuration.
type Kind string

// Supported forge kinds.
const (
	// KindGitHub is github.com (REST API at https://api.github.com/).
	KindGitHub Kind = "github"
	// KindGHE is GitHub Enterprise Server (REST API at https://HOST/api/v3/).
	KindGHE Kind = "ghe"
	// KindGitea is Gitea (REST API at https://HOST/api/v1/).
	KindGitea Kind = "gitea"
	// KindForgejo is Forgejo; it shares Gitea's status API and reporter.
	KindForgejo Kind = "forgejo"
	// KindGitLab is GitLab (REST API at https://HOST/api/v4/).
	KindGitLab Kind = "gitlab"
)

// Kinds returns every supported Kind. It returns a new slice on each call.
func Kinds() []Kind {
	return []Kind{KindGitHub, KindGHE, KindGitea, KindForgejo, KindGitLab}
}

// DefaultUserAgent is sent when an options struct leaves UserAgent empty.
const DefaultUserAgent = "rida"

// DefaultTimeout bounds each request when an options struct leaves
// HTTPClient nil. A worker's context deadline applies as well.
const DefaultTimeout = 30 * time.Second

// GitHubOptions configures NewGitHub.
type GitHubOptions struct {
	// BaseURL is the REST API root. Empty means https://api.github.com/.
	// For GitHub Enterprise Server give https://HOST/api/v3/. It is used
	// as given (a missing trailing slash is added); use New with
	// KindGHE to have /api/v3/ appended to a bare host.
	BaseURL string
	// Token authenticates as "Authorization: Bearer <token>". Required.
	// It needs permission to write commit statuses. It never appears in
	// errors, and String, GoString and LogValue hide it.
	Token string `json:"-"`
	// HTTPClient sends the requests. Nil means a client with
	// DefaultTimeout. go-github copies it.
	HTTPClient *http.Client
	// UserAgent is sent as User-Agent (GitHub requires one). Empty means
	// DefaultUserAgent.
	UserAgent string
	// Kind is KindGitHub (default) or KindGHE; it only labels errors.
	Kind Kind
}

// String describes o without its token.
func (o GitHubOptions) String() string {
	return fmt.Sprintf("forge.GitHubOptions{Kind:%q BaseURL:%q Token:%s UserAgent:%q}", o.Kind, o.BaseURL, hidden(o.Token), o.UserAgent)
}

// GoString describes o without its token, for %#v.
func (o GitHubOptions) GoString() string { return o.String() }

// LogValue describes o to log/slog without its token.
func (o GitHubOptions) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", string(o.Kind)), slog.String("base_url", o.BaseURL), slog.String("token", hidden(o.Token)))
}

// GiteaOptions configures NewGitea.
type GiteaOptions struct {
	// BaseURL is the REST API root, https://HOST/api/v1/. A URL without
	// a path ending in /api/v1 gets api/v1/ appended, so https://HOST
	// works too. Required.
	BaseURL string
	// Token authenticates as "Authorization: Bearer <token>" (Gitea and
	// Forgejo accept it like "token <token>"). Required. It needs the
	// write:repository scope. It never appears in errors, and String,
	// GoString and LogValue hide it.
	Token string `json:"-"`
	// HTTPClient sends the requests. Nil means a client with
	// DefaultTimeout.
	HTTPClient *http.Client
	// UserAgent is sent as User-Agent. Empty means DefaultUserAgent.
	UserAgent string
	// Kind is KindGitea (default) or KindForgejo; it only labels errors.
	Kind Kind
}

// String describes o without its token.
func (o GiteaOptions) String() string {
	return fmt.Sprintf("forge.GiteaOptions{Kind:%q BaseURL:%q Token:%s UserAgent:%q}", o.Kind, o.BaseURL, hidden(o.Token), o.UserAgent)
}

// GoString describes o without its token, for %#v.
func (o GiteaOptions) GoString() string { return o.String() }

// LogValue describes o to log/slog without its token.
func (o GiteaOptions) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", string(o.Kind)), slog.String("base_url", o.BaseURL), slog.String("token", hidden(o.Token)))
}

// GitHub posts commit statuses to GitHub or GitHub Enterprise Server
// through go-github's Repositories.CreateStatus.
//
// A GitHub is safe for concurrent use. Create one per forge account and
// share it: the underlying go-github client remembers rate limits and,
// until they lift, fails calls with *RateLimitError without contacting
// GitHub.
type GitHub struct {
	c *ghClient
}

// Gitea posts commit statuses to Gitea or Forgejo. Their status endpoint
// mirrors GitHub's under /api/v1/, so it uses the same go-github client;
// the response is not read back (Gitea names the state field "status").
//
// A Gitea is safe for concurrent use.
type Gitea struct {
	c *ghClient
}

// NewGitHub returns a reporter for GitHub or GHES. It fails if Token is
// empty, BaseURL is not an absolute http(s) URL, BaseURL carries
// credentials, a query or a fragment, or Kind is not KindGitHub or KindGHE.
func NewGitHub(opts GitHubOptions) (*GitHub, error) {
	opts.Kind = cmp.Or(opts.Kind, KindGitHub)
	if opts.Kind != KindGitHub && opts.Kind != KindGHE {
		return nil, fmt.Errorf("forge: GitHubOptions.Kind %q: want %q or %q", opts.Kind, KindGitHub, KindGHE)
	}
	base := cmp.Or(opts.BaseURL, "https://api.github.com/")
	c, err := newGHClient(opts.Kind, "GitHubOptions", base, opts.Token, opts.HTTPClient, opts.UserAgent)
	if err != nil {
		return nil, err
	}
	return &GitHub{c: c}, nil
}

// NewGitea returns a reporter for Gitea or Forgejo. It fails if Token or
// BaseURL is empty, BaseURL is not an absolute http(s) URL, BaseURL carries
// credentials, a query or a fragment, or Kind is not KindGitea or
// KindForgejo.
func NewGitea(opts GiteaOptions) (*Gitea, error) {
	opts.Kind = cmp.Or(opts.Kind, KindGitea)
	if opts.Kind != KindGitea && opts.Kind != KindForgejo {
		return nil, fmt.Errorf("forge: GiteaOptions.Kind %q: want %q or %q", opts.Kind, KindGitea, KindForgejo)
	}
	if opts.BaseURL == "" {
		return nil, errors.New("forge: GiteaOptions.BaseURL is required (https://HOST/api/v1/)")
	}
	base, err := withAPIPath(opts.BaseURL, "api/v1/")
	if err != nil {
		return nil, fmt.Errorf("forge: GiteaOptions.BaseURL: %w", err)
	}
	c, err := newGHClient(opts.Kind, "GiteaOptions", base, opts.Token, opts.HTTPClient, opts.UserAgent)
	if err != nil {
		return nil, err
	}
	return &Gitea{c: c}, nil
}

// Post creates or replaces the commit status s.Context on s.Repo at s.SHA.
// See the package documentation for the state mapping and the errors.
func (g *GitHub) Post(ctx context.Context, s Status) error { return g.c.post(ctx, s) }

// Kind reports KindGitHub or KindGHE.
func (g *GitHub) Kind() Kind { return g.c.kind }

// BaseURL reports the REST API root in use, ending in "/".
func (g *GitHub) BaseURL() string { return g.c.gh.BaseURL.String() }

// Post creates or replaces the commit status s.Context on s.Repo at s.SHA.
// See the package documentation for the state mapping and the errors.
func (g *Gitea) Post(ctx context.Context, s Status) error { return g.c.post(ctx, s) }

// Kind reports KindGitea or KindForgejo.
func (g *Gitea) Kind() Kind { return g.c.kind }

// BaseURL reports the REST API root in use, ending in "/api/v1/".
func (g *Gitea) BaseURL() string { return g.c.gh.BaseURL.String() }

// ghClient is the go-github based implementation shared by GitHub and Gitea.
type ghClient struct {
	kind   Kind
	gh     *github.Client
	redact func(string) string
}

func newGHClient(kind Kind, optsName, baseURL, token string, hc *http.Client, ua string) (*ghClient, error) {
	if token == "" {
		return nil, fmt.Errorf("forge: %s.Token is required", optsName)
	}
	u, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, fmt.Errorf("forge: %s.BaseURL: %w", optsName, err)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/" // go-github's NewRequest refuses a BaseURL without it
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	gh := github.NewClient(hc).WithAuthToken(token)
	gh.BaseURL = u
	gh.UserAgent = cmp.Or(ua, DefaultUserAgent)
	return &ghClient{kind: kind, gh: gh, redact: redactor(token)}, nil
}

func (c *ghClient) post(ctx context.Context, s Status) error {
	if err := s.validate(true); err != nil {
		return err
	}
	owner, name, _ := strings.Cut(s.Repo, "/")
	rs := &github.RepoStatus{
		State:   github.String(githubState(s.State)),
		Context: github.String(s.Context),
	}
	if d := description(s, false); d != "" {
		rs.Description = github.String(d)
	}
	if s.TargetURL != "" {
		rs.TargetURL = github.String(s.TargetURL)
	}
	// The returned *RepoStatus is deliberately ignored: Gitea and Forgejo
	// answer the state as "status", so it would read back as nil.
	_, resp, err := c.gh.Repositories.CreateStatus(ctx, owner, name, s.SHA, rs)
	if err == nil {
		return nil
	}
	if resp != nil && resp.Response != nil && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		// The forge accepted the status; only decoding its answer failed.
		return nil
	}
	return wrapPost(c.kind, s, c.classify(s, err))
}

// classify turns a go-github error into *RateLimitError or *HTTPError.
// go-github v60 recognises 403 rate limits (and remembers them, answering
// later calls itself) but treats 429 as a plain *ErrorResponse, so every
// answer is also classified from the raw response.
func (c *ghClient) classify(s Status, err error) error {
	var (
		primary   *github.RateLimitError
		secondary *github.AbuseRateLimitError
		plain     *github.ErrorResponse
		twoFactor *github.TwoFactorAuthError
	)
	switch {
	case errors.As(err, &primary):
		info := infoFrom(primary.Response, primary.Message)
		rl := asRateLimit(c.kind, s, info, c.redact)
		if rl.Reset.IsZero() && !primary.Rate.Reset.Time.IsZero() {
			rl.Reset = primary.Rate.Reset.Time
		}
		return rl
	case errors.As(err, &secondary):
		info := infoFrom(secondary.Response, secondary.Message)
		rl := asRateLimit(c.kind, s, info, c.redact)
		if rl.RetryAfter == 0 && rl.Reset.IsZero() && secondary.RetryAfter != nil && *secondary.RetryAfter > 0 {
			rl.RetryAfter = *secondary.RetryAfter
		}
		return rl
	case errors.As(err, &plain):
		return errorFor(c.kind, s, infoFrom(plain.Response, ghMessage(plain)), c.redact)
	case errors.As(err, &twoFactor):
		return errorFor(c.kind, s, infoFrom(twoFactor.Response, twoFactor.Message), c.redact)
	default:
		return transportError(err, c.redact)
	}
}

// asRateLimit classifies info, forcing a *RateLimitError: go-github has
// already decided it is one, possibly for a synthetic response with no
// headers.
func asRateLimit(kind Kind, s Status, info responseInfo, redact func(string) string) *RateLimitError {
	if rl, ok := errorFor(kind, s, info, redact).(*RateLimitError); ok {
		return rl
	}
	return &RateLimitError{StatusCode: cmp.Or(info.status, http.StatusForbidden), Message: redact(clip(info.message))}
}

func infoFrom(r *http.Response, message string) responseInfo {
	info := responseInfo{header: http.Header{}, message: message}
	if r != nil {
		info.status = r.StatusCode
		if r.Header != nil {
			info.header = r.Header
		}
	}
	return info
}

// ghMessage joins the top-level message with the field errors of a 422.
// A body that is not GitHub's JSON (a proxy's HTML page, plain text) is
// used as is; the caller clips it.
func ghMessage(e *github.ErrorResponse) string {
	if e.Message == "" && len(e.Errors) == 0 && e.Response != nil && e.Response.Body != nil {
		// CheckResponse left the body readable for exactly this purpose.
		data, _ := io.ReadAll(io.LimitReader(e.Response.Body, maxBody))
		return string(data)
	}
	parts := []string{e.Message}
	for _, fe := range e.Errors {
		switch {
		case fe.Message != "":
			parts = append(parts, fe.Message)
		case fe.Field != "":
			parts = append(parts, fe.Field+" "+fe.Code)
		}
	}
	return strings.Join(parts, ": ")
}

// wrapPost adds the operation and object to a classified error.
func wrapPost(kind Kind, s Status, err error) error {
	return fmt.Errorf("forge: post %s status %q on %s@%s: %w", kind, s.Context, s.Repo, shortSHA(s.SHA), err)
}

// parseBaseURL accepts an absolute http(s) URL without credentials, query
// or fragment: the token belongs in the options, never in a URL that may
// be logged.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL") // url.Error would echo raw
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	case u.Host == "":
		return nil, errors.New("no host")
	case u.User != nil:
		return nil, errors.New("credentials in the URL: put them in Token")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("query or fragment not allowed")
	}
	return u, nil
}

// withAPIPath appends apiPath ("api/v1/" or "api/v3/") to raw unless its
// path already ends with it, and returns the result with a trailing slash.
func withAPIPath(raw, apiPath string) (string, error) {
	u, err := parseBaseURL(raw)
	if err != nil {
		return "", err
	}
	p := strings.TrimSuffix(u.Path, "/") + "/"
	if !strings.HasSuffix(p, "/"+apiPath) {
		p += apiPath
	}
	u.Path = p
	u.RawPath = ""
	return u.String(), nil
}

func hidden(token string) string {
	if token == "" {
		return `""`
	}
	return "[REDACTED]"
}
