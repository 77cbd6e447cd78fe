package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/state"
)

// One retention run: the store's records, the build trees retention no
// longer keeps (removed, then marked on the build), the trees builds still
// need, and an unused mirror.
func TestPruner_RunOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := state.Open(filepath.Join(dir, "rida.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	trees := filepath.Join(dir, "builds")
	comps := []state.ComponentBuild{{Key: "p", Package: "p", Batch: 2, State: "complete", RPMs: []string{"p-1-1.noarch"}}}
	put := func(st state.ModuleState) (*state.ModuleBuild, string) {
		t.Helper()
		mb, err := store.PutModuleBuild(ctx, state.ModuleBuild{Name: "m", Stream: "1", Version: 1, Context: "c", State: st, Components: comps})
		if err != nil {
			t.Fatal(err)
		}
		tree := local.TreeDir(trees, mb.Name, mb.Stream, mb.Version, mb.Context, int64(mb.ID))
		if err := os.MkdirAll(filepath.Join(tree, "repo"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, "repo", "p-1-1.noarch.rpm"), []byte("rpm"), 0o644); err != nil {
			t.Fatal(err)
		}
		return mb, tree
	}
	failed, failedTree := put(state.ModuleStateFailed)
	old, oldTree := put(state.ModuleStateReady)
	_, keptTree := put(state.ModuleStateReady)
	_, newestTree := put(state.ModuleStateReady)

	mirrors, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(dir, "mirrors")})
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "mirrors", "gone-000000000000.git")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-40 * 24 * time.Hour)
	if err := os.Chtimes(stale, past, past); err != nil {
		t.Fatal(err)
	}

	p := &pruner{store: store, r: state.Retention{FailedTrees: 14 * 24 * time.Hour, KeepTrees: 2},
		treesDir: trees, mirrors: mirrors, mirrorAge: 30 * 24 * time.Hour}
	res, err := p.runOnce(ctx, time.Now().Add(15*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Trees != 2 || res.TreeBytes != 6 || res.Mirrors != 1 {
		t.Errorf("pruned %+v, want 2 trees of 3 bytes and 1 mirror", res)
	}
	for tree, want := range map[string]bool{failedTree: false, oldTree: false, keptTree: true, newestTree: true, stale: false} {
		if _, err := os.Stat(tree); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", tree, err == nil, want)
		}
	}
	for _, id := range []uint64{failed.ID, old.ID} {
		mb, err := store.GetModuleBuild(ctx, id)
		if err != nil || mb.TreePrunedAt.IsZero() {
			t.Errorf("build %d: %+v %v, want its tree recorded as pruned", id, mb, err)
		}
	}
	if res, err := p.runOnce(ctx, time.Now().Add(15*24*time.Hour)); err != nil || !res.empty() {
		t.Errorf("second run: %+v %v, want nothing left to do", res, err)
	}
}

