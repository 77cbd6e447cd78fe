package state

import (
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestStore_Check_BuildIndexes: Check reports an index entry with no
// record, a record missing from an index and an entry with the wrong
// value, for every module build index and counter.
func TestStore_Check_BuildIndexes(t *testing.T) {
	// The store: request 1's build 1 (lib, ready), build 2 (app, ready,
	// built against 1, reusing from 1).
	var lib, app uint64
	tests := []struct {
		name   string
		break_ func(tx *bolt.Tx) error
		want   string
	}{
		{"StreamIndexMissing", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBuildsByStream).Delete(buildsByStreamKey("lib", "1", lib))
		}, `module build record missing from the stream index: ("lib/1/", build 1)`},
		{"StreamIndexStray", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBuildsByStream).Put(buildsByStreamKey("lib", "1", 77), []byte{byte(ModuleStateReady)})
		}, `stream index entry ("lib/1/", build 77) names no module build record`},
		{"StreamIndexWrongState", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBuildsByStream).Put(buildsByStreamKey("lib", "1", lib), []byte{byte(ModuleStateFailed)})
		}, `stream index entry ("lib/1/", build 1) is 04, the record says 05`},
		{"StateIndexMissing", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBuildsByState).Delete(stateIndexKey(ModuleStateReady, app))
		}, "module build record missing from the state index: (state ready, build 2)"},
		{"StateIndexStray", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBuildsByState).Put(stateIndexKey(ModuleStateFailed, app), nil)
		}, "state index entry (state failed, build 2) names no module build record"},
		{"RequestIndexMissing", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBuildsByRequest).Delete(requestIndexKey(1, lib))
		}, "module build record missing from the request index: (request 1, build 1)"},
		{"RequestIndexStray", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBuildsByRequest).Put(requestIndexKey(1, 9), nil)
		}, "request index entry (request 1, build 9) names no module build record"},
		{"IdentityIndexMissing", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBuildsByIdentity).Delete(identityIndexKey("id-1", lib))
		}, "missing from the identity index"},
		{"IdentityIndexWrongState", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBuildsByIdentity).Put(identityIndexKey("id-1", lib), []byte{byte(ModuleStateInit)})
		}, "identity index entry"},
		{"TreesKeptMissing", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketTreesKept).Delete(u64(app))
		}, "module build record missing from the trees-kept index: (build 2)"},
		{"ReferenceMissing", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBuildRefs).Delete(buildRefKey(lib, app))
		}, "module build record missing from the references index: (build 1 named by build 2)"},
		{"ReferenceStray", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBuildRefs).Put(buildRefKey(app, lib), []byte{refReusedFrom})
		}, "references index entry (build 2 named by build 1) names no module build record"},
		{"ReferenceWrongKind", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBuildRefs).Put(buildRefKey(lib, app), []byte{refBuiltAgainst})
		}, "references index entry (build 1 named by build 2) is 01, the record says 03"},
		{"BuildRecordDeletedAlone", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketModuleBuilds).Delete(u64(app))
		}, "build count 2 (sequence 2 less 0 deleted), the bucket holds 1"},
		{"BuildCountWrong", func(tx *bolt.Tx) error {
			return addCount(tx, keyBuildsDeleted, 1)
		}, "build count 1 (sequence 2 less 1 deleted), the bucket holds 2"},
		{"RequestOfABuildMissing", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRequests).Delete(u64(1))
		}, "module build 1: request 1 missing"},
		{"HighestVersionBelowABuilds", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketStreamMaxVersion).Put(maxVersionKey("lib", "1", "c"), u64(1))
		}, "stream highest version \"lib\\x001\\x00c\" below its build's version 5"},
		{"StoredBuildsTreeListedAsDeleted", func(tx *bolt.Tx) error {
			return putJSON(tx.Bucket(bucketDeletedTrees), u64(lib), DeletedTree{ID: lib, Name: "lib"})
		}, "module build 1 is stored but its tree is listed as a deleted build's"},
		{"DependentsIndexStray", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketIndexDependents).Put([]byte("lib\x00other\x001"), []byte("[]"))
		}, "has no module record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newPruneBundle(t)
			_, lib = h.request("lib", "ck", ModuleStateReady, true, func(mb *ModuleBuild) { mb.Version, mb.Identity = 5, "id-1" })
			app = h.put("app", ModuleStateReady, reusedFrom(lib), func(mb *ModuleBuild) {
				mb.BuildRequires = []BuiltAgainst{{Name: "lib", Stream: "1", BuildID: lib}}
			})
			if lib != 1 || app != 2 {
				t.Fatalf("builds %d %d, want 1 and 2", lib, app)
			}
			if err := h.s.Check(); err != nil {
				t.Fatalf("Check before breaking: %v", err)
			}
			if err := h.s.db.Update(tt.break_); err != nil {
				t.Fatal(err)
			}
			err := h.s.Check()
			var ce *CheckError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInconsistent) {
				t.Fatalf("Check = %v, want *CheckError", err)
			}
			if !containsSub(ce.Problems, tt.want) {
				t.Errorf("problems %q lack %q", ce.Problems, tt.want)
			}
			// Closed here, the broken file is not checked again on
			// cleanup.
			if err := h.s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
