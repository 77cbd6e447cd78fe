package api

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/jcmturner/goidentity/v6"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// KerberosAuth accepts Kerberos tickets through SPNEGO (an
// "Authorization: Negotiate <token>" header, as requests_kerberos and
// curl --negotiate send). The authenticated user is the client principal
// without its realm, as in MBS.
type KerberosAuth struct {
	keytab    *keytab.Keytab
	principal string
}

// NewKerberosAuth loads the service keytab at path. principal, if not
// empty, is the keytab entry to use (e.g. "HTTP/rida.example.org");
// otherwise the entry named by each ticket's service principal is used.
func NewKerberosAuth(path, principal string) (*KerberosAuth, error) {
	kt, err := keytab.Load(path)
	if err != nil {
		return nil, fmt.Errorf("kerberos keytab %s: %w", path, err)
	}
	if len(kt.Entries) == 0 {
		return nil, fmt.Errorf("kerberos keytab %s has no keys", path)
	}
	return &KerberosAuth{keytab: kt, principal: principal}, nil
}

// authenticate checks r's SPNEGO token and returns the user name.
func (k *KerberosAuth) authenticate(r *http.Request) (string, error) {
	// gokrb5's handler validates the token; it calls the inner handler only
	// for a valid ticket. Its log lines say why a token was refused; they
	// hold no key material.
	var why bytes.Buffer
	settings := []func(*service.Settings){
		service.Logger(log.New(&why, "", 0)),
		// rida uses no Active Directory group data, and MIT KDCs' PACs
		// need not decode.
		service.DecodePAC(false),
		service.MaxClockSkew(5 * time.Minute),
	}
	if k.principal != "" {
		settings = append(settings, service.KeytabPrincipal(k.principal))
	}
	var user string
	inner := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if id := goidentity.FromHTTPRequestContext(r); id != nil && id.Authenticated() {
			user = id.UserName()
		}
	})
	spnego.SPNEGOKRB5Authenticate(inner, k.keytab, settings...).ServeHTTP(discardWriter{}, r)
	if user == "" {
		reason := strings.TrimSpace(why.String())
		if i := strings.LastIndexByte(reason, '\n'); i >= 0 {
			reason = reason[i+1:]
		}
		// Drop gokrb5's "<remote address> - " prefix.
		if _, after, ok := strings.Cut(reason, " - "); ok {
			reason = after
		}
		return "", errorf(http.StatusUnauthorized, "the Kerberos (SPNEGO) token was refused: %s", cmp.Or(reason, "not a valid ticket for this service"))
	}
	return user, nil
}

// discardWriter takes gokrb5's own answers, which rida replaces with its
// JSON errors.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

// OIDCAuth accepts OpenID Connect access tokens ("Authorization: Bearer
// <token>"). A JWT's signature is checked against the provider's published
// keys (found by OpenID discovery from Issuer), and its issuer, audience
// and expiry are checked. An opaque token is checked by RFC 7662
// introspection at the provider (as MBS does), when Introspection is set;
// the same audience, scope and group rules then apply to the answer.
type OIDCAuth struct {
	// Issuer is the provider's issuer URL.
	Issuer string
	// Audience must be one of the token's "aud" values (the resource or
	// client id the provider issues tokens for rida under).
	Audience string
	// RequiredScopes must all be in the token's "scope" (MBS's
	// OIDC_REQUIRED_SCOPE).
	RequiredScopes []string
	// AllowedGroups, if not empty: the user must be in one of them (MBS's
	// ALLOWED_GROUPS). Groups come from GroupsClaim.
	AllowedGroups []string
	// UserClaim names the claim that is the user name. Default
	// "preferred_username", falling back to "sub" when the token has none.
	UserClaim string
	// GroupsClaim names the claim listing the user's groups. Default
	// "groups".
	GroupsClaim string
	// Introspection, if set, checks opaque tokens at the provider's RFC
	// 7662 introspection endpoint.
	Introspection *Introspection
	// HTTPClient fetches the discovery document and keys and makes the
	// introspection calls. Default http.DefaultClient.
	HTTPClient *http.Client

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	provider *oidc.Provider
}