// A retention run deletes old build records and removes their trees from
// disk (the store lists them until then), and counts what it removed, how
// long it took and its errors in the retention metrics.
func TestPruner_RunOnce_DeletesBuildsAndTheirTrees(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := state.Open(filepath.Join(dir, "rida.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trees := filepath.Join(dir, "builds")
	put := func(st state.ModuleState, version uint64) (uint64, string) {
		t.Helper()
		mb, err := store.PutModuleBuild(ctx, state.ModuleBuild{Name: "m", Stream: "1", Version: version, Context: "c", State: st})
		if err != nil {
			t.Fatal(err)
		}
		tree := local.TreeDir(trees, mb.Name, mb.Stream, mb.Version, mb.Context, int64(mb.ID))
		if err := os.MkdirAll(filepath.Join(tree, "logs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, "logs", "build.log"), []byte("log"), 0o644); err != nil {
			t.Fatal(err)
		}
		return mb.ID, tree
	}
	failed, failedTree := put(state.ModuleStateFailed, 1)
	old, oldTree := put(state.ModuleStateReady, 2)
	newest, newestTree := put(state.ModuleStateReady, 3)

	reg := prometheus.NewRegistry()
	m, err := newPruneMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := &pruner{store: store, treesDir: trees, metrics: m,
		r: state.Retention{SupersededBuilds: 1, FailedBuilds: 30 * 24 * time.Hour, Requests: 90 * 24 * time.Hour}}
	res, err := p.runOnce(ctx, time.Now().Add(31*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.SupersededBuilds != 1 || res.FailedBuilds != 1 || res.Trees != 2 || res.TreeBytes != 6 {
		t.Errorf("pruned %+v, want 1 superseded and 1 failed build, 2 trees of 3 bytes", res)
	}
	for id, want := range map[uint64]bool{failed: false, old: false, newest: true} {
		if _, err := store.GetModuleBuild(ctx, id); (err == nil) != want {
			t.Errorf("build %d: %v, want kept %v", id, err, want)
		}
	}
	for tree, want := range map[string]bool{failedTree: false, oldTree: false, newestTree: true} {
		if _, err := os.Stat(tree); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", tree, err == nil, want)
		}
	}
	if left, err := store.DeletedTrees(ctx, 0); err != nil || len(left) != 0 {
		t.Errorf("deleted trees still listed: %+v %v", left, err)
	}
	if err := store.Check(); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		name, label string
		want        float64
	}{
		{"rida_retention_removed_total", "superseded_builds", 1},
		{"rida_retention_removed_total", "failed_builds", 1},
		{"rida_retention_removed_total", "trees", 2},
		{"rida_retention_removed_total", "requests", 0},
		{"rida_retention_tree_bytes_removed_total", "", 6},
		{"rida_retention_errors_total", "store", 0},
	} {
		if got, ok := metricValue(t, reg, c.name, c.label); !ok || got != c.want {
			t.Errorf("%s{%s} = %v (found %v), want %v", c.name, c.label, got, ok, c.want)
		}
	}
	if ts, _ := metricValue(t, reg, "rida_retention_last_run_timestamp_seconds", ""); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last run at %v, want now", ts)
	}
	if d, ok := metricValue(t, reg, "rida_retention_last_run_duration_seconds", ""); !ok || d <= 0 {
		t.Errorf("last run duration %v %v", d, ok)
	}
	// A failing store is counted as an error of the run's store part.
	store.Close()
	if _, err := p.runOnce(ctx, time.Now()); err == nil {
		t.Error("run on a closed store: no error")
	}
	if got, _ := metricValue(t, reg, "rida_retention_errors_total", "store"); got != 1 {
		t.Errorf("store errors %v, want 1", got)
	}
}

// metricValue is the value of the counter or gauge name (with its one
// label equal to label, when label is not empty) gathered from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// The retention keys: left out they keep state.DefaultRetention (the
// built-in configuration says the same), given they replace it, negative
// values are refused.
func TestConfig_Retention(t *testing.T) {
	builtin, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if got := builtin.retention(); got != state.DefaultRetention {
		t.Errorf("built-in retention %+v, want state.DefaultRetention %+v", got, state.DefaultRetention)
	}
	dir := t.TempDir()
	write := func(yaml string) string {
		t.Helper()
		p := filepath.Join(dir, fmt.Sprintf("c%d.yaml", len(yaml)))
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := loadConfig(write("retention:\n  superseded_builds_per_stream: 0\n  failed_builds: 24h\n  requests: 0s\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := state.DefaultRetention
	want.SupersededBuilds, want.FailedBuilds, want.Requests = 0, 24*time.Hour, 0
	if got := c.retention(); got != want {
		t.Errorf("retention %+v, want %+v", got, want)
	}
	for _, bad := range []string{"superseded_builds_per_stream: -1", "failed_builds: -1h", "requests: -1h"} {
		if _, err := loadConfig(write("retention:\n  " + bad + "\n")); err == nil || !strings.Contains(err.Error(), strings.Split(bad, ":")[0]) {
			t.Errorf("%s: err %v, want one naming the key", bad, err)
		}
	}
}

// rida serve runs the retention at start and exports its metrics on
// /metrics.
func TestServe_RetentionMetrics(t *testing.T) {
	p := startServe(t, filepath.Join(t.TempDir(), "data"), "metrics-secret")
	defer p.term(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(p.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text := string(body)
		ran := strings.Contains(text, "rida_retention_last_run_timestamp_seconds ") &&
			!strings.Contains(text, "rida_retention_last_run_timestamp_seconds 0\n")
		if ran {
			for _, want := range []string{`rida_retention_removed_total{kind="superseded_builds"} 0`, `rida_retention_removed_total{kind="requests"} 0`,
				`rida_retention_errors_total{part="store"} 0`, "rida_retention_tree_bytes_removed_total 0", "rida_retention_last_run_duration_seconds "} {
				if !strings.Contains(text, want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retention run in /metrics after 10s:\n%s", text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPruner_RunOnce_Uploads: the retention run removes upload
// directories no request owns once they are older than uploadGrace (a
// crash's leftovers, a deleted request's files), keeps those a request
// owns however old and fresh ones (a submission not yet committed), and
// removes a symlink there as a link, never what it points at.
func TestPruner_RunOnce_Uploads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := state.Open(filepath.Join(dir, "rida.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	uploads := filepath.Join(dir, "uploads")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{"owned", "orphan", "fresh"} {
		if err := os.MkdirAll(filepath.Join(uploads, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(uploads, d, "x-1-1.src.rpm"), []byte("srpm"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("not rida's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(uploads, "link")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.EnqueueWithBuild(ctx, state.BuildRequest{Module: "m", Stream: "1", Kind: state.RequestModule, ModuleCommit: "abc"},
		state.RequestOptions{Scratch: true, SRPMs: []state.SRPM{{Package: "x", Path: "owned/x-1-1.src.rpm"}}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(2 * uploadGrace)
	if err := os.Chtimes(filepath.Join(uploads, "fresh"), now, now); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := newPruneMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := &pruner{store: store, uploadsDir: uploads, metrics: m}
	res, err := p.runOnce(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploads != 2 {
		t.Errorf("removed %d upload directories, want 2 (orphan, link)", res.Uploads)
	}
	for name, want := range map[string]bool{"owned": true, "fresh": true, "orphan": false, "link": false} {
		if _, err := os.Lstat(filepath.Join(uploads, name)); (err == nil) != want {
			t.Errorf("%s present = %v, want %v", name, err == nil, want)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("the symlink's target was touched: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if mf.GetName() == "rida_retention_removed_total" && len(mt.GetLabel()) == 1 && mt.GetLabel()[0].GetValue() == "uploads" {
				got = mt.GetCounter().GetValue()
			}
		}
	}
	if got != 2 {
		t.Errorf("rida_retention_removed_total{kind=uploads} = %v, want 2", got)
	}
}
