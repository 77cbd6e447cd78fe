package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/state"
)

const (
	testSecret    = "s3cret-current"
	testOldSecret = "s3cret-previous"
	testMaxBody   = 64 << 10
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// openStore opens a real bbolt store in a temp dir, checked and closed on cleanup.
func openStore(t testing.TB) *state.Store {
	t.Helper()
	s, err := state.Open(filepath.Join(t.TempDir(), "rida.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("store Check: %v", err)
		}
		s.Close()
	})
	return s
}

func allForges(secrets ...string) []ForgeConfig {
	var fs []ForgeConfig
	for _, k := range ForgeKinds() {
		fs = append(fs, ForgeConfig{Kind: k, Secrets: secrets})
	}
	return fs
}

// newTestServer starts an httptest server around a Receiver.
func newTestServer(t testing.TB, store DeliveryRecorder, forges []ForgeConfig) *httptest.Server {
	t.Helper()
	rc, err := NewReceiver(ReceiverOptions{Store: store, Forges: forges, MaxBody: testMaxBody, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return srv
}

func fixture(t testing.TB, kind ForgeKind, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", string(kind), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// pushEvent returns the forge's event header value for a push.
func pushEvent(kind ForgeKind) string {
	if kind == GitLab {
		return "Push Hook"
	}
	return "push"
}

// signedRequest builds a valid delivery of body as forge kind would send it.
func signedRequest(t testing.TB, baseURL string, kind ForgeKind, event, secret string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, baseURL+"/webhooks/"+string(kind), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sig := hmacHex(secret, body)
	switch kind {
	case GitHub:
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		req.Header.Set("X-Hub-Signature-256", "sha256="+sig)
	case Gitea:
		req.Header.Set("X-Gitea-Event", event)
		req.Header.Set("X-Gitea-Delivery", "5a7e1c2b-9d1f-4c5e-8f0a-1b2c3d4e5f60")
		req.Header.Set("X-Gitea-Signature", sig)
		req.Header.Set("X-Hub-Signature-256", "sha256="+sig)
	case Forgejo:
		req.Header.Set("X-Forgejo-Event", event)
		req.Header.Set("X-Forgejo-Delivery", "0f6c1a52-3d0e-4bb1-9a57-0c1a2b3c4d5e")
		req.Header.Set("X-Forgejo-Signature", sig)
		req.Header.Set("X-Gitea-Event", event)
		req.Header.Set("X-Gitea-Delivery", "0f6c1a52-3d0e-4bb1-9a57-0c1a2b3c4d5e")
		req.Header.Set("X-Gitea-Signature", sig)
	case GitLab:
		req.Header.Set("X-Gitlab-Event", event)
		req.Header.Set("X-Gitlab-Event-UUID", "1d3c9a86-8a2a-4f1e-b1d3-3c0e1a2b3c4d")
		req.Header.Set("X-Gitlab-Token", secret)
	}
	return req
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t testing.TB, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("response %d is not JSON: %q", resp.StatusCode, raw)
	}
	return r
}

// headerNames per forge for the table below.
var names = map[ForgeKind]struct{ event, delivery, sig string }{
	GitHub:  {"X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256"},
	Gitea:   {"X-Gitea-Event", "X-Gitea-Delivery", "X-Gitea-Signature"},
	Forgejo: {"X-Forgejo-Event", "X-Forgejo-Delivery", "X-Forgejo-Signature"},
	GitLab:  {"X-Gitlab-Event", "X-Gitlab-Event-UUID", "X-Gitlab-Token"},
}

// delAll removes a header and, for Forgejo, its Gitea fallback.
func delAll(req *http.Request, kind ForgeKind, h string) {
	req.Header.Del(h)
	if kind == Forgejo {
		req.Header.Del(strings.Replace(h, "Forgejo", "Gitea", 1))
	}
}

// TestReceiver_Checks runs every check for every forge against a real HTTP
// server and a real bbolt store.
func TestReceiver_Checks(t *testing.T) {
	type tc struct {
		name    string
		edit    func(req *http.Request, kind ForgeKind) *http.Request
		status  int
		message string // substring of the JSON message
		key     string // for 2xx: the key expected in the body
	}
	for _, kind := range ForgeKinds() {
		t.Run(string(kind), func(t *testing.T) {
			store := openStore(t)
			srv := newTestServer(t, store, allForges(testOldSecret, testSecret))
			body := fixture(t, kind, "push.json")
			n := names[kind]
			mismatchMsg := "signature mismatch"
			if kind == GitLab {
				mismatchMsg = "X-Gitlab-Token does not match"
			}
			big := append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), testMaxBody)...)
			big = append(big, `"}`...)
			cases := []tc{
				{"OK", nil, http.StatusAccepted, "", "delivery"},
				{"ErrMethod", func(r *http.Request, _ ForgeKind) *http.Request {
					r.Method = http.MethodGet
					return r
				}, http.StatusMethodNotAllowed, "method GET not allowed", ""},
				{"ErrEventMissing", func(r *http.Request, k ForgeKind) *http.Request {
					delAll(r, k, n.event)
					return r
				}, http.StatusBadRequest, "missing " + n.event, ""},
				{"ErrSignatureMissing", func(r *http.Request, k ForgeKind) *http.Request {
					delAll(r, k, n.sig)
					return r
				}, http.StatusUnauthorized, n.sig, ""},
				{"ErrSignatureEmpty", func(r *http.Request, k ForgeKind) *http.Request {
					r.Header.Set(n.sig, "")
					if k == Forgejo {
						r.Header.Set("X-Gitea-Signature", "")
					}
					return r
				}, http.StatusUnauthorized, "missing or empty " + n.sig, ""},
				{"ErrFormEncoded", func(r *http.Request, _ ForgeKind) *http.Request {
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					return r
				}, http.StatusUnsupportedMediaType, "content type to application/json", ""},
				{"ErrContentTypeMissing", func(r *http.Request, _ ForgeKind) *http.Request {
					r.Header.Del("Content-Type")
					return r
				}, http.StatusUnsupportedMediaType, "missing Content-Type", ""},
				{"ContentTypeWithCharset", func(r *http.Request, _ ForgeKind) *http.Request {
					r.Header.Set("Content-Type", "application/json; charset=utf-8")
					return r
				}, http.StatusAccepted, "", "delivery"},
				{"ErrTooLarge", func(r *http.Request, k ForgeKind) *http.Request {
					return signedRequest(t, srv.URL, k, pushEvent(k), testSecret, big)
				}, http.StatusRequestEntityTooLarge, "exceeds the limit of 65536 bytes", ""},
				{"ErrTooLargeChunked", func(r *http.Request, k ForgeKind) *http.Request {
					r2 := signedRequest(t, srv.URL, k, pushEvent(k), testSecret, big)
					r2.Body = io.NopCloser(bytes.NewReader(big))
					r2.ContentLength = -1 // chunked: only the capped read can catch it
					return r2
				}, http.StatusRequestEntityTooLarge, "body exceeds the limit", ""},
				{"ErrSignatureMismatch", func(r *http.Request, k ForgeKind) *http.Request {
					return signedRequest(t, srv.URL, k, pushEvent(k), "wrong-secret", body)
				}, http.StatusUnauthorized, mismatchMsg, ""},
				{"ErrBodyTampered", func(r *http.Request, k ForgeKind) *http.Request {
					r2 := signedRequest(t, srv.URL, k, pushEvent(k), testSecret, body)
					tampered := bytes.Replace(body, []byte("refs/heads/main"), []byte("refs/heads/evil"), 1)
					r2.Body, r2.ContentLength = io.NopCloser(bytes.NewReader(tampered)), int64(len(tampered))
					return r2
				}, map[bool]int{true: http.StatusAccepted, false: http.StatusUnauthorized}[kind == GitLab], map[bool]string{true: "", false: "signature mismatch"}[kind == GitLab], map[bool]string{true: "delivery", false: ""}[kind == GitLab]},
				{"RotatedSecretAccepted", func(r *http.Request, k ForgeKind) *http.Request {
					return signedRequest(t, srv.URL, k, pushEvent(k), testOldSecret, body)
				}, http.StatusAccepted, "", "delivery"},
				{"ErrNotJSON", func(r *http.Request, k ForgeKind) *http.Request {
					return signedRequest(t, srv.URL, k, pushEvent(k), testSecret, []byte(`{"ref": "refs/heads/main",`))
				}, http.StatusBadRequest, "body is not valid JSON", ""},
				{"ErrAfterNotCommit", func(r *http.Request, k ForgeKind) *http.Request {
					var p map[string]any
					_ = json.Unmarshal(body, &p)
					p["after"] = "main"
					b, _ := json.Marshal(p)
					return signedRequest(t, srv.URL, k, pushEvent(k), testSecret, b)
				}, http.StatusBadRequest, "field after is not a commit id", ""},
				{"ErrRefWrongType", func(r *http.Request, k ForgeKind) *http.Request {
					var p map[string]any
					_ = json.Unmarshal(body, &p)
					p["ref"] = 42
					b, _ := json.Marshal(p)
					return signedRequest(t, srv.URL, k, pushEvent(k), testSecret, b)
				}, http.StatusBadRequest, "payload field ref is a JSON number, want string", ""},
				{"IgnoredEvent", func(r *http.Request, k ForgeKind) *http.Request {
					ev := map[ForgeKind]string{GitHub: "issues", Gitea: "pull_request", Forgejo: "issues", GitLab: "Merge Request Hook"}[k]
					return signedRequest(t, srv.URL, k, ev, testSecret, []byte(`{"action":"opened"}`))
				}, http.StatusAccepted, "", "ignored"},
				{"OrderMethodFirst", func(r *http.Request, k ForgeKind) *http.Request {
					r.Method = http.MethodPut
					delAll(r, k, n.event)
					delAll(r, k, n.sig)
					return r
				}, http.StatusMethodNotAllowed, "method PUT", ""},
				{"OrderEventBeforeSignature", func(r *http.Request, k ForgeKind) *http.Request {
					delAll(r, k, n.event)
					delAll(r, k, n.sig)
					r.Header.Set("Content-Type", "text/plain")
					return r
				}, http.StatusBadRequest, "missing " + n.event, ""},
				{"OrderSignatureBeforeContentType", func(r *http.Request, k ForgeKind) *http.Request {
					delAll(r, k, n.sig)
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					return r
				}, http.StatusUnauthorized, n.sig, ""},
				{"OrderContentTypeBeforeSize", func(r *http.Request, k ForgeKind) *http.Request {
					r2 := signedRequest(t, srv.URL, k, pushEvent(k), testSecret, big)
					r2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					return r2
				}, http.StatusUnsupportedMediaType, "application/json", ""},
			}
			if kind == GitLab {
				cases = append(cases,
					tc{"DeliveryIDGenerated", func(r *http.Request, k ForgeKind) *http.Request {
						r.Header.Del(n.delivery)
						return r
					}, http.StatusAccepted, "", "delivery"},
					tc{"SystemHookPush", func(r *http.Request, k ForgeKind) *http.Request {
						return signedRequest(t, srv.URL, k, "System Hook", testSecret, body)
					}, http.StatusAccepted, "", "delivery"},
					tc{"SystemHookOther", func(r *http.Request, k ForgeKind) *http.Request {
						return signedRequest(t, srv.URL, k, "System Hook", testSecret, []byte(`{"event_name":"project_create"}`))
					}, http.StatusAccepted, "", "ignored"},
				)
			} else {
				cases = append(cases, tc{"ErrDeliveryMissing", func(r *http.Request, k ForgeKind) *http.Request {
					delAll(r, k, n.delivery)
					return r
				}, http.StatusBadRequest, "missing " + n.delivery, ""})
			}
			if kind == GitHub {
				cases = append(cases, tc{"Ping", func(r *http.Request, k ForgeKind) *http.Request {
					return signedRequest(t, srv.URL, k, "ping", testSecret, fixture(t, k, "ping.json"))
				}, http.StatusOK, "", "pong"}, tc{"ErrSignatureNoPrefix", func(r *http.Request, k ForgeKind) *http.Request {
					r.Header.Set(n.sig, hmacHex(testSecret, body))
					return r
				}, http.StatusUnauthorized, `must be "sha256=" followed by`, ""})
			}
			if kind == Forgejo {
				cases = append(cases, tc{"GiteaHeaderFallback", func(r *http.Request, k ForgeKind) *http.Request {
					r.Header.Del("X-Forgejo-Event")
					r.Header.Del("X-Forgejo-Delivery")
					r.Header.Del("X-Forgejo-Signature")
					return r
				}, http.StatusAccepted, "", "delivery"})
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					req := signedRequest(t, srv.URL, kind, pushEvent(kind), testSecret, body)
					if c.edit != nil {
						req = c.edit(req, kind)
					}
					resp := do(t, req)
					if resp.status != c.status {
						t.Fatalf("status = %d, want %d; body %v", resp.status, c.status, resp.body)
					}
					if c.status >= 400 {
						msg, _ := resp.body["message"].(string)
						if resp.body["status"] != float64(c.status) || resp.body["error"] != http.StatusText(c.status) || !strings.Contains(msg, c.message) {
							t.Errorf("error body = %v, want status %d and message containing %q", resp.body, c.status, c.message)
						}
						if strings.Contains(msg, testSecret) || strings.Contains(msg, hmacHex(testSecret, body)) {
							t.Errorf("error message leaks a secret or signature: %q", msg)
						}
					} else if _, ok := resp.body[c.key]; !ok {
						t.Errorf("body = %v, want key %q", resp.body, c.key)
					}
					if c.status == http.StatusMethodNotAllowed && resp.header.Get("Allow") != http.MethodPost {
						t.Errorf("Allow = %q, want POST", resp.header.Get("Allow"))
					}
					if c.key == "delivery" {
						id := uint64(resp.body["delivery"].(float64))
						d, err := store.Delivery(context.Background(), id)
						if err != nil {
							t.Fatalf("acknowledged delivery %d not in the store: %v", id, err)
						}
						if d.Forge != string(kind) || d.DeliveryGUID == "" || !d.ReceivedAt.Equal(testNow) {
							t.Errorf("stored delivery = %+v", d)
						}
					}
				})
			}
		})
	}
}

