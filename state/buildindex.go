package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Secondary indexes of module builds, kept in the transaction that writes
// the build (putModuleBuild), so lookups by request, state or identity read
// only the builds they return, and no full scan runs on a hot path or in a
// write transaction. A file written before an index existed gets it at Open
// (one scan, once).
var (
	// bucketBuildsByRequest: request id BE | build id BE -> nil.
	bucketBuildsByRequest = []byte("builds_by_request")
	// bucketBuildsByState: state byte | build id BE -> nil.
	bucketBuildsByState = []byte("builds_by_state")
	// bucketBuildsByIdentity: identity \x00 build id BE -> state byte.
	bucketBuildsByIdentity = []byte("builds_by_identity")

	keyBuildIndexesFilled = []byte("build_indexes_filled_2") // _2: with the stream max versions
)

func buildIndexBuckets() [][]byte {
	return [][]byte{bucketBuildsByRequest, bucketBuildsByState, bucketBuildsByIdentity}
}

func requestIndexKey(req, id uint64) []byte { return append(u64(req), u64(id)...) }
func stateIndexKey(st ModuleState, id uint64) []byte {
	return append([]byte{byte(st)}, u64(id)...)
}
func identityIndexKey(identity string, id uint64) []byte {
	return append(append([]byte(identity), 0), u64(id)...)
}

// indexBuild moves build mb's index entries from prev (nil for a new
// build) to mb.
func indexBuild(tx *bolt.Tx, prev, mb *ModuleBuild) error {
	if prev != nil {
		if prev.RequestID != 0 && prev.RequestID != mb.RequestID {
			if err := tx.Bucket(bucketBuildsByRequest).Delete(requestIndexKey(prev.RequestID, prev.ID)); err != nil {
				return err
			}
		}
		if prev.State != mb.State {
			if err := tx.Bucket(bucketBuildsByState).Delete(stateIndexKey(prev.State, prev.ID)); err != nil {
				return err
			}
		}
		if prev.Identity != "" && prev.Identity != mb.Identity {
			if err := tx.Bucket(bucketBuildsByIdentity).Delete(identityIndexKey(prev.Identity, prev.ID)); err != nil {
				return err
			}
		}
	}
	if err := indexBuildRefs(tx, prev, mb); err != nil {
		return err
	}
	return putBuildIndexes(tx, mb)
}

func putBuildIndexes(tx *bolt.Tx, mb *ModuleBuild) error {
	if mb.RequestID != 0 {
		if err := tx.Bucket(bucketBuildsByRequest).Put(requestIndexKey(mb.RequestID, mb.ID), nil); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketBuildsByState).Put(stateIndexKey(mb.State, mb.ID), nil); err != nil {
		return err
	}
	if mb.Identity != "" {
		if err := tx.Bucket(bucketBuildsByIdentity).Put(identityIndexKey(mb.Identity, mb.ID), []byte{byte(mb.State)}); err != nil {
			return err
		}
	}
	if err := indexTree(tx, mb); err != nil {
		return err
	}
	if err := noteVersion(tx, mb); err != nil {
		return err
	}
	return tx.Bucket(bucketBuildsByStream).Put(buildsByStreamKey(mb.Name, mb.Stream, mb.ID), []byte{byte(mb.State)})
}

// fillBuildIndexes builds every build index once for a file written before
// they existed.
func fillBuildIndexes(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyBuildIndexesFilled) != nil {
		return nil
	}
	err := tx.Bucket(bucketModuleBuilds).ForEach(func(k, v []byte) error {
		var mb ModuleBuild
		if err := json.Unmarshal(v, &mb); err != nil {
			return fmt.Errorf("decode module build %x: %w", k, err)
		}
		return putBuildIndexes(tx, &mb)
	})
	if err != nil {
		return err
	}
	return meta.Put(keyBuildIndexesFilled, []byte{1})
}

// idsWithPrefix lists the build ids that end the keys of b starting with
// prefix, in key order.
func idsWithPrefix(b *bolt.Bucket, prefix []byte) []uint64 {
	var ids []uint64
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) == len(prefix)+8 {
			ids = append(ids, binary.BigEndian.Uint64(k[len(prefix):]))
		}
	}
	return ids
}

func loadBuilds(tx *bolt.Tx, ids []uint64) ([]ModuleBuild, error) {
	out := make([]ModuleBuild, 0, len(ids))
	for _, id := range ids {
		mb, err := getModuleBuild(tx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *mb)
	}
	return out, nil
}

// RequestModuleBuilds returns the module builds of build request id, oldest
// first.
func (s *Store) RequestModuleBuilds(ctx context.Context, id uint64) ([]ModuleBuild, error) {
	var out []ModuleBuild
	err := s.view(ctx, "RequestModuleBuilds", func(tx *bolt.Tx) error {
		var err error
		out, err = loadBuilds(tx, idsWithPrefix(tx.Bucket(bucketBuildsByRequest), u64(id)))
		return err
	})
	return out, wrap("RequestModuleBuilds", err)
}

// BuildsInState returns the module builds in any of states, newest first.
func (s *Store) BuildsInState(ctx context.Context, states ...ModuleState) ([]ModuleBuild, error) {
	var out []ModuleBuild
	err := s.view(ctx, "BuildsInState", func(tx *bolt.Tx) error {
		var ids []uint64
		for _, st := range states {
			ids = append(ids, idsWithPrefix(tx.Bucket(bucketBuildsByState), []byte{byte(st)})...)
		}
		slices.Sort(ids)
		slices.Reverse(ids)
		var err error
		out, err = loadBuilds(tx, slices.Compact(ids))
		return err
	})
	return out, wrap("BuildsInState", err)
}

// BuildsWithIdentity returns the module builds whose content identity is
// identity and whose state is one of states (any when none), newest first.
func (s *Store) BuildsWithIdentity(ctx context.Context, identity string, states ...ModuleState) ([]ModuleBuild, error) {
	var out []ModuleBuild
	err := s.view(ctx, "BuildsWithIdentity", func(tx *bolt.Tx) error {
		prefix := append([]byte(identity), 0)
		var ids []uint64
		c := tx.Bucket(bucketBuildsByIdentity).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != len(prefix)+8 || len(v) != 1 {
				continue
			}
			if len(states) == 0 || slices.Contains(states, ModuleState(v[0])) {
				ids = append(ids, binary.BigEndian.Uint64(k[len(prefix):]))
			}
		}
		slices.Reverse(ids)
		var err error
		out, err = loadBuilds(tx, ids)
		return err
	})
	return out, wrap("BuildsWithIdentity", err)
}
