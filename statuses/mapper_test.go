package statuses

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rida-build/rida/state"
)

func mustMapper(t *testing.T, o MapperOptions) *Mapper {
	t.Helper()
	m, err := NewMapper(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func deliveries() []state.Delivery {
	return []state.Delivery{
		{ID: 1, Forge: "github", Repo: "modules/foo", After: sha(1)},
		{ID: 2, Forge: "github", Repo: "rpms/bar", After: sha(2)},
		{ID: 3, Forge: "github", Repo: "rpms/bar", After: sha(2)}, // redelivery of 2
		{ID: 4, Forge: "gitlab", Repo: "group/baz", After: sha(3), CheckoutSHA: sha(4)},
	}
}

func TestMapper_StatusesFor(t *testing.T) {
	t.Parallel()
	m := mustMapper(t, MapperOptions{PublicURL: "https://rida.example/"})
	req := &state.BuildRequest{ID: 7, Module: "foo", Stream: "main"}
	build := func(st state.ModuleState, mut ...func(*state.ModuleBuild)) *state.ModuleBuild {
		b := &state.ModuleBuild{ID: 42, Name: "foo", Stream: "main", Version: 20260301, Context: "c0ffee42", RequestID: 7, State: st,
			Components: []state.ComponentBuild{
				{Key: "macros", Batch: 1, State: "complete"},
				{Key: "bar", Batch: 2, State: "building"}, {Key: "baz", Batch: 2, State: "queued"},
				{Key: "qux", Batch: 3, State: "queued"},
			}}
		for _, f := range mut {
			f(b)
		}
		return b
	}
	cases := []struct {
		name       string
		ev         state.StatusEvent
		state      string // "" = nothing owed
		desc       string
		target     string
		noDelivery bool
	}{
		{name: "Enqueued", ev: state.StatusEvent{Kind: state.StatusEventEnqueued, Request: req},
			state: "pending", desc: "queued", target: "https://rida.example/api/v1/deliveries/"},
		{name: "Init", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, After: build(state.ModuleStateInit)},
			state: "pending", desc: "queued", target: "https://rida.example/builds/42"},
		{name: "Build", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateWait), After: build(state.ModuleStateBuild)},
			state: "running", desc: "building batch 2/3", target: "https://rida.example/builds/42"},
		{name: "ProgressSameBatch", ev: state.StatusEvent{Kind: state.StatusEventBatchProgress, Request: req,
			Before: build(state.ModuleStateBuild), After: build(state.ModuleStateBuild, func(b *state.ModuleBuild) { b.Components[2].State = "building" })}},
		{name: "ProgressNextBatch", ev: state.StatusEvent{Kind: state.StatusEventBatchProgress, Request: req,
			Before: build(state.ModuleStateBuild), After: build(state.ModuleStateBuild, func(b *state.ModuleBuild) {
				b.Components[1].State, b.Components[2].State = "complete", "reused"
			})},
			state: "running", desc: "building batch 3/3", target: "https://rida.example/builds/42"},
		{name: "Ready", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateBuild), After: build(state.ModuleStateReady)},
			state: "success", desc: "built foo:main:20260301:c0ffee42", target: "https://rida.example/builds/42"},
		// A request with two builds (two contexts): the commit shows
		// pending until both ended, then the worse of the two.
		{name: "ReadyWhileSiblingBuilds", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateBuild), After: build(state.ModuleStateReady),
			Siblings: []state.ModuleBuild{*build(state.ModuleStateBuild, func(b *state.ModuleBuild) { b.ID, b.Context = 43, "CTXB" })}},
			state: "pending", desc: "1 of 2 contexts built; built foo:main:20260301:c0ffee42", target: "https://rida.example/builds/42"},
		{name: "ReadyAfterSiblingFailed", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateBuild), After: build(state.ModuleStateReady),
			Siblings: []state.ModuleBuild{*build(state.ModuleStateFailed, func(b *state.ModuleBuild) {
				b.ID, b.Context, b.FailureKind, b.StateReason = 43, "CTXB", state.FailureBuild, "Component(s) bar failed to build."
			})}},
			state: "failure", desc: "build failed: Component(s) bar failed to build.", target: "https://rida.example/builds/42"},
		{name: "ReadyWithSiblingReady", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateBuild), After: build(state.ModuleStateReady),
			Siblings: []state.ModuleBuild{*build(state.ModuleStateReady, func(b *state.ModuleBuild) { b.ID, b.Context = 43, "CTXB" })}},
			state: "success", desc: "all 2 contexts built; built foo:main:20260301:c0ffee42", target: "https://rida.example/builds/42"},
		{name: "Failure", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateBuild),
			After: build(state.ModuleStateFailed, func(b *state.ModuleBuild) { b.FailureKind, b.StateReason = state.FailureBuild, "component bar failed" })},
			state: "failure", desc: "build failed: component bar failed", target: "https://rida.example/builds/42"},
		{name: "InfraError", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateBuild),
			After: build(state.ModuleStateFailed, func(b *state.ModuleBuild) {
				b.FailureKind, b.StateReason = state.FailureInfra, "infrastructure error: read modulemd: connection refused"
			})},
			state: "error", desc: "infrastructure error, re-run with rida rerun: read modulemd: connection refused", target: "https://rida.example/builds/42"},
		{name: "InfraErrorInferred", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateInit),
			After: build(state.ModuleStateFailed, func(b *state.ModuleBuild) { b.StateReason = "infrastructure error: koji down" })},
			state: "error", desc: "infrastructure error, re-run with rida rerun: koji down", target: "https://rida.example/builds/42"},
		{name: "Superseded", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateBuild),
			After: build(state.ModuleStateFailed, func(b *state.ModuleBuild) {
				b.CancelRequestedBy = "superseded by request 9 (abc1234)"
				b.StateReason = b.CancelRequestedBy
			})},
			state: "canceled", desc: "superseded by abc1234", target: "https://rida.example/builds/42"},
		{name: "Cancelled", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateBuild),
			After: build(state.ModuleStateFailed, func(b *state.ModuleBuild) {
				b.FailureKind, b.CancelRequestedBy, b.StateReason = state.FailureCanceled, "cancelled by alice", "cancelled by alice"
			})},
			state: "canceled", desc: "cancelled by alice", target: "https://rida.example/builds/42"},
		{name: "IdenticalBuild", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateInit),
			After: build(state.ModuleStateGarbage, func(b *state.ModuleBuild) {
				b.StateReason = "identical to build 3 (ready), which succeeded: not rebuilt"
			})},
			state: "success", desc: "identical to build 3 (ready), which succeeded: not rebuilt", target: "https://rida.example/builds/42"},
		{name: "GarbageCollected", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateReady), After: build(state.ModuleStateGarbage)}},
		{name: "FailedRePut", ev: state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, Before: build(state.ModuleStateFailed), After: build(state.ModuleStateFailed)}},
		{name: "NoDeliveries", noDelivery: true, ev: state.StatusEvent{Kind: state.StatusEventBuildState, After: build(state.ModuleStateReady)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev := tc.ev
			if !tc.noDelivery {
				ev.Deliveries = deliveries()
			}
			got := m.StatusesFor(ev)
			if tc.state == "" {
				if len(got) != 0 {
					t.Fatalf("owed %+v, want nothing", got)
				}
				return
			}
			wantKeys := []string{
				state.OutboxKey("github", "modules/foo", sha(1), "rida/foo:main"),
				state.OutboxKey("github", "rpms/bar", sha(2), "rida/foo:main"),
				state.OutboxKey("gitlab", "group/baz", sha(4), "rida/foo:main"), // checkout_sha wins
			}
			if len(got) != len(wantKeys) {
				t.Fatalf("got %d statuses, want %d (one per commit): %+v", len(got), len(wantKeys), got)
			}
			for i, u := range got {
				if u.Key() != wantKeys[i] {
					t.Errorf("status %d key %q, want %q", i, u.Key(), wantKeys[i])
				}
				if u.State != tc.state || u.Description != tc.desc || !strings.HasPrefix(u.TargetURL, tc.target) {
					t.Errorf("status %d = %s %q %s, want %s %q %s…", i, u.State, u.Description, u.TargetURL, tc.state, tc.desc, tc.target)
				}
			}
		})
	}
}

