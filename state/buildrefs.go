package state

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The build references index: which builds name another build, as built
// against (BuildRequires[].BuildID) or as the build a reused component
// came from (Components[].ReusedFrom). Retention reads it so that a build
// another stored build names is never deleted: the resolver follows
// built-against links of the builds it picks, and the API and pages link
// both. It is kept in the transactions that write a build's record
// (putModuleBuild, UpdateComponentBuild) and that delete one.
var (
	// bucketBuildRefs: named build id BE | naming build id BE -> one
	// byte, the refBuiltAgainst and refReusedFrom bits.
	bucketBuildRefs = []byte("builds_refs")

	keyBuildRefsFilled = []byte("build_refs_filled")
)

// Bits of a build references index value.
const (
	refBuiltAgainst byte = 1 << iota
	refReusedFrom
)

func buildRefKey(named, by uint64) []byte { return append(u64(named), u64(by)...) }

// buildRefs returns the builds mb names, with how.
func buildRefs(mb *ModuleBuild) map[uint64]byte {
	if mb == nil {
		return nil
	}
	var out map[uint64]byte
	add := func(id uint64, bit byte) {
		if id == 0 || id == mb.ID {
			return
		}
		if out == nil {
			out = map[uint64]byte{}
		}
		out[id] |= bit
	}
	for _, ba := range mb.BuildRequires {
		add(ba.BuildID, refBuiltAgainst)
	}
	for _, c := range mb.Components {
		add(c.ReusedFrom, refReusedFrom)
	}
	return out
}

// setBuildRefs moves build id's entries in the references index from old
// to refs, writing only what changed.
func setBuildRefs(tx *bolt.Tx, id uint64, old, refs map[uint64]byte) error {
	b := tx.Bucket(bucketBuildRefs)
	for named := range old {
		if _, ok := refs[named]; !ok {
			if err := b.Delete(buildRefKey(named, id)); err != nil {
				return err
			}
		}
	}
	for named, bits := range refs {
		if o, ok := old[named]; ok && o == bits {
			continue
		}
		if err := b.Put(buildRefKey(named, id), []byte{bits}); err != nil {
			return err
		}
	}
	return nil
}

// indexBuildRefs keeps the references index in step when build mb replaces
// prev (nil for a new build).
func indexBuildRefs(tx *bolt.Tx, prev, mb *ModuleBuild) error {
	return setBuildRefs(tx, mb.ID, buildRefs(prev), buildRefs(mb))
}

// referrers returns the builds that name build id, in id order.
func referrers(tx *bolt.Tx, id uint64) []uint64 {
	return idsWithPrefix(tx.Bucket(bucketBuildRefs), u64(id))
}

// fillBuildRefs builds the references index once for a file written
// before it existed (one scan at Open).
func fillBuildRefs(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyBuildRefsFilled) != nil {
		return nil
	}
	err := tx.Bucket(bucketModuleBuilds).ForEach(func(k, v []byte) error {
		var mb ModuleBuild
		if err := json.Unmarshal(v, &mb); err != nil {
			return fmt.Errorf("decode module build %x: %w", k, err)
		}
		return setBuildRefs(tx, mb.ID, nil, buildRefs(&mb))
	})
	if err != nil {
		return err
	}
	return meta.Put(keyBuildRefsFilled, []byte{1})
}

// BuildReferrers returns the ids of the stored builds that name build id,
// as built against or as the source of a reused component, oldest first:
// retention keeps a build while this is not empty. It reads the
// references index only.
func (s *Store) BuildReferrers(ctx context.Context, id uint64) ([]uint64, error) {
	var out []uint64
	err := s.view(ctx, "BuildReferrers", func(tx *bolt.Tx) error {
		out = referrers(tx, id)
		return nil
	})
	return out, wrap("BuildReferrers", err)
}

// refKeyIDs splits a references index key.
func refKeyIDs(k []byte) (named, by uint64, ok bool) {
	if len(k) != 16 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(k[:8]), binary.BigEndian.Uint64(k[8:]), true
}
