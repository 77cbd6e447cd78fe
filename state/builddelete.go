package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Deleting module builds and build requests (retention, see
// Store.Prune). A build is deleted in one transaction together with every
// index entry that names it; the files it left (the local backend's
// tree) are recorded in the same transaction as owed to the edge that owns
// them, which removes them after the commit and then forgets the entry
// (DeletedTrees, ForgetDeletedTrees), so a crash in between leaves no tree
// behind unnoticed.
var (
	// bucketDeletedTrees: build id BE -> JSON DeletedTree, the trees of
	// deleted builds not yet removed from disk.
	bucketDeletedTrees = []byte("builds_deleted_trees")

	// keyBuildsDeleted counts the module builds ever deleted: the builds
	// bucket's sequence minus it is the number of builds stored.
	keyBuildsDeleted = []byte("count_builds_deleted")
)

// Event kinds written when retention deletes records.
const (
	// EventModuleBuildDeleted: retention deleted a module build's record
	// (data: state, why).
	EventModuleBuildDeleted = "modulebuild.deleted"
	// EventRequestDeleted: retention deleted a finished build request.
	EventRequestDeleted = "request.deleted"
)

// DeletedTree names the tree of a deleted module build that is still to
// be removed from disk (the local backend's
// <name>-<stream>-<version>-<context>-<id> directory).
type DeletedTree struct {
	ID      uint64 `json:"id"`
	Name    string `json:"name"`
	Stream  string `json:"stream"`
	Version uint64 `json:"version"`
	Context string `json:"context"`
}

// buildsStored is the number of module builds in the store, from the
// builds bucket's sequence and the deleted count: no walk.
func buildsStored(tx *bolt.Tx) int {
	n := int64(tx.Bucket(bucketModuleBuilds).Sequence()) - int64(count(tx, keyBuildsDeleted))
	return int(max(n, 0))
}

// deleteBuild removes module build mb (as stored) and every index entry
// naming it, records its tree as owed to the edge and writes an event.
// The caller has checked that nothing still needs it: in particular no
// other build names it (the references index), since their entries are
// not touched here.
func (s *Store) deleteBuild(tx *bolt.Tx, mb *ModuleBuild, why string) error {
	id := mb.ID
	dels := []struct {
		bucket []byte
		key    []byte
	}{
		{bucketModuleBuilds, u64(id)},
		{bucketBuildsByStream, buildsByStreamKey(mb.Name, mb.Stream, id)},
		{bucketBuildsByState, stateIndexKey(mb.State, id)},
		{bucketTreesKept, u64(id)},
	}
	if mb.RequestID != 0 {
		dels = append(dels, struct{ bucket, key []byte }{bucketBuildsByRequest, requestIndexKey(mb.RequestID, id)})
	}
	if mb.Identity != "" {
		dels = append(dels, struct{ bucket, key []byte }{bucketBuildsByIdentity, identityIndexKey(mb.Identity, id)})
	}
	for _, d := range dels {
		if err := tx.Bucket(d.bucket).Delete(d.key); err != nil {
			return err
		}
	}
	if err := setBuildRefs(tx, id, buildRefs(mb), nil); err != nil {
		return err
	}
	// The Koji backend's submission records of the build (keyed by build
	// id, then component).
	if b := tx.Bucket(bucketKojiIntents); b != nil {
		prefix := u64(id)
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
	}
	if mb.TreePrunedAt.IsZero() {
		t := DeletedTree{ID: id, Name: mb.Name, Stream: mb.Stream, Version: mb.Version, Context: mb.Context}
		if err := putJSON(tx.Bucket(bucketDeletedTrees), u64(id), t); err != nil {
			return err
		}
	}
	if err := addCount(tx, keyBuildsDeleted, 1); err != nil {
		return err
	}
	return s.appendEvent(tx, EventModuleBuildDeleted, "modulebuild/"+strconv.FormatUint(id, 10), map[string]any{
		"nsvc": mb.Name + ":" + mb.Stream, "state": mb.State.String(), "why": why,
	})
}

// deleteRequest removes build request r (finished, with no build left)
// with its content index entries and its options.
func (s *Store) deleteRequest(tx *bolt.Tx, r *BuildRequest) error {
	for _, ck := range r.ContentKeys {
		if err := tx.Bucket(bucketRequestsContent).Delete(contentIndexKey(ck, r.ID)); err != nil {
			return err
		}
	}
	if b := tx.Bucket(bucketRequestOpts); b != nil {
		var o RequestOptions
		if _, err := getJSON(b, u64(r.ID), &o); err != nil {
			return err
		}
		// Its uploaded files go with the next retention run.
		if err := setUploads(tx, r.ID, o.SRPMs, nil); err != nil {
			return err
		}
		if err := b.Delete(u64(r.ID)); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketRequests).Delete(u64(r.ID)); err != nil {
		return err
	}
	return s.appendEvent(tx, EventRequestDeleted, requestSubject(r.ID), map[string]any{
		"key": r.Key, "result": r.Result,
	})
}

// DeletedTrees returns up to limit trees of deleted module builds that
// are still to be removed from disk, oldest build first (limit <= 0:
// 1000). The caller removes each, then calls ForgetDeletedTrees.
func (s *Store) DeletedTrees(ctx context.Context, limit int) ([]DeletedTree, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []DeletedTree
	err := s.view(ctx, "DeletedTrees", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeletedTrees)
		c := b.Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			var t DeletedTree
			if _, err := getJSON(b, k, &t); err != nil {
				return err
			}
			t.ID = binary.BigEndian.Uint64(k)
			out = append(out, t)
		}
		return nil
	})
	return out, wrap("DeletedTrees", err)
}

// ForgetDeletedTrees records, in one transaction, that the trees of
// deleted builds ids are gone from disk. Forgetting one that is not listed
// is no error.
func (s *Store) ForgetDeletedTrees(ctx context.Context, ids ...uint64) error {
	return wrap("ForgetDeletedTrees", s.update(ctx, "ForgetDeletedTrees", func(tx *bolt.Tx) error {
		for _, id := range ids {
			if err := tx.Bucket(bucketDeletedTrees).Delete(u64(id)); err != nil {
				return err
			}
		}
		return nil
	}))
}
