package forge

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
)

// Options configures New, which picks the reporter for Kind. It mirrors
// one forge entry of rida's configuration.
type Options struct {
	// Kind selects the forge dialect. Required.
	Kind Kind
	// BaseURL locates the forge:
	//   - KindGitHub: REST API root; empty means https://api.github.com/.
	//   - KindGHE: https://HOST (api/v3/ is appended) or https://HOST/api/v3/;
	//     a host starting with "api." (GHE.com) is used as is. Required.
	//   - KindGitea, KindForgejo: https://HOST or https://HOST/api/v1/. Required.
	//   - KindGitLab: https://HOST (instance root). Required.
	BaseURL string
	// Token authenticates the reporter. Required. It never appears in
	// errors, and String, GoString and LogValue hide it.
	Token string `json:"-"`
	// GitLabBearer sends a GitLab token as "Authorization: Bearer"
	// instead of PRIVATE-TOKEN. Ignored for other kinds.
	GitLabBearer bool
	// HTTPClient sends the requests. Nil means a client with
	// DefaultTimeout.
	HTTPClient *http.Client
	// UserAgent is sent as User-Agent. Empty means DefaultUserAgent.
	UserAgent string
}

// String describes o without its token.
func (o Options) String() string {
	return fmt.Sprintf("forge.Options{Kind:%q BaseURL:%q Token:%s UserAgent:%q}", o.Kind, o.BaseURL, hidden(o.Token), o.UserAgent)
}

// GoString describes o without its token, for %#v.
func (o Options) GoString() string { return o.String() }

// LogValue describes o to log/slog without its token.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", string(o.Kind)), slog.String("base_url", o.BaseURL), slog.String("token", hidden(o.Token)))
}

// Reporter posts commit statuses to the forge chosen by Options.Kind. It
// is what New returns, for wiring from configuration; code that knows its
// forge can use *GitHub, *Gitea or *GitLab directly. Consumers should
// declare their own one-method interface (Post) rather than depend on
// this type.
//
// A Reporter is safe for concurrent use.
type Reporter struct {
	kind Kind
	post func(context.Context, Status) error
	base string
}

// New returns the reporter for opts.Kind. It fails if Kind is unknown or
// the chosen constructor rejects the options; the error names the field.
func New(opts Options) (*Reporter, error) {
	switch opts.Kind {
	case KindGitHub, KindGHE:
		base := opts.BaseURL
		if opts.Kind == KindGHE {
			if base == "" {
				return nil, fmt.Errorf("forge: Options.BaseURL is required for kind %q (https://HOST)", opts.Kind)
			}
			var err error
			if base, err = gheBaseURL(base); err != nil {
				return nil, fmt.Errorf("forge: Options.BaseURL: %w", err)
			}
		}
		g, err := NewGitHub(GitHubOptions{Kind: opts.Kind, BaseURL: base, Token: opts.Token, HTTPClient: opts.HTTPClient, UserAgent: opts.UserAgent})
		if err != nil {
			return nil, err
		}
		return &Reporter{kind: opts.Kind, post: g.Post, base: g.BaseURL()}, nil
	case KindGitea, KindForgejo:
		g, err := NewGitea(GiteaOptions{Kind: opts.Kind, BaseURL: opts.BaseURL, Token: opts.Token, HTTPClient: opts.HTTPClient, UserAgent: opts.UserAgent})
		if err != nil {
			return nil, err
		}
		return &Reporter{kind: opts.Kind, post: g.Post, base: g.BaseURL()}, nil
	case KindGitLab:
		g, err := NewGitLab(GitLabOptions{BaseURL: opts.BaseURL, Token: opts.Token, Bearer: opts.GitLabBearer, HTTPClient: opts.HTTPClient, UserAgent: opts.UserAgent})
		if err != nil {
			return nil, err
		}
		return &Reporter{kind: opts.Kind, post: g.Post, base: g.BaseURL()}, nil
	case "":
		return nil, fmt.Errorf("forge: Options.Kind is required (one of %v)", Kinds())
	default:
		return nil, fmt.Errorf("forge: Options.Kind %q is unknown (one of %v)", opts.Kind, Kinds())
	}
}

// Post creates or replaces the commit status s.Context on s.Repo at s.SHA.
// Errors are *RateLimitError, *HTTPError (both wrapped with the operation)
// or wrap ErrInvalidStatus; pass them to RetryDelay.
func (r *Reporter) Post(ctx context.Context, s Status) error { return r.post(ctx, s) }

// Kind reports the forge dialect.
func (r *Reporter) Kind() Kind { return r.kind }

// BaseURL reports the API root in use.
func (r *Reporter) BaseURL() string { return r.base }

// String describes r without its token.
func (r *Reporter) String() string { return fmt.Sprintf("forge.Reporter(%s %s)", r.kind, r.base) }

// gheBaseURL mirrors go-github's WithEnterpriseURLs: append api/v3/ unless
// present or the host starts with "api." (GHE.com data residency).
func gheBaseURL(raw string) (string, error) {
	u, err := parseBaseURL(raw)
	if err != nil {
		return "", err
	}
	if len(u.Hostname()) > 4 && u.Hostname()[:4] == "api." {
		return raw, nil
	}
	return withAPIPath(raw, "api/v3/")
}
