package webhook

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkReceiver_Ack measures the durable acknowledgement latency of a
// GitHub push (HTTP round trip over loopback + HMAC + parse + bbolt commit
// with fsync, via RecordDelivery's DB.Batch) with c concurrent senders. Each
// sub-benchmark reports p50 and p99 latency in ms and the throughput.
func BenchmarkReceiver_Ack(b *testing.B) {
	body := fixture(b, GitHub, "push.json")
	sig := "sha256=" + hmacHex(testSecret, body)
	for _, c := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
			store := openStore(b)
			srv := newTestServer(b, store, allForges(testSecret))
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}}
			defer client.CloseIdleConnections()
			var (
				next  atomic.Int64
				mu    sync.Mutex
				lats  = make([]time.Duration, 0, b.N)
				wg    sync.WaitGroup
				first error
				once  sync.Once
			)
			b.ResetTimer()
			start := time.Now()
			for range c {
				wg.Add(1)
				go func() {
					defer wg.Done()
					local := make([]time.Duration, 0, b.N/c+1)
					for next.Add(1) <= int64(b.N) {
						req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/github", bytes.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("X-GitHub-Event", "push")
						req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
						req.Header.Set("X-Hub-Signature-256", sig)
						t0 := time.Now()
						resp, err := client.Do(req)
						if err == nil {
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode != http.StatusAccepted {
								err = fmt.Errorf("status %d", resp.StatusCode)
							}
						}
						if err != nil {
							once.Do(func() { first = err })
							return
						}
						local = append(local, time.Since(t0))
					}
					mu.Lock()
					lats = append(lats, local...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if first != nil {
				b.Fatal(first)
			}
			slices.Sort(lats)
			pct := func(p float64) float64 {
				return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "acks/s")
		})
	}
}

// BenchmarkReceiver_Ack_500PerSecond is the design's own condition: pushes
// arriving at a sustained 500 per second (open loop: each one is sent at its
// scheduled time, from as many goroutines as needed), durable acks,
// latency percentiles measured from the scheduled send time so a slow ack
// delays nothing behind it unnoticed. One op is one second of traffic.
func BenchmarkReceiver_Ack_500PerSecond(b *testing.B) {
	const rate = 500
	body := fixture(b, GitHub, "push.json")
	sig := "sha256=" + hmacHex(testSecret, body)
	store := openStore(b)
	srv := newTestServer(b, store, allForges(testSecret))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs atomic.Int64
	)
	for b.Loop() {
		var wg sync.WaitGroup
		start := time.Now()
		for i := range rate {
			due := start.Add(time.Duration(i) * time.Second / rate)
			time.Sleep(time.Until(due))
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/github", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "push")
				req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
				req.Header.Set("X-Hub-Signature-256", sig)
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs.Add(1)
					return
				}
				mu.Lock()
				lats = append(lats, time.Since(due))
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	if n := errs.Load(); n > 0 {
		b.Fatalf("%d deliveries not acknowledged", n)
	}
	slices.Sort(lats)
	pct := func(p float64) float64 {
		return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(lats)), "acks")
}