// Introspection is how rida, as a confidential client of the provider,
// calls its token introspection endpoint (RFC 7662).
type Introspection struct {
	// URL is the introspection endpoint; empty: the discovery document's
	// introspection_endpoint.
	URL string
	// ClientID and ClientSecret authenticate rida to the endpoint (HTTP
	// Basic, client_secret_basic). The secret is never logged.
	ClientID, ClientSecret string
}

// verifierFor discovers the provider once; a failed discovery is retried
// by the next request, so rida starts while the provider is down.
func (o *OIDCAuth) verifierFor(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	if o.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, o.HTTPClient)
	}
	// The keys are fetched later, outside this request: keep the client
	// but not the request's deadline.
	p, err := oidc.NewProvider(context.WithoutCancel(ctx), o.Issuer)
	if err != nil {
		return nil, err
	}
	// rida checks the audience itself, to say which one it wanted.
	o.verifier = p.Verifier(&oidc.Config{SkipClientIDCheck: true})
	o.provider = p
	return o.verifier, nil
}

// introspectionURL is Introspection.URL, else the provider's advertised
// endpoint.
func (o *OIDCAuth) introspectionURL(ctx context.Context) (string, error) {
	if o.Introspection.URL != "" {
		return o.Introspection.URL, nil
	}
	if _, err := o.verifierFor(ctx); err != nil {
		return "", fmt.Errorf("api: OIDC discovery at %s: %w", o.Issuer, err)
	}
	o.mu.Lock()
	p := o.provider
	o.mu.Unlock()
	var meta struct {
		Endpoint string `json:"introspection_endpoint"`
	}
	if err := p.Claims(&meta); err != nil || meta.Endpoint == "" {
		return "", fmt.Errorf("api: the OIDC provider %s advertises no introspection_endpoint; set api.auth.oidc.introspection.url", o.Issuer)
	}
	return meta.Endpoint, nil
}

// introspect asks the provider about the opaque token raw (RFC 7662) and
// returns the answer's claims, refusing an inactive or expired token.
func (o *OIDCAuth) introspect(ctx context.Context, raw string) (map[string]any, error) {
	endpoint, err := o.introspectionURL(ctx)
	if err != nil {
		return nil, err
	}
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("api: OIDC introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: the client id and secret are form-encoded before
	// they go into Basic.
	req.SetBasicAuth(url.QueryEscape(o.Introspection.ClientID), url.QueryEscape(o.Introspection.ClientSecret))
	hc := cmp.Or(o.HTTPClient, http.DefaultClient)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: OIDC introspection at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("api: OIDC introspection at %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		// A 401 here means rida's own client credentials are wrong: rida's
		// trouble, not the caller's.
		return nil, fmt.Errorf("api: OIDC introspection at %s answered %s (check api.auth.oidc.introspection's client)", endpoint, resp.Status)
	}
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		return nil, fmt.Errorf("api: OIDC introspection at %s: not JSON: %w", endpoint, err)
	}
	if active, _ := claims["active"].(bool); !active {
		return nil, errorf(http.StatusUnauthorized, "the OIDC access token is not active (the provider says it expired, was revoked, or was never issued); get a new one")
	}
	if exp, ok := claims["exp"].(float64); ok && time.Unix(int64(exp), 0).Before(time.Now()) {
		return nil, errorf(http.StatusUnauthorized, "the OIDC access token expired at %s; get a new one", time.Unix(int64(exp), 0).UTC().Format(time.RFC3339))
	}
	if iss, ok := claims["iss"].(string); ok && iss != o.Issuer {
		return nil, errorf(http.StatusUnauthorized, "the OIDC access token was issued by %s, not by %s", iss, o.Issuer)
	}
	return claims, nil
}