func TestReceiver_ForgeNotEnabled(t *testing.T) {
	for _, kind := range ForgeKinds() {
		t.Run(string(kind), func(t *testing.T) {
			var others []ForgeConfig
			for _, f := range allForges(testSecret) {
				if f.Kind != kind {
					others = append(others, f)
				}
			}
			srv := newTestServer(t, openStore(t), others)
			resp := do(t, signedRequest(t, srv.URL, kind, pushEvent(kind), testSecret, fixture(t, kind, "push.json")))
			if resp.status != http.StatusNotFound || !strings.Contains(resp.body["message"].(string), "/webhooks/"+string(kind)) {
				t.Errorf("got %d %v, want 404 naming the path", resp.status, resp.body)
			}
		})
	}
	srv := newTestServer(t, openStore(t), allForges(testSecret))
	req := signedRequest(t, srv.URL, GitHub, "push", testSecret, []byte(`{}`))
	req.URL.Path = "/webhooks/pagure"
	if resp := do(t, req); resp.status != http.StatusNotFound {
		t.Errorf("unknown forge path: %d", resp.status)
	}
}

// failingStore is a DeliveryRecorder whose commit always fails.
type failingStore struct{}

func (failingStore) RecordDelivery(context.Context, *state.Delivery) (uint64, error) {
	return 0, errors.New("disk full: /var/lib/rida/rida.db")
}

