package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/forge"
	"github.com/rida-build/rida/forge/forgetest"
	"github.com/rida-build/rida/state"
)

// BenchmarkDeliveryToFirstPendingStatus measures, through the whole server
// in process (receiver, planner with a real git fetch and diff, queue,
// status outbox and worker), the time from sending a signed module push to
// the forge double receiving the first pending status on that commit. The
// runner is not started, so builds do not compete for the CPU.
func BenchmarkDeliveryToFirstPendingStatus(b *testing.B) {
	srv := forgetest.NewServer(b, forge.KindGHE)
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		b.Fatal(err)
	}
	layout, err := examples.CreateRepos(filepath.Join(dir, "git"), examples.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "rida.yaml")
	cfgText := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\npublic_url: http://rida.example\n"+
		"forges: [{kind: github, secret_env: B_SECRET, api_url: %q, token_env: B_TOKEN}]\n"+
		"statuses: {rate_per_forge: 1000}\nbackend: {kind: local}\n", filepath.Join(dir, "data"), srv.URL())
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Setenv("B_SECRET", "bench-secret")
	b.Setenv("B_TOKEN", srv.Token())
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	forges, err := cfg.forgeSecrets(os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	s, err := newServer(cfg, forges, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.statuses.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.statuses.Stop()
	if err := s.planner.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.planner.Stop()
	hs := httptest.NewServer(s.handler())
	defer hs.Close()
	d := &demo{base: hs.URL, secret: "bench-secret", client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}}

	prev := layout.Module.Commit
	mod := layout.Module
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		yaml := strings.Replace(string(examples.ModuleYAML()), "Demonstration module for rida", fmt.Sprintf("Demonstration module for rida (%d)", i), 1)
		after, err := mod.CommitFiles(fmt.Sprintf("change %d", i), map[string]string{examples.ModuleFile: yaml})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := d.deliver(ctx, "modules/rida-demo", mod, prev, after, "change"); err != nil {
			b.Fatal(err)
		}
		key := forgetest.Key{Repo: "modules/rida-demo", SHA: after, Context: "rida/rida-demo:1.0"}
		for {
			if got, ok := srv.Statuses()[key]; ok && got.State == "pending" {
				break
			}
			if time.Since(start) > 30*time.Second {
				var dv map[string]any
				_ = d.get(ctx, fmt.Sprintf("/api/v1/deliveries/%d", i+1), &dv)
				b.Fatalf("no pending status for %s after 30s; delivery %d: %v", after, i+1, dv["delivery"])
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		prev = after
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/first-pending")
}

// BenchmarkServeIdleRSS_10000Modules starts 'rida serve' (a real process) on
// a store whose index holds 10 000 module streams of 11 components each and
// reports its resident memory once idle (design target ≤ 64 MiB).
func BenchmarkServeIdleRSS_10000Modules(b *testing.B) {
	dir := b.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		b.Fatal(err)
	}
	store, err := state.Open(filepath.Join(data, "rida.db"), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				comps := []state.IndexedComponent{{Name: "hot", Ref: "main"}}
				for j := range 10 {
					comps = append(comps, state.IndexedComponent{Name: fmt.Sprintf("pkg%04d", (i*7+j*131)%5000), Ref: "main"})
				}
				if err := store.SetModuleComponents(context.Background(), fmt.Sprintf("mod%05d", i), "main", fmt.Sprintf("modules/mod%05d", i), comps); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range 10000 {
		work <- i
	}
	close(work)
	wg.Wait()
	store.Close()
	b.ResetTimer()
	for b.Loop() {
		p := startServe(b, data, "rss-secret")
		time.Sleep(3 * time.Second) // idle: nothing queued, planner and runner polling
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		var kb float64
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			}
		}
		b.ReportMetric(kb/1024, "MiB-RSS-idle")
		p.term(b)
	}
}
