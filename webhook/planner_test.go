package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/scm/scmtest"
	"github.com/rida-build/rida/state"
)

var (
	_ PlannerStore  = (*state.Store)(nil)
	_ MirrorFetcher = (*scm.Mirrors)(nil)
)

// testClock is a settable clock shared by the store and the planner.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// plannerBundle is a planner over a real bbolt store and real git mirrors.
type plannerBundle struct {
	t       *testing.T
	ctx     context.Context
	dir     string
	clock   *testClock
	store   *state.Store
	mirrors *scm.Mirrors
	planner *Planner

	mu       sync.Mutex
	enqueued []state.EnqueueResult
	signal   chan state.EnqueueResult
}

func setupPlanner(t *testing.T, tweak func(*PlannerOptions)) *plannerBundle {
	t.Helper()
	dir := t.TempDir()
	b := &plannerBundle{t: t, ctx: context.Background(), dir: dir,
		clock: &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, signal: make(chan state.EnqueueResult, 1000)}
	s, err := state.Open(filepath.Join(dir, "rida.db"), state.Options{Now: b.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("store Check: %v", err)
		}
		s.Close()
	})
	b.store = s
	if b.mirrors, err = scm.NewMirrors(scm.Options{Dir: filepath.Join(dir, "mirrors")}); err != nil {
		t.Fatal(err)
	}
	opts := PlannerOptions{
		Store: s, Mirrors: b.mirrors, Worker: "planner-test", Now: b.clock.Now,
		Classifier: Classifier{ModulePatterns: []string{"modules/*"}, ComponentPatterns: []string{"rpms/*"}},
		OnEnqueue: func(r state.EnqueueResult) {
			b.mu.Lock()
			b.enqueued = append(b.enqueued, r)
			b.mu.Unlock()
			b.signal <- r
		},
	}
	if tweak != nil {
		tweak(&opts)
	}
	if b.planner, err = NewPlanner(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.planner.Stop)
	return b
}

// repo creates a git repository for the forge repository fullName.
func (b *plannerBundle) repo(fullName, branch string) *scmtest.Repo {
	b.t.Helper()
	return scmtest.New(b.t, filepath.Join(b.dir, "forge", fullName), branch)
}

