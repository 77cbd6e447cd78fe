package forgetest_test

import (
	"cmp"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/forge"
	"github.com/rida-build/rida/forge/forgetest"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

// statusURL is the status endpoint of srv for the usual test repository.
func statusURL(srv *forgetest.Server) string {
	if srv.Kind() == forge.KindGitLab {
		return srv.URL() + "/api/v4/projects/group%2Fproject/statuses/" + sha
	}
	return srv.URL() + "repos/owner/name/statuses/" + sha
}

type request struct {
	method, url, body string
	header            map[string]string
}

func do(t *testing.T, r request) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(cmp.Or(r.method, http.MethodPost), r.url, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(data, &body)
	return resp.StatusCode, resp.Header, body
}

func auth(srv *forgetest.Server, scheme string) map[string]string {
	if scheme == "PRIVATE-TOKEN" {
		return map[string]string{"PRIVATE-TOKEN": srv.Token()}
	}
	return map[string]string{"Authorization": scheme + " " + srv.Token()}
}

func TestServer_Requests(t *testing.T) {
	t.Parallel()
	type tc struct {
		name     string
		kind     forge.Kind
		req      func(srv *forgetest.Server) request
		want     int
		wantBody map[string]any // subset of the answer's fields
	}
	ok := `{"state":"success","context":"rida/x","description":"d","target_url":"https://rida.example/b/1"}`
	tests := []tc{
		{"GitHubBearer", forge.KindGitHub, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: ok, header: auth(s, "Bearer")}
		}, 201, map[string]any{"state": "success", "context": "rida/x", "description": "d"}},
		{"GitHubTokenScheme", forge.KindGitHub, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: ok, header: auth(s, "token")}
		}, 201, nil},
		{"GitHubNoAuth", forge.KindGitHub, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: ok}
		}, 401, map[string]any{"message": "Bad credentials"}},
		{"GitHubWrongToken", forge.KindGitHub, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: ok, header: map[string]string{"Authorization": "Bearer nope"}}
		}, 401, nil},
		{"GitHubLongDescription", forge.KindGitHub, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: `{"state":"success","description":"` + strings.Repeat("x", 141) + `"}`, header: auth(s, "Bearer")}
		}, 422, map[string]any{"message": "Validation Failed"}},
		{"GitHubBadState", forge.KindGitHub, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: `{"state":"running"}`, header: auth(s, "Bearer")}
		}, 422, nil},
		{"GitHubShortSHA", forge.KindGitHub, func(s *forgetest.Server) request {
			return request{url: s.URL() + "repos/owner/name/statuses/abc1234", body: ok, header: auth(s, "Bearer")}
		}, 422, nil},
		{"GitHubBadJSON", forge.KindGitHub, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: `{`, header: auth(s, "Bearer")}
		}, 400, map[string]any{"message": "Problems parsing JSON"}},
		{"GitHubGET", forge.KindGitHub, func(s *forgetest.Server) request {
			return request{method: http.MethodGet, url: statusURL(s), header: auth(s, "Bearer")}
		}, 404, nil},
		{"GHEWrongPrefix", forge.KindGHE, func(s *forgetest.Server) request {
			return request{url: strings.Replace(statusURL(s), "/api/v3/", "/", 1), body: ok, header: auth(s, "Bearer")}
		}, 404, nil},
		{"GiteaStatusField", forge.KindGitea, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: ok, header: auth(s, "token")}
		}, 201, map[string]any{"status": "success", "context": "rida/x"}},
		{"ForgejoWarning", forge.KindForgejo, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: `{"state":"warning","context":"c"}`, header: auth(s, "Bearer")}
		}, 201, map[string]any{"status": "warning"}},
		{"GitLabPrivateToken", forge.KindGitLab, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: `{"state":"running","name":"rida/x"}`, header: auth(s, "PRIVATE-TOKEN")}
		}, 201, map[string]any{"status": "running", "name": "rida/x", "sha": sha}},
		{"GitLabBearer", forge.KindGitLab, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: `{"state":"success"}`, header: auth(s, "Bearer")}
		}, 201, map[string]any{"name": "default"}},
		{"GitLabTokenSchemeRejected", forge.KindGitLab, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: `{"state":"success"}`, header: auth(s, "token")}
		}, 401, map[string]any{"message": "401 Unauthorized"}},
		{"GitLabFailureStateRejected", forge.KindGitLab, func(s *forgetest.Server) request {
			return request{url: statusURL(s), body: `{"state":"failure"}`, header: auth(s, "PRIVATE-TOKEN")}
		}, 400, nil},
		{"GitLabUnescapedPath", forge.KindGitLab, func(s *forgetest.Server) request {
			return request{url: strings.Replace(statusURL(s), "%2F", "/", 1), body: `{"state":"success"}`, header: auth(s, "PRIVATE-TOKEN")}
		}, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := forgetest.NewServer(t, tt.kind)
			code, _, body := do(t, tt.req(srv))
			if code != tt.want {
				t.Fatalf("status = %d, want %d (body %v)", code, tt.want, body)
			}
			for k, v := range tt.wantBody {
				if body[k] != v {
					t.Errorf("answer %s = %v, want %v", k, body[k], v)
				}
			}
			if tt.kind == forge.KindGitea && code == 201 {
				if _, has := body["state"]; has {
					t.Error(`Gitea answer has "state"; Gitea answers "status"`)
				}
			}
			wantAccepted := 0
			if code == 201 {
				wantAccepted = 1
			}
			if len(srv.History()) != wantAccepted || srv.Requests() != 1 {
				t.Errorf("history %d, requests %d; want %d, 1", len(srv.History()), srv.Requests(), wantAccepted)
			}
		})
	}
}

