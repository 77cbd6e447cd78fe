package statuses

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/forge"
	"github.com/rida-build/rida/forge/forgetest"
	"github.com/rida-build/rida/state"
)

// recordDelivery stores a push to repo at commit n.
func recordDelivery(t testing.TB, s *state.Store, kind forge.Kind, repo string, n int) *state.Delivery {
	t.Helper()
	d := &state.Delivery{
		Forge: string(kind), DeliveryGUID: fmt.Sprintf("guid-%s-%d", repo, n), Event: "push", Repo: repo,
		CloneURL: "https://forge.example/" + repo + ".git", Ref: "refs/heads/main",
		Before: sha(n - 1), After: sha(n), Sender: "alice",
	}
	if _, err := s.RecordDelivery(context.Background(), d); err != nil {
		t.Fatalf("RecordDelivery: %v", err)
	}
	return d
}

// TestFlow_QueueToSuccess drives a build through the real store with the
// mapper installed — Enqueue, init, wait, build (with component progress),
// done, ready — and checks that the forge shows pending, then success, on
// both the module commit and the component commit.
func TestFlow_QueueToSuccess(t *testing.T) {
	t.Parallel()
	for _, kind := range allKinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t, setupOptions{kinds: []forge.Kind{kind}})
			srv := b.servers[string(kind)]
			s := b.store
			mod := recordDelivery(t, s, kind, "modules/foo", 10)
			comp := recordDelivery(t, s, kind, "rpms/bar", 20)
			keys := []forgetest.Key{
				{Repo: "modules/foo", SHA: sha(10), Context: "rida/foo:main"},
				{Repo: "rpms/bar", SHA: sha(20), Context: "rida/foo:main"},
			}

			if _, err := s.Enqueue(ctx, state.BuildRequest{Module: "foo", Stream: "main", Kind: state.RequestModule,
				DeliveryIDs: []uint64{mod.ID}, ModuleCommit: sha(10)}); err != nil {
				t.Fatal(err)
			}
			// The component push merges into the pending request.
			if res, err := s.Enqueue(ctx, state.BuildRequest{Module: "foo", Stream: "main", Kind: state.RequestComponent,
				DeliveryIDs: []uint64{comp.ID}, ComponentCommits: []state.ComponentCommit{{Name: "bar", Ref: "main", Commit: sha(20)}}}); err != nil || res.Action != state.EnqueueMerged {
				t.Fatalf("Enqueue component: %v %v", res.Action, err)
			}
			if n := b.run(t); n != 2 {
				t.Fatalf("posted %d after enqueue, want pending on 2 commits", n)
			}
			for _, k := range keys {
				got := srv.Statuses()[k]
				if got.State != "pending" || got.Description != "queued" || !strings.HasPrefix(got.TargetURL, "https://rida.example/api/v1/deliveries/") {
					t.Fatalf("%s after enqueue: %+v", k.Repo, got)
				}
			}

			req, err := s.StartNext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// StartNext made the request's init record.
			recs, err := s.RequestModuleBuilds(ctx, req.ID)
			if err != nil || len(recs) != 1 || recs[0].State != state.ModuleStateInit {
				t.Fatalf("init record: %+v %v", recs, err)
			}
			mb := &recs[0]
			mb.State, mb.Version, mb.Context = state.ModuleStateWait, 20260301, "c0ffee42"
			mb.Components = []state.ComponentBuild{
				{Key: "module-build-macros", Batch: 1, State: "queued"},
				{Key: "bar", Batch: 2, State: "queued", Commit: sha(20)},
			}
			if mb, err = s.PutModuleBuild(ctx, *mb); err != nil {
				t.Fatal(err)
			}
			mb.State = state.ModuleStateBuild
			if mb, err = s.PutModuleBuild(ctx, *mb); err != nil {
				t.Fatal(err)
			}
			b.run(t)
			for _, c := range []state.ComponentBuild{
				{Key: "module-build-macros", Batch: 1, State: "building"},
				{Key: "module-build-macros", Batch: 1, State: "complete"},
				{Key: "bar", Batch: 2, State: "building", Commit: sha(20)},
			} {
				if err := s.UpdateComponentBuild(ctx, mb.ID, c); err != nil {
					t.Fatal(err)
				}
			}
			b.run(t)
			wantBuilding := "building batch 2/2"
			for _, k := range keys {
				got := srv.Statuses()[k]
				if got.TargetURL != fmt.Sprintf("https://rida.example/builds/%d", mb.ID) {
					t.Fatalf("%s: target_url %q", k.Repo, got.TargetURL)
				}
				if kind != forge.KindGitLab && (got.State != "pending" || got.Description != wantBuilding) {
					t.Fatalf("%s while building: %+v", k.Repo, got)
				}
			}
			if err := s.UpdateComponentBuild(ctx, mb.ID, state.ComponentBuild{Key: "bar", Batch: 2, State: "complete", Commit: sha(20)}); err != nil {
				t.Fatal(err)
			}
			if mb, err = s.GetModuleBuild(ctx, mb.ID); err != nil {
				t.Fatal(err)
			}
			mb.State = state.ModuleStateDone
			if mb, err = s.PutModuleBuild(ctx, *mb); err != nil {
				t.Fatal(err)
			}
			mb.State = state.ModuleStateReady
			if _, err = s.PutModuleBuild(ctx, *mb); err != nil {
				t.Fatal(err)
			}
			if n := b.run(t); n != 2 {
				t.Fatalf("posted %d at the end, want success on 2 commits", n)
			}
			for _, k := range keys {
				var seq []string
				for _, h := range srv.History() {
					if h.Key == k {
						seq = append(seq, h.State)
					}
				}
				if len(seq) < 2 || seq[0] != "pending" || seq[len(seq)-1] != "success" {
					t.Fatalf("%s received %v, want pending first and success last", k.Repo, seq)
				}
				if kind == forge.KindGitLab && !contains(seq, "running") {
					t.Fatalf("gitlab %s received %v, want running while building", k.Repo, seq)
				}
				if got := srv.Statuses()[k].Description; got != "built foo:main:20260301:c0ffee42" {
					t.Fatalf("%s: final description %q", k.Repo, got)
				}
			}
			if n := b.run(t); n != 0 {
				t.Fatalf("posted %d more after the end", n)
			}
		})
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// BenchmarkOutbox_EnqueueToFirstPending measures the time from Enqueue's
// commit to the fake forge having accepted the pending status, with the
// worker running and woken by the store's OnStatusQueued.
func BenchmarkOutbox_EnqueueToFirstPending(b *testing.B) {
	sp := &signalPoster{posted: make(chan forge.Status, 16)}
	tb := setup(b, setupOptions{realClock: true, worker: func(o *WorkerOptions) {
		sp.Poster = o.Reporters["github"]
		o.Reporters["github"] = sp
		o.PollInterval = time.Hour
		o.RatePerForge, o.Burst = 1e6, 1000
	}})
	ctx := context.Background()
	if err := tb.worker.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer tb.worker.Stop()
	var (
		total time.Duration
		n     int
	)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		d := recordDelivery(b, tb.store, forge.KindGitHub, "modules/foo", 100+i)
		b.StartTimer()
		if _, err := tb.store.Enqueue(ctx, state.BuildRequest{Module: fmt.Sprintf("m%d", i), Stream: "main", Kind: state.RequestModule, DeliveryIDs: []uint64{d.ID}}); err != nil {
			b.Fatal(err)
		}
		start := time.Now() // Enqueue returned: committed
		select {
		case <-sp.posted:
		case <-time.After(10 * time.Second):
			b.Fatal("no pending status within 10s")
		}
		total += time.Since(start)
		n++
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(n), "ms/first-pending")
}
