package state

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rida-build/rida/modgraph"
)

func TestStore_DependentsIndex(t *testing.T) {
	s := setup(t).store
	ctx := context.Background()
	set := func(module, stream string, reqs ...modgraph.Requirement) {
		t.Helper()
		if err := s.SetModuleStream(ctx, IndexedStream{Module: module, Stream: stream, ModuleRepo: "file:///m/" + module, BuildRequires: reqs}); err != nil {
			t.Fatal(err)
		}
	}
	set("upper", "1", modgraph.Requirement{Name: "lower", Streams: []string{"stable"}})
	set("any", "1", modgraph.Requirement{Name: "lower"})
	set("notold", "1", modgraph.Requirement{Name: "lower", Streams: []string{"-old"}})
	set("other", "1", modgraph.Requirement{Name: "lowest", Streams: []string{"stable"}})
	for _, tc := range []struct{ stream, want string }{
		{"stable", "[any:1 notold:1 upper:1]"},
		{"old", "[any:1]"},
	} {
		got, err := s.Dependents(ctx, "lower", tc.stream)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("dependents of lower:%s = %v, want %s", tc.stream, got, tc.want)
		}
	}
	// Re-indexing replaces the old requirements.
	set("upper", "1", modgraph.Requirement{Name: "lowest", Streams: []string{"stable"}})
	if got, _ := s.Dependents(ctx, "lower", "stable"); fmt.Sprint(got) != "[any:1 notold:1]" {
		t.Errorf("after re-index: %v", got)
	}
	if reqs, _ := s.StreamBuildRequires(ctx, "upper", "1"); fmt.Sprint(reqs) != "[{lowest [stable]}]" {
		t.Errorf("StreamBuildRequires = %v", reqs)
	}
	// Removing a stream removes its edges.
	if err := s.SetModuleStream(ctx, IndexedStream{Module: "any", Stream: "1"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Dependents(ctx, "lower", "old"); len(got) != 0 {
		t.Errorf("removed stream still a dependent: %v", got)
	}
}

func TestStore_StreamBuilds(t *testing.T) {
	s := setup(t).store
	ctx := context.Background()
	var ids []uint64
	for i, st := range []ModuleState{ModuleStateReady, ModuleStateFailed, ModuleStateReady, ModuleStateBuild} {
		mb, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "lower", Stream: "stable", State: st, Version: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, mb.ID)
	}
	if _, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "lower", Stream: "stable2", State: ModuleStateReady}); err != nil {
		t.Fatal(err)
	}
	ready, err := s.StreamBuilds(ctx, "lower", "stable", ModuleStateReady)
	if err != nil {
		t.Fatal(err)
	}
	if len(ready) != 2 || ready[0].ID != ids[2] || ready[1].ID != ids[0] {
		t.Fatalf("ready builds %v, want %d then %d", ready, ids[2], ids[0])
	}
	// A state change moves the build in the index.
	mb, _ := s.GetModuleBuild(ctx, ids[3])
	mb.State = ModuleStateReady
	if _, err := s.PutModuleBuild(ctx, *mb); err != nil {
		t.Fatal(err)
	}
	if ready, _ := s.StreamBuilds(ctx, "lower", "stable", ModuleStateReady); len(ready) != 3 || ready[0].ID != ids[3] {
		t.Errorf("after ready: %v", ready)
	}
	if all, _ := s.StreamBuilds(ctx, "lower", "stable"); len(all) != 4 {
		t.Errorf("all builds: %d", len(all))
	}
	streams, err := s.StreamsWithState(ctx, "lower", ModuleStateReady)
	if err != nil || fmt.Sprint(streams) != "[stable stable2]" {
		t.Errorf("streams with ready builds: %v %v", streams, err)
	}
}

// A file written before the per-stream index existed gets it at Open.
func TestStore_StreamBuilds_FilledAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rida.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mb, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "lower", Stream: "stable", State: ModuleStateReady})
	if err != nil {
		t.Fatal(err)
	}
	// Make it look like an old file: no index, no marker.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketBuildsByStream); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketBuildsByStream); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyBuildsByStreamFilled)
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.StreamBuilds(ctx, "lower", "stable"); len(got) != 0 {
		t.Fatalf("index not emptied: %v", got)
	}
	_ = s.Close()
	s = MustOpen(t, path, Options{})
	got, err := s.StreamBuilds(ctx, "lower", "stable", ModuleStateReady)
	if err != nil || len(got) != 1 || got[0].ID != mb.ID {
		t.Fatalf("after reopen: %v %v", got, err)
	}
}

