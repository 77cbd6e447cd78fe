package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// oidcProvider is a real OpenID provider on loopback: panva's certified
// oidc-provider from npm, run by node from testdata/oidc (npm ci installs
// it, from the committed package-lock.json, into a temporary directory).
type oidcProvider struct {
	issuer, tokenURL, revocationURL string
}

func startOIDCProvider(t *testing.T) *oidcProvider {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: the OIDC test runs panva's oidc-provider on Node.js — %v", tool, err)
		}
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "provider.mjs"} {
		b, err := os.ReadFile(filepath.Join("testdata", "oidc", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	npm := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	npm.Dir = dir
	if out, err := npm.CombinedOutput(); err != nil {
		t.Fatalf("npm ci (oidc-provider): %v\n%s", err, out)
	}
	cmd := exec.Command("node", "provider.mjs")
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	p := &oidcProvider{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if iss, ok := strings.CutPrefix(sc.Text(), "ISSUER "); ok {
			p.issuer = iss
			break
		}
	}
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done
		if t.Failed() {
			t.Logf("oidc-provider stderr:\n%s", stderr.String())
		}
	})
	if p.issuer == "" {
		_ = cmd.Process.Kill()
		t.Fatal("the OIDC provider did not start")
	}
	resp, err := http.Get(p.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var disc struct {
		TokenEndpoint      string `json:"token_endpoint"`
		RevocationEndpoint string `json:"revocation_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&disc); err != nil || disc.TokenEndpoint == "" {
		t.Fatalf("discovery: %v %+v", err, disc)
	}
	p.tokenURL, p.revocationURL = disc.TokenEndpoint, disc.RevocationEndpoint
	return p
}

// token gets an access token by the client_credentials grant, for the
// resource (the audience) with the scope.
func (p *oidcProvider) token(t *testing.T, client, resource, scope string) string {
	t.Helper()
	resp := p.post(t, p.tokenURL, client, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}, "resource": {resource}})
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token for %s: %d %v %s", client, resp.StatusCode, err, tok.Error)
	}
	return tok.AccessToken
}

// post sends form to one of the provider's endpoints, authenticated as
// client (its secret is "<client>-secret").
func (p *oidcProvider) post(t *testing.T, endpoint, client string, form url.Values) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, client+"-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestServe_OIDC: 'rida serve' with api.auth.oidc accepts access tokens
// that a real OpenID provider issued, owned by the token's user, and
// refuses expired, wrong-audience and missing-scope tokens and users
// outside the allowed groups, saying which.
func TestServe_OIDC(t *testing.T) {
	p := startOIDCProvider(t)
	const rida = "https://rida.test/"
	a := startAuthServe(t, fmt.Sprintf("  tokens: [{name: ci, token_env: T_API}]\n  auth: {oidc: {issuer: %q, audience: %q, required_scopes: [rida-submit], allowed_groups: [packager, rida-admins]}, admin_groups: [rida-admins]}", p.issuer, rida),
		"T_API=ci-token")

	if _, _, about := a.call(http.MethodGet, "/about/", "", ""); about["auth_method"] != "oidc" {
		t.Errorf("about auth_method = %v", about["auth_method"])
	}
	code, challenges, body := a.call(http.MethodPost, "/module-builds/", "", a.submitBody())
	wantError(t, "no token", code, body, 401, "an OIDC access token")
	if len(challenges) != 1 || challenges[0] != `Bearer realm="rida"` {
		t.Errorf("401 WWW-Authenticate = %q; want only Bearer", challenges)
	}

	short := p.token(t, "alice-short", rida, "rida-submit")
	refusals := []struct {
		what, token string
		status      int
		msg         string
	}{
		{"missing scope", p.token(t, "alice-cli", rida, "other"), 403, `the OIDC access token lacks the required scope "rida-submit" (it has: other)`},
		{"wrong audience", p.token(t, "alice-cli", "https://other.test/", "rida-submit"), 401, "the OIDC access token is for audience https://other.test/, not for rida (https://rida.test/)"},
		{"not in an allowed group", p.token(t, "eve-cli", rida, "rida-submit"), 403, "eve is not in an allowed group (packager, rida-admins)"},
		{"not a JWT", "not-a-token", 401, "neither one of the configured api.tokens nor an OIDC access token"},
		{"bad signature", tamper(p.token(t, "alice-cli", rida, "rida-submit")), 401, "the OIDC access token was refused"},
	}
	for _, r := range refusals {
		code, _, body := a.call(http.MethodPost, "/module-builds/", "Bearer "+r.token, a.submitBody())
		wantError(t, r.what, code, body, r.status, r.msg)
	}
	time.Sleep(2100 * time.Millisecond) // alice-short's tokens live 1s
	code, _, body = a.call(http.MethodPost, "/module-builds/", "Bearer "+short, a.submitBody())
	wantError(t, "expired", code, body, 401, "the OIDC access token expired at ")

	// A good token submits; the build is alice's.
	code, _, body = a.call(http.MethodPost, "/module-builds/", "Bearer "+p.token(t, "alice-cli", rida, "rida-submit"), a.submitBody())
	if code != 201 {
		t.Fatalf("submit with an OIDC token: %d %v", code, body)
	}
	id := a.running(body)
	if got := a.build(id); got["owner"] != "alice" {
		t.Errorf("owner = %v, want alice (preferred_username)", got["owner"])
	}

	// Cancel: bob is not the owner; boss is in an admin group.
	path := fmt.Sprintf("/module-builds/%v", id)
	code, _, body = a.call(http.MethodPatch, path, "Bearer "+p.token(t, "bob-cli", rida, "rida-submit"), `{"state": "failed"}`)
	wantError(t, "cancel by bob", code, body, 403, "not the owner of module build")
	code, _, body = a.call(http.MethodPatch, path, "Bearer "+p.token(t, "boss-cli", rida, "rida-submit"), `{"state": "failed"}`)
	if code != 200 {
		t.Fatalf("cancel by an admin: %d %v", code, body)
	}
	if got := a.waitState(id, "failed"); !strings.Contains(fmt.Sprint(got["state_reason"]), "cancelled by boss") {
		t.Errorf("state_reason = %v", got["state_reason"])
	}

	// Static tokens still work next to OIDC.
	code, _, body = a.call(http.MethodPost, "/module-builds/", "Bearer ci-token", a.submitBody())
	if code != 201 {
		t.Fatalf("submit with the ci token: %d %v", code, body)
	}
	if got := a.build(a.running(body)); got["owner"] != "ci" {
		t.Errorf("owner = %v, want ci", got["owner"])
	}
}

// tamper changes a JWT's signature.
func tamper(jwt string) string {
	i := strings.LastIndexByte(jwt, '.')
	sig := []byte(jwt[i+1:])
	if sig[3] == 'A' {
		sig[3] = 'B'
	} else {
		sig[3] = 'A'
	}
	return jwt[:i+1] + string(sig)
}

// revoke revokes the access token tok, as its client.
func (p *oidcProvider) revoke(t *testing.T, client, tok string) {
	t.Helper()
	resp := p.post(t, p.revocationURL, client, url.Values{"token": {tok}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %s", resp.Status)
	}
}

// TestServe_OIDCIntrospection: with api.auth.oidc.introspection, 'rida
// serve' checks opaque access tokens at the real provider's RFC 7662
// endpoint (found by discovery), as MBS does: an active token for rida's
// audience with the scope submits as its user; expired, revoked, unknown,
// wrong-audience, missing-scope and wrong-group tokens are refused saying
// why; JWTs are still checked locally; the introspection client's secret
// is never logged. With a wrong client secret, the caller is not blamed.
func TestServe_OIDCIntrospection(t *testing.T) {
	p := startOIDCProvider(t)
	const rida = "https://rida.test/"
	auth := func(secretEnv string) string {
		return fmt.Sprintf("  auth: {oidc: {issuer: %q, audience: %q, required_scopes: [rida-submit], allowed_groups: [packager],"+
			" introspection: {client_id: rida, client_secret_env: %s}}}", p.issuer, rida, secretEnv)
	}
	a := startAuthServe(t, auth("T_INTRO"), "T_INTRO=rida-secret")

	short := p.token(t, "carol-short-opaque", rida, "rida-submit")
	revoked := p.token(t, "carol-opaque", rida, "rida-submit")
	p.revoke(t, "carol-opaque", revoked)
	refusals := []struct {
		what, token string
		status      int
		msg         string
	}{
		{"revoked", revoked, 401, "the OIDC access token is not active"},
		{"never issued", "not-a-token-at-all", 401, "the OIDC access token is not active"},
		{"missing scope", p.token(t, "carol-opaque", rida, "other"), 403, `lacks the required scope "rida-submit" (it has: other)`},
		{"wrong audience", p.token(t, "carol-opaque", "https://other.test/", "rida-submit"), 401, "is for audience https://other.test/, not for rida"},
		{"not in an allowed group", p.token(t, "mallory-opaque", rida, "rida-submit"), 403, "mallory is not in an allowed group (packager)"},
	}
	for _, r := range refusals {
		code, _, body := a.call(http.MethodPost, "/module-builds/", "Bearer "+r.token, a.submitBody())
		wantError(t, r.what, code, body, r.status, r.msg)
	}
	time.Sleep(2100 * time.Millisecond) // carol-short's tokens live 1s
	code, _, body := a.call(http.MethodPost, "/module-builds/", "Bearer "+short, a.submitBody())
	wantError(t, "expired", code, body, 401, "the OIDC access token is not active")

	tok := p.token(t, "carol-opaque", rida, "rida-submit")
	if isJWTShaped := strings.Count(tok, ".") == 2; isJWTShaped {
		t.Fatalf("carol-opaque's token %q is a JWT; the provider should issue opaque ones", tok)
	}
	code, _, body = a.call(http.MethodPost, "/module-builds/", "Bearer "+tok, a.submitBody())
	if code != 201 {
		t.Fatalf("submit with an opaque token: %d %v", code, body)
	}
	if got := a.build(a.running(body)); got["owner"] != "carol" {
		t.Errorf("owner = %v, want carol (from the introspection answer)", got["owner"])
	}
	// A JWT is still verified locally: alice gets past authentication to
	// the 409 of a commit already being built.
	code, _, body = a.call(http.MethodPost, "/module-builds/", "Bearer "+p.token(t, "alice-cli", rida, "rida-submit"), a.submitBody())
	if code != http.StatusConflict {
		t.Fatalf("submit with a JWT: %d %v; want 409 (authenticated, same commit)", code, body)
	}
	if log, _ := os.ReadFile(a.log); strings.Contains(string(log), "rida-secret") || strings.Contains(string(log), tok) {
		t.Error("serve.log holds the introspection secret or an access token")
	}

	// rida's own client credentials wrong: rida's trouble, not the caller's.
	b := startAuthServe(t, auth("T_INTRO"), "T_INTRO=wrong-secret")
	code, _, body = b.call(http.MethodPost, "/module-builds/", "Bearer "+p.token(t, "carol-opaque", rida, "rida-submit"), b.submitBody())
	wantError(t, "wrong introspection secret", code, body, 500, "see rida's log")
	if log, _ := os.ReadFile(b.log); !strings.Contains(string(log), "check api.auth.oidc.introspection's client") || strings.Contains(string(log), "wrong-secret") {
		t.Errorf("serve.log should name the introspection client and not its secret:\n%s", log)
	}
}
