package api_test

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/state"
)

// TestMetrics_Issue13: rida_build_info, finished builds by outcome (as the
// runner's OnFinish calls ObserveBuild), API request durations labelled by
// route pattern (not the raw path) and component-duration buckets from 1 s.
func TestMetrics_Issue13(t *testing.T) {
	b := setup(t)
	seedBuilds(b)
	m := b.srv.Metrics()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, mb := range []state.ModuleBuild{
		{State: state.ModuleStateReady, Components: []state.ComponentBuild{
			{Key: "a", State: "complete", Started: t0, Finished: t0.Add(800 * time.Millisecond)},
			{Key: "b", State: "reused", Started: t0, Finished: t0.Add(time.Hour)},
		}},
		{State: state.ModuleStateReady},
		{State: state.ModuleStateDone},
		{State: state.ModuleStateGarbage},
		{State: state.ModuleStateFailed, FailureKind: state.FailureBuild, Components: []state.ComponentBuild{
			{Key: "c", State: "failed", Started: t0, Finished: t0.Add(90 * time.Second)},
		}},
		{State: state.ModuleStateFailed, FailureKind: state.FailureInfra},
		{State: state.ModuleStateFailed, FailureKind: state.FailureCanceled},
		{State: state.ModuleStateFailed},
	} {
		m.ObserveBuild(mb)
	}
	for _, p := range []string{"/builds/1", "/builds/2", "/builds/999", "/no/such/path", "/module-build-service/2/module-builds/3", "/module-build-service/2/module-builds/?per_page=1"} {
		b.get(p)
	}
	resp, err := http.Post(b.http.URL+"/api/v1/pause", "application/json", strings.NewReader(`{"all": true}`)) // no token: 401
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	body := string(b.get("/metrics").body)
	for _, want := range []string{
		`rida_build_info{go_version="` + runtime.Version() + `",revision="",version="dev"} 1`,
		`rida_module_builds_finished_total{outcome="ready"} 2`,
		`rida_module_builds_finished_total{outcome="done"} 1`,
		`rida_module_builds_finished_total{outcome="garbage"} 1`,
		`rida_module_builds_finished_total{outcome="failed"} 2`,
		`rida_module_builds_finished_total{outcome="error"} 1`,
		`rida_module_builds_finished_total{outcome="cancelled"} 1`,
		// Buckets from 1 s: a 0.8 s component is in le="1"; reused ones are not observed.
		`rida_component_build_duration_seconds_bucket{state="complete",le="1"} 1`,
		`rida_component_build_duration_seconds_count{state="complete"} 1`,
		`rida_component_build_duration_seconds_bucket{state="failed",le="60"} 0`,
		`rida_component_build_duration_seconds_bucket{state="failed",le="120"} 1`,
		`rida_http_request_duration_seconds_count{code="2xx",route="GET /builds/{id}"} 2`,
		`rida_http_request_duration_seconds_count{code="4xx",route="GET /builds/{id}"} 1`,
		`rida_http_request_duration_seconds_count{code="4xx",route="/"} 1`,
		`rida_http_request_duration_seconds_count{code="2xx",route="GET /module-build-service/2/module-builds/{id}"} 1`,
		`rida_http_request_duration_seconds_count{code="2xx",route="GET /module-build-service/2/module-builds/{$}"} 1`,
		`rida_http_request_duration_seconds_count{code="4xx",route="POST /api/v1/pause"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The label is the pattern, never the raw path.
	for _, raw := range []string{`route="/builds/1"`, `route="/no/such/path"`, `route="/builds/999"`} {
		if strings.Contains(body, raw) {
			t.Errorf("/metrics has a raw path label %s", raw)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "rida_http") || strings.HasPrefix(l, "rida_build_info") || strings.HasPrefix(l, "rida_module_builds_finished") {
				t.Log(l)
			}
		}
	}
}
