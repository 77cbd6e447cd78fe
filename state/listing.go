package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// BuildQuery selects module builds for ListModuleBuilds. Empty fields do not
// filter.
type BuildQuery struct {
	Name   string
	Stream string // only with Name
	States []ModuleState
	// Offset and Limit page the result, newest first. Limit <= 0 means 10.
	Offset, Limit int
}

// ListModuleBuilds returns one page of the module builds q selects, newest
// first, and how many it selects in all. It walks the narrowest index (by
// name and stream, else by state, else the builds themselves) reading keys
// only, and decodes just the builds on the page: a list call costs the
// same whatever the store holds.
func (s *Store) ListModuleBuilds(ctx context.Context, q BuildQuery) ([]ModuleBuild, int, error) {
	if q.Limit <= 0 {
		q.Limit = 10
	}
	var (
		out   []ModuleBuild
		total int
	)
	err := s.view(ctx, "ListModuleBuilds", func(tx *bolt.Tx) error {
		var ids []uint64
		switch {
		case q.Name != "":
			prefix := []byte(q.Name + "\x00")
			if q.Stream != "" {
				prefix = streamPrefix(q.Name, q.Stream)
			}
			c := tx.Bucket(bucketBuildsByStream).Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				if len(v) != 1 || len(k) < len(prefix)+8 {
					continue
				}
				if len(q.States) == 0 || slices.Contains(q.States, ModuleState(v[0])) {
					ids = append(ids, binary.BigEndian.Uint64(k[len(k)-8:]))
				}
			}
			slices.Sort(ids)
		case len(q.States) > 0:
			for _, st := range q.States {
				ids = append(ids, idsWithPrefix(tx.Bucket(bucketBuildsByState), []byte{byte(st)})...)
			}
			slices.Sort(ids)
			ids = slices.Compact(ids)
		default:
			// The count is the bucket's sequence less the builds
			// retention deleted (a stored counter), and a page is a
			// cursor walk from the end.
			b := tx.Bucket(bucketModuleBuilds)
			total = buildsStored(tx)
			c := b.Cursor()
			i := 0
			for k, _ := c.Last(); k != nil && len(out) < q.Limit; k, _ = c.Prev() {
				if i++; i <= q.Offset {
					continue
				}
				var mb ModuleBuild
				if _, err := getJSON(b, k, &mb); err != nil {
					return err
				}
				out = append(out, mb)
			}
			return nil
		}
		total = len(ids)
		slices.Reverse(ids)
		if q.Offset >= len(ids) {
			return nil
		}
		ids = ids[q.Offset:min(len(ids), q.Offset+q.Limit)]
		var err error
		out, err = loadBuilds(tx, ids)
		return err
	})
	return out, total, wrap("ListModuleBuilds", err)
}

// BuildCountsByState counts the module builds in each state from the state
// index's keys, decoding no build.
func (s *Store) BuildCountsByState(ctx context.Context) (map[ModuleState]int, error) {
	out := map[ModuleState]int{}
	err := s.view(ctx, "BuildCountsByState", func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketBuildsByState).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			out[ModuleState(k[0])]++
		}
		return nil
	})
	return out, wrap("BuildCountsByState", err)
}

// ActiveRequests returns the build requests that are running or pending,
// oldest first. It reads the queue's entries, of which there is one per
// module stream with work (not every request ever made).
func (s *Store) ActiveRequests(ctx context.Context) ([]BuildRequest, error) {
	var out []BuildRequest
	err := s.view(ctx, "ActiveRequests", func(tx *bolt.Tx) error {
		return forEachActiveRequest(tx, func(r *BuildRequest) error {
			out = append(out, *r)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b BuildRequest) int { return int(a.ID) - int(b.ID) })
	return out, wrap("ActiveRequests", err)
}

// forEachActiveRequest calls fn with each running and pending request. It
// walks the queue's slots, one per module stream with work (not the
// request history), so it may run in write transactions too.
func forEachActiveRequest(tx *bolt.Tx, fn func(*BuildRequest) error) error {
	return tx.Bucket(bucketQueue).ForEach(func(k, _ []byte) error {
		e, err := getQueueEntry(tx, string(k))
		if err != nil {
			return err
		}
		for _, id := range []uint64{e.Running, e.Pending} {
			if id == 0 {
				continue
			}
			r, err := getRequest(tx, id)
			if err != nil {
				return err
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
}
