package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// ReReport posts again, on the commit of delivery deliveryID, the final
// statuses of the module builds of requests (a redelivered push whose builds
// all ended: the operator's way to repair a forge's view). The statuses are
// the ones the StatusesFor hook gives for each build's final state, and they
// are posted even when the forge was already sent the same content. It
// returns a description per build ("build 4 ready"), in request order. One
// transaction; builds are found through the per-stream index, newest first,
// stopping at builds older than their request.
func (s *Store) ReReport(ctx context.Context, deliveryID uint64, requests []uint64) ([]string, error) {
	var out []string
	err := s.update(ctx, "ReReport", func(tx *bolt.Tx) error {
		d, err := getDelivery(tx, deliveryID)
		if err != nil {
			return err
		}
		queued := false
		for _, id := range requests {
			r, err := getRequest(tx, id)
			if err != nil {
				return err
			}
			builds, err := requestBuilds(tx, r)
			if err != nil {
				return err
			}
			for i := range builds {
				mb := &builds[i]
				if !mb.State.Terminal() {
					continue
				}
				out = append(out, fmt.Sprintf("build %d %s", mb.ID, mb.State))
				if s.opts.StatusesFor == nil {
					continue
				}
				ev := StatusEvent{Kind: StatusEventBuildState, Request: r, After: mb, Deliveries: []Delivery{*d}}
				for j := range builds {
					if j != i {
						ev.Siblings = append(ev.Siblings, builds[j])
					}
				}
				for _, u := range s.opts.StatusesFor(ev) {
					if err := validateStatusUpdate("ReReport", &u); err != nil {
						continue
					}
					_, due, err := s.upsertStatusForce(tx, u, true)
					if err != nil {
						return err
					}
					queued = queued || due
				}
			}
		}
		if queued && s.opts.OnStatusQueued != nil {
			tx.OnCommit(s.opts.OnStatusQueued)
		}
		return nil
	})
	return out, wrap("ReReport", err)
}

// requestBuilds returns the module builds of request r, oldest first.
func requestBuilds(tx *bolt.Tx, r *BuildRequest) ([]ModuleBuild, error) {
	prefix := streamPrefix(r.Module, r.Stream)
	c := tx.Bucket(bucketBuildsByStream).Cursor()
	// Seek past the stream's last key, then walk back.
	k, _ := c.Seek(append(bytes.Clone(prefix), 0xff))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	var out []ModuleBuild
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
		if len(k) != len(prefix)+8 {
			continue
		}
		mb, err := getModuleBuild(tx, binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil {
			return nil, err
		}
		if mb.CreatedAt.Before(r.CreatedAt) {
			break
		}
		if mb.RequestID == r.ID {
			out = append(out, *mb)
		}
	}
	slices.Reverse(out)
	return out, nil
}
