package state

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ReReport posts again, on the commit of delivery deliveryID, the final
// statuses of the module builds of requests (a redelivered push whose builds
// all ended: the operator's way to repair a forge's view). The statuses are
// the ones the StatusesFor hook gives for each build's final state, and they
// are posted even when the forge was already sent the same content. It
// returns a description per build ("build 4 ready"), in request order. One
// transaction; builds are found through the per-request index.
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
	return loadBuilds(tx, idsWithPrefix(tx.Bucket(bucketBuildsByRequest), u64(r.ID)))
}
