package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/state"
	"github.com/rida-build/rida/webhook"
)

// config is rida serve's configuration file. examples/config/rida.yaml
// documents every key and is the built-in default.
type config struct {
	Listen    string        `yaml:"listen"`
	DataDir   string        `yaml:"data_dir"`
	PublicURL string        `yaml:"public_url"`
	LogLevel  string        `yaml:"log_level"`
	Forges    []forgeConfig `yaml:"forges"`
	Retention struct {
		Events          *time.Duration `yaml:"events"`
		Deliveries      *time.Duration `yaml:"deliveries"`
		DeliveryCommits *time.Duration `yaml:"delivery_commits"`
		PostedStatuses  *time.Duration `yaml:"posted_statuses"`
		FailedTrees     *time.Duration `yaml:"failed_trees"`
		KeepTrees       *int           `yaml:"keep_trees"`
		Mirrors         *time.Duration `yaml:"mirrors"`
		// SupersededBuilds, FailedBuilds and Requests: the records of
		// module builds and build requests (state.Retention).
		SupersededBuilds *int           `yaml:"superseded_builds_per_stream"`
		FailedBuilds     *time.Duration `yaml:"failed_builds"`
		Requests         *time.Duration `yaml:"requests"`
	} `yaml:"retention"`
	Webhook struct {
		// MaxBody caps a webhook body in bytes (0: GitHub's own cap, 25 MiB).
		MaxBody int64 `yaml:"max_body"`
		// MaxConcurrent bounds webhook requests reading a body at once.
		MaxConcurrent int `yaml:"max_concurrent"`
		// SlotWait is how long a webhook request beyond max_concurrent
		// waits for a slot before 503; negative: none.
		SlotWait time.Duration `yaml:"slot_wait"`
		// BodyTimeout bounds how long a webhook body may take to arrive.
		BodyTimeout time.Duration `yaml:"body_timeout"`
	} `yaml:"webhook"`
	HTTP httpConfig `yaml:"http"`
	URLs urlsConfig `yaml:"urls"`
	API  struct {
		Tokens []struct {
			Name      string `yaml:"name"`
			TokenEnv  string `yaml:"token_env"`
			TokenFile string `yaml:"token_file"`
		} `yaml:"tokens"`
		AllowedSCM []string   `yaml:"allowed_scm"`
		Auth       authConfig `yaml:"auth"`
	} `yaml:"api"`
	Statuses struct {
		Context         string        `yaml:"context"`
		PendingDeadline time.Duration `yaml:"pending_deadline"`
		RatePerForge    float64       `yaml:"rate_per_forge"`
	} `yaml:"statuses"`
	Repos struct {
		Modules          []string          `yaml:"modules"`
		Components       []string          `yaml:"components"`
		Explicit         map[string]string `yaml:"explicit"`
		ModuleFile       string            `yaml:"module_file"`
		ComponentIgnore  []string          `yaml:"component_ignore"`
		TrackedBranches  []string          `yaml:"tracked_branches"`
		ComponentBaseURL string            `yaml:"component_base_url"`
		ModuleRepos      []string          `yaml:"module_repos"`
	} `yaml:"repos"`
	Build struct {
		Platform        string `yaml:"platform"`
		Marking         string `yaml:"marking"`
		RebuildStrategy string `yaml:"rebuild_strategy"`
		MaxBuilds       int    `yaml:"max_builds"`
		MaxComponents   int    `yaml:"max_components"`
		CancelRunning   bool   `yaml:"cancel_running"`
		ManualReady     bool   `yaml:"manual_ready"`
		// Cascade: nil means the default, true.
		Cascade      *bool `yaml:"cascade"`
		CascadeDepth int   `yaml:"cascade_depth"`
	} `yaml:"build"`
	Backend struct {
		Kind  string `yaml:"kind"`
		Local struct {
			Parallel  int    `yaml:"parallel"`
			Sandbox   string `yaml:"sandbox"`
			OnFailure string `yaml:"on_failure"`
			Lookaside string `yaml:"lookaside"`
			NoDeps    bool   `yaml:"nodeps"`
		} `yaml:"local"`
		Koji kojiConfig `yaml:"koji"`
	} `yaml:"backend"`
}

type forgeConfig struct {
	Kind       string `yaml:"kind"`
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
	// Commit statuses: the forge's API base URL and a token.
	APIURL    string `yaml:"api_url"`
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
	// Hosts are the URL prefixes this forge's clone URLs must be under;
	// empty: derived from api_url (see forgeHosts).
	Hosts []string `yaml:"hosts"`
}

