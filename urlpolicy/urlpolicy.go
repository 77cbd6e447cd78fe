// Package urlpolicy decides which URLs rida may fetch from: git
// repositories (mirrors, ls-remote, exports), lookaside files, submitted
// scmurls and the clone URLs webhook payloads name. A Policy is a list of
// allowed prefixes; URLs are compared parsed and cleaned, never as raw
// strings, so "https://host.evil/" is not under "https://host" and
// "https://host/rpms/../secret" is not under "https://host/rpms". It is pure:
// no I/O, no DNS.
//
// Canonical form (what Check returns and what callers then fetch):
//   - scheme and host lower-cased, a trailing dot of the host dropped, the
//     scheme's default port dropped (http 80, https 443, ssh 22, git 9418);
//   - the path cleaned ("..", "." and "//" resolved, no trailing slash),
//     "/" when empty; percent-escapes decoded before cleaning, so
//     "%2e%2e" is "..";
//   - file URLs have no host ("file://localhost/x" is "file:///x").
//
// Refused whatever the prefixes say: a URL that does not parse, is not
// absolute, has a query or fragment, a password, a user name outside ssh
// URLs, a control character in its path, a file URL naming another host,
// or a network URL without a host.
package urlpolicy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// ErrDenied is matched (errors.Is) by every *DeniedError.
var ErrDenied = errors.New("URL not allowed")

// DeniedError is a URL the policy refuses. URL is the URL as given with
// any password removed; Why says what is wrong, never quoting a secret.
type DeniedError struct {
	URL string
	Why string
}

// Error implements error.
func (e *DeniedError) Error() string {
	if e.URL == "" {
		return "URL not allowed: " + e.Why
	}
	return e.URL + " is not allowed: " + e.Why
}

// Is makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// Policy is a set of allowed URL prefixes. The zero Policy and New() with
// no prefixes allow nothing; a nil *Policy allows every URL that is
// well-formed (see the package comment), for callers without a policy
// (rida build-local, tests).
type Policy struct {
	rules []rule
}

// rule is one allowed prefix, in canonical form: path "/" allows every
// path of scheme://host.
type rule struct {
	scheme, host, path string
}

func (r rule) String() string {
	if r.path == "/" {
		return r.scheme + "://" + r.host + "/"
	}
	return r.scheme + "://" + r.host + r.path + "/"
}

// New parses prefixes, each "scheme://host[:port][/path]" ("file:///path"
// for local repositories). A prefix allows URLs of its scheme and exactly
// its host and port whose cleaned path is the prefix's path or below it on
// a segment boundary ("https://h/rpms" allows "https://h/rpms/x", not
// "https://h/rpmsx"). Errors name the prefix by index.
func New(prefixes ...string) (*Policy, error) {
	p := &Policy{}
	for i, raw := range prefixes {
		u, err := canonical(raw)
		if err != nil {
			var de *DeniedError
			if errors.As(err, &de) {
				return nil, fmt.Errorf("urlpolicy: prefix %d (%s): %s", i, redact(raw), de.Why)
			}
			return nil, fmt.Errorf("urlpolicy: prefix %d (%s): %w", i, redact(raw), err)
		}
		if u.User != nil {
			return nil, fmt.Errorf("urlpolicy: prefix %d (%s): a prefix has no user name", i, redact(raw))
		}
		p.rules = append(p.rules, rule{scheme: u.Scheme, host: u.Host, path: u.Path})
	}
	return p, nil
}

// MustNew is New for prefixes known to be valid; it panics on an error.
func MustNew(prefixes ...string) *Policy {
	p, err := New(prefixes...)
	if err != nil {
		panic(err)
	}
	return p
}

// Merge returns a policy allowing what any of ps allows. A nil policy
// among them makes the result nil (everything allowed).
func Merge(ps ...*Policy) *Policy {
	out := &Policy{}
	for _, p := range ps {
		if p == nil {
			return nil
		}
		out.rules = append(out.rules, p.rules...)
	}
	return out
}

// Empty reports whether p allows nothing (a nil policy allows everything).
func (p *Policy) Empty() bool { return p != nil && len(p.rules) == 0 }

