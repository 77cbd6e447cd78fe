package api

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rida-build/rida/state"
)

// MetricsStore is what the scrape-time collector reads. *state.Store
// implements it.
type MetricsStore interface {
	QueueStats(ctx context.Context) (state.QueueStats, error)
	BuildCountsByState(ctx context.Context) (map[state.ModuleState]int, error)
}

// MetricsOptions configures NewMetrics.
type MetricsOptions struct {
	// Registry receives every rida metric and is what /metrics serves.
	// Required; process and Go runtime collectors are the caller's choice.
	Registry *prometheus.Registry
	// Store, if set, is read at every scrape for the queue and build
	// metrics.
	Store MetricsStore
	// ComponentBuckets are the histogram buckets (seconds) of component
	// build durations. Default 1s … 4h.
	ComponentBuckets []float64
	// HTTPBuckets are the histogram buckets (seconds) of API request
	// durations. Default 5ms … 60s.
	HTTPBuckets []float64
	// Version is rida's version, the version label of rida_build_info.
	// Default "dev".
	Version string
	// Now is the clock for ages. Default time.Now.
	Now func() time.Time
}

// Metrics holds rida's Prometheus metrics. Its methods are safe for
// concurrent use and do nothing on a nil *Metrics, so callers need no
// checks when metrics are off.
type Metrics struct {
	reg         *prometheus.Registry
	webhooks    *prometheus.CounterVec
	statusPosts *prometheus.CounterVec
	firstStatus prometheus.Histogram
	finished    *prometheus.CounterVec
	httpDur     *prometheus.HistogramVec
	// componentDur is observed as builds end (ObserveBuild), not computed
	// from every stored build at each scrape.
	componentDur *prometheus.HistogramVec
}

// NewMetrics registers rida's metrics on opts.Registry:
//
//	rida_webhook_requests_total{forge,code}          counter (Webhooks middleware; code is 2xx/4xx/5xx)
//	rida_status_posts_total{forge,outcome}           counter (StatusPosted)
//	rida_time_to_first_status_seconds                histogram (TimeToFirstStatus)
//	rida_queue_pending_requests                      gauge (store, at scrape)
//	rida_queue_running_requests                      gauge (store, at scrape)
//	rida_queue_oldest_pending_age_seconds            gauge (store, at scrape; 0 when empty)
//	rida_module_builds{state}                        gauge: builds by state (store, at scrape)
//	rida_component_build_duration_seconds{state}     histogram of finished components (ObserveBuild, as builds end)
//	rida_module_builds_finished_total{outcome}       counter of module builds that ended (ObserveBuild)
//	rida_http_request_duration_seconds{route,code}   histogram of API requests by route pattern (HTTP)
//	rida_build_info{version,revision,go_version}     gauge, always 1
func NewMetrics(opts MetricsOptions) (*Metrics, error) {
	if opts.Registry == nil {
		return nil, errors.New("api: MetricsOptions.Registry is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(opts.ComponentBuckets) == 0 {
		opts.ComponentBuckets = []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400}
	}
	if len(opts.HTTPBuckets) == 0 {
		opts.HTTPBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	m := &Metrics{
		reg: opts.Registry,
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rida_webhook_requests_total", Help: "Webhook requests answered, by forge path and status code class.",
		}, []string{"forge", "code"}),
		statusPosts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rida_status_posts_total", Help: "Commit status posts to forges, by forge and outcome (ok, retry, failed).",
		}, []string{"forge", "outcome"}),
		firstStatus: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rida_time_to_first_status_seconds", Help: "Time from a delivery's receipt to its first commit status post.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60},
		}),
	}
	m.componentDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rida_component_build_duration_seconds", Help: "Durations of component builds (not reused ones) of the module builds that ended since rida started, by final state.",
		Buckets: opts.ComponentBuckets,
	}, []string{"state"})
	m.finished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rida_module_builds_finished_total", Help: "Module builds that ended since rida started, by outcome (ready, done, garbage, failed, error, cancelled).",
	}, []string{"outcome"})
	m.httpDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rida_http_request_duration_seconds", Help: "Time to answer API, page and download requests, by route pattern and status code class (event streams and backups last as long as the client reads).",
		Buckets: opts.HTTPBuckets,
	}, []string{"route", "code"})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rida_build_info", Help: "rida's version, VCS revision and Go version; always 1.",
	}, []string{"version", "revision", "go_version"})
	info.WithLabelValues(opts.Version, vcsRevision(), runtime.Version()).Set(1)
	cs := []prometheus.Collector{m.webhooks, m.statusPosts, m.firstStatus, m.componentDur, m.finished, m.httpDur, info}
	if opts.Store != nil {
		cs = append(cs, newStoreCollector(opts))
	}
	for _, c := range cs {
		if err := opts.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// webhookForges bounds the forge label: anything else counts as "other".
var webhookForges = []string{"github", "gitea", "forgejo", "gitlab"}

// Webhooks wraps the webhook receiver so every answer is counted by the
// forge named in its path (/webhooks/<forge>) and its status code class.
func (m *Metrics) Webhooks(h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		forge := strings.Trim(strings.TrimPrefix(r.URL.Path, "/webhooks/"), "/")
		known := false
		for _, f := range webhookForges {
			known = known || f == forge
		}
		if !known {
			forge = "other"
		}
		m.webhooks.WithLabelValues(forge, codeClass(rec.status)).Inc()
	})
}

