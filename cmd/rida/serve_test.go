package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/state"
)

func TestServe_RefusesWithoutSecret(t *testing.T) {
	t.Setenv("RIDA_WEBHOOK_SECRET", "")
	code, _, errOut := runMain(t, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0")
	if code != exitUsage || !strings.Contains(errOut, "forge github is enabled without a webhook secret") ||
		!strings.Contains(errOut, "RIDA_WEBHOOK_SECRET") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestServe_ConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ yaml, want string }{
		"UnknownKey":   {"listen: x\ndata_dir: y\nforges: [{kind: github, secret_env: X}]\nbackend: {kind: local}\nlisten_adress: z\n", "listen_adress"},
		"BadForge":     {"listen: x\ndata_dir: y\nforges: [{kind: bitbucket, secret_env: X}]\nbackend: {kind: local}\n", `forges[0].kind: "bitbucket"`},
		"BadStrategy":  {"listen: x\ndata_dir: y\nforges: [{kind: github, secret_env: X}]\nbackend: {kind: local}\nbuild: {rebuild_strategy: some}\n", "build.rebuild_strategy"},
		"BadRetention": {"listen: x\ndata_dir: y\nforges: [{kind: github, secret_env: X}]\nbackend: {kind: local}\nretention: {events: -1h}\n", "retention.events: -1h0m0s"},
		"BadKeepTrees": {"listen: x\ndata_dir: y\nforges: [{kind: github, secret_env: X}]\nbackend: {kind: local}\nretention: {keep_trees: -1}\n", "retention.keep_trees: -1"},
		"BadMaxBody":   {"listen: x\ndata_dir: y\nforges: [{kind: github, secret_env: X}]\nbackend: {kind: local}\nwebhook: {max_body: -5}\n", "webhook.max_body: -5"},
		"BadDepth":     {"listen: x\ndata_dir: y\nforges: [{kind: github, secret_env: X}]\nbackend: {kind: local}\nbuild: {cascade_depth: -1}\n", "build.cascade_depth: -1"},
		"BadBackend":   {"listen: x\ndata_dir: y\nforges: [{kind: github, secret_env: X}]\nbackend: {kind: mock}\n", "backend.kind"},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := runMain(t, "serve", "--config", p)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q, want it to mention %q", code, errOut, tc.want)
			}
		})
	}
}

func TestServe_HelpDocumentsEveryKey(t *testing.T) {
	code, _, errOut := runMain(t, "serve", "--help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, key := range []string{"listen:", "data_dir:", "public_url:", "forges:", "secret_env", "secret_file", "modules:", "components:",
		"module_file:", "component_ignore:", "tracked_branches:", "component_base_url:", "platform:", "rebuild_strategy:",
		"max_builds:", "max_components:", "token_env", "api_url", "pending_deadline:", "context:", "hub_url:", "web_url:", "base_module_tag:", "tokens:", "allowed_scm:", "lookaside:", "nodeps:", "cancel_running:", "manual_ready:", "cascade:", "cascade_depth:", "max_body:", "delivery_commits:", "posted_statuses:", "failed_trees:", "keep_trees:", "mirrors:", "superseded_builds_per_stream:", "failed_builds:", "requests:", "parallel:", "sandbox:", "on_failure:", "tag_permission:", "repo_timeout:", "max_concurrent:", "slot_wait:", "body_timeout:", "http:", "read_header_timeout:", "read_timeout:", "write_timeout:", "idle_timeout:", "max_streams:", "max_streams_per_client:", "auth:", "keytab:", "principal:", "issuer:", "audience:", "required_scopes:", "allowed_groups:", "user_claim:", "groups_claim:", "introspection:", "client_id:", "client_secret_env:", "client_secret_file:", "admin_users:", "admin_groups:", "urls:", "allowed:", "allow_component_repository:", "allow_component_cache:", "hosts:"} {
		if !strings.Contains(errOut, key) {
			t.Errorf("serve --help does not document %s", key)
		}
	}
}

// server is a 'rida serve' subprocess (this test binary, see TestMain).
type serverProc struct {
	cmd  *exec.Cmd
	base string
	done chan struct{}
}

func startServe(t testing.TB, dataDir, secret string, extra ...string) *serverProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// extra holds further serve flags, then "--" and environment entries.
	flags, env := extra, []string(nil)
	for i, e := range extra {
		if e == "--" {
			flags, env = extra[:i], extra[i+1:]
			break
		}
	}
	if !slices.Contains(flags, "--allow-url") {
		// The tests' repositories are file:// URLs beside the data dir,
		// which the URL policy refuses unless allowed (file:// is off by
		// default): allow the test's directory, as rida demo does its own.
		flags = append([]string{"--allow-url", "file://" + filepath.Dir(dataDir) + "/"}, flags...)
	}
	cmd := exec.Command(exe, append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, flags...)...)
	cmd.Env = append(append(os.Environ(), "RIDA_TEST_RUN_MAIN=1", "RIDA_WEBHOOK_SECRET="+secret), env...)
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(dataDir), "serve.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{cmd: cmd, done: make(chan struct{})}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "rida: listening on "); ok {
			p.base = addr
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out); _ = cmd.Wait(); close(p.done) }()
	if p.base == "" {
		t.Fatal("rida serve did not start; see serve.log")
	}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *serverProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *serverProc) term(t testing.TB) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Error("rida serve did not stop within 30s of SIGTERM")
		p.kill()
	}
}

