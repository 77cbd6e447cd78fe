package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/state"
)

// bigStore is a store seeded once per benchmark run: 100,000 module builds
// (with components and a modulemd, as real records), 200,000 deliveries
// and the events both write. Seeding skips fsync (state.Options.NoSync);
// the benchmarks then open the file normally.
var bigStore struct {
	once sync.Once
	path string
	err  error
}

const (
	bigBuilds     = 100_000
	bigDeliveries = 200_000
)

func seedBigStore(b *testing.B) string {
	bigStore.once.Do(func() {
		dir, err := os.MkdirTemp("", "rida-bench-store-")
		if err != nil {
			bigStore.err = err
			return
		}
		bigStore.path = filepath.Join(dir, "rida.db")
		st, err := state.Open(bigStore.path, state.Options{NoSync: true})
		if err != nil {
			bigStore.err = err
			return
		}
		defer st.Close()
		ctx := context.Background()
		mmd := "document: modulemd\nversion: 2\ndata:\n  summary: s\n  description: d\n  license: {module: [MIT]}\n"
		for i := range bigBuilds {
			mb := state.ModuleBuild{Name: fmt.Sprintf("mod%03d", i%300), Stream: "1", Version: uint64(i), Context: "c0ffee00",
				State: state.ModuleStateReady, Modulemd: mmd, Identity: strconv.Itoa(i)}
			for c := range 5 {
				mb.Components = append(mb.Components, state.ComponentBuild{Key: fmt.Sprintf("pkg%d", c), Package: fmt.Sprintf("pkg%d", c),
					Batch: 2, State: "complete", NVR: fmt.Sprintf("pkg%d-1-1", c), RPMs: []string{fmt.Sprintf("pkg%d-0:1-1.noarch", c)}})
			}
			if _, err := st.PutModuleBuild(ctx, mb); err != nil {
				bigStore.err = err
				return
			}
		}
		for i := range bigDeliveries {
			d := &state.Delivery{Forge: "github", DeliveryGUID: strconv.Itoa(i), Event: "push", Repo: "rpms/p", CloneURL: "https://x/rpms/p",
				Ref: "refs/heads/main", Before: fmt.Sprintf("%040x", i), After: fmt.Sprintf("%040x", i+1),
				Commits: []state.Commit{{ID: fmt.Sprintf("%040x", i+1), Message: "change"}}, Sender: "packager"}
			if _, err := st.RecordDelivery(ctx, d); err != nil {
				bigStore.err = err
				return
			}
		}
	})
	if bigStore.err != nil {
		b.Fatal(bigStore.err)
	}
	return bigStore.path
}

// BenchmarkBigStore measures what the API answers on a store holding
// 100,000 module builds and 200,000 deliveries: the default build list,
// a filtered list, a build page, /metrics, and opening the store (rida
// serve's start-up); p99 is reported next to the mean.
func BenchmarkBigStore(b *testing.B) {
	path := seedBigStore(b)
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
	srv, err := api.New(api.Options{Store: st, Metrics: m, SubmitWait: -1, DataDir: filepath.Dir(path)})
	if err != nil {
		b.Fatal(err)
	}
	h := httptest.NewServer(srv)
	defer h.Close()
	for _, tc := range []struct{ name, path string }{
		{"list per_page=10", "/module-build-service/1/module-builds/?per_page=10"},
		{"list name=mod007 state=ready", "/module-build-service/1/module-builds/?name=mod007&state=ready&per_page=10"},
		{"build page", "/builds/" + strconv.Itoa(bigBuilds/2)},
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