func codeClass(status int) string {
	switch {
	case status >= 500:
		return "5xx"
	case status >= 400:
		return "4xx"
	case status >= 300:
		return "3xx"
	}
	return "2xx"
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush lets streaming answers (event streams) flush through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// StatusPosted counts one commit status post to forge with outcome (for
// example "ok", "retry", "failed"). The status outbox calls it.
func (m *Metrics) StatusPosted(forge, outcome string) {
	if m == nil {
		return
	}
	m.statusPosts.WithLabelValues(forge, outcome).Inc()
}

// TimeToFirstStatus observes the time from a delivery's receipt to its
// first status post. The status outbox calls it once per delivery.
func (m *Metrics) TimeToFirstStatus(d time.Duration) {
	if m == nil {
		return
	}
	m.firstStatus.Observe(d.Seconds())
}

// storeCollector reads the store at scrape time.
type storeCollector struct {
	opts                             MetricsOptions
	pending, running, oldest, builds *prometheus.Desc
}

func newStoreCollector(opts MetricsOptions) *storeCollector {
	return &storeCollector{
		opts:    opts,
		pending: prometheus.NewDesc("rida_queue_pending_requests", "Build requests waiting in the queue.", nil, nil),
		running: prometheus.NewDesc("rida_queue_running_requests", "Build requests being built.", nil, nil),
		oldest:  prometheus.NewDesc("rida_queue_oldest_pending_age_seconds", "Age of the oldest pending build request (0 when none).", nil, nil),
		builds:  prometheus.NewDesc("rida_module_builds", "Module builds in the store, by state.", []string{"state"}, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.running, c.oldest, c.builds} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	qs, err := c.opts.Store.QueueStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.pending, err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(qs.Pending))
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(qs.Running))
		age := 0.0
		if !qs.OldestPending.IsZero() {
			age = max(0, c.opts.Now().Sub(qs.OldestPending).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
	}
	counts, err := c.opts.Store.BuildCountsByState(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.builds, err)
		return
	}
	for st := state.ModuleStateInit; st <= state.ModuleStateGarbage; st++ {
		ch <- prometheus.MustNewConstMetric(c.builds, prometheus.GaugeValue, float64(counts[st]), st.String())
	}
}

// vcsRevision is the VCS revision the binary was built from ("" when the
// build recorded none, as in tests).
func vcsRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}

// BuildOutcome is the outcome label of rida_module_builds_finished_total
// for a build that ended: its state (ready, done, garbage), or for a
// failed build failed (the build's fault), error (infrastructure) or
// cancelled.
func BuildOutcome(mb state.ModuleBuild) string {
	if mb.State != state.ModuleStateFailed {
		return mb.State.String()
	}
	switch mb.FailureKind {
	case state.FailureInfra:
		return "error"
	case state.FailureCanceled:
		return "cancelled"
	}
	return "failed"
}

// HTTP observes the duration of every request h answers in
// rida_http_request_duration_seconds, labelled by the route pattern the
// ServeMux matched (r.Pattern, e.g. "GET /builds/{id}", never the raw
// path, so the label set stays bounded) and the status code class. h
// answers the request and returns the request the ServeMux routed (which
// carries the pattern).
func (m *Metrics) HTTP(w http.ResponseWriter, r *http.Request, h func(http.ResponseWriter, *http.Request) *http.Request) {
	if m == nil {
		h(w, r)
		return
	}
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	routed := h(rec, r)
	m.httpDur.WithLabelValues(cmpOr(routed.Pattern, "unmatched"), codeClass(rec.status)).Observe(time.Since(start).Seconds())
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ObserveBuild counts mb in rida_module_builds_finished_total by its
// outcome (BuildOutcome) and records the durations of its built (not
// reused) components in rida_component_build_duration_seconds; the runner
// calls it once per build that ends.
func (m *Metrics) ObserveBuild(mb state.ModuleBuild) {
	if m == nil {
		return
	}
	m.finished.WithLabelValues(BuildOutcome(mb)).Inc()
	for _, c := range mb.Components {
		if c.Started.IsZero() || c.Finished.IsZero() || c.State == "reused" {
			continue
		}
		m.componentDur.WithLabelValues(c.State).Observe(c.Finished.Sub(c.Started).Seconds())
	}
}
