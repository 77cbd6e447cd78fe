package statuses

import (
	"testing"
	"time"

	"github.com/rida-build/rida/forge"
	"github.com/rida-build/rida/forge/forgetest"
)

// TestWorker_RunOnce_OneForgeDoesNotStarveAnother: the oldest due entries
// all belong to a forge that rida may not post to (it answered 429, or its
// token bucket is empty); the second forge's newer statuses are posted all
// the same, while the first forge gets no request.
func TestWorker_RunOnce_OneForgeDoesNotStarveAnother(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts func(*WorkerOptions)
		// limit makes github refuse; wantGitHub is how many github posts
		// succeed before it stops.
		limit      func(*forgetest.Server)
		wantGitHub int
	}{
		{
			name: "RateLimited",
			opts: func(o *WorkerOptions) { o.BatchSize = 5 },
			limit: func(s *forgetest.Server) {
				s.SetRetryAfter(time.Minute)
				s.FailNext(1, forgetest.Fail429)
			},
			wantGitHub: 0,
		},
		{
			name:       "OutOfTokens",
			opts:       func(o *WorkerOptions) { o.BatchSize = 5; o.RatePerForge = 0.001; o.Burst = 2 },
			limit:      func(*forgetest.Server) {},
			wantGitHub: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var gh *forgetest.Server
			b := setup(t, setupOptions{kinds: []forge.Kind{forge.KindGitHub, forge.KindGitea}, worker: func(o *WorkerOptions) {
				tc.opts(o)
				// A fresh client per post: go-github's own memory of the
				// limit would otherwise answer for the fake forge.
				o.Reporters[string(forge.KindGitHub)] = freshPoster{t: t, srv: &gh}
			}})
			gh = b.servers[string(forge.KindGitHub)]
			gitea := b.servers[string(forge.KindGitea)]
			tc.limit(gh)
			// Twelve github statuses owed first, then two gitea ones: the
			// batch (5) holds only github's.
			for i := range 12 {
				b.upsert(t, update(forge.KindGitHub, i, forge.StateSuccess, "built"))
				b.clock.Advance(time.Millisecond)
			}
			g1 := update(forge.KindGitea, 100, forge.StateSuccess, "built")
			g2 := update(forge.KindGitea, 101, forge.StateFailure, "failed")
			b.upsert(t, g1)
			b.upsert(t, g2)

			// Within a few rounds (the first may be spent finding out
			// that github refuses), gitea's statuses are on gitea.
			for round := 0; round < 3 && len(gitea.Statuses()) < 2; round++ {
				b.run(t)
			}
			got := gitea.Statuses()
			if len(got) != 2 || got[forgeKey(g1)].State != "success" || got[forgeKey(g2)].State != "failure" {
				t.Fatalf("gitea shows %+v, want both statuses while github is limited", got)
			}
			if n := len(gh.Statuses()); n != tc.wantGitHub {
				t.Fatalf("github shows %d statuses, want %d (it is limited)", n, tc.wantGitHub)
			}
			reqs := gh.Requests()
			if tc.name == "RateLimited" && reqs != 1 {
				t.Fatalf("github got %d requests, want 1 (the 429), none while paused", reqs)
			}
			b.run(t)
			if gh.Requests() != reqs {
				t.Fatalf("github got %d more requests while limited", gh.Requests()-reqs)
			}
		})
	}
}
