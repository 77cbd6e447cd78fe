package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestStore_Enqueue_Coalesces100(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	created, merged := 0, 0
	for i := range 100 {
		res, err := b.store.Enqueue(ctx, BuildRequest{
			Module: "foo", Stream: "main", Kind: RequestComponent,
			Reasons:          []string{fmt.Sprintf("push %d", i%10)},
			DeliveryIDs:      []uint64{uint64(i + 1)},
			ModuleCommit:     fmt.Sprintf("m%03d", i),
			ComponentCommits: []ComponentCommit{{Name: fmt.Sprintf("c%d", i%3), Ref: "main", Commit: fmt.Sprintf("c%03d", i)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		switch res.Action {
		case EnqueueCreated:
			created++
		case EnqueueMerged:
			merged++
		}
	}
	if created != 1 || merged != 99 {
		t.Fatalf("created %d merged %d, want 1 and 99", created, merged)
	}
	running, pending, err := b.store.QueueSlot(ctx, "foo:main")
	if err != nil || running != nil || pending == nil {
		t.Fatalf("slot = %v, %v, %v", running, pending, err)
	}
	if len(pending.Reasons) != 10 || len(pending.DeliveryIDs) != 100 || pending.Merges != 99 {
		t.Errorf("pending reasons %d deliveries %d merges %d, want 10, 100, 99", len(pending.Reasons), len(pending.DeliveryIDs), pending.Merges)
	}
	if pending.ModuleCommit != "m099" {
		t.Errorf("ModuleCommit = %q, want the newest m099", pending.ModuleCommit)
	}
	want := []ComponentCommit{{"c0", "main", "c099"}, {"c1", "main", "c097"}, {"c2", "main", "c098"}}
	if !slices.Equal(pending.ComponentCommits, want) {
		t.Errorf("ComponentCommits = %v, want %v", pending.ComponentCommits, want)
	}
}

// TestStore_Enqueue_ConcurrentOneKey enqueues from many goroutines while a
// request for the key is running: at most one pending must result.
func TestStore_Enqueue_ConcurrentOneKey(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	if _, err := b.store.Enqueue(ctx, BuildRequest{Module: "foo", Stream: "main", Kind: RequestModule}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.StartNext(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := b.store.Enqueue(ctx, BuildRequest{Module: "foo", Stream: "main", Kind: RequestComponent, DeliveryIDs: []uint64{uint64(i)}})
			if err != nil {
				t.Error(err)
				return
			}
			if res.Action == EnqueueCreated {
				mu.Lock()
				created++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	running, pending, err := b.store.QueueSlot(ctx, "foo:main")
	if err != nil || running == nil || pending == nil || created != 1 || len(pending.DeliveryIDs) != 100 {
		t.Fatalf("running %v pending %v created %d err %v", running != nil, pending, created, err)
	}
	if _, err := b.store.StartNext(ctx); !errors.Is(err, ErrNoJob) {
		t.Fatalf("StartNext while key running: %v, want ErrNoJob", err)
	}
}

func TestStore_StartNext_Order(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	enq := func(module string, kind RequestKind) {
		t.Helper()
		if _, err := b.store.Enqueue(ctx, BuildRequest{Module: module, Stream: "s", Kind: kind}); err != nil {
			t.Fatal(err)
		}
	}
	enq("comp-first", RequestComponent)
	enq("mod-second", RequestModule)
	enq("comp-third", RequestComponent)
	enq("upgraded", RequestComponent)
	enq("upgraded", RequestModule) // merge raises the kind to module

	var got []string
	for {
		r, err := b.store.StartNext(ctx)
		if errors.Is(err, ErrNoJob) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.State != RequestRunning || r.StartedAt.IsZero() {
			t.Errorf("started request = %+v", r)
		}
		got = append(got, r.Module)
	}
	want := []string{"mod-second", "upgraded", "comp-first", "comp-third"}
	if !slices.Equal(got, want) {
		t.Errorf("start order = %v, want %v", got, want)
	}
}

func TestStore_FinishRequest(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	if _, err := b.store.FinishRequest(ctx, "foo:main", ResultSucceeded, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finish with nothing running: %v, want ErrNotFound", err)
	}
	if _, err := b.store.FinishRequest(ctx, "foo:main", "bogus", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bogus result: %v, want ErrInvalid", err)
	}
	mustEnqueue(t, b.store, "foo", RequestModule, "ck1")
	first, err := b.store.StartNext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, b.store, "foo", RequestModule, "ck2") // pending behind the running one
	if _, err := b.store.StartNext(ctx); !errors.Is(err, ErrNoJob) {
		t.Fatalf("second start while running: %v", err)
	}
	done, err := b.store.FinishRequest(ctx, "foo:main", ResultFailed, "Component(s) bar failed to build.")
	if err != nil {
		t.Fatal(err)
	}
	if done.ID != first.ID || done.State != RequestFinished || done.Result != ResultFailed || done.FinishedAt.IsZero() {
		t.Errorf("finished = %+v", done)
	}
	next, err := b.store.StartNext(ctx)
	if err != nil || next.ID == first.ID {
		t.Fatalf("after finish StartNext = %+v, %v", next, err)
	}
}

func mustEnqueue(t *testing.T, s *Store, module string, kind RequestKind, ck string) *BuildRequest {
	t.Helper()
	res, err := s.Enqueue(context.Background(), BuildRequest{Module: module, Stream: "main", Kind: kind, ContentKeys: []string{ck}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Request
}

func TestStore_RedeliveryDecision(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(t *testing.T, s *Store)
		want    RedeliveryAction
		keys    []string
	}{
		{"Unknown", func(t *testing.T, s *Store) {}, RedeliveryPlan, nil},
		{"Pending", func(t *testing.T, s *Store) {
			mustEnqueue(t, s, "a", RequestModule, "ck")
		}, RedeliveryInProgress, []string{"a:main"}},
		{"Running", func(t *testing.T, s *Store) {
			mustEnqueue(t, s, "a", RequestModule, "ck")
			mustStart(t, s)
		}, RedeliveryInProgress, []string{"a:main"}},
		{"Succeeded", func(t *testing.T, s *Store) {
			mustEnqueue(t, s, "a", RequestModule, "ck")
			mustStart(t, s)
			mustFinish(t, s, "a:main", ResultSucceeded)
		}, RedeliveryReport, []string{"a:main"}},
		{"FailedOneOfTwo", func(t *testing.T, s *Store) {
			mustEnqueue(t, s, "a", RequestComponent, "ck")
			mustEnqueue(t, s, "b", RequestComponent, "ck")
			mustStart(t, s)
			mustStart(t, s)
			mustFinish(t, s, "a:main", ResultSucceeded)
			mustFinish(t, s, "b:main", ResultErrored)
		}, RedeliveryRebuild, []string{"b:main"}},
		{"FailedThenRebuiltOK", func(t *testing.T, s *Store) {
			mustEnqueue(t, s, "a", RequestModule, "ck")
			mustStart(t, s)
			mustFinish(t, s, "a:main", ResultFailed)
			mustEnqueue(t, s, "a", RequestModule, "ck")
			mustStart(t, s)
			mustFinish(t, s, "a:main", ResultSucceeded)
		}, RedeliveryReport, []string{"a:main"}},
		{"MergedIntoPending", func(t *testing.T, s *Store) {
			mustEnqueue(t, s, "a", RequestModule, "other")
			mustEnqueue(t, s, "a", RequestModule, "ck") // merges
		}, RedeliveryInProgress, []string{"a:main"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			tt.prepare(t, b.store)
			got, err := b.store.RedeliveryDecision(ctx, "ck")
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, r := range got.Requests {
				keys = append(keys, r.Key)
			}
			if got.Action != tt.want || !slices.Equal(keys, tt.keys) {
				t.Errorf("decision = %s %v, want %s %v", got.Action, keys, tt.want, tt.keys)
			}
		})
	}
}

func mustStart(t *testing.T, s *Store) *BuildRequest {
	t.Helper()
	r, err := s.StartNext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustFinish(t *testing.T, s *Store, key string, res RequestResult) {
	t.Helper()
	if _, err := s.FinishRequest(context.Background(), key, res, ""); err != nil {
		t.Fatal(err)
	}
}

func TestStore_Enqueue_Validation(t *testing.T) {
	b := setup(t)
	tests := []struct {
		name  string
		req   BuildRequest
		field string
	}{
		{"ErrModuleRequired", BuildRequest{Stream: "s", Kind: RequestModule}, "BuildRequest.Module"},
		{"ErrStreamRequired", BuildRequest{Module: "m", Kind: RequestModule}, "BuildRequest.Stream"},
		{"ErrColonInModule", BuildRequest{Module: "m:x", Stream: "s", Kind: RequestModule}, "BuildRequest.Module"},
		{"ErrKind", BuildRequest{Module: "m", Stream: "s"}, "BuildRequest.Kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.store.Enqueue(context.Background(), tt.req)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("err = %v, want ValidationError on %s", err, tt.field)
			}
		})
	}
}
