package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/rida-build/rida/koji"
	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/state"
)

// kojiConfig is the backend.koji section.
type kojiConfig struct {
	HubURL        string        `yaml:"hub_url"`
	TopURL        string        `yaml:"top_url"`
	Auth          string        `yaml:"auth"`
	User          string        `yaml:"user"`
	PasswordEnv   string        `yaml:"password_env"`
	PasswordFile  string        `yaml:"password_file"`
	CertFile      string        `yaml:"cert_file"`
	KeyFile       string        `yaml:"key_file"`
	CAFile        string        `yaml:"ca_file"`
	BaseModuleTag string        `yaml:"base_module_tag"`
	Arches        []string      `yaml:"arches"`
	Priority      int           `yaml:"priority"`
	AllowedSCM    []string      `yaml:"allowed_scm"`
	PollMin       time.Duration `yaml:"poll_min"`
	PollMax       time.Duration `yaml:"poll_max"`
	// TagPermission is MBS's koji_tag_permission: the permission the
	// module's tags require.
	TagPermission string `yaml:"tag_permission"`
	// RepoTimeout bounds each wait for a build tag's repo (koji.BackendOptions.RepoTimeout).
	RepoTimeout time.Duration `yaml:"repo_timeout"`
	// WebURL is the Koji web UI's base URL (e.g.
	// https://koji.example.org/koji): the API and the build pages link
	// each component's task and the module's tag there
	// (api.Options.KojiWebURL).
	WebURL string `yaml:"web_url"`
}

func (k *kojiConfig) validate() error {
	switch {
	case k.HubURL == "":
		return errors.New("backend.koji.hub_url: required")
	case k.BaseModuleTag == "":
		return errors.New("backend.koji.base_module_tag: required")
	case k.Auth != "password" && k.Auth != "ssl":
		return fmt.Errorf("backend.koji.auth: %q, want password or ssl", k.Auth)
	case k.Auth == "password" && k.User == "":
		return errors.New("backend.koji.user: required with auth: password")
	case k.Auth == "ssl" && (k.CertFile == "" || k.KeyFile == ""):
		return errors.New("backend.koji.cert_file and key_file: required with auth: ssl")
	case k.RepoTimeout < 0:
		return fmt.Errorf("backend.koji.repo_timeout: %s, want 0 (the default, %s) or more", k.RepoTimeout, koji.DefaultRepoTimeout)
	}
	if k.WebURL != "" {
		u, err := url.Parse(k.WebURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("backend.koji.web_url: %q, want the http(s) base URL of Koji's web UI, e.g. https://koji.example.org/koji", k.WebURL)
		}
	}
	return nil
}

// kojiWebURL is the Koji web UI the API links to: backend.koji.web_url,
// with the Koji backend only.
func (c *config) kojiWebURL() string {
	if c.Backend.Kind != "koji" {
		return ""
	}
	return c.Backend.Koji.WebURL
}

// newBackend builds the configured backend and the name that goes into
// build identities.
func newBackend(ctx context.Context, cfg *config, store *state.Store, logger *slog.Logger) (runner.Backend, string, error) {
	switch cfg.Backend.Kind {
	case "koji":
		return newKojiBackend(ctx, &cfg.Backend.Koji, store, logger)
	default:
		sandbox := serveSandboxMode(cfg.Backend.Local.Sandbox)
		// Component sources come from the mirrors the planner fetches on
		// push (data_dir/mirrors; Mirrors on one directory share their
		// locks in the process), exported without history.
		fetchURLs, err := cfg.fetchPolicy()
		if err != nil {
			return nil, "", err
		}
		mirrors, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(cfg.DataDir, "mirrors"), Logger: logger, URLs: fetchURLs})
		if err != nil {
			return nil, "", err
		}
		be, err := local.New(local.Options{URLs: fetchURLs,
			WorkDir: filepath.Join(cfg.DataDir, "builds"), Parallel: cfg.Backend.Local.Parallel,
			Sandbox: sandbox, OnFailure: cfg.Backend.Local.OnFailure, Logger: logger,
			Lookaside: cfg.Backend.Local.Lookaside, NoDeps: cfg.Backend.Local.NoDeps,
			Slots: runner.NewLimiter(cfg.Build.MaxComponents), Sources: mirrors, Uploads: uploadsDir(cfg),
		})
		if errors.Is(err, local.ErrSandboxUnavailable) {
			return nil, "", fmt.Errorf("backend.local.sandbox: the build sandbox cannot work on this machine, so rida will not build "+
				"packagers' specs here: %w\n"+
				"Install bubblewrap (scripts/install-deps) and allow unprivileged user namespaces "+
				"(sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0), "+
				"or set backend.local.sandbox: \"off\" to build without a sandbox "+
				"(specs then run as the rida user, with network, and can read rida's data directory and secrets)", err)
		}
		if err == nil && sandbox == local.SandboxOff {
			logger.Warn("backend.local.sandbox is \"off\": packagers' specs run as the rida user, with network, and can read rida's data directory and secrets")
		}
		return be, "local", err
	}
}

