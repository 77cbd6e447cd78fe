package state

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const day = 24 * time.Hour

// pruneBundle builds module builds and requests for the retention tests.
type pruneBundle struct {
	t     *testing.T
	s     *Store
	clock *fakeClock
	ctx   context.Context
	n     int
}

func newPruneBundle(t *testing.T) *pruneBundle {
	b := setup(t)
	return &pruneBundle{t: t, s: b.store, clock: b.clock, ctx: context.Background()}
}

var testComps = []ComponentBuild{{Key: "pkg", Package: "pkg", Batch: 2, State: "complete", RPMs: []string{"pkg-1-1.noarch"}}}

// put stores a build of name:1 (no request) in state st, context "c",
// version = its order; edit changes it first.
func (h *pruneBundle) put(name string, st ModuleState, edit ...func(*ModuleBuild)) uint64 {
	h.t.Helper()
	h.n++
	mb := ModuleBuild{Name: name, Stream: "1", Context: "c", Version: uint64(h.n), State: st, Platform: "f40",
		Components: testComps, Identity: fmt.Sprintf("id-%d", h.n)}
	for _, e := range edit {
		e(&mb)
	}
	out, err := h.s.PutModuleBuild(h.ctx, mb)
	if err != nil {
		h.t.Fatal(err)
	}
	return out.ID
}

