package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// pruneMetrics are the retention run's Prometheus metrics, registered on
// rida serve's registry (the one /metrics serves):
//
//	rida_retention_removed_total{kind}          counter: what retention removed, by kind
//	rida_retention_tree_bytes_removed_total     counter: bytes of the build trees removed
//	rida_retention_errors_total{part}           counter: runs in which a part failed (store, trees, uploads, mirrors)
//	rida_retention_last_run_timestamp_seconds   gauge: when the last run ended (Unix time)
//	rida_retention_last_run_duration_seconds    gauge: how long the last run took
//
// Its methods do nothing on a nil *pruneMetrics.
type pruneMetrics struct {
	removed   *prometheus.CounterVec
	treeBytes prometheus.Counter
	errors    *prometheus.CounterVec
	lastRun   prometheus.Gauge
	lastDur   prometheus.Gauge
}

// pruneKinds are the kind label's values, each present from the start.
var pruneKinds = []string{"events", "deliveries", "delivery_commits", "statuses",
	"superseded_builds", "failed_builds", "requests", "trees", "mirrors", "uploads"}

// newPruneMetrics registers the retention metrics on reg.
func newPruneMetrics(reg prometheus.Registerer) (*pruneMetrics, error) {
	m := &pruneMetrics{
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rida_retention_removed_total",
			Help: "Records, trees, uploads and mirrors retention removed, by kind."}, []string{"kind"}),
		treeBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "rida_retention_tree_bytes_removed_total",
			Help: "Bytes of the build trees retention removed."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rida_retention_errors_total",
			Help: "Retention runs in which a part failed: store, trees, uploads or mirrors."}, []string{"part"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rida_retention_last_run_timestamp_seconds",
			Help: "When the last retention run ended (Unix time; 0 before the first)."}),
		lastDur: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rida_retention_last_run_duration_seconds",
			Help: "How long the last retention run took."}),
	}
	for _, c := range []prometheus.Collector{m.removed, m.treeBytes, m.errors, m.lastRun, m.lastDur} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, k := range pruneKinds {
		m.removed.WithLabelValues(k)
	}
	for _, part := range []string{"store", "trees", "uploads", "mirrors"} {
		m.errors.WithLabelValues(part)
	}
	return m, nil
}

// failed counts a failure of part when err is not nil.
func (m *pruneMetrics) failed(part string, err error) {
	if m == nil || err == nil {
		return
	}
	m.errors.WithLabelValues(part).Inc()
}

// ran records a run that ended at end, took took and removed res.
func (m *pruneMetrics) ran(res pruneResult, end time.Time, took time.Duration) {
	if m == nil {
		return
	}
	for k, n := range map[string]int{
		"events": res.Events, "deliveries": res.Deliveries, "delivery_commits": res.DeliveryCommits, "statuses": res.Statuses,
		"superseded_builds": res.SupersededBuilds, "failed_builds": res.FailedBuilds, "requests": res.Requests,
		"trees": res.Trees, "mirrors": res.Mirrors, "uploads": res.Uploads,
	} {
		m.removed.WithLabelValues(k).Add(float64(n))
	}
	m.treeBytes.Add(float64(res.TreeBytes))
	m.lastRun.Set(float64(end.UnixNano()) / 1e9)
	m.lastDur.Set(took.Seconds())
}
