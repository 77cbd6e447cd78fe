package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rida-build/rida/api"
)

// TestConfig_APIAuth: api.auth's mistakes are refused at start, naming
// the key.
func TestConfig_APIAuth(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.keytab")
	if err := os.WriteFile(garbage, []byte("not a keytab"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"kerberos: {keytab: " + filepath.Join(dir, "missing.keytab") + "}", "api.auth.kerberos: kerberos keytab"},
		{"kerberos: {keytab: " + garbage + "}", "api.auth.kerberos: kerberos keytab"},
		{"kerberos: {principal: HTTP/x}", "api.auth.kerberos.principal is set but keytab is not"},
		{"oidc: {issuer: https://id.example.org/}", "api.auth.oidc.audience: required"},
		{"oidc: {introspection: {client_id: rida}}", "api.auth.oidc.introspection is set but api.auth.oidc.issuer is not"},
		{"oidc: {issuer: https://id.example.org/, audience: rida, introspection: {url: https://id.example.org/i}}", "api.auth.oidc.introspection: client_id is required"},
		{"oidc: {issuer: https://id.example.org/, audience: rida, introspection: {client_id: rida, client_secret_env: NOT_SET_X}}", "api.auth.oidc.introspection: no client secret in environment variable NOT_SET_X"},
	} {
		path := filepath.Join(dir, "rida.yaml")
		if err := os.WriteFile(path, []byte("api:\n  auth: {"+tc.yaml+"}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path)
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		var opts api.Options
		if err := cfg.apiAuth(&opts, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