// isJWT says whether raw has a JWT's shape (three dot-separated parts);
// anything else is an opaque token.
func isJWT(raw string) bool { return strings.Count(raw, ".") == 2 }

// authenticate checks the access token raw (a JWT locally, an opaque token
// by introspection) and returns the user and groups.
func (o *OIDCAuth) authenticate(ctx context.Context, raw string) (user string, groups []string, err error) {
	var claims map[string]any
	if isJWT(raw) {
		if claims, err = o.verifyJWT(ctx, raw); err != nil {
			return "", nil, err
		}
	} else {
		if o.Introspection == nil {
			return "", nil, errorf(http.StatusUnauthorized, "the bearer token is neither one of the configured api.tokens nor an OIDC access token (a JWT; opaque tokens need api.auth.oidc.introspection)")
		}
		if claims, err = o.introspect(ctx, raw); err != nil {
			return "", nil, err
		}
	}
	aud := claimStrings(claims["aud"])
	if !slices.Contains(aud, o.Audience) {
		return "", nil, errorf(http.StatusUnauthorized, "the OIDC access token is for audience %s, not for rida (%s)", cmp.Or(strings.Join(aud, ", "), "none"), o.Audience)
	}
	return o.userAndGroups(claims)
}

// verifyJWT checks a JWT access token's signature, issuer and expiry and
// returns its claims.
func (o *OIDCAuth) verifyJWT(ctx context.Context, raw string) (map[string]any, error) {
	v, err := o.verifierFor(ctx)
	if err != nil {
		return nil, fmt.Errorf("api: OIDC discovery at %s: %w", o.Issuer, err)
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) {
			return nil, errorf(http.StatusUnauthorized, "the OIDC access token expired at %s; get a new one", exp.Expiry.UTC().Format(time.RFC3339))
		}
		return nil, errorf(http.StatusUnauthorized, "the OIDC access token was refused: %s", strings.TrimPrefix(err.Error(), "oidc: "))
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, errorf(http.StatusUnauthorized, "the OIDC access token's claims are not readable: %v", err)
	}
	return claims, nil
}

// userAndGroups applies the scope and group rules to a token's claims
// and names its user.
func (o *OIDCAuth) userAndGroups(claims map[string]any) (user string, groups []string, err error) {
	scopes := claimStrings(claims["scope"])
	if len(scopes) == 0 {
		scopes = claimStrings(claims["scp"])
	}
	for _, want := range o.RequiredScopes {
		if !slices.Contains(scopes, want) {
			return "", nil, errorf(http.StatusForbidden, "the OIDC access token lacks the required scope %q (it has: %s)", want, cmp.Or(strings.Join(scopes, " "), "none"))
		}
	}
	if o.UserClaim == "" {
		user, _ = claims["preferred_username"].(string)
		if user == "" {
			// RFC 7662's "username", then the subject.
			user, _ = claims["username"].(string)
		}
		if user == "" {
			user, _ = claims["sub"].(string)
		}
	} else {
		user, _ = claims[o.UserClaim].(string)
	}
	if user == "" {
		return "", nil, errorf(http.StatusUnauthorized, "the OIDC access token has no user name in claim %q", cmp.Or(o.UserClaim, "preferred_username"))
	}
	groups = claimStrings(claims[cmp.Or(o.GroupsClaim, "groups")])
	if len(o.AllowedGroups) > 0 && !slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(o.AllowedGroups, g) }) {
		return "", nil, errorf(http.StatusForbidden, "%s is not in an allowed group (%s)", user, strings.Join(o.AllowedGroups, ", "))
	}
	return user, groups, nil
}

// claimStrings reads a claim that is a space-separated string or a list of
// strings.
func claimStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// identity is who made a write call.
type identity struct {
	name   string
	groups []string
}

// who authenticates a write call and returns the user's name.
func (s *Server) who(r *http.Request) (string, error) {
	id, err := s.identify(r)
	return id.name, err
}