func TestReceiver_StoreFailure503(t *testing.T) {
	srv := newTestServer(t, failingStore{}, allForges(testSecret))
	for _, kind := range ForgeKinds() {
		resp := do(t, signedRequest(t, srv.URL, kind, pushEvent(kind), testSecret, fixture(t, kind, "push.json")))
		msg, _ := resp.body["message"].(string)
		if resp.status != http.StatusServiceUnavailable || !strings.Contains(msg, "redeliver") || strings.Contains(msg, "disk full") {
			t.Errorf("%s: got %d %q, want 503 asking to redeliver without internals", kind, resp.status, msg)
		}
	}
}

func TestNewReceiver_Validation(t *testing.T) {
	store := failingStore{}
	tests := []struct {
		name string
		opts ReceiverOptions
		want string
	}{
		{"ErrNoStore", ReceiverOptions{Forges: allForges("x")}, "Store is required"},
		{"ErrNoForges", ReceiverOptions{Store: store}, "Forges is empty"},
		{"ErrNoSecret", ReceiverOptions{Store: store, Forges: []ForgeConfig{{Kind: GitHub, Secrets: []string{"topsecret"}}, {Kind: GitLab}}}, "forge gitlab (ReceiverOptions.Forges[1].Secrets) has no secret"},
		{"ErrEmptySecret", ReceiverOptions{Store: store, Forges: []ForgeConfig{{Kind: Gitea, Secrets: []string{"topsecret", ""}}}}, "Forges[0].Secrets[1] is empty"},
		{"ErrUnknownKind", ReceiverOptions{Store: store, Forges: []ForgeConfig{{Kind: "pagure", Secrets: []string{"x"}}}}, `Kind "pagure" is unknown`},
		{"ErrDuplicate", ReceiverOptions{Store: store, Forges: []ForgeConfig{{Kind: GitHub, Secrets: []string{"x"}}, {Kind: GitHub, Secrets: []string{"y"}}}}, "configured twice"},
		{"ErrNegativeMaxBody", ReceiverOptions{Store: store, Forges: allForges("x"), MaxBody: -1}, "MaxBody is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReceiver(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
	rc, err := NewReceiver(ReceiverOptions{Store: store, Forges: allForges("x")})
	if err != nil || rc.maxBody != DefaultMaxBody {
		t.Errorf("defaults: %v, maxBody %d", err, rc.maxBody)
	}
}

// TestForge_Verify_GitHubVector checks the HMAC against GitHub's documented
// test vector (secret "It's a Secret to Everybody", payload "Hello, World!").
func TestForge_Verify_GitHubVector(t *testing.T) {
	f := &forge{kind: GitHub, dialect: dialects[GitHub], secrets: [][]byte{[]byte("It's a Secret to Everybody")}}
	const sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if err := f.verify(sig, "X-Hub-Signature-256", []byte("Hello, World!")); err != nil {
		t.Errorf("documented vector rejected: %v", err)
	}
	if err := f.verify(sig, "X-Hub-Signature-256", []byte("Hello, World?")); ErrorStatus(err) != http.StatusUnauthorized {
		t.Errorf("altered payload: %v", err)
	}
}

func TestErrorStatus(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{errorf(CodeInvalid, "x"), 400}, {errorf(CodeUnauthorized, "x"), 401}, {errorf(CodeNotFound, "x"), 404},
		{errorf(CodeMethodNotAllowed, "x"), 405}, {errorf(CodeTooLarge, "x"), 413},
		{errorf(CodeUnsupportedMediaType, "x"), 415}, {errorf(CodeUnavailable, "x"), 503},
		{errorf(CodeInternal, "x"), 500}, {errors.New("plain"), 500},
		{&Error{Code: "bogus"}, 500}, {fmtWrap(errorf(CodeInvalid, "x")), 400},
	}
	for _, tt := range tests {
		if got := ErrorStatus(tt.err); got != tt.want {
			t.Errorf("ErrorStatus(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("context"), err) }
