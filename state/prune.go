package state

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention says how long the store keeps what only history needs. A zero
// duration keeps that kind forever.
type Retention struct {
	// Events: the event log (/api/v1/events).
	Events time.Duration
	// Deliveries: planned deliveries (a delivery still waiting to be
	// planned is never removed).
	Deliveries time.Duration
	// DeliveryCommits: the commit list of a planned delivery (the delivery
	// itself stays until Deliveries).
	DeliveryCommits time.Duration
	// PostedStatuses: status outbox entries the forge has (posted, or
	// refused for good) and that did not change since.
	PostedStatuses time.Duration
	// FailedTrees: the build trees of failed (and garbage) builds, from
	// when the build ended. Prune leaves trees alone: see TreeCandidates.
	FailedTrees time.Duration
	// KeepTrees: how many successful builds per stream keep their trees
	// at least (more when a build still needs them); 0 keeps them all.
	KeepTrees int
	// SupersededBuilds: how many successful (done, ready) module builds
	// per stream keep their records at least; an older one is deleted
	// unless something still needs it (see prune_builds.go). 0 keeps
	// them all.
	SupersededBuilds int
	// FailedBuilds: the records of failed (cancelled among them) and
	// garbage module builds, from when the build ended, unless something
	// still needs them.
	FailedBuilds time.Duration
	// Requests: finished build requests none of whose builds is left,
	// from when the request finished.
	Requests time.Duration
}

// DefaultRetention is the retention of the built-in configuration.
var DefaultRetention = Retention{
	Events: 90 * 24 * time.Hour, Deliveries: 90 * 24 * time.Hour,
	DeliveryCommits: 7 * 24 * time.Hour, PostedStatuses: 7 * 24 * time.Hour,
	FailedTrees: 14 * 24 * time.Hour, KeepTrees: 3,
	SupersededBuilds: 10, FailedBuilds: 30 * 24 * time.Hour, Requests: 90 * 24 * time.Hour,
}

// Pruned counts what one Prune removed.
type Pruned struct {
	Events, Deliveries, DeliveryCommits, Statuses int
	// SupersededBuilds and FailedBuilds count the module build records
	// deleted under Retention.SupersededBuilds and FailedBuilds; Requests
	// the build requests.
	SupersededBuilds, FailedBuilds, Requests int
}

// pruneBatch bounds the records one prune transaction touches, so a first
// prune of a large store does not hold the write lock for long.
const pruneBatch = 5000

// Prune removes what the retention r no longer keeps, as of now: first
// module build records (SupersededBuilds, FailedBuilds; see
// prune_builds.go for what is never removed), then, oldest first, events,
// deliveries, delivery commit lists, posted statuses and finished requests
// with no build left. Candidates are found in read transactions (which do
// not block writers) and removed in write transactions of at most 5000
// records (256 builds), each checked again there, so webhooks and builds
// are not held up. A build goes with every index entry naming it in one
// transaction; its tree is then listed by DeletedTrees for the edge to
// remove. The events of a deleted build or request stay until Events
// removes them. It is safe to run at any time and idempotent.
func (s *Store) Prune(ctx context.Context, now time.Time, r Retention) (Pruned, error) {
	var p Pruned
	if err := s.pruneBuilds(ctx, now, r, &p); err != nil {
		return p, wrap("Prune", err)
	}
	steps := []struct {
		keep   time.Duration
		bucket []byte
		// pick decides from a record whether it goes, and whether the
		// scan can stop there (records are in time order).
		pick func(v []byte, cutoff time.Time) (take, stop bool, err error)
		// skip, when set, keeps a record pick took, in the read
		// transaction, so that apply does not see it again every run.
		skip func(tx *bolt.Tx, k []byte) bool
		// apply removes (or trims) the record at k; it reports whether
		// it did.
		apply func(tx *bolt.Tx, k []byte, cutoff time.Time) (bool, error)
		n     *int
	}{
		{r.Events, bucketEvents, pickEvent, nil, deleteEventIf, &p.Events},
		{r.Deliveries, bucketDeliveries, pickDelivery, nil, counted(deleteIf(bucketDeliveries, pickDelivery), keyDeliveryCount), &p.Deliveries},
		{r.DeliveryCommits, bucketDeliveries, pickDeliveryCommits, nil, trimDeliveryCommits, &p.DeliveryCommits},
		{r.PostedStatuses, bucketStatusOutbox, pickPostedStatus, nil, deleteIf(bucketStatusOutbox, pickPostedStatus), &p.Statuses},
		{r.Requests, bucketRequests, pickFinishedRequest, requestHasBuilds, s.deleteRequestIf, &p.Requests},
	}
	for _, st := range steps {
		if st.keep <= 0 {
			continue
		}
		cutoff := now.Add(-st.keep)
		var from []byte
		for {
			var keys [][]byte
			done := true
			err := s.view(ctx, "Prune", func(tx *bolt.Tx) error {
				c := tx.Bucket(st.bucket).Cursor()
				k, v := c.First()
				if from != nil {
					k, v = c.Seek(from)
				}
				for ; k != nil; k, v = c.Next() {
					if len(keys) == pruneBatch {
						from, done = append([]byte(nil), k...), false
						return nil
					}
					take, stop, err := st.pick(v, cutoff)
					if err != nil {
						return fmt.Errorf("%s %x: %w", st.bucket, k, err)
					}
					if stop {
						return nil
					}
					if take && (st.skip == nil || !st.skip(tx, k)) {
						keys = append(keys, append([]byte(nil), k...))
					}
				}
				return nil
			})
			if err != nil {
				return p, wrap("Prune", err)
			}
			if len(keys) > 0 {
				err = s.update(ctx, "Prune", func(tx *bolt.Tx) error {
					for _, k := range keys {
						ok, err := st.apply(tx, k, cutoff)
						if err != nil {
							return err
						}
						if ok {
							*st.n++
						}
					}
					return nil
				})
				if err != nil {
					return p, wrap("Prune", err)
				}
			}
			if done {
				break
			}
		}
	}
	return p, nil
}

