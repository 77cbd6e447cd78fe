package state

import (
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestStore_Uploads: a scratch submission's upload directory is owned by
// its request from the transaction that makes it until retention deletes
// the request; Koji upload paths are never taken for rida's directories;
// Check agrees with the index all along (and reports a broken entry).
func TestStore_Uploads(t *testing.T) {
	h := newPruneBundle(t)
	ctx, s := h.ctx, h.s
	owned := func(want map[string]bool) {
		t.Helper()
		dirs := make([]string, 0, len(want))
		for d := range want {
			dirs = append(dirs, d)
		}
		got, err := s.UploadsOwned(ctx, dirs)
		if err != nil {
			t.Fatal(err)
		}
		for d, w := range want {
			if got[d] != w {
				t.Errorf("UploadsOwned(%s) = %v, want %v", d, got[d], w)
			}
		}
	}
	_, builds, err := s.EnqueueWithBuild(ctx, BuildRequest{Module: "a", Stream: "1", Kind: RequestModule, ModuleCommit: "abc"},
		RequestOptions{Scratch: true, Owner: "alice", SRPMs: []SRPM{
			{Package: "pkg", Path: "u1/pkg-1-1.src.rpm"},
			{Package: "other", Path: "cli-build/1700000000.1.abcd/other-1-1.src.rpm"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	owned(map[string]bool{"u1": true, "cli-build": false, "u2": false})
	if err := s.Check(); err != nil {
		t.Fatalf("check: %v", err)
	}

	// The build fails and its request finishes; retention deletes the
	// build after 30 days and the request after 90: the upload is then
	// nobody's.
	r, err := s.StartNext(ctx)
	if err != nil || r == nil {
		t.Fatalf("start: %v %v", r, err)
	}
	mb, err := s.GetModuleBuild(ctx, builds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	mb.State, mb.Context, mb.Version = ModuleStateFailed, "c_1", 1
	if _, err := s.PutModuleBuild(ctx, *mb); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishRequest(ctx, r.Key, ResultFailed, "failed"); err != nil {
		t.Fatal(err)
	}
	ret := Retention{FailedBuilds: 30 * day, Requests: 90 * day}
	h.clock.Advance(31 * day)
	if _, err := s.Prune(ctx, h.clock.Now(), ret); err != nil {
		t.Fatal(err)
	}
	owned(map[string]bool{"u1": true})
	h.clock.Advance(91 * day)
	if p, err := s.Prune(ctx, h.clock.Now(), ret); err != nil || p.Requests != 1 {
		t.Fatalf("prune: %+v %v; want the request deleted", p, err)
	}
	owned(map[string]bool{"u1": false})
	if err := s.Check(); err != nil {
		t.Fatalf("check after retention: %v", err)
	}

	// An entry no request explains is reported.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketUploads).Put([]byte("u9"), u64(42)) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), `upload index: "u9" names request 42`) {
		t.Errorf("check of a stray entry: %v", err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketUploads).Delete([]byte("u9")) }); err != nil {
		t.Fatal(err)
	}
}