// loadConfig reads path (the embedded default when empty), strictly: an
// unknown key is an error naming it, so a typo does not silently fall back
// to a default.
func loadConfig(path string) (*config, error) {
	// The built-in configuration is decoded first and the file on top of
	// it, so a key the file leaves out keeps its documented default (a
	// list given in the file replaces the default list).
	var c config
	for _, src := range []string{"", path} {
		data := examples.DefaultConfig()
		if src != "" {
			var err error
			if data, err = os.ReadFile(src); err != nil {
				return nil, fmt.Errorf("config: %w", err)
			}
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: %w", cmpOr(src, "(built-in)"), err)
		}
		if path == "" {
			break
		}
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", cmpOr(path, "(built-in)"), err)
	}
	return &c, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (c *config) validate() error {
	switch {
	case c.Listen == "":
		return errors.New("listen: required")
	case c.DataDir == "":
		return errors.New("data_dir: required")
	case len(c.Forges) == 0:
		return errors.New("forges: at least one forge is required")
	case c.Backend.Kind != "local" && c.Backend.Kind != "koji":
		return fmt.Errorf("backend.kind: %q is not supported (supported: local, koji)", c.Backend.Kind)
	}
	// public_url is empty by default: rida serve then uses the address it
	// is bound to (listenURL), for commit status links and API paging
	// links alike. An explicit public_url always wins.
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("public_url: %q is not an absolute http(s) URL", c.PublicURL)
		}
	}
	if c.Backend.Kind == "koji" {
		if err := c.Backend.Koji.validate(); err != nil {
			return err
		}
	}
	if c.Build.RebuildStrategy != "" && !slices.Contains(runner.RebuildStrategies(), c.Build.RebuildStrategy) {
		return fmt.Errorf("build.rebuild_strategy: %q, want one of %s", c.Build.RebuildStrategy, strings.Join(runner.RebuildStrategies(), ", "))
	}
	for name, d := range map[string]*time.Duration{"events": c.Retention.Events, "deliveries": c.Retention.Deliveries,
		"delivery_commits": c.Retention.DeliveryCommits, "posted_statuses": c.Retention.PostedStatuses,
		"failed_trees": c.Retention.FailedTrees, "mirrors": c.Retention.Mirrors,
		"failed_builds": c.Retention.FailedBuilds, "requests": c.Retention.Requests} {
		if d != nil && *d < 0 {
			return fmt.Errorf("retention.%s: %s, want 0 (keep forever) or more", name, *d)
		}
	}
	if k := c.Retention.KeepTrees; k != nil && *k < 0 {
		return fmt.Errorf("retention.keep_trees: %d, want 0 (keep every tree) or more", *k)
	}
	if k := c.Retention.SupersededBuilds; k != nil && *k < 0 {
		return fmt.Errorf("retention.superseded_builds_per_stream: %d, want 0 (keep every build) or more", *k)
	}
	if err := c.HTTP.validate(); err != nil {
		return err
	}
	if c.Webhook.MaxConcurrent < 0 || c.Webhook.BodyTimeout < 0 {
		return fmt.Errorf("webhook.max_concurrent (%d) and webhook.body_timeout (%s) must not be negative", c.Webhook.MaxConcurrent, c.Webhook.BodyTimeout)
	}
	if c.Webhook.MaxBody < 0 {
		return fmt.Errorf("webhook.max_body: %d, want 0 (the default, %d bytes) or more", c.Webhook.MaxBody, webhook.DefaultMaxBody)
	}
	if c.Build.CascadeDepth < 0 {
		return fmt.Errorf("build.cascade_depth: %d, want 0 (the default, %d) or more", c.Build.CascadeDepth, runner.DefaultCascadeDepth)
	}
	seen := map[string]bool{}
	for i, f := range c.Forges {
		if !slices.Contains(webhook.ForgeKinds(), webhook.ForgeKind(f.Kind)) {
			return fmt.Errorf("forges[%d].kind: %q, want one of github, gitea, forgejo, gitlab", i, f.Kind)
		}
		if seen[f.Kind] {
			return fmt.Errorf("forges[%d].kind: %q is configured twice", i, f.Kind)
		}
		seen[f.Kind] = true
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if err := c.validateURLs(); err != nil {
		return err
	}
	return c.classifier().Validate()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log_level: %q, want debug, info, warn or error", s)
	}
	return l, nil
}

func (c *config) classifier() webhook.Classifier {
	cl := webhook.Classifier{ModulePatterns: c.Repos.Modules, ComponentPatterns: c.Repos.Components, Repos: map[string]webhook.RepoKind{}}
	for repo, kind := range c.Repos.Explicit {
		cl.Repos[repo] = webhook.RepoKind(kind)
	}
	return cl
}

