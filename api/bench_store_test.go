package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/internal/bigstore"
	"github.com/rida-build/rida/state"
)

// BenchmarkBigStore measures what the API answers on issue 12's big store
// (internal/bigstore: 100,000 module builds, 200,000 deliveries,
// 1,000,000 events; a private copy): the default build list, a filtered
// list, a build page, /metrics, and opening the store (the store's part of
// rida serve's start-up; cmd/rida's BenchmarkServeStartup_BigStore times
// the whole start); p99 is reported next to the mean.
func BenchmarkBigStore(b *testing.B) {
	path, err := bigstore.CopyTo(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("open", func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			t0 := time.Now()
			st, err := state.Open(path, state.Options{})
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
			st.Close()
		}
		reportP99(b, lat)
	})
	st, err := state.Open(path, state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	m, err := api.NewMetrics(api.MetricsOptions{Registry: reg, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := api.New(api.Options{Store: st, Metrics: m, DataDir: filepath.Dir(path)})
	if err != nil {
		b.Fatal(err)
	}
	h := httptest.NewServer(srv)
	defer h.Close()
	for _, tc := range []struct{ name, path string }{
		{"list per_page=10", "/module-build-service/1/module-builds/?per_page=10"},
		{"list name=mod007 state=ready", "/module-build-service/1/module-builds/?name=mod007&state=ready&per_page=10"},
		{"build page", "/builds/" + strconv.Itoa(bigstore.Builds/2)},
		{"builds page", "/builds"},
		{"metrics", "/metrics"},
		{"deliveries per_page=10", "/api/v1/deliveries?per_page=10"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				resp, err := http.Get(h.URL + tc.path)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", tc.path, resp.StatusCode)
				}
				lat = append(lat, time.Since(t0))
			}
			reportP99(b, lat)
		})
	}
}

func reportP99(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
