package state

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testBundle struct {
	store *Store
	clock *fakeClock
	path  string
}

// setup opens a store in a fresh temp dir with a fake clock; cleanup runs
// Check and closes it.
func setup(t testing.TB) *testBundle {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rida.db")
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := MustOpen(t, path, Options{Now: clock.Now})
	return &testBundle{store: s, clock: clock, path: path}
}

// MustOpen opens path and registers Check + Close on cleanup.
func MustOpen(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		err := s.Check()
		if errors.Is(err, bolt.ErrDatabaseNotOpen) {
			return // the test closed it (reopen tests); the reopened store is checked
		}
		if err != nil {
			t.Errorf("Check on cleanup: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close on cleanup: %v", err)
		}
	})
	return s
}

func testDelivery(n int) *Delivery {
	return &Delivery{
		Forge: "github", DeliveryGUID: fmt.Sprintf("guid-%d", n), Event: "push",
		Repo: "rpms/foo", CloneURL: "https://forge.example/rpms/foo.git", Ref: "refs/heads/main",
		Before: fmt.Sprintf("%040x", n), After: fmt.Sprintf("%040x", n+1),
		Commits: []Commit{{ID: fmt.Sprintf("%040x", n+1), Message: "bump\n\n[skip rebuild]"}}, Sender: "alice",
	}
}

func TestStore_Open_NewFileHasSchema(t *testing.T) {
	b := setup(t)
	err := b.store.db.View(func(tx *bolt.Tx) error {
		if got := schemaVersion(tx); got != SchemaVersion {
			t.Errorf("schema = %d, want %d", got, SchemaVersion)
		}
		for _, name := range allBuckets() {
			if tx.Bucket(name) == nil {
				t.Errorf("bucket %s missing", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStore_Open_SchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rida.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keySchema, u64(SchemaVersion+1))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on a newer schema")
	}
	var sv *SchemaVersionError
	if !errors.As(err, &sv) || !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("err = %v (%T), want *SchemaVersionError matching ErrSchemaTooNew", err, err)
	}
	if sv.Found != SchemaVersion+1 || sv.Supported != SchemaVersion {
		t.Errorf("SchemaVersionError = %+v", sv)
	}
	// The file must be untouched: no buckets were created.
	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketDeliveries) != nil {
			t.Error("Open created buckets in a newer file")
		}
		return nil
	})
}

func TestStore_Open_Options(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		field string
	}{
		{"NegativeLockTimeout", Options{LockTimeout: -1}, "Options.LockTimeout"},
		{"NegativeBatchDelay", Options{MaxBatchDelay: -1}, "Options.MaxBatchDelay"},
		{"NegativeBatchSize", Options{MaxBatchSize: -1}, "Options.MaxBatchSize"},
		{"NegativeAttempts", Options{MaxPlanAttempts: -1}, "Options.MaxPlanAttempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(filepath.Join(t.TempDir(), "x.db"), tt.opts)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("err = %v, want ValidationError on %s", err, tt.field)
			}
		})
	}
}

func TestStore_Open_LockedByOtherHandle(t *testing.T) {
	b := setup(t)
	_, err := Open(b.path, Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, bolt.ErrTimeout) {
		t.Fatalf("second Open err = %v, want a timeout", err)
	}
}

func TestStore_Reopen_Persists(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	id, err := b.store.RecordDelivery(ctx, testDelivery(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Enqueue(ctx, BuildRequest{Module: "foo", Stream: "main", Kind: RequestModule, Reasons: []string{"r"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.SetModuleComponents(ctx, "foo", "main", "modules/foo", []IndexedComponent{{"bar", "main"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Close(); err != nil {
		t.Fatal(err)
	}

	s := MustOpen(t, b.path, Options{Now: b.clock.Now})
	d, err := s.Delivery(ctx, id)
	if err != nil {
		t.Fatalf("Delivery after reopen: %v", err)
	}
	if d.After != testDelivery(1).After || d.Commits[0].Message != "bump\n\n[skip rebuild]" || !d.ReceivedAt.Equal(b.clock.Now()) {
		t.Errorf("delivery after reopen = %+v", d)
	}
	if _, p, err := s.QueueSlot(ctx, "foo:main"); err != nil || p == nil {
		t.Errorf("pending request lost on reopen: %v %v", p, err)
	}
	if ms, err := s.ModulesForComponent(ctx, "bar", "main"); err != nil || len(ms) != 1 {
		t.Errorf("index lost on reopen: %v %v", ms, err)
	}
	job, err := s.LeasePlanJob(ctx, "w", time.Minute)
	if err != nil || job.DeliveryID != id {
		t.Errorf("plan job lost on reopen: %+v %v", job, err)
	}
}

func TestStore_Check_DetectsInconsistency(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(tx *bolt.Tx) error
		want   string
	}{
		{"PlanJobWithoutIndex", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketPlanAvailable).Delete(u64(1))
		}, "not in the available index"},
		{"StrayComponentIndex", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketIndexComponents).Put([]byte("x\x00main\x00m\x00s"), []byte("r"))
		}, "has no module record"},
		{"LeasedWithoutLease", func(tx *bolt.Tx) error {
			return putJSON(tx.Bucket(bucketPlanJobs), u64(1), PlanJob{ID: 1, DeliveryID: 1, State: PlanJobLeased})
		}, "leased without a lease holder"},
		{"RunningOutsideSlot", func(tx *bolt.Tx) error {
			return putJSON(tx.Bucket(bucketRequests), u64(99), BuildRequest{ID: 99, Key: "a:b", Module: "a", Stream: "b", Kind: RequestModule, State: RequestRunning})
		}, "request 99 is running but not in its key's slot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rida.db")
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.RecordDelivery(context.Background(), testDelivery(1)); err != nil {
				t.Fatal(err)
			}
			if err := s.Check(); err != nil {
				t.Fatalf("Check before breaking: %v", err)
			}
			if err := s.db.Update(tt.break_); err != nil {
				t.Fatal(err)
			}
			err = s.Check()
			var ce *CheckError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInconsistent) {
				t.Fatalf("Check = %v, want *CheckError", err)
			}
			if !containsSub(ce.Problems, tt.want) {
				t.Errorf("problems %q lack %q", ce.Problems, tt.want)
			}
		})
	}
}

func containsSub(list []string, sub string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, sub) })
}

func TestStore_ContextCanceled(t *testing.T) {
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.store.RecordDelivery(ctx, testDelivery(1)); !errors.Is(err, context.Canceled) {
		t.Errorf("RecordDelivery err = %v, want context.Canceled", err)
	}
	if _, err := b.store.StartNext(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("StartNext err = %v, want context.Canceled", err)
	}
}

func TestStore_EventsSince(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	for i := range 5 {
		if _, err := b.store.RecordDelivery(ctx, testDelivery(i)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := b.store.EventsSince(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 {
		t.Fatalf("got %d events, want 5", len(all))
	}
	for i, ev := range all {
		if ev.Seq != uint64(i+1) || ev.Kind != EventDeliveryRecorded || ev.Subject != deliverySubject(uint64(i+1)) {
			t.Errorf("event %d = %+v", i, ev)
		}
	}
	page, err := b.store.EventsSince(ctx, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].Seq != 3 || page[1].Seq != 4 {
		t.Errorf("EventsSince(2, 2) = %+v", page)
	}
	if rest, _ := b.store.EventsSince(ctx, 5, 10); len(rest) != 0 {
		t.Errorf("EventsSince(last) = %+v, want none", rest)
	}
}
