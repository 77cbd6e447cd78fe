package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
)

// TestServe_EveryForgeDialect delivers the module repository's push in each
// forge's own dialect (headers, signature scheme, payload shape) to a real
// 'rida serve' and checks that each is acknowledged and planned into the
// same build request.
func TestServe_EveryForgeDialect(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	layout, err := examples.CreateRepos(filepath.Join(dir, "git"), examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "dialect-secret"
	p := startServe(t, filepath.Join(dir, "data"), secret)
	mod := layout.Module
	zero := strings.Repeat("0", 40)
	mac := func(body []byte) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		return hex.EncodeToString(m.Sum(nil))
	}
	repoJSON := map[string]any{"full_name": "modules/rida-demo", "clone_url": mod.URL}
	for _, tc := range []struct {
		forge   string
		body    map[string]any
		headers func(body []byte) map[string]string
	}{
		{"gitea", map[string]any{"ref": "refs/heads/" + mod.Branch, "before": zero, "after": mod.Commit, "repository": repoJSON,
			"pusher": map[string]any{"login": "packager"}, "commits": []any{}},
			func(b []byte) map[string]string {
				return map[string]string{"X-Gitea-Event": "push", "X-Gitea-Delivery": "d-gitea", "X-Gitea-Signature": mac(b)}
			}},
		{"forgejo", map[string]any{"ref": "refs/heads/" + mod.Branch, "before": zero, "after": mod.Commit, "repository": repoJSON,
			"pusher": map[string]any{"login": "packager"}, "commits": []any{}},
			func(b []byte) map[string]string {
				return map[string]string{"X-Forgejo-Event": "push", "X-Forgejo-Delivery": "d-forgejo", "X-Forgejo-Signature": mac(b)}
			}},
		{"gitlab", map[string]any{"object_kind": "push", "event_name": "push", "ref": "refs/heads/" + mod.Branch, "before": zero,
			"after": mod.Commit, "checkout_sha": mod.Commit, "user_username": "packager", "commits": []any{},
			"project": map[string]any{"path_with_namespace": "modules/rida-demo", "git_http_url": mod.URL}},
			func(b []byte) map[string]string {
				return map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "d-gitlab", "X-Gitlab-Token": secret}
			}},
	} {
		t.Run(tc.forge, func(t *testing.T) {
			body, _ := json.Marshal(tc.body)
			req, _ := http.NewRequest(http.MethodPost, p.base+"/webhooks/"+tc.forge, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tc.headers(body) {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var ack struct {
				Delivery uint64 `json:"delivery"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&ack)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted || ack.Delivery == 0 {
				t.Fatalf("%s push: %d", tc.forge, resp.StatusCode)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				var dv struct {
					Delivery struct {
						Forge       string `json:"forge"`
						Disposition *struct {
							Reason   string `json:"reason"`
							Requests []struct {
								Key string `json:"key"`
							} `json:"requests"`
						} `json:"disposition"`
					} `json:"delivery"`
				}
				r, err := http.Get(fmt.Sprintf("%s/api/v1/deliveries/%d", p.base, ack.Delivery))
				if err != nil {
					t.Fatal(err)
				}
				_ = json.NewDecoder(r.Body).Decode(&dv)
				r.Body.Close()
				if d := dv.Delivery.Disposition; d != nil {
					if dv.Delivery.Forge != tc.forge {
						t.Errorf("recorded forge %q", dv.Delivery.Forge)
					}
					// The first push asks for the build; later ones are the
					// same content from another forge, or a redelivery.
					if len(d.Requests) == 0 && !strings.HasPrefix(d.Reason, "redelivery") {
						t.Errorf("%s push planned nothing: %s", tc.forge, d.Reason)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s push never planned", tc.forge)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