// String lists the allowed prefixes, comma-separated; "nothing" for an
// empty policy and "any URL" for nil.
func (p *Policy) String() string {
	if p == nil {
		return "any URL"
	}
	if len(p.rules) == 0 {
		return "nothing"
	}
	s := make([]string, len(p.rules))
	for i, r := range p.rules {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}

// Check returns the canonical form of raw when p allows it, else a
// *DeniedError (errors.Is ErrDenied) saying why. Callers fetch the
// canonical form, so what was checked is what is fetched.
func (p *Policy) Check(raw string) (string, error) {
	u, err := canonical(raw)
	if err != nil {
		return "", err
	}
	if p == nil {
		return u.String(), nil
	}
	for _, r := range p.rules {
		if r.allows(u) {
			return u.String(), nil
		}
	}
	why := "it is under none of the allowed prefixes (" + p.String() + ")"
	if len(p.rules) == 0 {
		why = "no URL is allowed here"
	}
	return "", &DeniedError{URL: redact(raw), Why: why}
}

// Allows reports whether Check accepts raw.
func (p *Policy) Allows(raw string) bool {
	_, err := p.Check(raw)
	return err == nil
}

func (r rule) allows(u *url.URL) bool {
	if u.Scheme != r.scheme || u.Host != r.host {
		return false
	}
	return r.path == "/" || u.Path == r.path || strings.HasPrefix(u.Path, r.path+"/")
}

// Canonical returns raw's canonical form (see the package comment), or a
// *DeniedError when it is malformed or refused whatever the prefixes.
func Canonical(raw string) (string, error) {
	u, err := canonical(raw)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

var defaultPorts = map[string]string{"http": "80", "https": "443", "ssh": "22", "git": "9418"}

func canonical(raw string) (*url.URL, error) {
	deny := func(why string) (*url.URL, error) { return nil, &DeniedError{URL: redact(raw), Why: why} }
	u, err := url.Parse(raw)
	if err != nil {
		// url's errors quote the whole URL, a password included.
		return deny("it is not a well-formed URL")
	}
	switch {
	case u.Scheme == "":
		return deny("it is not an absolute URL (scheme://host/path)")
	case u.Opaque != "":
		return deny("it has no //host part")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return deny("a repository URL has no query or fragment")
	}
	scheme := strings.ToLower(u.Scheme)
	var user *url.Userinfo
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return deny("credentials in URLs are refused")
		}
		if scheme != "ssh" && scheme != "git+ssh" {
			return deny("a user name is allowed in ssh URLs only")
		}
		if name := u.User.Username(); name != "" {
			user = url.User(name)
		}
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return deny("its port is not a number from 1 to 65535")
		}
		port = strconv.Itoa(n)
		if defaultPorts[scheme] == port {
			port = ""
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return deny("it has an empty port")
	}
	if scheme == "file" {
		if host != "" && host != "localhost" || port != "" {
			return deny("a file URL names no host")
		}
		if user != nil {
			return deny("a file URL has no user name")
		}
		host = ""
	} else if host == "" {
		return deny("it names no host")
	}
	for _, r := range host {
		if r <= ' ' || r == 0x7f || r == '/' || r == '\\' || r == '@' {
			return deny("its host has a character hosts never have")
		}
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	p := u.Path
	for _, r := range p {
		if r < ' ' || r == 0x7f {
			return deny("its path has a control character")
		}
	}
	if p == "" {
		p = "/"
	}
	if !strings.HasPrefix(p, "/") {
		return deny("its path is not absolute")
	}
	p = path.Clean(p)
	return &url.URL{Scheme: scheme, User: user, Host: host, Path: p}, nil
}

// Redact returns raw with any password replaced by "REDACTED", for
// messages and logs; raw is returned as it is when it holds none.
func Redact(raw string) string { return redact(raw) }

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparsable: cut at the last "@" before the path, where a
		// password would be, to be safe.
		if i := strings.Index(raw, "://"); i >= 0 {
			rest := raw[i+3:]
			end := strings.IndexAny(rest, "/?#")
			if end < 0 {
				end = len(rest)
			}
			if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
				return raw[:i+3] + "REDACTED@" + rest[at+1:]
			}
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return u.String()
}
