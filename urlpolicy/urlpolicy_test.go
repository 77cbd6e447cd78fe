package urlpolicy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rida-build/rida/urlpolicy"
)

func TestPolicy_Check(t *testing.T) {
	p := urlpolicy.MustNew(
		"https://host",
		"https://git.example.org/rpms/",
		"https://git.example.org:8443/modules",
		"ssh://git.example.org/rpms",
		"file:///srv/git/",
	)
	for _, tc := range []struct {
		name, url string
		want      string // canonical form when allowed
		why       string // part of the refusal when denied
	}{
		// The prefix trick: a string prefix is not a host.
		{"HostItself", "https://host/a/b.git", "https://host/a/b.git", ""},
		{"HostPrefixTrick", "https://host.evil/a/b.git", "", "under none of the allowed prefixes"},
		{"HostPrefixTrickPort", "https://host:8080/a", "", "under none"},
		{"UserinfoHostTrick", "https://host@evil.example/a", "", "user name is allowed in ssh URLs only"},
		{"PathPrefixSegment", "https://git.example.org/rpmsx/foo", "", "under none"},
		{"PathPrefix", "https://git.example.org/rpms/foo.git", "https://git.example.org/rpms/foo.git", ""},
		{"PathPrefixExact", "https://git.example.org/rpms", "https://git.example.org/rpms", ""},
		// Traversal and doubled slashes are cleaned before comparing.
		{"DotDot", "https://git.example.org/rpms/../secret/x", "", "under none"},
		{"EncodedDotDot", "https://git.example.org/rpms/%2e%2e/secret", "", "under none"},
		{"DotDotStaysInside", "https://git.example.org/rpms/a/../b", "https://git.example.org/rpms/b", ""},
		{"DoubleSlash", "https://git.example.org//rpms//foo/", "https://git.example.org/rpms/foo", ""},
		{"FileDotDot", "file:///srv/git/../../var/lib/rida/rida.db", "", "under none"},
		{"FileDotDotInside", "file:///srv/git/rpms/../modules/m", "file:///srv/git/modules/m", ""},
		// Userinfo: never a password; a user name in ssh URLs only.
		{"Password", "https://user:s3cret@host/a", "", "credentials in URLs are refused"},
		{"UserOnHTTPS", "https://user@host/a", "", "ssh URLs only"},
		{"SSHUser", "ssh://git@git.example.org/rpms/foo", "ssh://git@git.example.org/rpms/foo", ""},
		{"SSHPassword", "ssh://git:pw@git.example.org/rpms/foo", "", "credentials"},
		// Ports: exact, default ports dropped.
		{"DefaultPort", "https://host:443/a", "https://host/a", ""},
		{"OtherPort", "https://git.example.org:8443/modules/m", "https://git.example.org:8443/modules/m", ""},
		{"MissingPort", "https://git.example.org/modules/m", "", "under none"},
		{"WrongPort", "https://git.example.org:9443/modules/m", "", "under none"},
		{"BadPort", "https://host:0/a", "", "port"},
		{"EmptyPort", "https://host:/a", "", "empty port"},
		// Case: scheme and host are case-insensitive, paths are not.
		{"UpperSchemeHost", "HTTPS://HOST/A", "https://host/A", ""},
		{"UpperPath", "https://git.example.org/RPMS/foo", "", "under none"},
		{"TrailingDotHost", "https://host./a", "https://host/a", ""},
		// Schemes.
		{"OtherScheme", "http://host/a", "", "under none"},
		{"GitScheme", "git://host/a", "", "under none"},
		{"NoScheme", "host/a", "", "not an absolute URL"},
		{"Opaque", "https:host/a", "", "no //host"},
		{"NoHost", "https:///a", "", "names no host"},
		{"Query", "https://host/a?x=1", "", "query or fragment"},
		{"Fragment", "https://host/a#main", "", "query or fragment"},
		{"ControlChar", "https://host/a%00b", "", "control character"},
		// file:// only under its prefix.
		{"FileAllowed", "file:///srv/git/rpms/foo", "file:///srv/git/rpms/foo", ""},
		{"FileLocalhost", "file://localhost/srv/git/rpms/foo", "file:///srv/git/rpms/foo", ""},
		{"FileElsewhere", "file:///var/lib/rida/mirrors/x.git", "", "under none"},
		{"FileOtherHost", "file://evil/srv/git/x", "", "names no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.Check(tc.url)
			if tc.why == "" {
				if err != nil || got != tc.want {
					t.Fatalf("Check(%q) = %q, %v; want %q", tc.url, got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%q) = %q, want a refusal saying %q", tc.url, got, tc.why)
			}
			if !errors.Is(err, urlpolicy.ErrDenied) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Check(%q): %v; want ErrDenied saying %q", tc.url, err, tc.why)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), ":pw@") {
				t.Errorf("refusal quotes the password: %v", err)
			}
		})
	}
}

func TestPolicy_FileOnOff(t *testing.T) {
	const repo = "file:///srv/git/rpms/foo"
	for _, tc := range []struct {
		name     string
		prefixes []string
		allowed  bool
	}{
		{"Off by default", []string{"https://git.example.org/"}, false},
		{"Empty policy", nil, false},
		{"On under its directory", []string{"file:///srv/git"}, true},
		{"Another directory", []string{"file:///srv/gitx"}, false},
		{"Whole disk when asked", []string{"file:///"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := urlpolicy.MustNew(tc.prefixes...)
			if got := p.Allows(repo); got != tc.allowed {
				t.Errorf("Allows(%s) = %v, want %v under %s", repo, got, tc.allowed, p)
			}
		})
	}
	var none *urlpolicy.Policy
	if !none.Allows(repo) {
		t.Error("a nil policy refuses a file URL; it allows every well-formed URL")
	}
	if none.Allows("https://u:p@host/x") {
		t.Error("a nil policy allows a URL with a password")
	}
}

func TestNew_RefusesBadPrefixes(t *testing.T) {
	for _, bad := range []string{"host/rpms", "https://", "https://u:secret@host/", "https://u@host/", "file://other/x", "https://host/?q"} {
		_, err := urlpolicy.New("https://ok.example/", bad)
		if err == nil {
			t.Errorf("New(%q) = nil error", bad)
			continue
		}
		if !strings.Contains(err.Error(), "prefix 1") || strings.Contains(err.Error(), "secret") {
			t.Errorf("New(%q): %v; want it to name prefix 1 and no password", bad, err)
		}
	}
}

func TestMerge(t *testing.T) {
	a, b := urlpolicy.MustNew("https://a.example/"), urlpolicy.MustNew("https://b.example/x")
	m := urlpolicy.Merge(a, b)
	for url, want := range map[string]bool{"https://a.example/r": true, "https://b.example/x/r": true, "https://b.example/y": false} {
		if m.Allows(url) != want {
			t.Errorf("Merge: Allows(%s) = %v, want %v", url, !want, want)
		}
	}
	if urlpolicy.Merge(a, nil) != nil {
		t.Error("Merge with a nil policy is not nil (allow all)")
	}
}