func TestMapper_StatusesFor_Options(t *testing.T) {
	t.Parallel()
	req := &state.BuildRequest{ID: 7, Module: "foo", Stream: "main"}
	ev := state.StatusEvent{Kind: state.StatusEventEnqueued, Request: req, Deliveries: deliveries()}

	t.Run("ContextTemplateAndForges", func(t *testing.T) {
		t.Parallel()
		m := mustMapper(t, MapperOptions{ContextTemplate: "modules/{name}:{stream}", Forges: []string{"gitlab"}})
		got := m.StatusesFor(ev)
		if len(got) != 1 || got[0].Forge != "gitlab" || got[0].Context != "modules/foo:main" || got[0].TargetURL != "" {
			t.Fatalf("got %+v", got)
		}
	})

	t.Run("DescriptionTruncated", func(t *testing.T) {
		t.Parallel()
		m := mustMapper(t, MapperOptions{})
		b := &state.ModuleBuild{ID: 1, Name: "foo", Stream: "main", State: state.ModuleStateFailed, FailureKind: state.FailureBuild,
			StateReason: strings.Repeat("very long reason ", 20)}
		got := m.StatusesFor(state.StatusEvent{Kind: state.StatusEventBuildState, Request: req, After: b, Deliveries: deliveries()})
		if len(got) == 0 || utf8.RuneCountInString(got[0].Description) != 140 {
			t.Fatalf("got %+v, want a 140-rune description", got)
		}
	})
}

func TestNewMapper_Validation(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]MapperOptions{
		"UnknownPlaceholder": {ContextTemplate: "rida/{name}:{stream}/{arch}"},
		"NoStream":           {ContextTemplate: "rida/{name}"},
		"RelativePublicURL":  {PublicURL: "rida.example"},
	} {
		if _, err := NewMapper(o); err == nil {
			t.Errorf("%s: NewMapper accepted %+v", name, o)
		}
	}
	if m := mustMapper(t, MapperOptions{}); m.Context("nodejs", "20") != "rida/nodejs:20" {
		t.Fatalf("default context = %q", m.Context("nodejs", "20"))
	}
}
