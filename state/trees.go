package state

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rida-build/rida/modgraph"
)

// Build trees retention. The store does not touch files: TreeCandidates
// says which builds' trees retention no longer keeps, the edge that owns
// the trees (the local backend's directory) removes them, then
// MarkTreePruned records it on the build.
var (
	// bucketTreesKept: build id BE -> state byte | module \x00 stream, for
	// every build in a terminal state whose tree was not pruned: the only
	// builds TreeCandidates looks at.
	bucketTreesKept = []byte("builds_tree_kept")

	keyTreesKeptFilled = []byte("trees_kept_filled")
)

// EventModuleBuildTreePruned: retention removed a build's tree.
const EventModuleBuildTreePruned = "modulebuild.tree_pruned"

// indexTree keeps mb's entry in the trees-kept index in step with its state.
func indexTree(tx *bolt.Tx, mb *ModuleBuild) error {
	b := tx.Bucket(bucketTreesKept)
	if !mb.State.Terminal() || !mb.TreePrunedAt.IsZero() {
		return b.Delete(u64(mb.ID))
	}
	return b.Put(u64(mb.ID), append([]byte{byte(mb.State)}, mb.Name+"\x00"+mb.Stream...))
}

// fillTreesKept builds the trees-kept index once for a file written before
// it existed.
func fillTreesKept(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyTreesKeptFilled) != nil {
		return nil
	}
	err := tx.Bucket(bucketModuleBuilds).ForEach(func(k, v []byte) error {
		var mb ModuleBuild
		if err := json.Unmarshal(v, &mb); err != nil {
			return fmt.Errorf("decode module build %x: %w", k, err)
		}
		return indexTree(tx, &mb)
	})
	if err != nil {
		return err
	}
	return meta.Put(keyTreesKeptFilled, []byte{1})
}

// maxTreeCandidates bounds what one TreeCandidates returns.
const maxTreeCandidates = 1000

// TreeCandidates returns the builds whose trees retention r no longer
// keeps as of now, oldest first (at most 1000 a call):
//
//   - failed and garbage builds that ended before now - r.FailedTrees;
//   - successful (done, ready) builds of a stream beyond the newest
//     r.KeepTrees with a tree, except those a build may still need: the
//     newest successful build of each context of the stream (reuse copies
//     from it), the ready build resolution picks for each platform (a
//     dependent's buildroot is made from it), and every build an
//     unfinished build was built against or reuses from.
//
// A zero r.FailedTrees or r.KeepTrees leaves that kind alone. It reads the
// trees-kept index (terminal builds whose tree was not pruned) and decodes
// only the builds of streams with more than r.KeepTrees of them.
func (s *Store) TreeCandidates(ctx context.Context, now time.Time, r Retention) ([]ModuleBuild, error) {
	var out []ModuleBuild
	err := s.view(ctx, "TreeCandidates", func(tx *bolt.Tx) error {
		var failed []uint64
		byStream := map[string][]uint64{}
		c := tx.Bucket(bucketTreesKept).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 || len(v) < 1 {
				continue
			}
			id := binary.BigEndian.Uint64(k)
			switch ModuleState(v[0]) {
			case ModuleStateFailed, ModuleStateGarbage:
				failed = append(failed, id)
			case ModuleStateDone, ModuleStateReady:
				byStream[string(v[1:])] = append(byStream[string(v[1:])], id)
			}
		}
		var ids []uint64
		if r.FailedTrees > 0 {
			cutoff := now.Add(-r.FailedTrees)
			for _, id := range failed {
				mb, err := getModuleBuild(tx, id)
				if err != nil {
					return err
				}
				if endedAt(mb).Before(cutoff) {
					ids = append(ids, id)
				}
			}
		}
		if r.KeepTrees > 0 {
			var protected map[uint64]bool
			for _, sids := range byStream {
				if len(sids) <= r.KeepTrees {
					continue
				}
				if protected == nil {
					var err error
					if protected, err = neededByUnfinished(tx); err != nil {
						return err
					}
				}
				builds, err := loadBuilds(tx, sids)
				if err != nil {
					return err
				}
				ids = append(ids, supersededTrees(builds, r.KeepTrees, protected)...)
			}
		}
		slices.Sort(ids)
		ids = ids[:min(len(ids), maxTreeCandidates)]
		var err error
		out, err = loadBuilds(tx, ids)
		return err
	})
	return out, wrap("TreeCandidates", err)
}

