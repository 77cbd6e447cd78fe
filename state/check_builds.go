package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// checkBuildIndexes verifies the module build indexes against the
// records, both ways (an index entry with no record, a record missing
// from an index, an entry with the wrong value): by stream, by state, by
// request, by identity, the trees-kept index, the references index, the
// streams' highest versions, the stored build count, and that a deleted
// build's tree still owed names no stored build.
func checkBuildIndexes(tx *bolt.Tx, add addFunc) {
	want := map[string]map[string]string{} // bucket -> key -> value
	put := func(bucket []byte, k, v []byte) {
		m := want[string(bucket)]
		if m == nil {
			m = map[string]string{}
			want[string(bucket)] = m
		}
		m[string(k)] = string(v)
	}
	maxVersion := map[string]uint64{}
	builds := 0
	_ = tx.Bucket(bucketModuleBuilds).ForEach(func(k, v []byte) error {
		var mb ModuleBuild
		if err := json.Unmarshal(v, &mb); err != nil || len(k) != 8 {
			return nil // reported by checkEventsAndBuilds
		}
		builds++
		id := binary.BigEndian.Uint64(k)
		st := []byte{byte(mb.State)}
		put(bucketBuildsByStream, buildsByStreamKey(mb.Name, mb.Stream, id), st)
		put(bucketBuildsByState, stateIndexKey(mb.State, id), nil)
		if mb.RequestID != 0 {
			put(bucketBuildsByRequest, requestIndexKey(mb.RequestID, id), nil)
			if tx.Bucket(bucketRequests).Get(u64(mb.RequestID)) == nil {
				add("module build %d: request %d missing", id, mb.RequestID)
			}
		}
		if mb.Identity != "" {
			put(bucketBuildsByIdentity, identityIndexKey(mb.Identity, id), st)
		}
		if mb.State.Terminal() && mb.TreePrunedAt.IsZero() {
			put(bucketTreesKept, u64(id), append(st, mb.Name+"\x00"+mb.Stream...))
		}
		for named, bits := range buildRefs(&mb) {
			put(bucketBuildRefs, buildRefKey(named, id), []byte{bits})
		}
		if mb.Version != 0 {
			mk := string(maxVersionKey(mb.Name, mb.Stream, mb.Context))
			maxVersion[mk] = max(maxVersion[mk], mb.Version)
		}
		if tx.Bucket(bucketDeletedTrees).Get(k) != nil {
			add("module build %d is stored but its tree is listed as a deleted build's", id)
		}
		return nil
	})
	for _, ix := range []struct {
		bucket []byte
		name   string
		// value says whether the entry's value is checked.
		value bool
	}{
		{bucketBuildsByStream, "stream index", true},
		{bucketBuildsByState, "state index", false},
		{bucketBuildsByRequest, "request index", false},
		{bucketBuildsByIdentity, "identity index", true},
		{bucketTreesKept, "trees-kept index", true},
		{bucketBuildRefs, "references index", true},
	} {
		m := want[string(ix.bucket)]
		_ = tx.Bucket(ix.bucket).ForEach(func(k, v []byte) error {
			w, ok := m[string(k)]
			switch {
			case !ok:
				add("%s entry %s names no module build record", ix.name, describeIndexKey(ix.bucket, k))
			case ix.value && !bytes.Equal([]byte(w), v):
				add("%s entry %s is %x, the record says %x", ix.name, describeIndexKey(ix.bucket, k), v, w)
			}
			delete(m, string(k))
			return nil
		})
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			add("module build record missing from the %s: %s", ix.name, describeIndexKey(ix.bucket, []byte(k)))
		}
	}
	mv := tx.Bucket(bucketStreamMaxVersion)
	for k, v := range maxVersion {
		raw := mv.Get([]byte(k))
		if len(raw) != 8 || binary.BigEndian.Uint64(raw) < v {
			add("stream highest version %q below its build's version %d", k, v)
		}
	}
	if n := buildsStored(tx); n != builds {
		add("build count %d (sequence %d less %d deleted), the bucket holds %d",
			n, tx.Bucket(bucketModuleBuilds).Sequence(), count(tx, keyBuildsDeleted), builds)
	}
}

// describeIndexKey renders a build index key for a Check problem: the
// build id it names and, for the stream and identity indexes, what comes
// before it.
func describeIndexKey(bucket, k []byte) string {
	switch {
	case bytes.Equal(bucket, bucketBuildRefs):
		if named, by, ok := refKeyIDs(k); ok {
			return fmt.Sprintf("(build %d named by build %d)", named, by)
		}
	case bytes.Equal(bucket, bucketTreesKept) && len(k) == 8:
		return fmt.Sprintf("(build %d)", binary.BigEndian.Uint64(k))
	case bytes.Equal(bucket, bucketBuildsByState) && len(k) == 9:
		return fmt.Sprintf("(state %s, build %d)", ModuleState(k[0]), binary.BigEndian.Uint64(k[1:]))
	case bytes.Equal(bucket, bucketBuildsByRequest) && len(k) == 16:
		return fmt.Sprintf("(request %d, build %d)", binary.BigEndian.Uint64(k[:8]), binary.BigEndian.Uint64(k[8:]))
	case len(k) > 8:
		return fmt.Sprintf("(%q, build %d)", bytes.ReplaceAll(k[:len(k)-8], []byte{0}, []byte{'/'}), binary.BigEndian.Uint64(k[len(k)-8:]))
	}
	return fmt.Sprintf("%x", k)
}
