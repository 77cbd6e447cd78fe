package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowClient is one abusive connection and what rida answered it.
type slowClient struct {
	kind   string
	status int // the answer's status; 0: closed without one
	closed time.Duration
}

// TestServe_SlowClients holds 300 slow connections open against rida serve
// (100 sending request headers byte by byte, 100 sending a webhook body
// byte by byte, 100 opening event streams) and checks, while they are all
// connected, that /healthz answers on a new connection within 100 ms and
// that rida's resident memory (/proc/<pid>/status VmRSS) stays under
// 200 MiB; that a webhook beyond webhook.max_concurrent gets 503 with
// Retry-After at once; and then that the timeouts end every slow request.
func TestServe_SlowClients(t *testing.T) {
	if testing.Short() {
		t.Skip("slow-client flood")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rida.yaml")
	if err := os.WriteFile(cfg, []byte(`backend: {kind: local, local: {sandbox: "off"}}
webhook: {max_concurrent: 16, slot_wait: 500ms, body_timeout: 4s}
http: {read_header_timeout: 4s, read_timeout: 30s, write_timeout: 30s, idle_timeout: 30s, max_streams: 64, max_streams_per_client: 4}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	const secret = "flood-secret"
	p := startServe(t, filepath.Join(dir, "data"), secret, "--config", cfg)
	addr := strings.TrimPrefix(p.base, "http://")

	const perKind = 100
	var (
		mu      sync.Mutex
		clients []*slowClient
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	start := time.Now()
	open := func(kind, head string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", len(clients), err)
		}
		sc := &slowClient{kind: kind}
		mu.Lock()
		clients = append(clients, sc)
		mu.Unlock()
		if _, err := c.Write([]byte(head)); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		wg.Add(2)
		go func() { // one byte every 100 ms until the answer or the end
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if kind != "events" {
						if _, err := c.Write([]byte("a")); err != nil {
							return
						}
					}
				}
			}
		}()
		go func() { // what rida answers, and when
			defer wg.Done()
			defer c.Close()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			mu.Lock()
			sc.closed = time.Since(start)
			if err == nil {
				sc.status = resp.StatusCode
			}
			mu.Unlock()
			if err == nil && kind == "events" && resp.StatusCode == http.StatusOK {
				<-stop // a stream: hold it open without reading
			}
		}()
	}
	for i := range perKind {
		open("headers", "GET /healthz HTTP/1.1\r\nHost: rida\r\nX-Slow: ")
		open("body", fmt.Sprintf("POST /webhooks/github HTTP/1.1\r\nHost: rida\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: slow-%d\r\n"+
			"X-Hub-Signature-256: sha256=%s\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{", i, strings.Repeat("0", 64)))
		open("events", "GET /api/v1/events HTTP/1.1\r\nHost: rida\r\nAccept: text/event-stream\r\n\r\n")
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	connected := time.Since(start)
	time.Sleep(300 * time.Millisecond)

	// While all 300 are connected: /healthz on a fresh connection each time.
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	var worst time.Duration
	for range 20 {
		t0 := time.Now()
		resp, err := probe.Get(p.base + "/healthz")
		d := time.Since(t0)
		if err != nil {
			t.Fatalf("/healthz during the flood: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz during the flood: %d", resp.StatusCode)
		}
		worst = max(worst, d)
		time.Sleep(50 * time.Millisecond)
	}
	rss := vmRSS(t, p.cmd.Process.Pid)

	// A signed webhook now finds every slot held by the slow bodies.
	req, err := signedPush(secret, 1)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(p.base + "/webhooks/github")
	req.URL, req.Host = u, u.Host
	t0 := time.Now()
	resp, err := probe.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	busy := time.Since(t0)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || busy < 500*time.Millisecond || busy > 1500*time.Millisecond {
		t.Errorf("webhook during the flood: %d, Retry-After %q, after %s; want 503 with Retry-After once slot_wait (500ms) passed, within 1.5s", resp.StatusCode, resp.Header.Get("Retry-After"), busy)
	}
	mu.Lock()
	still := 0
	for _, c := range clients {
		if c.closed == 0 || (c.kind == "events" && c.status == http.StatusOK) {
			still++
		}
	}
	mu.Unlock()
	t.Logf("300 slow clients connected in %s, %d held open by rida while probing (the rest refused at once); /healthz worst of 20: %s; VmRSS %d KiB; a webhook beyond the slots: %d in %s",
		connected, still, worst, rss, resp.StatusCode, busy)
	if worst > 100*time.Millisecond {
		t.Errorf("/healthz took %s during the flood, want < 100ms", worst)
	}
	if rss > 200<<10 {
		t.Errorf("VmRSS %d KiB during the flood, want < 200 MiB", rss)
	}
	// Every request rida did not refuse at once (100 slow headers, 16
	// slow bodies in the webhook slots, 4 streams) is still open.
	if still < perKind+16+4 {
		t.Errorf("only %d slow requests were still open while probing, want %d; the test did not flood", still, perKind+16+4)
	}

	// The timeouts end every slow request: headers after
	// read_header_timeout (closed), bodies after body_timeout (408) unless
	// refused at once (503); streams beyond the per-client cap get 429.
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		var pending []string
		count := map[string]int{}
		for _, c := range clients {
			count[c.kind+"/"+strconv.Itoa(c.status)]++
			if c.closed == 0 && c.kind != "events" {
				pending = append(pending, c.kind)
			}
		}
		mu.Unlock()
		if len(pending) == 0 {
			t.Logf("answers: %v", count)
			if count["events/429"] != perKind-4 || count["events/200"] != 4 {
				t.Errorf("event streams: %v, want 4 streams and %d refused with 429", count, perKind-4)
			}
			if count["body/408"] != 16 || count["body/503"] != perKind-16 {
				t.Errorf("slow bodies: %v, want 16 ended with 408 and %d refused with 503", count, perKind-16)
			}
			if count["headers/0"] != perKind {
				t.Errorf("slow headers: %v, want every connection closed", count)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d slow requests still open %s after the start: %v", len(pending), time.Since(start), pending[:min(5, len(pending))])
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	for _, c := range clients {
		if c.kind != "events" && c.status != http.StatusServiceUnavailable && c.closed < 4*time.Second {
			t.Errorf("a slow %s request ended after %s, before its 4s timeout", c.kind, c.closed)
			break
		}
	}
	mu.Unlock()
	resp, err = probe.Get(p.base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after the flood: %v %v", resp, err)
	}
	resp.Body.Close()
}

// vmRSS reads a process's resident set size in KiB from /proc.
func vmRSS(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
