package forge

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// GitLabOptions configures NewGitLab.
type GitLabOptions struct {
	// BaseURL is the GitLab instance root, e.g. https://gitlab.example.com
	// (or https://HOST/gitlab for a relative URL install). A trailing
	// /api/v4 is accepted and not doubled. Required.
	BaseURL string
	// Token is sent as "PRIVATE-TOKEN: <token>" (personal, project or
	// group access token with the api scope), or as "Authorization:
	// Bearer <token>" when Bearer is set. Required. It never appears in
	// errors, and String, GoString and LogValue hide it.
	Token string `json:"-"`
	// Bearer sends the token as an OAuth 2 bearer token instead of
	// PRIVATE-TOKEN.
	Bearer bool
	// HTTPClient sends the requests. Nil means a client with
	// DefaultTimeout.
	HTTPClient *http.Client
	// UserAgent is sent as User-Agent. Empty means DefaultUserAgent.
	UserAgent string
}

// String describes o without its token.
func (o GitLabOptions) String() string {
	return fmt.Sprintf("forge.GitLabOptions{BaseURL:%q Token:%s Bearer:%t UserAgent:%q}", o.BaseURL, hidden(o.Token), o.Bearer, o.UserAgent)
}

// GoString describes o without its token, for %#v.
func (o GitLabOptions) GoString() string { return o.String() }

// LogValue describes o to log/slog without its token.
func (o GitLabOptions) LogValue() slog.Value {
	return slog.GroupValue(slog.String("base_url", o.BaseURL), slog.String("token", hidden(o.Token)), slog.Bool("bearer", o.Bearer))
}

// GitLab posts commit statuses to GitLab with
// POST /api/v4/projects/:id/statuses/:sha.
//
// A GitLab is safe for concurrent use.
type GitLab struct {
	api     string // instance root + "/api/v4", no trailing slash
	hc      *http.Client
	ua      string
	setAuth func(http.Header) // holds the token in a closure, so %+v cannot print it
	redact  func(string) string
}

// NewGitLab returns a reporter for GitLab. It fails if Token or BaseURL is
// empty, or BaseURL is not an absolute http(s) URL or carries credentials,
// a query or a fragment.
func NewGitLab(opts GitLabOptions) (*GitLab, error) {
	if opts.BaseURL == "" {
		return nil, errors.New("forge: GitLabOptions.BaseURL is required (https://HOST)")
	}
	if opts.Token == "" {
		return nil, errors.New("forge: GitLabOptions.Token is required")
	}
	u, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("forge: GitLabOptions.BaseURL: %w", err)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v4")
	u.RawPath = ""
	token := opts.Token
	setAuth := func(h http.Header) { h.Set("PRIVATE-TOKEN", token) }
	if opts.Bearer {
		setAuth = func(h http.Header) { h.Set("Authorization", "Bearer "+token) }
	}
	return &GitLab{
		api:     strings.TrimSuffix(u.String(), "/") + "/api/v4",
		hc:      cmp.Or(opts.HTTPClient, &http.Client{Timeout: DefaultTimeout}),
		ua:      cmp.Or(opts.UserAgent, DefaultUserAgent),
		setAuth: setAuth,
		redact:  redactor(token),
	}, nil
}

// Kind reports KindGitLab.
func (g *GitLab) Kind() Kind { return KindGitLab }

// BaseURL reports the REST API root in use, ending in "/api/v4".
func (g *GitLab) BaseURL() string { return g.api }

// gitlabStatus is the request body. GitLab takes "name" (alias "context")
// for the status's name.
type gitlabStatus struct {
	State       string `json:"state"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	TargetURL   string `json:"target_url,omitempty"`
}

// maxBody bounds how much of an answer is read.
const maxBody = 64 << 10

// Post creates or updates the commit status s.Context on project s.Repo at
// s.SHA. GitLab refuses some repeated posts (for example running after
// running) with 400 "Cannot transition status"; Post treats that as
// success, because the forge already shows that state.
func (g *GitLab) Post(ctx context.Context, s Status) error {
	if err := s.validate(false); err != nil {
		return err
	}
	body, err := json.Marshal(gitlabStatus{
		State:       gitlabState(s.State),
		Name:        s.Context,
		Description: description(s, true),
		TargetURL:   s.TargetURL,
	})
	if err != nil {
		return fmt.Errorf("forge: encode gitlab status: %w", err)
	}
	endpoint := g.api + "/projects/" + url.PathEscape(s.Repo) + "/statuses/" + s.SHA
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return wrapPost(KindGitLab, s, transportError(err, g.redact))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", g.ua)
	g.setAuth(req.Header)

	resp, err := g.hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return wrapPost(KindGitLab, s, transportError(err, g.redact))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	msg := gitlabMessage(data)
	if resp.StatusCode == http.StatusBadRequest && strings.Contains(msg, "Cannot transition status") {
		return nil
	}
	return wrapPost(KindGitLab, s, errorFor(KindGitLab, s, responseInfo{
		status: resp.StatusCode, header: resp.Header, message: msg,
	}, g.redact))
}

// gitlabMessage extracts GitLab's error text: {"message": "..."},
// {"message": {"field": ["..."]}}, {"error": "..."}, or plain text.
func gitlabMessage(data []byte) string {
	var v struct {
		Message json.RawMessage `json:"message"`
		Error   string          `json:"error"`
	}
	if json.Unmarshal(data, &v) != nil {
		return string(data)
	}
	var parts []string
	if len(v.Message) > 0 {
		var s string
		if json.Unmarshal(v.Message, &s) == nil {
			parts = append(parts, s)
		} else {
			parts = append(parts, string(v.Message))
		}
	}
	if v.Error != "" {
		parts = append(parts, v.Error)
	}
	if len(parts) == 0 {
		return string(data)
	}
	return strings.Join(parts, ": ")
}

// String describes g without its token.
func (g *GitLab) String() string { return "forge.GitLab(" + g.api + ")" }
