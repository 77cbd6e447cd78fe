package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/urlpolicy"
)

// urlsConfig is the urls: section: where rida may fetch from, and which
// URLs a modulemd may name itself (docs/security.md, "URLs").
type urlsConfig struct {
	// Allowed are URL prefixes rida may fetch from besides the ones the
	// rest of the configuration names (see fetchPolicy).
	Allowed []string `yaml:"allowed"`
	// AllowComponentRepository and AllowComponentCache are MBS's
	// RPMS_ALLOW_REPOSITORY and RPMS_ALLOW_CACHE.
	AllowComponentRepository bool `yaml:"allow_component_repository"`
	AllowComponentCache      bool `yaml:"allow_component_cache"`
	// extra are rida serve's --allow-url prefixes: fetched from, and
	// allowed as every forge's clone URLs.
	extra []string
}

// forgeHosts returns the URL prefixes forge f's clone URLs must be under:
// its hosts, else the scheme and host of its api_url (github.com for
// GitHub without one, github.com also for api.github.com), plus
// --allow-url's. A forge of another kind without api_url or hosts gets
// none: its deliveries are refused until one is configured.
func (c *config) forgeHosts(f forgeConfig) []string {
	hosts := f.Hosts
	if len(hosts) == 0 {
		switch u, err := url.Parse(f.APIURL); {
		case f.APIURL == "" && f.Kind == "github":
			hosts = []string{"https://github.com/"}
		case f.APIURL != "" && err == nil && u.Host != "":
			host := u.Host
			if strings.EqualFold(host, "api.github.com") {
				host = "github.com"
			}
			hosts = []string{u.Scheme + "://" + host + "/"}
		}
	}
	return append(append([]string(nil), hosts...), c.URLs.extra...)
}

// cloneURLs is the planner's policy per forge kind (forgeHosts).
func (c *config) cloneURLs() (map[string]*urlpolicy.Policy, error) {
	out := map[string]*urlpolicy.Policy{}
	for i, f := range c.Forges {
		p, err := urlpolicy.New(c.forgeHosts(f)...)
		if err != nil {
			return nil, fmt.Errorf("forges[%d] (%s).hosts: %w", i, f.Kind, err)
		}
		out[f.Kind] = p
	}
	return out, nil
}

// fetchPolicy is what rida serve may fetch from (git mirrors, ls-remote,
// exports, lookaside downloads): urls.allowed, every forge's hosts,
// api.allowed_scm, repos.component_base_url, repos.module_repos,
// backend.local.lookaside and --allow-url's. Nothing else; in particular no
// file:// URL unless one of those names it.
func (c *config) fetchPolicy() (*urlpolicy.Policy, error) {
	var parts []*urlpolicy.Policy
	add := func(key string, prefixes ...string) error {
		var ps []string
		for _, p := range prefixes {
			if p == "" {
				continue
			}
			if strings.HasPrefix(p, "/") {
				// An absolute path (repos.module_repos may hold one):
				// file://<path>, as scm.NormalizeURL reads it. A relative
				// one is no prefix: refused below.
				n, err := scm.NormalizeURL(p)
				if err != nil {
					return fmt.Errorf("%s: %w", key, err)
				}
				p = n
			}
			ps = append(ps, p)
		}
		pol, err := urlpolicy.New(ps...)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		parts = append(parts, pol)
		return nil
	}
	if err := add("urls.allowed", c.URLs.Allowed...); err != nil {
		return nil, err
	}
	for i, f := range c.Forges {
		if err := add(fmt.Sprintf("forges[%d] (%s).hosts", i, f.Kind), c.forgeHosts(f)...); err != nil {
			return nil, err
		}
	}
	for _, k := range []struct {
		key string
		v   []string
	}{
		{"api.allowed_scm", c.API.AllowedSCM},
		{"repos.component_base_url", []string{c.Repos.ComponentBaseURL}},
		{"repos.module_repos", c.Repos.ModuleRepos},
		{"backend.local.lookaside", []string{c.Backend.Local.Lookaside}},
	} {
		if err := add(k.key, k.v...); err != nil {
			return nil, err
		}
	}
	return urlpolicy.Merge(parts...), nil
}

// componentURLs is what a modulemd may name itself (runner.ComponentURLs).
func (c *config) componentURLs(fetch *urlpolicy.Policy) *runner.ComponentURLs {
	return &runner.ComponentURLs{
		AllowRepository: c.URLs.AllowComponentRepository, AllowCache: c.URLs.AllowComponentCache, Policy: fetch,
	}
}

// validateURLs checks every URL prefix the configuration names, naming
// the key at fault.
func (c *config) validateURLs() error {
	if _, err := c.fetchPolicy(); err != nil {
		return err
	}
	_, err := c.cloneURLs()
	return err
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value.
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