// push records a push delivery of r to ref, as the receiver would.
func (b *plannerBundle) push(fullName string, r *scmtest.Repo, ref, before, after string) uint64 {
	b.t.Helper()
	id, err := b.store.RecordDelivery(b.ctx, &state.Delivery{
		Forge: "gitea", Event: "push", DeliveryGUID: fmt.Sprintf("guid-%d", time.Now().UnixNano()),
		Repo: fullName, CloneURL: r.URL(), Ref: ref, Before: before, After: after,
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return id
}

// plan runs one planner iteration, which must plan delivery id, and returns
// the delivery as stored.
func (b *plannerBundle) plan(id uint64) *state.Delivery {
	b.t.Helper()
	worked, err := b.planner.runOnce(b.ctx)
	if err != nil {
		b.t.Fatalf("runOnce: %v", err)
	}
	if !worked {
		b.t.Fatal("runOnce found no plan job")
	}
	d, err := b.store.Delivery(b.ctx, id)
	if err != nil {
		b.t.Fatal(err)
	}
	if d.Disposition == nil {
		b.t.Fatalf("delivery %d has no disposition after runOnce", id)
	}
	return d
}

// requests returns the build requests a planned delivery made or merged into.
func (b *plannerBundle) requests(d *state.Delivery) []*state.BuildRequest {
	b.t.Helper()
	var out []*state.BuildRequest
	for _, s := range d.Disposition.Requests {
		r, err := b.store.Request(b.ctx, s.RequestID)
		if err != nil {
			b.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// components returns the index entries of module:stream under package
// names (the entries under full names, which contain a "/", left out).
func (b *plannerBundle) components(module, stream string) []state.IndexedComponent {
	b.t.Helper()
	return slices.DeleteFunc(b.indexEntries(module, stream), func(c state.IndexedComponent) bool { return strings.Contains(c.Name, "/") })
}

// indexEntries returns every index entry of module:stream.
func (b *plannerBundle) indexEntries(module, stream string) []state.IndexedComponent {
	b.t.Helper()
	comps, _, err := b.store.ModuleComponents(b.ctx, module, stream)
	if err != nil {
		b.t.Fatal(err)
	}
	return comps
}

// modulemdYAML is a stream v2 source naming the given components; "name@ref"
// gives a component an explicit ref.
func modulemdYAML(summary string, comps ...string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "document: modulemd\nversion: 2\ndata:\n  summary: %s\n  description: A module for planner tests.\n  license:\n    module: [MIT]\n  components:\n    rpms:\n", summary)
	for _, c := range comps {
		name, ref, _ := strings.Cut(c, "@")
		fmt.Fprintf(&sb, "      %s:\n        rationale: test.\n", name)
		if ref != "" {
			fmt.Fprintf(&sb, "        ref: %s\n", ref)
		}
	}
	return sb.String()
}

func wantReason(t *testing.T, d *state.Delivery, prefix string, contains ...string) {
	t.Helper()
	if len(d.Disposition.Requests) != 0 {
		t.Errorf("delivery %d made requests %+v, want none", d.ID, d.Disposition.Requests)
	}
	if !strings.HasPrefix(d.Disposition.Reason, prefix) {
		t.Errorf("reason = %q, want prefix %q", d.Disposition.Reason, prefix)
	}
	for _, c := range contains {
		if !strings.Contains(d.Disposition.Reason, c) {
			t.Errorf("reason = %q, want it to mention %q", d.Disposition.Reason, c)
		}
	}
}

func TestPlanner_RunOnce_ModulePush(t *testing.T) {
	t.Parallel()
	b := setupPlanner(t, nil)
	mod := b.repo("modules/nodejs", "main")
	c1 := mod.Commit("init", map[string]string{"nodejs.yaml": modulemdYAML("v1", "nodejs"), "README.md": "hi"})
	c2 := mod.Commit("add npm", map[string]string{"nodejs.yaml": modulemdYAML("v2", "nodejs", "npm@stable")})

	d := b.plan(b.push("modules/nodejs", mod, "refs/heads/main", c1, c2))
	reqs := b.requests(d)
	if len(reqs) != 1 {
		t.Fatalf("requests = %+v (reason %q), want one", d.Disposition.Requests, d.Disposition.Reason)
	}
	r := reqs[0]
	if r.Key != "nodejs:main" || r.Kind != state.RequestModule || r.ModuleCommit != c2 || r.ModuleRepo != mod.URL() || r.State != state.RequestPending {
		t.Errorf("request = %+v, want nodejs:main, module kind, commit %s, repo %s, pending", r, c2, mod.URL())
	}
	if want := "modulemd changed in " + c2[:7]; !slices.Equal(r.Reasons, []string{want}) {
		t.Errorf("reasons = %q, want [%q]", r.Reasons, want)
	}
	if !slices.Equal(r.DeliveryIDs, []uint64{d.ID}) || !slices.Equal(r.ContentKeys, []string{d.ContentKey}) {
		t.Errorf("request names deliveries %v / %v, want %d / %s", r.DeliveryIDs, r.ContentKeys, d.ID, d.ContentKey)
	}
	want := []state.IndexedComponent{{Name: "nodejs", Ref: "main"}, {Name: "npm", Ref: "stable"}}
	if got := b.components("nodejs", "main"); !slices.Equal(got, want) {
		t.Errorf("index = %+v, want %+v", got, want)
	}
	if len(b.enqueued) != 1 || b.enqueued[0].Action != state.EnqueueCreated || b.enqueued[0].Request.ID != r.ID || b.enqueued[0].Request.ModuleCommit != c2 {
		t.Errorf("OnEnqueue saw %+v, want one created request %d", b.enqueued, r.ID)
	}

	t.Run("UnchangedModulemdRefreshesIndexOnly", func(t *testing.T) {
		// Empty the index to see the push refill it.
		if err := b.store.SetModuleComponents(b.ctx, "nodejs", "main", mod.URL(), nil); err != nil {
			t.Fatal(err)
		}
		c3 := mod.Commit("docs", map[string]string{"README.md": "more"})
		d := b.plan(b.push("modules/nodejs", mod, "refs/heads/main", c2, c3))
		wantReason(t, d, ReasonNoRelevantPaths, "nodejs.yaml unchanged", "index of nodejs:main refreshed")
		if got := b.components("nodejs", "main"); !slices.Equal(got, want) {
			t.Errorf("index = %+v, want %+v", got, want)
		}
	})

	t.Run("OutOfOrderDeliveryBuildsBranchHead", func(t *testing.T) {
		c4 := mod.Commit("bump 4", map[string]string{"nodejs.yaml": modulemdYAML("v4", "nodejs", "npm@stable")})
		c5 := mod.Commit("bump 5", map[string]string{"nodejs.yaml": modulemdYAML("v5", "nodejs", "npm@stable")})
		late := b.push("modules/nodejs", mod, "refs/heads/main", c4, c5)
		early := b.push("modules/nodejs", mod, "refs/heads/main", mod.Git("rev-parse", c4+"^"), c4)
		_ = b.plan(late)
		d := b.plan(early)
		r := b.requests(d)[0]
		if r.ModuleCommit != c5 {
			t.Errorf("ModuleCommit = %s after the older push was planned last, want the branch head %s", r.ModuleCommit, c5)
		}
		if !strings.Contains(d.Disposition.Reason, "building branch head "+c5[:7]) {
			t.Errorf("reason = %q, want it to say the head is built", d.Disposition.Reason)
		}
	})
}

func TestPlanner_RunOnce_ModulemdInvalid(t *testing.T) {
	t.Parallel()
	b := setupPlanner(t, func(o *PlannerOptions) { o.ModuleFile = "modulemd/{name}.yml" })
	mod := b.repo("modules/perl", "main")
	c1 := mod.Commit("init", map[string]string{"modulemd/perl.yml": modulemdYAML("ok", "perl")})
	_ = b.plan(b.push("modules/perl", mod, "refs/heads/main", scm.ZeroHash, c1))
	before := b.components("perl", "main")
	if len(before) != 1 {
		t.Fatalf("index after first push = %+v", before)
	}
	c2 := mod.Commit("break", map[string]string{"modulemd/perl.yml": "document: modulemd\nversion: 2\ndata: [not, a, mapping]\n"})
	// The changed, broken modulemd is still built, so that the build's
	// failure (with the parse error) reaches the commit as a status.
	d := b.plan(b.push("modules/perl", mod, "refs/heads/main", c1, c2))
	if reqs := b.requests(d); len(reqs) != 1 || reqs[0].ModuleCommit != c2 || !strings.Contains(d.Disposition.Reason, "not refreshed: the modulemd does not parse") {
		t.Errorf("broken modulemd: requests %+v, reason %q", reqs, d.Disposition.Reason)
	}
	if got := b.components("perl", "main"); !slices.Equal(got, before) {
		t.Errorf("index = %+v, want the last good %+v", got, before)
	}
	// A push that leaves the broken modulemd alone builds nothing.
	c2b := mod.Commit("readme", map[string]string{"README": "x"})
	d = b.plan(b.push("modules/perl", mod, "refs/heads/main", c2, c2b))
	wantReason(t, d, ReasonModulemdInvalid, "modulemd/perl.yml at "+c2b[:7], "does not parse", "not refreshed")
	c2 = c2b

	c3 := mod.Commit("remove", map[string]string{"-modulemd/perl.yml": ""})
	d = b.plan(b.push("modules/perl", mod, "refs/heads/main", c2, c3))
	wantReason(t, d, ReasonModulemdMissing, "modulemd/perl.yml not found")
	if got := b.components("perl", "main"); len(got) != 0 {
		t.Errorf("index = %+v, want the stream removed", got)
	}
}

// componentWorld: modules alpha and beta include foo on main; gamma includes
// foo on f40 (its own branch, ref defaulting to the stream).
type componentWorld struct {
	*plannerBundle
	alpha, beta, gamma  *scmtest.Repo
	alphaHead, betaHead string
	foo                 *scmtest.Repo
	fooBase             string
}

func setupComponentWorld(t *testing.T, tweak func(*PlannerOptions)) *componentWorld {
	t.Helper()
	w := &componentWorld{plannerBundle: setupPlanner(t, tweak)}
	w.alpha = w.repo("modules/alpha", "main")
	w.alphaHead = w.alpha.Commit("init", map[string]string{"alpha.yaml": modulemdYAML("alpha", "foo", "bar")})
	w.beta = w.repo("modules/beta", "main")
	w.betaHead = w.beta.Commit("init", map[string]string{"beta.yaml": modulemdYAML("beta", "foo@main")})
	w.gamma = w.repo("modules/gamma", "f40")
	w.gamma.Commit("init", map[string]string{"gamma.yaml": modulemdYAML("gamma", "foo")})
	for _, m := range []struct {
		r    *scmtest.Repo
		name string
	}{{w.alpha, "alpha"}, {w.beta, "beta"}, {w.gamma, "gamma"}} {
		if n, err := w.planner.IndexModuleRepo(w.ctx, m.r.URL(), m.name); err != nil || n != 1 {
			t.Fatalf("IndexModuleRepo(%s) = %d, %v; want 1 stream", m.name, n, err)
		}
	}
	w.foo = w.repo("rpms/foo", "main")
	w.fooBase = w.foo.Commit("init", map[string]string{"foo.spec": "Release: %autorelease\n", "README.md": "foo"})
	return w
}

func TestPlanner_RunOnce_ComponentPush(t *testing.T) {
	t.Parallel()
	w := setupComponentWorld(t, func(o *PlannerOptions) { o.IgnorePaths = []string{"README*", "docs/**"} })

	t.Run("OneRequestPerIncludingStream", func(t *testing.T) {
		c := w.foo.Commit("fix", map[string]string{"foo.spec": "Release: %autorelease\n# fix\n"})
		d := w.plan(w.push("rpms/foo", w.foo, "refs/heads/main", w.fooBase, c))
		reqs := w.requests(d)
		if len(reqs) != 2 {
			t.Fatalf("requests = %+v (reason %q), want alpha:main and beta:main", d.Disposition.Requests, d.Disposition.Reason)
		}
		heads := map[string]string{"alpha:main": w.alphaHead, "beta:main": w.betaHead}
		urls := map[string]string{"alpha:main": w.alpha.URL(), "beta:main": w.beta.URL()}
		for _, r := range reqs {
			if r.Kind != state.RequestComponent || r.ModuleCommit != heads[r.Key] || r.ModuleRepo != urls[r.Key] {
				t.Errorf("request %s = %+v, want component kind at module head %s of %s", r.Key, r, heads[r.Key], urls[r.Key])
			}
			if want := []state.ComponentCommit{{Name: "foo", Ref: "main", Commit: c}}; !slices.Equal(r.ComponentCommits, want) {
				t.Errorf("request %s component commits = %+v, want %+v", r.Key, r.ComponentCommits, want)
			}
			if want := "component foo changed in " + c[:7]; !slices.Equal(r.Reasons, []string{want}) {
				t.Errorf("request %s reasons = %q, want [%q]", r.Key, r.Reasons, want)
			}
		}
		w.fooBase = c
	})

	t.Run("IgnoredPathsOnly", func(t *testing.T) {
		c := w.foo.Commit("docs", map[string]string{"README.md": "new", "docs/x/notes.txt": "n"})
		d := w.plan(w.push("rpms/foo", w.foo, "refs/heads/main", w.fooBase, c))
		wantReason(t, d, ReasonNoRelevantPaths, "README.md", "docs/x/notes.txt")
		w.fooBase = c
	})

	t.Run("EmptyCommitIsRelevant", func(t *testing.T) {
		c := w.foo.Commit("rebuild for %autorelease", nil)
		d := w.plan(w.push("rpms/foo", w.foo, "refs/heads/main", w.fooBase, c))
		if got := len(d.Disposition.Requests); got != 2 {
			t.Errorf("empty commit made %d requests (reason %q), want 2", got, d.Disposition.Reason)
		}
		w.fooBase = c
	})

	t.Run("BranchInNoModule", func(t *testing.T) {
		w.foo.Git("checkout", "-q", "-b", "rawhide")
		c := w.foo.Commit("rawhide only", map[string]string{"foo.spec": "rawhide"})
		d := w.plan(w.push("rpms/foo", w.foo, "refs/heads/rawhide", w.fooBase, c))
		wantReason(t, d, ReasonNoModule, "foo at ref rawhide")
		w.foo.Git("checkout", "-q", "main")
	})

	t.Run("OtherBranchOnlyItsStream", func(t *testing.T) {
		w.foo.Git("checkout", "-q", "-b", "f40")
		c := w.foo.Commit("f40", map[string]string{"foo.spec": "f40"})
		d := w.plan(w.push("rpms/foo", w.foo, "refs/heads/f40", scm.ZeroHash, c))
		reqs := w.requests(d)
		if len(reqs) != 1 || reqs[0].Key != "gamma:f40" {
			t.Errorf("requests = %+v (reason %q), want gamma:f40 only", d.Disposition.Requests, d.Disposition.Reason)
		}
		w.foo.Git("checkout", "-q", "main")
	})
}

func TestPlanner_RunOnce_SpecialPushes(t *testing.T) {
	t.Parallel()
	b := setupPlanner(t, func(o *PlannerOptions) { o.TrackedBranches = []string{"main", "stream-*"} })
	mod := b.repo("modules/ruby", "main")
	c1 := mod.Commit("init", map[string]string{"ruby.yaml": modulemdYAML("r1", "ruby")})
	c2 := mod.Commit("change", map[string]string{"ruby.yaml": modulemdYAML("r2", "ruby")})
	d := b.plan(b.push("modules/ruby", mod, "refs/heads/main", scm.ZeroHash, c2))

	t.Run("NewBranchCountsAllChanged", func(t *testing.T) {
		reqs := b.requests(d)
		if len(reqs) != 1 || reqs[0].Key != "ruby:main" || !strings.Contains(reqs[0].Reasons[0], "(new branch)") {
			t.Fatalf("new branch: requests %+v, reason %q", reqs, d.Disposition.Reason)
		}
	})

	t.Run("TestDelivery", func(t *testing.T) {
		d := b.plan(b.push("modules/ruby", mod, "refs/heads/main", c2, c2))
		wantReason(t, d, ReasonTestDelivery)
		// Gitea's fake commit is all zeros on both sides: still a test.
		d = b.plan(b.push("modules/ruby", mod, "refs/heads/main", scm.ZeroHash, scm.ZeroHash))
		wantReason(t, d, ReasonTestDelivery)
	})

	t.Run("TagPush", func(t *testing.T) {
		d := b.plan(b.push("modules/ruby", mod, "refs/tags/v1", scm.ZeroHash, c2))
		wantReason(t, d, ReasonTagPush, "refs/tags/v1")
	})

	t.Run("NotConfigured", func(t *testing.T) {
		d := b.plan(b.push("websites/ruby", mod, "refs/heads/main", c1, c2))
		wantReason(t, d, ReasonRepoNotConfigured, "websites/ruby")
	})

	t.Run("BranchNotTracked", func(t *testing.T) {
		d := b.plan(b.push("modules/ruby", mod, "refs/heads/feature/x", c1, c2))
		wantReason(t, d, ReasonBranchNotTracked, "feature/x")
	})

	t.Run("ForcePush", func(t *testing.T) {
		// main is rewritten onto c1 with a README change: relative to the
		// old head c2 the modulemd changed back.
		mod.Git("reset", "-q", "--hard", c1)
		c3 := mod.Commit("rewrite", map[string]string{"README": "x"})
		d := b.plan(b.push("modules/ruby", mod, "refs/heads/main", c2, c3))
		if reqs := b.requests(d); len(reqs) != 1 || reqs[0].ModuleCommit != c3 || strings.Contains(d.Disposition.Reason, "not in the mirror") {
			t.Errorf("force push: requests %+v, reason %q; want one at %s from a plain diff", reqs, d.Disposition.Reason, c3)
		}
		// A plain README change on top is not relevant.
		c4 := mod.Commit("readme", map[string]string{"README": "y"})
		d = b.plan(b.push("modules/ruby", mod, "refs/heads/main", c3, c4))
		wantReason(t, d, ReasonNoRelevantPaths)
	})

	t.Run("ForcePushDiffsFromLastBuiltCommit", func(t *testing.T) {
		// c5 changes the modulemd and is built; c6 (a README change) is
		// pushed, then force-pushed over by c7, which also only changes
		// the README. Relative to the replaced c6 nothing relevant
		// changed, but relative to the last built commit c5 the
		// modulemd did, so the force push asks for a build.
		c5 := mod.Commit("modulemd v5", map[string]string{"ruby.yaml": modulemdYAML("r5", "ruby")})
		if _, err := b.store.PutModuleBuild(b.ctx, state.ModuleBuild{Name: "ruby", Stream: "main", State: state.ModuleStateReady, ModuleCommit: c5}); err != nil {
			t.Fatal(err)
		}
		mod.Commit("modulemd v6", map[string]string{"ruby.yaml": modulemdYAML("r6", "ruby")})
		c6 := mod.Git("rev-parse", "HEAD")
		mod.Git("reset", "-q", "--hard", c5)
		mod.Commit("modulemd v6 again", map[string]string{"ruby.yaml": modulemdYAML("r6", "ruby")})
		c7 := mod.Git("rev-parse", "HEAD")
		// Make c6 known to the mirror first, as the unforced push would.
		mod.Git("branch", "-f", "keep", c6)
		if _, err := b.mirrors.Fetch(b.ctx, mod.URL()); err != nil {
			t.Fatal(err)
		}
		id, err := b.store.RecordDelivery(b.ctx, &state.Delivery{
			Forge: "gitea", Event: "push", DeliveryGUID: "forced", Repo: "modules/ruby", CloneURL: mod.URL(),
			Ref: "refs/heads/main", Before: c6, After: c7, Forced: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		d := b.plan(id)
		reqs := b.requests(d)
		if len(reqs) != 1 || !strings.Contains(strings.Join(reqs[0].Reasons, " "), "diffed from the last built commit "+c5[:7]) {
			t.Errorf("forced push: requests %+v, reason %q", reqs, d.Disposition.Reason)
		}
	})

	t.Run("ForcePushBaseNotInMirror", func(t *testing.T) {
		// A fresh mirror has never seen the old head: all paths count.
		head := mod.Git("rev-parse", "HEAD")
		gone := strings.Repeat("ab", 20)
		p, err := NewPlanner(PlannerOptions{Store: b.store, Mirrors: mustMirrors(t), Worker: "other", Classifier: b.planner.classifier})
		if err != nil {
			t.Fatal(err)
		}
		id := b.push("modules/ruby", mod, "refs/heads/main", gone, head)
		if worked, err := p.runOnce(b.ctx); !worked || err != nil {
			t.Fatalf("runOnce = %v, %v", worked, err)
		}
		d, _ := b.store.Delivery(b.ctx, id)
		if len(d.Disposition.Requests) != 1 || !strings.Contains(d.Disposition.Reason, "previous head abababa not in the mirror") {
			t.Errorf("disposition %+v, want one request noting the missing base", d.Disposition)
		}
	})

	t.Run("CommitGone", func(t *testing.T) {
		gone := strings.Repeat("cd", 20)
		d := b.plan(b.push("modules/ruby", mod, "refs/heads/main", c1, gone))
		wantReason(t, d, ReasonCommitGone, "cdcdcdc")
	})

	t.Run("SkipRebuildTrailer", func(t *testing.T) {
		head := mod.Git("rev-parse", "HEAD")
		c := mod.Commit("tweak\n\nNot yet.\n[Skip Rebuild]", map[string]string{"ruby.yaml": modulemdYAML("skip", "ruby", "rubygems")})
		d := b.plan(b.push("modules/ruby", mod, "refs/heads/main", head, c))
		wantReason(t, d, ReasonSkipTrailer, c[:7], "refreshed")
		if got := b.components("ruby", "main"); len(got) != 2 {
			t.Errorf("index = %+v, want it refreshed despite the trailer", got)
		}
	})

	t.Run("Deletion", func(t *testing.T) {
		mod.Git("branch", "stream-2", "main")
		head := mod.Git("rev-parse", "HEAD")
		_ = b.plan(b.push("modules/ruby", mod, "refs/heads/stream-2", scm.ZeroHash, head))
		if len(b.components("ruby", "stream-2")) == 0 {
			t.Fatal("stream-2 not indexed")
		}
		mod.Git("branch", "-D", "stream-2")
		d := b.plan(b.push("modules/ruby", mod, "refs/heads/stream-2", head, scm.ZeroHash))
		wantReason(t, d, ReasonDeletion, "refs/heads/stream-2 deleted", "ruby:stream-2 removed")
		if got := b.components("ruby", "stream-2"); len(got) != 0 {
			t.Errorf("index of a deleted branch = %+v, want none", got)
		}
	})
}

func mustMirrors(t *testing.T) *scm.Mirrors {
	t.Helper()
	m, err := scm.NewMirrors(scm.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPlanner_RunOnce_Redelivery(t *testing.T) {
	t.Parallel()
	b := setupPlanner(t, nil)
	mod := b.repo("modules/go", "main")
	c1 := mod.Commit("init", map[string]string{"go.yaml": modulemdYAML("g1", "golang")})
	c2 := mod.Commit("bump", map[string]string{"go.yaml": modulemdYAML("g2", "golang")})
	first := b.plan(b.push("modules/go", mod, "refs/heads/main", c1, c2))
	reqID := first.Disposition.Requests[0].RequestID

	// GitHub keeps the GUID on redelivery: the store records it again.
	again, err := b.store.RecordDelivery(b.ctx, &state.Delivery{Forge: "gitea", Event: "push", DeliveryGUID: "same",
		Repo: "modules/go", CloneURL: mod.URL(), Ref: "refs/heads/main", Before: c1, After: c2})
	if err != nil {
		t.Fatal(err)
	}
	d := b.plan(again)
	wantReason(t, d, ReasonAlreadyQueued, fmt.Sprintf("as request %d (go:main, pending)", reqID))

	if _, err := b.store.StartNext(b.ctx); err != nil {
		t.Fatal(err)
	}
	d = b.plan(b.push("modules/go", mod, "refs/heads/main", c1, c2))
	wantReason(t, d, ReasonAlreadyQueued, "running")

	if _, err := b.store.FinishRequest(b.ctx, "go:main", state.ResultFailed, "component golang failed"); err != nil {
		t.Fatal(err)
	}
	d = b.plan(b.push("modules/go", mod, "refs/heads/main", c1, c2))
	reqs := b.requests(d)
	if len(reqs) != 1 || reqs[0].ID == reqID || d.Disposition.Requests[0].Action != state.EnqueueCreated || reqs[0].ModuleCommit != c2 {
		t.Fatalf("redelivery after failure: %+v (reason %q), want a new request at %s", d.Disposition.Requests, d.Disposition.Reason, c2)
	}
	if !strings.Contains(d.Disposition.Reason, fmt.Sprintf("rebuilding after request %d (go:main, failed)", reqID)) {
		t.Errorf("reason = %q", d.Disposition.Reason)
	}

	if _, err := b.store.StartNext(b.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.FinishRequest(b.ctx, "go:main", state.ResultSucceeded, "done"); err != nil {
		t.Fatal(err)
	}
	d = b.plan(b.push("modules/go", mod, "refs/heads/main", c1, c2))
	wantReason(t, d, ReasonAlreadyBuilt, fmt.Sprintf("by request %d (go:main)", reqs[0].ID))
}

func TestPlanner_RunOnce_RedeliveryRebuildsOnlyFailedStreams(t *testing.T) {
	t.Parallel()
	w := setupComponentWorld(t, nil)
	c := w.foo.Commit("fix", map[string]string{"foo.spec": "fixed"})
	d := w.plan(w.push("rpms/foo", w.foo, "refs/heads/main", w.fooBase, c))
	if len(d.Disposition.Requests) != 2 {
		t.Fatalf("requests = %+v", d.Disposition.Requests)
	}
	for range 2 {
		if _, err := w.store.StartNext(w.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.store.FinishRequest(w.ctx, "alpha:main", state.ResultSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.FinishRequest(w.ctx, "beta:main", state.ResultErrored, "hub down"); err != nil {
		t.Fatal(err)
	}
	d = w.plan(w.push("rpms/foo", w.foo, "refs/heads/main", w.fooBase, c))
	reqs := w.requests(d)
	if len(reqs) != 1 || reqs[0].Key != "beta:main" {
		t.Fatalf("redelivery requests = %+v (reason %q), want beta:main only", d.Disposition.Requests, d.Disposition.Reason)
	}
}

func TestPlanner_RunOnce_HundredPushesOnePending(t *testing.T) {
	t.Parallel()
	b := setupPlanner(t, nil)
	mod := b.repo("modules/busy", "main")
	prev := mod.Commit("init", map[string]string{"busy.yaml": modulemdYAML("b0", "busy")})
	var ids []uint64
	var last string
	for i := range 100 {
		last = mod.Commit(fmt.Sprintf("bump %d", i), map[string]string{"busy.yaml": modulemdYAML(fmt.Sprintf("b%d", i+1), "busy")})
		ids = append(ids, b.push("modules/busy", mod, "refs/heads/main", prev, last))
		prev = last
	}
	reqIDs := map[uint64]bool{}
	for _, id := range ids {
		d := b.plan(id)
		for _, s := range d.Disposition.Requests {
			reqIDs[s.RequestID] = true
		}
	}
	running, pending, err := b.store.QueueSlot(b.ctx, "busy:main")
	if err != nil {
		t.Fatal(err)
	}
	if running != nil || pending == nil || len(reqIDs) != 1 || !reqIDs[pending.ID] {
		t.Fatalf("slot running=%v pending=%v, dispositions name requests %v; want one pending request", running, pending, reqIDs)
	}
	if pending.Merges != 99 || len(pending.DeliveryIDs) != 100 || pending.ModuleCommit != last {
		t.Errorf("pending: merges %d, %d deliveries, commit %s; want 99, 100, %s", pending.Merges, len(pending.DeliveryIDs), pending.ModuleCommit, last)
	}
	if worked, err := b.planner.runOnce(b.ctx); worked || err != nil {
		t.Errorf("runOnce on an empty queue = %v, %v", worked, err)
	}
}

func TestPlanner_RunOnce_LeaseRescue(t *testing.T) {
	t.Parallel()
	b := setupPlanner(t, nil)
	mod := b.repo("modules/lost", "main")
	c1 := mod.Commit("init", map[string]string{"lost.yaml": modulemdYAML("l", "lost")})
	id := b.push("modules/lost", mod, "refs/heads/main", scm.ZeroHash, c1)
	if _, err := b.store.LeasePlanJob(b.ctx, "dead-worker", DefaultLeaseFor); err != nil {
		t.Fatal(err)
	}
	if worked, err := b.planner.runOnce(b.ctx); worked || err != nil {
		t.Fatalf("runOnce while the dead worker holds the lease = %v, %v; want nothing to do", worked, err)
	}
	b.planner.rescueExpired(b.ctx)
	if worked, _ := b.planner.runOnce(b.ctx); worked {
		t.Fatal("lease rescued before it expired")
	}
	b.clock.Advance(DefaultLeaseFor + time.Second)
	b.planner.rescueExpired(b.ctx)
	d := b.plan(id)
	if len(d.Disposition.Requests) != 1 {
		t.Errorf("rescued job planned with %+v", d.Disposition)
	}
}

// TestPlanner_StartNotify drives the whole path: a signed push through the
// receiver, whose OnRecorded wakes the running planner, which enqueues.
func TestPlanner_StartNotify(t *testing.T) {
	t.Parallel()
	b := setupPlanner(t, func(o *PlannerOptions) { o.PollInterval = time.Hour; o.RescueInterval = time.Hour })
	mod := b.repo("modules/live", "main")
	c1 := mod.Commit("init", map[string]string{"live.yaml": modulemdYAML("l", "live")})

	rc, err := NewReceiver(ReceiverOptions{Store: b.store, Forges: []ForgeConfig{{Kind: GitHub, Secrets: []string{testSecret}}},
		OnRecorded: func(uint64) { b.planner.Notify() }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	if err := b.planner.Start(b.ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.planner.Start(b.ctx); err == nil {
		t.Error("second Start succeeded")
	}
	// The loop has drained the (empty) queue and now sleeps for an hour
	// unless notified.
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": scm.ZeroHash, "after": c1,
		"repository": map[string]string{"full_name": "modules/live", "clone_url": mod.URL()},
	})
	resp := do(t, signedRequest(t, srv.URL, GitHub, "push", testSecret, body))
	if resp.status != http.StatusAccepted {
		t.Fatalf("receiver answered %d %v", resp.status, resp.body)
	}
	select {
	case r := <-b.signal:
		if r.Request.Key != "live:main" || r.Action != state.EnqueueCreated {
			t.Errorf("enqueued %+v", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("planner did not plan the notified delivery")
	}
	b.planner.Stop()
	b.planner.Stop() // idempotent
}

func TestNewPlanner_Errors(t *testing.T) {
	t.Parallel()
	store, mirrors := openStore(t), mustMirrors(t)
	for name, tc := range map[string]struct {
		opts PlannerOptions
		want string
	}{
		"StoreRequired":   {PlannerOptions{Mirrors: mirrors}, "Store"},
		"MirrorsRequired": {PlannerOptions{Store: store}, "Mirrors"},
		"BadPattern":      {PlannerOptions{Store: store, Mirrors: mirrors, Classifier: Classifier{ModulePatterns: []string{"modules/["}}}, "ModulePatterns[0]"},
		"BadKind":         {PlannerOptions{Store: store, Mirrors: mirrors, Classifier: Classifier{Repos: map[string]RepoKind{"x/y": "website"}}}, `Repos["x/y"]`},
		"BadIgnore":       {PlannerOptions{Store: store, Mirrors: mirrors, IgnorePaths: []string{"["}}, "IgnorePaths[0]"},
		"BadBranch":       {PlannerOptions{Store: store, Mirrors: mirrors, TrackedBranches: []string{""}}, "TrackedBranches[0]"},
		"AbsModuleFile":   {PlannerOptions{Store: store, Mirrors: mirrors, ModuleFile: "/etc/{name}.yaml"}, "ModuleFile"},
		"EscapingFile":    {PlannerOptions{Store: store, Mirrors: mirrors, ModuleFile: "../{name}.yaml"}, "ModuleFile"},
		"NegativeLease":   {PlannerOptions{Store: store, Mirrors: mirrors, LeaseFor: -time.Second}, "LeaseFor"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewPlanner(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewPlanner error = %v, want one naming %s", err, tc.want)
			}
		})
	}
	p, err := NewPlanner(PlannerOptions{Store: store, Mirrors: mirrors})
	if err != nil {
		t.Fatal(err)
	}
	if p.leaseFor != DefaultLeaseFor || p.poll != DefaultPollInterval || p.moduleFile != DefaultModuleFile || !strings.HasPrefix(p.Worker(), "planner-") {
		t.Errorf("defaults: lease %s poll %s file %q worker %q", p.leaseFor, p.poll, p.moduleFile, p.Worker())
	}
}
