package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestServe_PublicURLDefaultsToBoundAddress: without public_url, rida serve
// (listen 127.0.0.1:0) links to the address it is bound to, in commit
// statuses and in API paging links, whatever Host the request carried.
func TestServe_PublicURLDefaultsToBoundAddress(t *testing.T) {
	const secret = "public-url-secret"
	srv, layout, cfgPath, data, token := statusesSetup(t)
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("public_url: http://rida.example\n"), nil, 1)
	if bytes.Contains(cfg, []byte("public_url")) {
		t.Fatal("the configuration still sets public_url")
	}
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, data, secret, "--config", cfgPath, "--", "RIDA_GITHUB_TOKEN="+token)
	if !strings.HasPrefix(p.base, "http://127.0.0.1:") || strings.HasSuffix(p.base, ":0") {
		t.Fatalf("listening on %q", p.base)
	}
	d := &demo{base: p.base, secret: secret, client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}, timeout: 2 * time.Minute}
	if _, err := d.push(context.Background(), "modules/rida-demo", layout.Module, strings.Repeat("0", 40), layout.Module.Commit, "import"); err != nil {
		t.Fatalf("%v\n%s", err, d.out)
	}
	got := waitStatus(t, srv, "modules/rida-demo", layout.Module.Commit, "success", 30*time.Second)
	if !strings.HasPrefix(got.TargetURL, p.base+"/builds/") {
		t.Errorf("status target_url %q, want under %s/builds/", got.TargetURL, p.base)
	}
	// A paging link: the bound address, not the request's Host.
	req, _ := http.NewRequest(http.MethodGet, p.base+"/module-build-service/2/module-builds/?per_page=1", nil)
	req.Host = "proxy.example:9999"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Meta struct{ First, Last string } `json:"meta"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	want := p.base + "/module-build-service/2/module-builds/?page=1&per_page=1"
	if list.Meta.First != want || list.Meta.Last != want {
		t.Errorf("paging links first %q last %q, want %q", list.Meta.First, list.Meta.Last, want)
	}
}

func TestListenURL(t *testing.T) {
	host, _ := os.Hostname()
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		"[::1]:80":       "http://[::1]:80",
		"0.0.0.0:8080":   "http://" + net.JoinHostPort(host, "8080"),
		"[::]:8080":      "http://" + net.JoinHostPort(host, "8080"),
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := listenURL(a); got != want {
			t.Errorf("listenURL(%s) = %q, want %q", addr, got, want)
		}
	}
}