// request queues and starts a request for name:1 with content key ck,
// moves its build record to st (edit applied) and, when finish, finishes
// the request. It returns the request and build ids.
func (h *pruneBundle) request(name, ck string, st ModuleState, finish bool, edit ...func(*ModuleBuild)) (uint64, uint64) {
	h.t.Helper()
	if _, err := h.s.Enqueue(h.ctx, BuildRequest{Module: name, Stream: "1", Kind: RequestModule, ContentKeys: []string{ck}}); err != nil {
		h.t.Fatal(err)
	}
	r, err := h.s.StartNext(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	recs, err := h.s.RequestModuleBuilds(h.ctx, r.ID)
	if err != nil || len(recs) != 1 {
		h.t.Fatalf("records of request %d: %v %v", r.ID, recs, err)
	}
	h.n++
	mb := recs[0]
	mb.State, mb.Context, mb.Version, mb.Platform, mb.Components = st, "c", uint64(h.n), "f40", testComps
	for _, e := range edit {
		e(&mb)
	}
	if _, err := h.s.PutModuleBuild(h.ctx, mb); err != nil {
		h.t.Fatal(err)
	}
	if finish {
		result := ResultSucceeded
		if st == ModuleStateFailed {
			result = ResultFailed
		}
		if _, err := h.s.FinishRequest(h.ctx, r.Key, result, "done"); err != nil {
			h.t.Fatal(err)
		}
	}
	return r.ID, mb.ID
}

func (h *pruneBundle) exists(id uint64) bool {
	h.t.Helper()
	_, err := h.s.GetModuleBuild(h.ctx, id)
	if err != nil && !isNotFound(err) {
		h.t.Fatal(err)
	}
	return err == nil
}

func reusedFrom(id uint64) func(*ModuleBuild) {
	return func(mb *ModuleBuild) {
		mb.Components = []ComponentBuild{{Key: "pkg", Package: "pkg", Batch: 2, State: "reused", ReusedFrom: id, RPMs: []string{"pkg-1-1.noarch"}}}
	}
}

// TestStore_Prune_Builds: each rule of what build retention removes and
// what it never removes, on a real file (Check runs on cleanup).
func TestStore_Prune_Builds(t *testing.T) {
	r := Retention{SupersededBuilds: 2, FailedBuilds: 30 * day}
	tests := []struct {
		name string
		// build makes the builds, on day 0 unless it moves the clock,
		// and says which must stay and which must go after a prune 31
		// days after day 0.
		build func(h *pruneBundle) (keep, gone []uint64)
	}{
		{"SupersededBeyondKeepGo", func(h *pruneBundle) ([]uint64, []uint64) {
			a, b, c := h.put("a", ModuleStateReady), h.put("a", ModuleStateDone), h.put("a", ModuleStateReady)
			d, e := h.put("a", ModuleStateReady), h.put("a", ModuleStateReady)
			return []uint64{d, e}, []uint64{a, b, c}
		}},
		{"NonTerminalBuildsStay", func(h *pruneBundle) ([]uint64, []uint64) {
			init, wait, build := h.put("a", ModuleStateInit), h.put("a", ModuleStateWait), h.put("a", ModuleStateBuild)
			old := h.put("a", ModuleStateReady)
			h.put("a", ModuleStateReady)
			h.put("a", ModuleStateReady)
			return []uint64{init, wait, build}, []uint64{old}
		}},
		{"FailedOlderThanFailedBuildsGo", func(h *pruneBundle) ([]uint64, []uint64) {
			failed := h.put("a", ModuleStateFailed)
			garbage := h.put("a", ModuleStateGarbage)
			cancelled := h.put("a", ModuleStateFailed, func(mb *ModuleBuild) { mb.FailureKind = FailureCanceled })
			h.clock.Advance(10 * day)
			recent := h.put("a", ModuleStateFailed)
			h.clock.Advance(-10 * day)
			return []uint64{recent}, []uint64{failed, garbage, cancelled}
		}},
		{"FailedBuildOfUnfinishedRequestStays", func(h *pruneBundle) ([]uint64, []uint64) {
			_, running := h.request("a", "ck1", ModuleStateFailed, false)
			_, done := h.request("b", "ck2", ModuleStateFailed, true)
			return []uint64{running}, []uint64{done}
		}},
		{"NewestReadyOfEachContextStays", func(h *pruneBundle) ([]uint64, []uint64) {
			// No components: only the context rule keeps c1's build
			// (resolution picks c2's highest version for f40).
			noComps := func(mb *ModuleBuild) { mb.Components = nil }
			c1 := h.put("a", ModuleStateReady, noComps, func(mb *ModuleBuild) { mb.Context = "c1" })
			old := h.put("a", ModuleStateReady, noComps, func(mb *ModuleBuild) { mb.Context = "c2" })
			h.put("a", ModuleStateReady, noComps, func(mb *ModuleBuild) { mb.Context = "c2" })
			h.put("a", ModuleStateReady, noComps, func(mb *ModuleBuild) { mb.Context = "c2" })
			return []uint64{c1}, []uint64{old}
		}},
		{"ReadyBuildResolutionPicksForAPlatformStays", func(h *pruneBundle) ([]uint64, []uint64) {
			f40 := h.put("a", ModuleStateReady)
			f41 := func(mb *ModuleBuild) { mb.Platform = "f41" }
			old := h.put("a", ModuleStateReady, f41)
			h.put("a", ModuleStateReady, f41)
			h.put("a", ModuleStateReady, f41)
			return []uint64{f40}, []uint64{old}
		}},
		{"NewestSuccessfulWithComponentsOfAContextStays", func(h *pruneBundle) ([]uint64, []uint64) {
			// Reuse copies from the newest successful build of the
			// context that has components.
			src := h.put("a", ModuleStateDone)
			noComps := func(mb *ModuleBuild) { mb.Components = nil }
			old := h.put("a", ModuleStateReady, noComps)
			h.put("a", ModuleStateReady, noComps)
			h.put("a", ModuleStateReady, noComps)
			return []uint64{src}, []uint64{old}
		}},
		{"ReusedFromByAStoredBuildStays", func(h *pruneBundle) ([]uint64, []uint64) {
			src := h.put("a", ModuleStateReady)
			mid := h.put("a", ModuleStateReady)
			h.put("a", ModuleStateReady)
			h.put("a", ModuleStateReady, reusedFrom(src))
			return []uint64{src}, []uint64{mid}
		}},
		{"BuiltAgainstByAStoredBuildStays", func(h *pruneBundle) ([]uint64, []uint64) {
			lib := h.put("lib", ModuleStateReady)
			mid := h.put("lib", ModuleStateReady)
			h.put("lib", ModuleStateReady)
			h.put("lib", ModuleStateReady)
			h.put("app", ModuleStateReady, func(mb *ModuleBuild) {
				mb.BuildRequires = []BuiltAgainst{{Name: "lib", Stream: "1", BuildID: lib, Direct: true}}
			})
			return []uint64{lib}, []uint64{mid}
		}},
		{"NamedByARecentFailedBuildStays", func(h *pruneBundle) ([]uint64, []uint64) {
			src := h.put("a", ModuleStateReady)
			h.put("a", ModuleStateReady)
			h.put("a", ModuleStateReady)
			h.clock.Advance(10 * day)
			failed := h.put("a", ModuleStateFailed, reusedFrom(src))
			h.clock.Advance(-10 * day)
			return []uint64{src, failed}, nil
		}},
		{"ChainOfSupersededBuildsGoesInOneRun", func(h *pruneBundle) ([]uint64, []uint64) {
			x := h.put("a", ModuleStateReady)
			y := h.put("a", ModuleStateReady, reusedFrom(x))
			z := h.put("a", ModuleStateReady, reusedFrom(x))
			h.put("a", ModuleStateReady)
			h.put("a", ModuleStateReady)
			return nil, []uint64{x, y, z}
		}},
		{"ReuseComponentsFromOfAPendingRequestStays", func(h *pruneBundle) ([]uint64, []uint64) {
			src := h.put("a", ModuleStateReady)
			h.put("a", ModuleStateReady)
			h.put("a", ModuleStateReady)
			if _, _, err := h.s.EnqueueWithBuild(h.ctx, BuildRequest{Module: "a", Stream: "1", Kind: RequestModule, ModuleCommit: "abc"},
				RequestOptions{ReuseFrom: src}); err != nil {
				h.t.Fatal(err)
			}
			return []uint64{src}, nil
		}},
		{"CauseOfAPendingCascadeStays", func(h *pruneBundle) ([]uint64, []uint64) {
			cause := h.put("lib", ModuleStateReady)
			h.put("lib", ModuleStateReady)
			h.put("lib", ModuleStateReady)
			if _, err := h.s.Enqueue(h.ctx, BuildRequest{Module: "app", Stream: "1", Kind: RequestCascade, CascadeFrom: cause}); err != nil {
				h.t.Fatal(err)
			}
			return []uint64{cause}, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newPruneBundle(t)
			keep, gone := tt.build(h)
			h.clock.Advance(31 * day)
			p, err := h.s.Prune(h.ctx, h.clock.Now(), r)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range keep {
				if !h.exists(id) {
					t.Errorf("build %d was deleted, want it kept", id)
				}
			}
			for _, id := range gone {
				if h.exists(id) {
					t.Errorf("build %d is still there, want it deleted", id)
				}
			}
			if n := p.SupersededBuilds + p.FailedBuilds; n != len(gone) {
				t.Errorf("pruned %+v, want %d builds", p, len(gone))
			}
			if err := h.s.Check(); err != nil {
				t.Errorf("Check after Prune: %v", err)
			}
			// Idempotent.
			if p, err := h.s.Prune(h.ctx, h.clock.Now(), r); err != nil || p != (Pruned{}) {
				t.Errorf("second prune: %+v %v", p, err)
			}
		})
	}
}

// TestStore_Prune_BuildsAndRequests: a deleted build is gone from every
// index and listing, its tree is owed to the edge, and its request goes
// once Requests has passed; a request with a build left stays.
func TestStore_Prune_BuildsAndRequests(t *testing.T) {
	h := newPruneBundle(t)
	ctx, s := h.ctx, h.s
	oldReq, oldBuild := h.request("a", "ck-old", ModuleStateReady, true, func(mb *ModuleBuild) { mb.Identity = "same" })
	if err := s.RecordKojiIntent(ctx, int64(oldBuild), "pkg", "git+https://x#1"); err != nil {
		t.Fatal(err)
	}
	_, failedBuild := h.request("a", "ck-failed", ModuleStateFailed, true)
	keptReq, kept := h.request("a", "ck-kept", ModuleStateReady, true)
	pending, err := s.Enqueue(ctx, BuildRequest{Module: "b", Stream: "1", Kind: RequestModule, ContentKeys: []string{"ck-pending"}})
	if err != nil {
		t.Fatal(err)
	}
	before, total, err := s.ListModuleBuilds(ctx, BuildQuery{Limit: 100})
	if err != nil || total != 3 || len(before) != 3 {
		t.Fatalf("before: %d builds of %d, %v", len(before), total, err)
	}
	r := Retention{SupersededBuilds: 1, FailedBuilds: 30 * day, Requests: 90 * day}

	// With the three kinds at 0 nothing of this goes, however old.
	zero := DefaultRetention
	zero.SupersededBuilds, zero.FailedBuilds, zero.Requests = 0, 0, 0
	if p, err := s.Prune(ctx, h.clock.Now().Add(1000*day), zero); err != nil || p.SupersededBuilds+p.FailedBuilds+p.Requests != 0 {
		t.Errorf("zero retention: pruned %+v %v", p, err)
	}

	h.clock.Advance(31 * day)
	p, err := s.Prune(ctx, h.clock.Now(), r)
	if err != nil {
		t.Fatal(err)
	}
	if p.SupersededBuilds != 1 || p.FailedBuilds != 1 || p.Requests != 0 {
		t.Errorf("day 31: pruned %+v, want 1 superseded and 1 failed build, no request", p)
	}
	if h.exists(oldBuild) || h.exists(failedBuild) || !h.exists(kept) {
		t.Errorf("builds %d %d should be gone, %d kept", oldBuild, failedBuild, kept)
	}
	// Gone from every way builds are read.
	list, total, err := s.ListModuleBuilds(ctx, BuildQuery{Limit: 100})
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != kept {
		t.Errorf("list: %v of %d, %v; want only build %d", list, total, err, kept)
	}
	for _, q := range []BuildQuery{{Name: "a", Limit: 100}, {Name: "a", Stream: "1", Limit: 100}, {States: []ModuleState{ModuleStateReady, ModuleStateFailed}, Limit: 100}} {
		if list, total, err := s.ListModuleBuilds(ctx, q); err != nil || total != 1 || len(list) != 1 {
			t.Errorf("list %+v: %v of %d, %v", q, list, total, err)
		}
	}
	counts, err := s.BuildCountsByState(ctx)
	if err != nil || counts[ModuleStateReady] != 1 || counts[ModuleStateFailed] != 0 {
		t.Errorf("counts %v %v", counts, err)
	}
	if got, err := s.StreamBuilds(ctx, "a", "1"); err != nil || len(got) != 1 {
		t.Errorf("stream builds %v %v", got, err)
	}
	if got, err := s.BuildsWithIdentity(ctx, "same"); err != nil || len(got) != 0 {
		t.Errorf("identity still finds %v %v", got, err)
	}
	if got, err := s.RequestModuleBuilds(ctx, oldReq); err != nil || len(got) != 0 {
		t.Errorf("request index still finds %v %v", got, err)
	}
	if got, err := s.KojiIntents(ctx, int64(oldBuild)); err != nil || len(got) != 0 {
		t.Errorf("koji intents kept: %v %v", got, err)
	}
	if v, err := s.StreamMaxVersion(ctx, "a", "1", "c"); err != nil || v < 3 {
		t.Errorf("stream highest version %d %v: must not go down with deleted builds", v, err)
	}
	trees, err := s.DeletedTrees(ctx, 0)
	if err != nil || len(trees) != 2 || trees[0].ID != oldBuild || trees[0].Name != "a" || trees[0].Context != "c" {
		t.Errorf("deleted trees %+v %v", trees, err)
	}
	if err := s.ForgetDeletedTrees(ctx, oldBuild, failedBuild); err != nil {
		t.Fatal(err)
	}
	if trees, _ := s.DeletedTrees(ctx, 0); len(trees) != 0 {
		t.Errorf("forgotten trees still listed: %+v", trees)
	}
	// The requests stay until Requests has passed.
	if _, err := s.Request(ctx, oldReq); err != nil {
		t.Errorf("request %d deleted before 90 days: %v", oldReq, err)
	}

	h.clock.Advance(60 * day)
	p, err = s.Prune(ctx, h.clock.Now(), r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Requests != 2 {
		t.Errorf("day 91: pruned %+v, want the 2 requests without builds", p)
	}
	if _, err := s.Request(ctx, oldReq); !isNotFound(err) {
		t.Errorf("request %d: %v, want it deleted", oldReq, err)
	}
	if got, err := s.RequestsForContentKey(ctx, "ck-old"); err != nil || len(got) != 0 {
		t.Errorf("content index still finds %v %v", got, err)
	}
	if d, err := s.RedeliveryDecision(ctx, "ck-old"); err != nil || d.Action != RedeliveryPlan {
		t.Errorf("redelivery of a pruned request's push: %+v %v, want plan", d, err)
	}
	if _, err := s.Request(ctx, keptReq); err != nil {
		t.Errorf("request %d with a build left was deleted: %v", keptReq, err)
	}
	if _, err := s.Request(ctx, pending.Request.ID); err != nil {
		t.Errorf("pending request deleted: %v", err)
	}
	evs, err := s.SubjectEvents(ctx, "modulebuild/"+fmt.Sprint(oldBuild), 0, 100)
	if err != nil || len(evs) == 0 || evs[len(evs)-1].Kind != EventModuleBuildDeleted {
		t.Errorf("events of the deleted build: %+v %v, want the deletion last", evs, err)
	}
}

// TestStore_Prune_BuildsRecheckedInTheWriteTransaction: what changes
// between choosing the candidates and deleting them keeps them.
func TestStore_Prune_BuildsRecheckedInTheWriteTransaction(t *testing.T) {
	r := Retention{SupersededBuilds: 2}
	choose := func(h *pruneBundle) *buildCandidates {
		h.t.Helper()
		var c *buildCandidates
		if err := h.s.view(h.ctx, "test", func(tx *bolt.Tx) error {
			var err error
			c, err = findBuildCandidates(tx, h.clock.Now(), r)
			return err
		}); err != nil {
			h.t.Fatal(err)
		}
		return c
	}
	t.Run("AKeptBuildChangedState", func(t *testing.T) {
		h := newPruneBundle(t)
		var ids []uint64
		for range 5 {
			ids = append(ids, h.put("a", ModuleStateReady))
		}
		c := choose(h)
		if !slices.Equal(c.ids, []uint64{ids[2], ids[1], ids[0]}) {
			t.Fatalf("candidates %v", c.ids)
		}
		// The newest becomes garbage: ids[2] is now one of the newest
		// two successful builds.
		mb, err := h.s.GetModuleBuild(h.ctx, ids[4])
		if err != nil {
			t.Fatal(err)
		}
		mb.State = ModuleStateGarbage
		if _, err := h.s.PutModuleBuild(h.ctx, *mb); err != nil {
			t.Fatal(err)
		}
		var p Pruned
		if err := h.s.deleteBuildCandidates(h.ctx, c, h.clock.Now(), r, &p); err != nil {
			t.Fatal(err)
		}
		if !h.exists(ids[2]) || p.SupersededBuilds != 0 {
			t.Errorf("pruned %+v; build %d exists %v, want the stream left for the next run", p, ids[2], h.exists(ids[2]))
		}
		// The next run chooses again.
		p, err = h.s.Prune(h.ctx, h.clock.Now(), r)
		if err != nil || p.SupersededBuilds != 2 || !h.exists(ids[2]) || !h.exists(ids[3]) {
			t.Errorf("next run: %+v %v", p, err)
		}
	})
	t.Run("ABuildNamingACandidateAppeared", func(t *testing.T) {
		h := newPruneBundle(t)
		var ids []uint64
		for range 5 {
			ids = append(ids, h.put("a", ModuleStateReady))
		}
		c := choose(h)
		h.put("b", ModuleStateBuild, reusedFrom(ids[1]))
		var p Pruned
		if err := h.s.deleteBuildCandidates(h.ctx, c, h.clock.Now(), r, &p); err != nil {
			t.Fatal(err)
		}
		if !h.exists(ids[1]) || h.exists(ids[0]) || h.exists(ids[2]) || p.SupersededBuilds != 2 {
			t.Errorf("pruned %+v; want %d kept (a build reuses from it), %d and %d deleted", p, ids[1], ids[0], ids[2])
		}
	})
	t.Run("ARequestNamingACandidateAppeared", func(t *testing.T) {
		h := newPruneBundle(t)
		var ids []uint64
		for range 4 {
			ids = append(ids, h.put("a", ModuleStateReady))
		}
		c := choose(h)
		if _, _, err := h.s.EnqueueWithBuild(h.ctx, BuildRequest{Module: "a", Stream: "1", Kind: RequestModule, ModuleCommit: "abc"},
			RequestOptions{ReuseFrom: ids[0]}); err != nil {
			t.Fatal(err)
		}
		var p Pruned
		if err := h.s.deleteBuildCandidates(h.ctx, c, h.clock.Now(), r, &p); err != nil {
			t.Fatal(err)
		}
		if !h.exists(ids[0]) || h.exists(ids[1]) {
			t.Errorf("pruned %+v; want %d kept (reuse_components_from), %d deleted", p, ids[0], ids[1])
		}
	})
}

// TestStore_Prune_BuildsInBatches: more candidates than one transaction
// deletes, including a chain that crosses a batch boundary.
func TestStore_Prune_BuildsInBatches(t *testing.T) {
	h := newPruneBundle(t)
	h.s.opts.PruneBuildsBatch = 3
	first := h.put("a", ModuleStateReady)
	for range 8 {
		h.put("a", ModuleStateReady, reusedFrom(first))
	}
	h.put("a", ModuleStateReady)
	p, err := h.s.Prune(h.ctx, h.clock.Now(), Retention{SupersededBuilds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p.SupersededBuilds != 9 {
		t.Errorf("pruned %+v, want 9 builds", p)
	}
	if list, total, err := h.s.ListModuleBuilds(h.ctx, BuildQuery{}); err != nil || total != 1 || len(list) != 1 {
		t.Errorf("left %v of %d, %v", list, total, err)
	}
}

// TestStore_BuildReferrers: the references index follows puts, component
// updates and deletions, and is filled at Open for a file written before
// it existed.
func TestStore_BuildReferrers(t *testing.T) {
	b := setup(t)
	h := &pruneBundle{t: t, s: b.store, clock: b.clock, ctx: context.Background()}
	src := h.put("a", ModuleStateReady)
	lib := h.put("lib", ModuleStateReady)
	user := h.put("a", ModuleStateBuild, reusedFrom(src), func(mb *ModuleBuild) {
		mb.BuildRequires = []BuiltAgainst{{Name: "lib", Stream: "1", BuildID: lib}}
	})
	refs := func(id uint64) []uint64 {
		t.Helper()
		got, err := h.s.BuildReferrers(h.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if !slices.Equal(refs(src), []uint64{user}) || !slices.Equal(refs(lib), []uint64{user}) {
		t.Fatalf("referrers of %d: %v, of %d: %v; want [%d]", src, refs(src), lib, refs(lib), user)
	}
	// A reuse that fell back to building clears the link.
	if err := h.s.UpdateComponentBuild(h.ctx, user, ComponentBuild{Key: "pkg", Package: "pkg", Batch: 2, State: "building"}); err != nil {
		t.Fatal(err)
	}
	if got := refs(src); len(got) != 0 {
		t.Errorf("referrers of %d after the component was rebuilt: %v", src, got)
	}
	// An older file: the index is filled at Open.
	if err := h.s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketBuildRefs); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketBuildRefs); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyBuildRefsFilled)
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	h.s = MustOpen(t, b.path, Options{Now: b.clock.Now})
	if got := refs(lib); !slices.Equal(got, []uint64{user}) {
		t.Errorf("referrers of %d after reopen: %v", lib, got)
	}
}