func TestServer_LastWriteWins(t *testing.T) {
	t.Parallel()
	srv := forgetest.NewServer(t, forge.KindGitHub)
	for _, st := range []string{"pending", "success"} {
		if code, _, _ := do(t, request{url: statusURL(srv), body: `{"state":"` + st + `","context":"c"}`, header: auth(srv, "Bearer")}); code != 201 {
			t.Fatalf("post %s: %d", st, code)
		}
	}
	got := srv.Statuses()
	key := forgetest.Key{Repo: "owner/name", SHA: sha, Context: "c"}
	if len(got) != 1 || got[key].State != "success" || len(srv.History()) != 2 {
		t.Errorf("Statuses = %v, history %d", got, len(srv.History()))
	}
}

func TestServer_FailNext(t *testing.T) {
	t.Parallel()
	srv := forgetest.NewServer(t, forge.KindGitea)
	srv.FailNext(2, forgetest.Fail500)
	srv.FailNext(1, forgetest.Fail429)
	srv.SetRetryAfter(7500 * time.Millisecond) // rounded down to 7 s
	var codes []int
	var retryAfter string
	for range 4 {
		code, h, _ := do(t, request{url: statusURL(srv), body: `{"state":"success"}`, header: auth(srv, "token")})
		codes = append(codes, code)
		if code == 429 {
			retryAfter = h.Get("Retry-After")
		}
	}
	if want := []int{500, 500, 429, 201}; !slices.Equal(codes, want) {
		t.Errorf("codes = %v, want %v", codes, want)
	}
	if retryAfter != "7" {
		t.Errorf("Retry-After = %q, want 7", retryAfter)
	}
}

func TestServer_SetDown(t *testing.T) {
	t.Parallel()
	srv := forgetest.NewServer(t, forge.KindGitLab)
	url := srv.URL()
	srv.SetDown(true)
	srv.SetDown(true) // idempotent
	req, _ := http.NewRequest(http.MethodPost, statusURL(srv), strings.NewReader(`{"state":"pending"}`))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("request succeeded while down")
	}
	srv.SetDown(false)
	if srv.URL() != url {
		t.Errorf("URL changed: %q -> %q", url, srv.URL())
	}
	if code, _, _ := do(t, request{url: statusURL(srv), body: `{"state":"pending"}`, header: auth(srv, "PRIVATE-TOKEN")}); code != 201 {
		t.Errorf("after restart: %d", code)
	}
	if srv.Requests() != 1 {
		t.Errorf("requests = %d, want 1 (refused connections do not count)", srv.Requests())
	}
}

func TestFailure_String(t *testing.T) {
	t.Parallel()
	if got := forgetest.FailSecondaryLimit.String(); got != "secondary-limit" {
		t.Errorf("String = %q", got)
	}
	if got := forgetest.Failure(99).String(); got != "Failure(99)" {
		t.Errorf("String = %q", got)
	}
}