// forgeSecrets resolves every forge's secrets from the environment and
// files. A forge without any secret stops rida from starting; the error
// names the forge and where the secret was looked for, never a value. Both
// places may hold one (during a rotation): both are accepted.
func (c *config) forgeSecrets(getenv func(string) string) ([]webhook.ForgeConfig, error) {
	var out []webhook.ForgeConfig
	for i, f := range c.Forges {
		var secrets []string
		if v := getenvIf(getenv, f.SecretEnv); v != "" {
			secrets = append(secrets, v)
		}
		if v, err := lookupSecret(getenv, "", f.SecretFile); err != nil {
			return nil, fmt.Errorf("forges[%d] (%s): secret_file: %w", i, f.Kind, err)
		} else if v != "" {
			secrets = append(secrets, v)
		}
		if len(secrets) == 0 {
			return nil, fmt.Errorf("forge %s is enabled without a webhook secret (looked in %s); rida will not accept unsigned webhooks", f.Kind, where(f.SecretEnv, f.SecretFile))
		}
		out = append(out, webhook.ForgeConfig{Kind: webhook.ForgeKind(f.Kind), Secrets: secrets})
	}
	return out, nil
}

// lookupSecret returns the secret held by the environment variable env
// or, when that is unset or empty, by file (its trailing newline removed);
// "" when neither names one. Errors come from reading the file only, and
// never contain the secret.
func lookupSecret(getenv func(string) string, env, file string) (string, error) {
	if v := getenvIf(getenv, env); v != "" {
		return v, nil
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func getenvIf(getenv func(string) string, name string) string {
	if name == "" {
		return ""
	}
	return getenv(name)
}

// where says where a secret was looked for, for error messages.
func where(env, file string) string {
	var w []string
	if env != "" {
		w = append(w, "environment variable "+env)
	}
	if file != "" {
		w = append(w, "file "+file)
	}
	if len(w) == 0 {
		return "nowhere: set the _env or _file key"
	}
	return strings.Join(w, " and ")
}

// apiTokens resolves the API's bearer tokens (name → token). A listed token
// that resolves to nothing is an error naming where it was looked for.
func (c *config) apiTokens(getenv func(string) string) (map[string]string, error) {
	out := map[string]string{}
	for i, t := range c.API.Tokens {
		if t.Name == "" {
			return nil, fmt.Errorf("api.tokens[%d].name: required", i)
		}
		tok, err := lookupSecret(getenv, t.TokenEnv, t.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("api.tokens[%d] (%s): token_file: %w", i, t.Name, err)
		}
		if tok == "" {
			return nil, fmt.Errorf("api.tokens[%d] (%s): no token in %s", i, t.Name, where(t.TokenEnv, t.TokenFile))
		}
		out[t.Name] = tok
	}
	return out, nil
}

// authConfig is api.auth: the write calls' authentication methods besides
// api.tokens, and who may cancel any build.
type authConfig struct {
	Kerberos struct {
		// Keytab is the service keytab; empty: Kerberos is off.
		Keytab    string `yaml:"keytab"`
		Principal string `yaml:"principal"`
	} `yaml:"kerberos"`
	OIDC struct {
		// Issuer is the provider's issuer URL; empty: OIDC is off.
		Issuer         string   `yaml:"issuer"`
		Audience       string   `yaml:"audience"`
		RequiredScopes []string `yaml:"required_scopes"`
		AllowedGroups  []string `yaml:"allowed_groups"`
		UserClaim      string   `yaml:"user_claim"`
		GroupsClaim    string   `yaml:"groups_claim"`
		// Introspection checks opaque tokens (RFC 7662); empty client_id:
		// only JWTs are accepted.
		Introspection struct {
			URL              string `yaml:"url"`
			ClientID         string `yaml:"client_id"`
			ClientSecretEnv  string `yaml:"client_secret_env"`
			ClientSecretFile string `yaml:"client_secret_file"`
		} `yaml:"introspection"`
	} `yaml:"oidc"`
	AdminUsers  []string `yaml:"admin_users"`
	AdminGroups []string `yaml:"admin_groups"`
}

// apiAuth sets opts' Kerberos, OIDC and admins from api.auth; getenv
// reads the introspection client's secret.
func (c *config) apiAuth(opts *api.Options, getenv func(string) string) error {
	a := c.API.Auth
	if a.Kerberos.Keytab != "" {
		k, err := api.NewKerberosAuth(a.Kerberos.Keytab, a.Kerberos.Principal)
		if err != nil {
			return fmt.Errorf("api.auth.kerberos: %w", err)
		}
		opts.Kerberos = k
	} else if a.Kerberos.Principal != "" {
		return errors.New("api.auth.kerberos.principal is set but keytab is not")
	}
	if o := a.OIDC; o.Issuer != "" {
		if o.Audience == "" {
			return errors.New("api.auth.oidc.audience: required with an issuer (the aud rida's access tokens carry)")
		}
		opts.OIDC = &api.OIDCAuth{
			Issuer: o.Issuer, Audience: o.Audience, RequiredScopes: o.RequiredScopes, AllowedGroups: o.AllowedGroups,
			UserClaim: o.UserClaim, GroupsClaim: o.GroupsClaim,
		}
		if in := o.Introspection; in.ClientID != "" {
			secret, err := lookupSecret(getenv, in.ClientSecretEnv, in.ClientSecretFile)
			if err != nil {
				return fmt.Errorf("api.auth.oidc.introspection: client_secret_file: %w", err)
			}
			if secret == "" {
				return fmt.Errorf("api.auth.oidc.introspection: no client secret in %s", where(in.ClientSecretEnv, in.ClientSecretFile))
			}
			opts.OIDC.Introspection = &api.Introspection{URL: in.URL, ClientID: in.ClientID, ClientSecret: secret}
		} else if in.URL != "" || in.ClientSecretEnv != "" || in.ClientSecretFile != "" {
			return errors.New("api.auth.oidc.introspection: client_id is required (rida authenticates to the endpoint as a client)")
		}
	} else if o.Introspection.ClientID != "" {
		return errors.New("api.auth.oidc.introspection is set but api.auth.oidc.issuer is not")
	}
	opts.AdminUsers, opts.AdminGroups = a.AdminUsers, a.AdminGroups
	return nil
}

// retention is the store's retention from the config: a key left out keeps
// its default (state.DefaultRetention), 0 keeps that kind forever.
func (c *config) retention() state.Retention {
	r := state.DefaultRetention
	for _, f := range []struct {
		v   *time.Duration
		dst *time.Duration
	}{
		{c.Retention.Events, &r.Events}, {c.Retention.Deliveries, &r.Deliveries},
		{c.Retention.DeliveryCommits, &r.DeliveryCommits}, {c.Retention.PostedStatuses, &r.PostedStatuses},
		{c.Retention.FailedTrees, &r.FailedTrees},
		{c.Retention.FailedBuilds, &r.FailedBuilds}, {c.Retention.Requests, &r.Requests},
	} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if c.Retention.KeepTrees != nil {
		r.KeepTrees = *c.Retention.KeepTrees
	}
	if c.Retention.SupersededBuilds != nil {
		r.SupersededBuilds = *c.Retention.SupersededBuilds
	}
	return r
}

// defaultMirrorRetention: a mirror not used for this long is removed.
const defaultMirrorRetention = 30 * 24 * time.Hour

// mirrorRetention is retention.mirrors (0: mirrors are kept).
func (c *config) mirrorRetention() time.Duration {
	if c.Retention.Mirrors != nil {
		return *c.Retention.Mirrors
	}
	return defaultMirrorRetention
}

// httpConfig is the http: section: the HTTP server's timeouts and the
// event streams' caps. A zero duration keeps the default; durations are
// set on rida serve's http.Server, and long responses (event streams,
// backups, log and package downloads) extend their own deadlines while
// the client keeps reading.
type httpConfig struct {
	ReadHeaderTimeout   time.Duration `yaml:"read_header_timeout"`
	ReadTimeout         time.Duration `yaml:"read_timeout"`
	WriteTimeout        time.Duration `yaml:"write_timeout"`
	IdleTimeout         time.Duration `yaml:"idle_timeout"`
	MaxStreams          int           `yaml:"max_streams"`
	MaxStreamsPerClient int           `yaml:"max_streams_per_client"`
}

// HTTP timeout defaults, used when a key is 0 or missing.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = time.Minute
	defaultWriteTimeout      = time.Minute
	defaultIdleTimeout       = 2 * time.Minute
)

func (h httpConfig) validate() error {
	for name, d := range map[string]time.Duration{"read_header_timeout": h.ReadHeaderTimeout, "read_timeout": h.ReadTimeout,
		"write_timeout": h.WriteTimeout, "idle_timeout": h.IdleTimeout} {
		if d < 0 {
			return fmt.Errorf("http.%s: %s, want 0 (the default) or more", name, d)
		}
	}
	if h.MaxStreams < 0 || h.MaxStreamsPerClient < 0 {
		return fmt.Errorf("http.max_streams (%d) and http.max_streams_per_client (%d) must not be negative", h.MaxStreams, h.MaxStreamsPerClient)
	}
	return nil
}

// server returns an http.Server for handler with the configured timeouts.
func (h httpConfig) server(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cmp.Or(h.ReadHeaderTimeout, defaultReadHeaderTimeout),
		ReadTimeout:       cmp.Or(h.ReadTimeout, defaultReadTimeout),
		WriteTimeout:      cmp.Or(h.WriteTimeout, defaultWriteTimeout),
		IdleTimeout:       cmp.Or(h.IdleTimeout, defaultIdleTimeout),
	}
}

// listenURL is the default public_url: http:// and the address rida is
// bound to (so listen: 127.0.0.1:0 gives the real port). A wildcard
// address (0.0.0.0, ::) is no use in a link: the machine's host name
// stands for it.
func listenURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}