// identify authenticates a write call by one of the configured methods:
// a static api.tokens token or an OIDC access token (Authorization:
// Bearer), or a Kerberos ticket (Authorization: Negotiate).
func (s *Server) identify(r *http.Request) (identity, error) {
	var id identity
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Negotiate") && s.opts.Kerberos != nil:
		name, err := s.opts.Kerberos.authenticate(r)
		if err != nil {
			return id, err
		}
		id.name = name
	case strings.EqualFold(scheme, "Bearer") && cred != "":
		for n, want := range s.opts.Tokens {
			// Compare against every token so the time does not say which matched.
			if want != "" && subtle.ConstantTimeCompare([]byte(cred), []byte(want)) == 1 {
				id.name = n
			}
		}
		if id.name != "" {
			break
		}
		if s.opts.OIDC == nil {
			return id, errorf(http.StatusUnauthorized, "the bearer token is not one of the configured api.tokens")
		}
		name, groups, err := s.opts.OIDC.authenticate(r.Context(), cred)
		if err != nil {
			return id, err
		}
		id.name, id.groups = name, groups
	default:
		return id, errorf(http.StatusUnauthorized, "this call needs %s", s.wantedAuth())
	}
	if rec, ok := r.Context().Value(auditKey{}).(*auditRecord); ok {
		rec.who = id.name
	}
	return id, nil
}

// wantedAuth names the Authorization headers this server accepts.
func (s *Server) wantedAuth() string {
	var ways []string
	if s.opts.Kerberos != nil {
		ways = append(ways, "an Authorization: Negotiate header (a Kerberos ticket)")
	}
	switch {
	case s.opts.OIDC != nil:
		ways = append(ways, "an Authorization: Bearer <token> header (an OIDC access token or one of api.tokens)")
	case s.opts.Kerberos == nil || len(s.opts.Tokens) > 0:
		ways = append(ways, "an Authorization: Bearer <token> header")
	}
	return strings.Join(ways, " or ")
}

// authMethod is about/'s auth_method. MBS has one AUTH_METHOD, "oidc" by
// default; when several methods are configured rida follows that default
// and names oidc first, then kerberos. With static tokens only it is
// "bearer".
func (s *Server) authMethod() string {
	switch {
	case s.opts.OIDC != nil:
		return "oidc"
	case s.opts.Kerberos != nil:
		return "kerberos"
	}
	return "bearer"
}

// mayCancel is MBS's rule for PATCH {"state": "failed"}: the build's owner
// or an admin (Options.AdminUsers, Options.AdminGroups).
func (s *Server) mayCancel(ctx context.Context, id identity, buildID uint64) error {
	mb, err := s.opts.Store.GetModuleBuild(ctx, buildID)
	if err != nil {
		return err
	}
	if mb.Owner == id.name || slices.Contains(s.opts.AdminUsers, id.name) ||
		slices.ContainsFunc(id.groups, func(g string) bool { return slices.Contains(s.opts.AdminGroups, g) }) {
		return nil
	}
	return errorf(http.StatusForbidden, "You are not the owner of module build %d (%s) and not an admin; only the owner or an admin may cancel it", buildID, cmp.Or(mb.Owner, "no owner"))
}

// challengeWriter adds the WWW-Authenticate challenges of the configured
// methods to a 401 answer, so clients such as requests_kerberos know to
// send a Kerberos ticket.
type challengeWriter struct {
	http.ResponseWriter
	s *Server
}

func (w *challengeWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		if w.s.opts.Kerberos != nil {
			w.Header().Add("WWW-Authenticate", "Negotiate")
		}
		if w.s.opts.OIDC != nil || len(w.s.opts.Tokens) > 0 {
			w.Header().Add("WWW-Authenticate", `Bearer realm="rida"`)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming answers flush through the wrapper.
func (w *challengeWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *challengeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
