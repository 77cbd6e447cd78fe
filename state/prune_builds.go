package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention of module build records (Retention.SupersededBuilds and
// FailedBuilds) and of finished build requests (Retention.Requests).
//
// Candidates are found in a read transaction through the indexes (the
// state index for failed builds, oldest first, stopping at the first one
// created after the cutoff; the per-stream index's keys for successful
// builds, decoding only the streams with more than SupersededBuilds of
// them) and deleted newest first in write transactions of at most
// Options.PruneBuildsBatch builds, each checked again there with index lookups
// only. A build is never deleted while:
//
//   - it is not in a terminal state, or its request is not finished;
//   - another stored build names it (built against it, or reused a
//     component from it: the references index), so the resolver, which
//     follows the built-against links of the builds it picks, and the
//     links the API and pages show always find it;
//   - a running or pending request names it (reuse_components_from, or
//     the build whose becoming ready queued it);
//   - for a successful build, retention of trees would keep its tree for
//     a build: one of the newest SupersededBuilds of its stream, the
//     newest successful build of its context with components (reuse
//     copies from it), the newest ready build of its context, or the
//     ready build resolution picks for any platform.

// Why a build was deleted (the modulebuild.deleted event's "why").
const (
	whySuperseded = "superseded"
	whyFailed     = "failed"
)

// buildHead is the part of a build record retention decides on.
type buildHead struct {
	ID          uint64            `json:"id"`
	State       ModuleState       `json:"state"`
	RequestID   uint64            `json:"request_id"`
	Transitions []StateTransition `json:"transitions"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

func (h *buildHead) endedAt() time.Time {
	if n := len(h.Transitions); n > 0 {
		return h.Transitions[n-1].Time
	}
	return h.UpdatedAt
}

// streamState is one successful build of a stream that retention keeps,
// with its state when the candidates were chosen.
type streamState struct {
	id    uint64
	state byte
}

// buildCandidates is what one read transaction chose to delete.
type buildCandidates struct {
	// ids are the candidates, newest first.
	ids []uint64
	why map[uint64]string
	// stream names the stream (index prefix) of a superseded candidate;
	// kept lists, per such stream, the successful builds kept and their
	// states: if any of them changed state meanwhile, the stream's
	// candidates are chosen again on the next run.
	stream map[uint64]string
	kept   map[string][]streamState
}

// pruneBuilds deletes the module builds r no longer keeps as of now.
func (s *Store) pruneBuilds(ctx context.Context, now time.Time, r Retention, p *Pruned) error {
	if r.SupersededBuilds <= 0 && r.FailedBuilds <= 0 {
		return nil
	}
	var cands *buildCandidates
	err := s.view(ctx, "Prune", func(tx *bolt.Tx) error {
		var err error
		cands, err = findBuildCandidates(tx, now, r)
		return err
	})
	if err != nil {
		return err
	}
	return s.deleteBuildCandidates(ctx, cands, now, r, p)
}

// deleteBuildCandidates deletes cands in write transactions of at most
// Options.PruneBuildsBatch builds, newest first, checking each again with index
// lookups: what changed since the candidates were chosen (a new build
// naming one, a kept build of its stream changing state, a request naming
// it) keeps it.
func (s *Store) deleteBuildCandidates(ctx context.Context, cands *buildCandidates, now time.Time, r Retention, p *Pruned) error {
	cutoff := now.Add(-r.FailedBuilds)
	for ids := range slices.Chunk(cands.ids, s.opts.PruneBuildsBatch) {
		err := s.update(ctx, "Prune", func(tx *bolt.Tx) error {
			live, err := liveRequestBuilds(tx)
			if err != nil {
				return err
			}
			streamOK := map[string]bool{}
			for _, id := range ids {
				mb, err := getModuleBuild(tx, id)
				if isNotFound(err) {
					continue
				}
				if err != nil {
					return err
				}
				why := cands.why[id]
				switch why {
				case whyFailed:
					if (mb.State != ModuleStateFailed && mb.State != ModuleStateGarbage) || !endedAt(mb).Before(cutoff) {
						continue
					}
				case whySuperseded:
					if mb.State != ModuleStateDone && mb.State != ModuleStateReady {
						continue
					}
					stream := cands.stream[id]
					ok, seen := streamOK[stream]
					if !seen {
						ok = keptUnchanged(tx, stream, cands.kept[stream])
						streamOK[stream] = ok
					}
					if !ok {
						continue
					}
				default:
					continue
				}
				if live[id] || len(referrers(tx, id)) > 0 {
					continue
				}
				if fin, err := requestFinished(tx, mb.RequestID); err != nil || !fin {
					if err != nil {
						return err
					}
					continue
				}
				if err := s.deleteBuild(tx, mb, why); err != nil {
					return err
				}
				if why == whyFailed {
					p.FailedBuilds++
				} else {
					p.SupersededBuilds++
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// findBuildCandidates chooses, in a read transaction, the builds r no
// longer keeps as of now (see the rules above), newest first.
func findBuildCandidates(tx *bolt.Tx, now time.Time, r Retention) (*buildCandidates, error) {
	c := &buildCandidates{why: map[uint64]string{}, stream: map[uint64]string{}, kept: map[string][]streamState{}}
	request := map[uint64]uint64{} // candidate -> its request
	if r.FailedBuilds > 0 {
		cutoff := now.Add(-r.FailedBuilds)
		mbs := tx.Bucket(bucketModuleBuilds)
		for _, st := range []ModuleState{ModuleStateFailed, ModuleStateGarbage} {
			for _, id := range idsWithPrefix(tx.Bucket(bucketBuildsByState), []byte{byte(st)}) {
				var h buildHead
				if ok, err := getJSON(mbs, u64(id), &h); err != nil || !ok {
					if err != nil {
						return nil, err
					}
					continue
				}
				// Ids grow with creation time, and a build ends
				// after it was created: nothing later can qualify.
				if !h.CreatedAt.Before(cutoff) {
					break
				}
				if h.endedAt().Before(cutoff) {
					c.why[id], request[id] = whyFailed, h.RequestID
				}
			}
		}
	}
	if r.SupersededBuilds > 0 {
		byStream := map[string][]streamState{}
		var order []string
		cur := tx.Bucket(bucketBuildsByStream).Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			if len(k) < 9 || len(v) != 1 {
				continue
			}
			if st := ModuleState(v[0]); st != ModuleStateDone && st != ModuleStateReady {
				continue
			}
			stream := string(k[:len(k)-8])
			if _, ok := byStream[stream]; !ok {
				order = append(order, stream)
			}
			byStream[stream] = append(byStream[stream], streamState{binary.BigEndian.Uint64(k[len(k)-8:]), v[0]})
		}
		for _, stream := range order {
			entries := byStream[stream]
			if len(entries) <= r.SupersededBuilds {
				continue
			}
			ids := make([]uint64, len(entries))
			for i, e := range entries {
				ids[i] = e.id
			}
			builds, err := loadBuilds(tx, ids)
			if err != nil {
				return nil, err
			}
			gone := supersededRecords(builds, r.SupersededBuilds)
			for _, mb := range builds {
				if slices.Contains(gone, mb.ID) {
					c.why[mb.ID], c.stream[mb.ID], request[mb.ID] = whySuperseded, stream, mb.RequestID
				}
			}
			for _, e := range entries {
				if !slices.Contains(gone, e.id) {
					c.kept[stream] = append(c.kept[stream], e)
				}
			}
		}
	}
	live, err := liveRequestBuilds(tx)
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, 0, len(c.why))
	for id := range c.why {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	// Newest first: a build names only older builds, so every build
	// naming this one has been decided when it is reached.
	chosen := map[uint64]bool{}
	for _, id := range ids {
		keep := live[id]
		for _, by := range referrers(tx, id) {
			keep = keep || !chosen[by]
		}
		if !keep {
			fin, err := requestFinished(tx, request[id])
			if err != nil {
				return nil, err
			}
			keep = !fin
		}
		if keep {
			delete(c.why, id)
			continue
		}
		chosen[id] = true
		c.ids = append(c.ids, id)
	}
	return c, nil
}

// supersededRecords picks, among builds (the successful builds of one
// stream, oldest first), those whose records retention no longer keeps:
// the ones trees retention would not keep for a build (supersededTrees
// with keep) that are not the newest ready build of their context either.
func supersededRecords(builds []ModuleBuild, keep int) []uint64 {
	out := supersededTrees(builds, keep, nil)
	seen := map[string]bool{}
	for i := len(builds) - 1; i >= 0; i-- {
		mb := &builds[i]
		if mb.State != ModuleStateReady || mb.Scratch || seen[mb.Context] {
			continue
		}
		seen[mb.Context] = true
		out = slices.DeleteFunc(out, func(id uint64) bool { return id == mb.ID })
	}
	return out
}

// keptUnchanged reports whether the kept builds of stream (an index
// prefix) are all still in the stream index in the states recorded.
func keptUnchanged(tx *bolt.Tx, stream string, kept []streamState) bool {
	b := tx.Bucket(bucketBuildsByStream)
	for _, e := range kept {
		v := b.Get(append([]byte(stream), u64(e.id)...))
		if len(v) != 1 || v[0] != e.state {
			return false
		}
	}
	return true
}

// requestFinished reports whether request id is finished or gone (0: no
// request).
func requestFinished(tx *bolt.Tx, id uint64) (bool, error) {
	if id == 0 {
		return true, nil
	}
	r, err := getRequest(tx, id)
	if isNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return r.State == RequestFinished, nil
}

// liveRequestBuilds returns the builds the running and pending requests
// name: the build to reuse components from (reuse_components_from) and
// the build whose becoming ready queued them. It reads the queue's slots,
// one per module stream with work (not the request history), so it runs
// in write transactions too.
func liveRequestBuilds(tx *bolt.Tx) (map[uint64]bool, error) {
	out := map[uint64]bool{}
	opts := tx.Bucket(bucketRequestOpts)
	err := forEachActiveRequest(tx, func(r *BuildRequest) error {
		if r.CascadeFrom != 0 {
			out[r.CascadeFrom] = true
		}
		if opts != nil {
			var o RequestOptions
			if _, err := getJSON(opts, u64(r.ID), &o); err != nil {
				return err
			}
			if o.ReuseFrom != 0 {
				out[o.ReuseFrom] = true
			}
		}
		return nil
	})
	return out, err
}

// pickFinishedRequest takes requests that finished before cutoff; the
// scan stops at the first request created after it (ids grow with
// creation time, and a request finishes after it was created).
func pickFinishedRequest(v []byte, cutoff time.Time) (bool, bool, error) {
	var r struct {
		State      RequestState `json:"state"`
		CreatedAt  time.Time    `json:"created_at"`
		FinishedAt time.Time    `json:"finished_at"`
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return false, false, err
	}
	old := r.CreatedAt.Before(cutoff)
	return old && r.State == RequestFinished && r.FinishedAt.Before(cutoff), !old, nil
}

// requestHasBuilds reports whether request k (an id key) still has
// builds: such a request is kept.
func requestHasBuilds(tx *bolt.Tx, k []byte) bool {
	c := tx.Bucket(bucketBuildsByRequest).Cursor()
	kk, _ := c.Seek(k)
	return kk != nil && bytes.HasPrefix(kk, k)
}

// deleteRequestIf is Prune's apply for requests: it deletes request k
// when pickFinishedRequest still takes it and no build of it is left.
func (s *Store) deleteRequestIf(tx *bolt.Tx, k []byte, cutoff time.Time) (bool, error) {
	v := tx.Bucket(bucketRequests).Get(k)
	if v == nil {
		return false, nil
	}
	if take, _, err := pickFinishedRequest(v, cutoff); err != nil || !take {
		return false, err
	}
	if requestHasBuilds(tx, k) {
		return false, nil
	}
	var r BuildRequest
	if err := json.Unmarshal(v, &r); err != nil {
		return false, err
	}
	return true, s.deleteRequest(tx, &r)
}
