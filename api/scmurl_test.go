package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestServer_Submit_SCMURLPolicy: a submitted scmurl is compared with
// api.allowed_scm parsed and cleaned (urlpolicy), never as a string prefix.
// The test server allows https://src.example.org/modules/.
func TestServer_Submit_SCMURLPolicy(t *testing.T) {
	b := setup(t)
	path := "/module-build-service/1/module-builds/"
	for _, tc := range []struct {
		name, scmurl string
		status       int
		want         string
	}{
		{"HostPrefixTrick", "https://src.example.org.evil/modules/baz?#abc1234", 403, "is under none of the allowed prefixes"},
		{"HostSuffix", "https://src.example.orgx/modules/baz?#abc1234", 403, "is not allowed"},
		{"PathPrefixTrick", "https://src.example.org/modulesx/baz?#abc1234", 403, "is not allowed"},
		{"Traversal", "https://src.example.org/modules/../internal/baz?#abc1234", 403, "is not allowed"},
		{"EncodedTraversal", "https://src.example.org/modules/%2e%2e/internal/baz?#abc1234", 403, "is not allowed"},
		{"OtherPort", "https://src.example.org:8443/modules/baz?#abc1234", 403, "is not allowed"},
		{"OtherScheme", "http://src.example.org/modules/baz?#abc1234", 403, "is not allowed"},
		{"File", "file:///var/lib/rida/mirrors/baz?#abc1234", 403, "is not allowed"},
		{"Password", "https://u:s3cret@src.example.org/modules/baz?#abc1234", 403, "credentials in URLs are refused"},
		{"UserinfoTrick", "https://src.example.org@evil.example/modules/baz?#abc1234", 403, "a user name is allowed in ssh URLs only"},
		// Allowed after cleaning: the policy lets it through to the
		// branch check (fff0000 is on no branch of the fake).
		{"CaseAndDefaultPort", "HTTPS://SRC.Example.ORG:443/modules/baz?#fff0000", 400, "Commit fff0000 is not in branch main."},
		{"DotInside", "https://src.example.org/modules/x/../baz?#fff0000", 400, "Commit fff0000 is not in branch main."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do(http.MethodPost, path, testToken, `{"scmurl": "`+tc.scmurl+`", "branch": "main"}`)
			expect(t, r, tc.status, tc.want)
			if strings.Contains(string(r.body), "s3cret") {
				t.Errorf("the answer quotes the password: %s", r.body)
			}
		})
	}
}