// serveSandboxMode maps backend.local.sandbox to the backend's mode for a
// server: a server never falls back silently, so "auto" (and an empty
// value) require the sandbox like "on"; only an explicit "off" disables it.
func serveSandboxMode(mode string) string {
	switch mode {
	case "", local.SandboxAuto:
		return local.SandboxOn
	}
	return mode
}

func newKojiBackend(ctx context.Context, k *kojiConfig, store *state.Store, logger *slog.Logger) (runner.Backend, string, error) {
	httpClient := &http.Client{Timeout: 10 * time.Minute}
	if k.Auth == "ssl" || k.CAFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if k.CAFile != "" {
			pem, err := os.ReadFile(k.CAFile)
			if err != nil {
				return nil, "", fmt.Errorf("backend.koji.ca_file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, "", fmt.Errorf("backend.koji.ca_file %s: no PEM certificate in it", k.CAFile)
			}
		}
		if k.Auth == "ssl" {
			cert, err := tls.LoadX509KeyPair(k.CertFile, k.KeyFile)
			if err != nil {
				return nil, "", fmt.Errorf("backend.koji.cert_file/key_file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		httpClient.Transport = &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}
	}
	client, err := koji.NewClient(koji.ClientOptions{HubURL: k.HubURL, HTTPClient: httpClient, Logger: logger})
	if err != nil {
		return nil, "", err
	}
	if k.Auth == "ssl" {
		err = client.SSLLogin(ctx)
	} else {
		var password string
		password, err = lookupSecret(os.Getenv, k.PasswordEnv, k.PasswordFile)
		switch {
		case err != nil:
			err = fmt.Errorf("backend.koji.password_file: %w", err)
		case password == "":
			err = fmt.Errorf("backend.koji: no password in %s", where(k.PasswordEnv, k.PasswordFile))
		default:
			err = client.Login(ctx, k.User, password)
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("koji login to %s: %w", k.HubURL, err)
	}
	be, err := koji.NewBackend(koji.BackendOptions{
		Client: client, TopURL: k.TopURL, Arches: k.Arches, BaseModuleTag: k.BaseModuleTag, Priority: k.Priority,
		AllowedSCM: k.AllowedSCM, Owner: k.User, Logger: logger, PollMin: k.PollMin, PollMax: k.PollMax,
		Intents: kojiIntents{store}, TagPermission: k.TagPermission, RepoTimeout: k.RepoTimeout,
	})
	return be, "koji:" + k.HubURL, err
}

// kojiIntents keeps the Koji backend's submission intents in rida's store,
// so a restart finds the tasks instead of submitting them again.
type kojiIntents struct{ s *state.Store }

var _ koji.IntentStore = kojiIntents{}

func (k kojiIntents) RecordIntent(ctx context.Context, buildID int64, component, src string) error {
	return k.s.RecordKojiIntent(ctx, buildID, component, src)
}

func (k kojiIntents) RecordTask(ctx context.Context, buildID int64, component string, taskID int) error {
	return k.s.RecordKojiTask(ctx, buildID, component, taskID)
}

func (k kojiIntents) Tasks(ctx context.Context, buildID int64) (map[string]koji.Intent, error) {
	in, err := k.s.KojiIntents(ctx, buildID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]koji.Intent, len(in))
	for key, v := range in {
		out[key] = koji.Intent{Src: v.Src, TaskID: v.TaskID}
	}
	return out, nil
}