// endedAt is when mb reached its current state.
func endedAt(mb *ModuleBuild) time.Time {
	if n := len(mb.Transitions); n > 0 {
		return mb.Transitions[n-1].Time
	}
	return mb.UpdatedAt
}

// neededByUnfinished returns the builds unfinished builds were built
// against or reuse components from.
func neededByUnfinished(tx *bolt.Tx) (map[uint64]bool, error) {
	need := map[uint64]bool{}
	for _, st := range []ModuleState{ModuleStateInit, ModuleStateWait, ModuleStateBuild} {
		builds, err := loadBuilds(tx, idsWithPrefix(tx.Bucket(bucketBuildsByState), []byte{byte(st)}))
		if err != nil {
			return nil, err
		}
		for _, mb := range builds {
			for _, br := range mb.BuildRequires {
				need[br.BuildID] = true
			}
			for _, c := range mb.Components {
				if c.ReusedFrom != 0 {
					need[c.ReusedFrom] = true
				}
			}
		}
	}
	return need, nil
}

// supersededTrees picks, among builds (the successful builds of one stream
// that still have their trees, oldest first), those beyond the newest keep
// that no build needs.
func supersededTrees(builds []ModuleBuild, keep int, protected map[uint64]bool) []uint64 {
	need := map[uint64]bool{}
	for i := len(builds) - 1; i >= 0 && len(builds)-i <= keep; i-- {
		need[builds[i].ID] = true
	}
	// Reuse: the newest successful, non-scratch build of each context
	// with components (runner's lastGood).
	newest := map[string]bool{}
	for i := len(builds) - 1; i >= 0; i-- {
		mb := &builds[i]
		if mb.Scratch || len(mb.Components) == 0 || newest[mb.Context] {
			continue
		}
		newest[mb.Context], need[mb.ID] = true, true
	}
	// Resolution: the ready build modgraph.Choose picks for any platform a
	// dependent may ask for (every one named, none, and one named by no
	// build).
	var cands []modgraph.Candidate
	platforms := []string{"", "\x00other"}
	for _, mb := range builds {
		if mb.State == ModuleStateReady && !mb.Scratch {
			cands = append(cands, modgraph.Candidate{ID: mb.ID, Name: mb.Name, Stream: mb.Stream, Version: mb.Version, Context: mb.Context, Platform: mb.Platform})
			if !slices.Contains(platforms, mb.Platform) {
				platforms = append(platforms, mb.Platform)
			}
		}
	}
	for _, p := range platforms {
		if c, ok := modgraph.Choose(cands, p); ok {
			need[c.ID] = true
		}
	}
	var out []uint64
	for _, mb := range builds {
		if !need[mb.ID] && !protected[mb.ID] {
			out = append(out, mb.ID)
		}
	}
	return out
}

// MarkTreePruned records that module build id's tree was removed (once:
// a second call changes nothing) and takes it out of the trees-kept index.
// *NotFoundError if the build does not exist.
func (s *Store) MarkTreePruned(ctx context.Context, id uint64) error {
	return wrap("MarkTreePruned", s.update(ctx, "MarkTreePruned", func(tx *bolt.Tx) error {
		mb, err := getModuleBuild(tx, id)
		if err != nil {
			return err
		}
		if !mb.TreePrunedAt.IsZero() {
			return nil
		}
		mb.TreePrunedAt = s.now().UTC()
		if err := s.appendEvent(tx, EventModuleBuildTreePruned, "modulebuild/"+strconv.FormatUint(id, 10), nil); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketModuleBuilds), u64(id), mb); err != nil {
			return err
		}
		return indexTree(tx, mb)
	}))
}