// The cascade is queued in the transaction that makes the build ready,
// with the hook's requests in order, and recorded on the build.
func TestStore_CascadeOnReady(t *testing.T) {
	var seen []modgraph.StreamRef
	hook := func(ev CascadeEvent) ([]BuildRequest, string) {
		ds, err := ev.Dependents(modgraph.StreamRef{Name: ev.Build.Name, Stream: ev.Build.Stream})
		if err != nil {
			t.Error(err)
		}
		seen = ds
		var out []BuildRequest
		for _, d := range ds {
			out = append(out, BuildRequest{Module: d.Name, Stream: d.Stream, Kind: RequestCascade,
				ModuleRepo: ev.ModuleRepo(d), CascadeFrom: ev.Build.ID, Reasons: []string{"lower:stable became ready"}})
		}
		return out, ""
	}
	path := filepath.Join(t.TempDir(), "rida.db")
	s := MustOpen(t, path, Options{CascadeFor: hook, Now: func() time.Time { return time.Unix(1e9, 0) }})
	ctx := context.Background()
	if err := s.SetModuleStream(ctx, IndexedStream{Module: "upper", Stream: "1", ModuleRepo: "file:///m/upper",
		BuildRequires: []modgraph.Requirement{{Name: "lower", Streams: []string{"stable"}}}}); err != nil {
		t.Fatal(err)
	}
	mb, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "lower", Stream: "stable", State: ModuleStateDone})
	if err != nil {
		t.Fatal(err)
	}
	if mb.Cascade != nil {
		t.Fatalf("done cascaded: %+v", mb.Cascade)
	}
	mb.State = ModuleStateReady
	mb, err = s.PutModuleBuild(ctx, *mb)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seen) != "[upper:1]" || mb.Cascade == nil || len(mb.Cascade.Requests) != 1 {
		t.Fatalf("cascade %+v, dependents %v", mb.Cascade, seen)
	}
	_, pending, err := s.QueueSlot(ctx, "upper:1")
	if err != nil || pending == nil {
		t.Fatalf("no pending request for upper:1: %v", err)
	}
	if pending.Kind != RequestCascade || pending.CascadeFrom != mb.ID || pending.ModuleRepo != "file:///m/upper" {
		t.Errorf("pending request %+v", pending)
	}
	// A later put of the ready build (a stale copy without Cascade) keeps
	// the record and does not cascade again.
	stale := *mb
	stale.Cascade, stale.StateReason = nil, "touched"
	again, err := s.PutModuleBuild(ctx, stale)
	if err != nil {
		t.Fatal(err)
	}
	if again.Cascade == nil || len(again.Cascade.Requests) != 1 {
		t.Errorf("cascade record lost: %+v", again.Cascade)
	}
	_, p2, _ := s.QueueSlot(ctx, "upper:1")
	if p2.Merges != 0 {
		t.Errorf("cascaded twice: %d merges", p2.Merges)
	}
}

func TestStore_LatestStreamBuildAndMaxVersion(t *testing.T) {
	s := setup(t).store
	ctx := context.Background()
	put := func(st ModuleState, v uint64, ctxName string) uint64 {
		t.Helper()
		mb, err := s.PutModuleBuild(ctx, ModuleBuild{Name: "m", Stream: "1", Context: ctxName, Version: v, State: st})
		if err != nil {
			t.Fatal(err)
		}
		return mb.ID
	}
	a := put(ModuleStateReady, 10, "c1")
	put(ModuleStateFailed, 30, "c1")
	b := put(ModuleStateReady, 20, "c2")
	put(ModuleStateReady, 5, "c1")
	got, err := s.LatestStreamBuild(ctx, "m", "1", func(mb *ModuleBuild) bool { return mb.Context == "c2" }, ModuleStateReady)
	if err != nil || got == nil || got.ID != b {
		t.Errorf("latest ready c2: %+v %v, want %d", got, err, b)
	}
	got, _ = s.LatestStreamBuild(ctx, "m", "1", func(mb *ModuleBuild) bool { return mb.Version == 10 })
	if got == nil || got.ID != a {
		t.Errorf("latest version 10: %+v, want %d", got, a)
	}
	if got, _ := s.LatestStreamBuild(ctx, "m", "1", nil, ModuleStateBuild); got != nil {
		t.Errorf("no build in state build, got %+v", got)
	}
	for _, tc := range []struct {
		ctx  string
		want uint64
	}{{"c1", 30}, {"c2", 20}, {"c3", 0}} {
		if v, err := s.StreamMaxVersion(ctx, "m", "1", tc.ctx); err != nil || v != tc.want {
			t.Errorf("max version %s = %d %v, want %d", tc.ctx, v, err, tc.want)
		}
	}
}