// deleteIf returns an apply that deletes the record at k when pick still
// takes it.
func deleteIf(bucket []byte, pick func([]byte, time.Time) (bool, bool, error)) func(*bolt.Tx, []byte, time.Time) (bool, error) {
	return func(tx *bolt.Tx, k []byte, cutoff time.Time) (bool, error) {
		b := tx.Bucket(bucket)
		v := b.Get(k)
		if v == nil {
			return false, nil
		}
		take, _, err := pick(v, cutoff)
		if err != nil || !take {
			return false, err
		}
		return true, b.Delete(k)
	}
}

// pickEvent takes events older than cutoff; the log is in time order.
func pickEvent(v []byte, cutoff time.Time) (bool, bool, error) {
	var e struct {
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return false, false, err
	}
	old := e.Time.Before(cutoff)
	return old, !old, nil
}

// pickDelivery takes planned deliveries received before cutoff (a
// delivery waiting to be planned is kept); deliveries are in arrival order.
func pickDelivery(v []byte, cutoff time.Time) (bool, bool, error) {
	var d struct {
		ReceivedAt time.Time `json:"received_at"`
		PlannedAt  time.Time `json:"planned_at"`
	}
	if err := json.Unmarshal(v, &d); err != nil {
		return false, false, err
	}
	old := d.ReceivedAt.Before(cutoff)
	return old && !d.PlannedAt.IsZero(), !old, nil
}

// pickDeliveryCommits takes planned deliveries received before cutoff that
// still hold commits.
func pickDeliveryCommits(v []byte, cutoff time.Time) (bool, bool, error) {
	var d struct {
		ReceivedAt time.Time         `json:"received_at"`
		PlannedAt  time.Time         `json:"planned_at"`
		Commits    []json.RawMessage `json:"commits"`
	}
	if err := json.Unmarshal(v, &d); err != nil {
		return false, false, err
	}
	old := d.ReceivedAt.Before(cutoff)
	return old && !d.PlannedAt.IsZero() && len(d.Commits) > 0, !old, nil
}

// trimDeliveryCommits drops a delivery's commit list, counting it in
// CommitsOmitted.
func trimDeliveryCommits(tx *bolt.Tx, k []byte, cutoff time.Time) (bool, error) {
	b := tx.Bucket(bucketDeliveries)
	v := b.Get(k)
	if v == nil {
		return false, nil
	}
	if take, _, err := pickDeliveryCommits(v, cutoff); err != nil || !take {
		return false, err
	}
	var d Delivery
	if err := json.Unmarshal(v, &d); err != nil {
		return false, err
	}
	d.CommitsOmitted += len(d.Commits)
	d.Commits = nil
	return true, putJSON(b, k, &d)
}

// pickPostedStatus takes outbox entries with nothing left to post whose
// content last changed before cutoff (the outbox is in key order, so the
// whole bucket is read, outside any write transaction).
func pickPostedStatus(v []byte, cutoff time.Time) (bool, bool, error) {
	var e struct {
		Done      bool      `json:"done"`
		UpdatedAt time.Time `json:"updated_at"`
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return false, false, err
	}
	return e.Done && e.UpdatedAt.Before(cutoff), false, nil
}

// counted wraps an apply that deletes, keeping the stored count key in step.
func counted(apply func(*bolt.Tx, []byte, time.Time) (bool, error), key []byte) func(*bolt.Tx, []byte, time.Time) (bool, error) {
	return func(tx *bolt.Tx, k []byte, cutoff time.Time) (bool, error) {
		ok, err := apply(tx, k, cutoff)
		if err != nil || !ok {
			return ok, err
		}
		return true, addCount(tx, key, -1)
	}
}