func signedPush(secret string, i int) (*http.Request, error) {
	before := fmt.Sprintf("%040x", i+1)
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": before, "after": fmt.Sprintf("%040x", i+1_000_000),
		"repository": map[string]any{"full_name": "elsewhere/repo-" + fmt.Sprint(i%7), "clone_url": "file:///nonexistent"},
		"sender":     map[string]any{"login": "loadtest"}, "commits": []any{},
	})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, "", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("guid-%d", i))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	return req, nil
}

// TestServe_SIGKILL_LosesNoAcknowledgedDelivery sends signed deliveries from
// many goroutines, kills rida with SIGKILL in the middle, restarts it on the
// same data dir, and checks that every delivery answered 202 is stored and
// gets planned.
func TestServe_SIGKILL_LosesNoAcknowledgedDelivery(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	const secret = "crash-test-secret"
	p := startServe(t, data, secret)

	var mu sync.Mutex
	acked := map[uint64]bool{}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	client := &http.Client{Timeout: 5 * time.Second}
	next := make(chan int)
	go func() {
		defer close(next)
		for i := 0; ; i++ {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				req, _ := signedPush(secret, i)
				req.URL, _ = req.URL.Parse(p.base + "/webhooks/github")
				resp, err := client.Do(req.WithContext(ctx))
				if err != nil {
					continue // the server died mid-request: not acknowledged
				}
				var ack struct {
					Delivery uint64 `json:"delivery"`
				}
				err = json.NewDecoder(resp.Body).Decode(&ack)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted && err == nil {
					mu.Lock()
					acked[ack.Delivery] = true
					mu.Unlock()
				}
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.kill() // mid-stream: the senders are still sending
	cancel()
	wg.Wait()
	if len(acked) < 300 {
		t.Fatalf("only %d deliveries acknowledged before the kill", len(acked))
	}

	p2 := startServe(t, data, secret)
	var missing, unplanned []uint64
	deadline = time.Now().Add(60 * time.Second)
	for id := range acked {
		for {
			resp, err := client.Get(fmt.Sprintf("%s/api/v1/deliveries/%d", p2.base, id))
			if err != nil {
				t.Fatal(err)
			}
			var dv struct {
				Delivery state.Delivery `json:"delivery"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&dv)
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				missing = append(missing, id)
				break
			}
			if dv.Delivery.Disposition != nil {
				break
			}
			if time.Now().After(deadline) {
				unplanned = append(unplanned, id)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d acknowledged deliveries lost after SIGKILL: %v", len(missing), missing)
	}
	if len(unplanned) > 0 {
		t.Errorf("%d acknowledged deliveries never planned after restart: %v", len(unplanned), unplanned)
	}
	p2.term(t)
	store, err := state.Open(filepath.Join(data, "rida.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Check(); err != nil {
		t.Errorf("store inconsistent after SIGKILL and restart: %v", err)
	}
	t.Logf("%d deliveries acknowledged before SIGKILL, all stored and planned", len(acked))
}

func TestIndex_FillsComponentIndex(t *testing.T) {
	dir := t.TempDir()
	layout, err := examples.CreateRepos(dir, examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	code, out, errOut := runMain(t, "index", "--data-dir", data, layout.Module.Path)
	if code != exitOK || !strings.Contains(out, "1 module streams indexed") {
		t.Fatalf("index: exit %d\n%s\n%s", code, out, errOut)
	}
	store, err := state.Open(filepath.Join(data, "rida.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ms, err := store.ModulesForComponent(context.Background(), "rida-demo-tools", "main")
	if err != nil || len(ms) != 1 || ms[0].Module != examples.ModuleName || ms[0].Stream != examples.ModuleStream {
		t.Errorf("ModulesForComponent(rida-demo-tools, main) = %+v, %v", ms, err)
	}
}

// TestServe_WebhookMaxBody: webhook.max_body caps what a delivery may
// carry; a larger signed push gets 413 and is not stored.
func TestServe_WebhookMaxBody(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rida.yaml")
	if err := os.WriteFile(cfg, []byte("webhook: {max_body: 200}\nbackend: {kind: local, local: {sandbox: \"off\"}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const secret = "body-secret"
	p := startServe(t, filepath.Join(dir, "data"), secret, "--config", cfg)
	req, err := signedPush(secret, 1)
	if err != nil {
		t.Fatal(err)
	}
	if req.ContentLength <= 200 {
		t.Fatalf("the test push is only %d bytes", req.ContentLength)
	}
	u, _ := url.Parse(p.base + "/webhooks/github")
	req.URL, req.Host = u, u.Host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "limit of 200 bytes") {
		t.Errorf("got %d %s, want 413 naming the limit", resp.StatusCode, body)
	}
}
