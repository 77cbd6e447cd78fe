package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rida-build/rida/internal/bigstore"
)

// BenchmarkServeStartup_BigStore measures the whole start-up of the real
// rida binary (go build into a temp dir): from starting the process to the
// first 200 from /readyz, polled every millisecond. Everything rida serve
// does before it answers is inside: configuration, state.Open, the release
// of plan job leases, the reconciliation of running requests, the runner's
// recovery, the start of the planner, status worker and retention loop.
// Each op starts rida on a fresh copy of a store and stops it with SIGTERM
// (the copy and the stop are outside the timing); it reports the mean and
// the max start-up over the ops, and the longest stop (SIGTERM to exit).
//
//   - empty: a data dir with no store yet;
//   - big: issue 12's big store (internal/bigstore: 100,000 module builds,
//     200,000 deliveries, 1,000,000 events).
func BenchmarkServeStartup_BigStore(b *testing.B) {
	exe := filepath.Join(b.TempDir(), "rida")
	build := exec.Command("go", "build", "-o", exe, ".")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		big  bool
	}{{"empty", false}, {"big", true}} {
		b.Run(tc.name, func(b *testing.B) {
			if tc.big {
				if _, err := bigstore.Path(); err != nil { // seed before timing
					b.Fatal(err)
				}
			}
			var lat, stops []time.Duration
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				data := filepath.Join(dir, "data")
				if err := os.MkdirAll(data, 0o755); err != nil {
					b.Fatal(err)
				}
				if tc.big {
					if _, err := bigstore.CopyTo(data); err != nil {
						b.Fatal(err)
					}
				}
				cfg := filepath.Join(dir, "rida.yaml")
				if err := os.WriteFile(cfg, fmt.Appendf(nil, "listen: 127.0.0.1:0\ndata_dir: %s\n", data), 0o644); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				d, stop := startUntilReady(b, exe, cfg, filepath.Join(dir, "serve.log"))
				b.StopTimer()
				lat = append(lat, d)
				stops = append(stops, stop())
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			var sum time.Duration
			for _, d := range lat {
				sum += d
			}
			b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(lat)), "mean-ms")
			b.ReportMetric(float64(slices.Max(lat).Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(slices.Max(stops).Microseconds())/1000, "stop-max-ms")
		})
	}
}

// startUntilReady starts exe serve --config cfg and returns the time from
// process start to the first 200 from /readyz, and a func that stops the
// process with SIGTERM, waits for it to exit and returns how long that
// took.
func startUntilReady(b *testing.B, exe, cfg, logPath string) (time.Duration, func() time.Duration) {
	b.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { logf.Close() })
	cmd := exec.Command(exe, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "RIDA_WEBHOOK_SECRET=startup-secret")
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// The address is known once rida prints it (listen: …:0); /readyz is
	// polled from then on.
	sc := bufio.NewScanner(out)
	base := ""
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "rida: listening on "); ok {
			base = addr
			break
		}
	}
	done := make(chan error, 1)
	go func() { _, _ = io.Copy(io.Discard, out); done <- cmd.Wait() }()
	stop := func() time.Duration {
		t := time.Now()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			b.Errorf("rida serve did not stop within 60 s of SIGTERM; see %s", logPath)
		}
		return time.Since(t)
	}
	if base == "" {
		stop()
		b.Fatalf("rida serve did not start; see %s", logPath)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	for {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(t0), stop
			}
		}
		if time.Since(t0) > 60*time.Second {
			stop()
			b.Fatalf("/readyz not 200 within 60 s (last: %v); see %s", err, logPath)
		}
		time.Sleep(time.Millisecond)
	}
}
