package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestConfig_URLs(t *testing.T) {
	dir := t.TempDir()
	load := func(t *testing.T, yml string) (*config, error) {
		t.Helper()
		p := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".yaml")
		if err := os.WriteFile(p, []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
		return loadConfig(p)
	}
	t.Run("BuiltIn", func(t *testing.T) {
		c, err := loadConfig("")
		if err != nil {
			t.Fatal(err)
		}
		fetch, err := c.fetchPolicy()
		if err != nil {
			t.Fatal(err)
		}
		for url, want := range map[string]bool{
			"https://github.com/o/r.git": true, "https://github.com.evil/o/r.git": false,
			"file:///tmp/x": false, "file:///var/lib/rida/mirrors/x.git": false, "http://169.254.169.254/": false,
		} {
			if fetch.Allows(url) != want {
				t.Errorf("built-in fetch policy: Allows(%s) = %v, want %v", url, !want, want)
			}
		}
		clone, err := c.cloneURLs()
		if err != nil {
			t.Fatal(err)
		}
		if !clone["github"].Allows("https://github.com/o/r.git") || !clone["gitea"].Empty() || !clone["gitlab"].Empty() {
			t.Errorf("built-in clone URL policies: github %s, gitea %s, gitlab %s", clone["github"], clone["gitea"], clone["gitlab"])
		}
		if c.URLs.AllowComponentRepository || c.URLs.AllowComponentCache {
			t.Error("component repository/cache overrides are allowed by default")
		}
	})
	t.Run("ForgeHosts", func(t *testing.T) {
		c := &config{}
		for _, tc := range []struct {
			f    forgeConfig
			want []string
		}{
			{forgeConfig{Kind: "github"}, []string{"https://github.com/"}},
			{forgeConfig{Kind: "github", APIURL: "https://api.github.com/"}, []string{"https://github.com/"}},
			{forgeConfig{Kind: "github", APIURL: "https://ghe.example/api/v3/"}, []string{"https://ghe.example/"}},
			{forgeConfig{Kind: "gitea", APIURL: "https://gitea.example:3000/api/v1/"}, []string{"https://gitea.example:3000/"}},
			{forgeConfig{Kind: "gitlab"}, nil},
			{forgeConfig{Kind: "gitlab", APIURL: "https://gitlab.example.com", Hosts: []string{"https://git.example.com/pkgs/"}}, []string{"https://git.example.com/pkgs/"}},
		} {
			if got := c.forgeHosts(tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("forgeHosts(%+v) = %q, want %q", tc.f, got, tc.want)
			}
		}
	})
	for name, tc := range map[string]struct{ yml, want string }{
		"NotAURL":       {"urls: {allowed: [\"host/rpms\"]}\n", "urls.allowed"},
		"Password":      {"urls: {allowed: [\"https://u:pw@host/\"]}\n", "urls.allowed"},
		"ForgeHosts":    {"forges: [{kind: github, secret_env: X, hosts: [\"https://\"]}]\n", "forges[0] (github).hosts"},
		"AllowedSCM":    {"api: {allowed_scm: [\"src.example.org/modules\"]}\n", "api.allowed_scm"},
		"LookasideHost": {"backend: {local: {lookaside: \"https:///pkgs\"}}\n", "backend.local.lookaside"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, tc.yml)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), ":pw@") {
				t.Errorf("loadConfig: %v; want an error naming %s and no password", err, tc.want)
			}
		})
	}
}
