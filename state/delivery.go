package state

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Delivery is one push received from a forge, normalised across forges.
// RecordDelivery assigns ID and ContentKey; the planner fills Disposition and
// PlannedAt through CompletePlanJob.
type Delivery struct {
	// ID is rida's own identifier, a sequence starting at 1 (the forge's
	// delivery GUID is not unique: GitHub keeps it on redelivery).
	ID uint64 `json:"id"`
	// Forge is the receiver dialect: "github", "gitea", "forgejo", "gitlab".
	Forge string `json:"forge"`
	// DeliveryGUID is the forge's delivery header (or one rida generated when
	// the forge sent none); for logs and support, never for identity.
	DeliveryGUID string `json:"delivery_guid"`
	// Event is the forge's event name as sent (e.g. "push", "Push Hook").
	Event string `json:"event"`
	// Repo is the repository's full name / path with namespace.
	Repo     string `json:"repo"`
	CloneURL string `json:"clone_url"`
	// Ref is the full ref as the forge sent it, e.g. "refs/heads/main".
	Ref    string `json:"ref"`
	Before string `json:"before"`
	After  string `json:"after"`
	// CheckoutSHA is the commit the ref now points at when the forge says so
	// separately from After (GitLab's checkout_sha, peeled for annotated
	// tags); empty otherwise.
	CheckoutSHA string `json:"checkout_sha,omitempty"`
	Forced      bool   `json:"forced"`
	// Commits are the payload's commits (possibly truncated by the forge);
	// only used to read trailers such as "[skip rebuild]".
	Commits []Commit `json:"commits,omitempty"`
	// CommitsOmitted counts the payload's older commits that were not kept
	// (the receiver keeps the newest 100).
	CommitsOmitted int `json:"commits_omitted,omitempty"`
	// Sender is the login of the user who pushed.
	Sender     string    `json:"sender"`
	ReceivedAt time.Time `json:"received_at"`
	// ContentKey identifies the push by content, see ContentKey; redeliveries
	// of one push share it whatever their GUID.
	ContentKey string `json:"content_key"`
	// Disposition says what planning made of the delivery; nil until planned.
	Disposition *Disposition `json:"disposition,omitempty"`
	// PlannedAt is when the planner completed; zero while a plan job is
	// outstanding.
	PlannedAt time.Time `json:"planned_at,omitzero"`
}

// Commit is one commit listed in a push payload.
type Commit struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// Disposition records what a delivery did: the build requests it created or
// merged into, or — when none — why nothing was built.
type Disposition struct {
	Reason   string           `json:"reason,omitempty"`
	Requests []EnqueueSummary `json:"requests,omitempty"`
}

// ContentKey returns the hex SHA-256 of forge|repo|ref|before|after: the key
// under which redeliveries of one push meet (GitHub keeps the GUID on
// redelivery, Gitea/Forgejo mint a new one, so the GUID cannot serve).
func ContentKey(forge, repo, ref, before, after string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{forge, repo, ref, before, after}, "|")))
	return hex.EncodeToString(h[:])
}

// PlanJobState is the state of a plan job.
type PlanJobState string

const (
	// PlanJobAvailable: waiting for a planner. LeasePlanJob moves it to
	// PlanJobLeased.
	PlanJobAvailable PlanJobState = "available"
	// PlanJobLeased: a planner holds it until LeaseExpires. CompletePlanJob
	// removes it (the delivery keeps the result); RescueExpiredLeases moves
	// it back to PlanJobAvailable once the lease has expired.
	PlanJobLeased PlanJobState = "leased"
)

// PlanJob asks a planner to turn one delivery into build requests.
type PlanJob struct {
	ID         uint64       `json:"id"`
	DeliveryID uint64       `json:"delivery_id"`
	State      PlanJobState `json:"state"`
	// Attempt counts leases, 1 for the first.
	Attempt      int       `json:"attempt"`
	LeasedBy     string    `json:"leased_by,omitempty"`
	LeasedAt     time.Time `json:"leased_at,omitzero"`
	LeaseExpires time.Time `json:"lease_expires,omitzero"`
	CreatedAt    time.Time `json:"created_at"`

	// Delivery is the job's delivery, filled by LeasePlanJob (not stored).
	Delivery *Delivery `json:"-"`
}

// PlanResult is what a planner hands to CompletePlanJob.
type PlanResult struct {
	// Worker must be the worker that leased the job.
	Worker string
	// Requests are enqueued (created or merged, see Enqueue) in the same
	// transaction; the delivery's ID and ContentKey are added to each.
	Requests []BuildRequest
	// Reason explains the outcome; required when Requests is empty
	// ("no relevant paths changed", "branch deleted", ...).
	Reason string
}

func validateDelivery(d *Delivery) error {
	req := []struct{ field, v string }{
		{"Forge", d.Forge}, {"Event", d.Event}, {"Repo", d.Repo}, {"Ref", d.Ref},
		{"Before", d.Before}, {"After", d.After},
	}
	for _, r := range req {
		if r.v == "" {
			return &ValidationError{Op: "RecordDelivery", Field: r.field, Reason: "is required"}
		}
	}
	return nil
}

// RecordDelivery stores d and enqueues a plan job for it in one transaction,
// and returns the delivery's new ID once that transaction is durable. It sets
// d.ID, d.ContentKey and (when zero) d.ReceivedAt.
//
// Concurrent calls are grouped into shared transactions with bbolt's
// DB.Batch, so many webhook requests share one fsync; a call made while no
// other RecordDelivery is in flight commits at once (DB.Update) instead of
// waiting Options.MaxBatchDelay for company. A consequence of
// Batch: the transaction function may run more than once (when another call
// in the same batch fails, the batch is rolled back and retried). It is
// idempotent: it keeps no state outside the transaction except the ID it
// returns, which is re-assigned on every run, and only the run that commits
// is reported.
func (s *Store) RecordDelivery(ctx context.Context, d *Delivery) (uint64, error) {
	if err := validateDelivery(d); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("state: RecordDelivery: %w", err)
	}
	rec := *d
	rec.ContentKey = ContentKey(rec.Forge, rec.Repo, rec.Ref, rec.Before, rec.After)
	if rec.ReceivedAt.IsZero() {
		rec.ReceivedAt = s.now().UTC()
	}
	rec.Disposition, rec.PlannedAt = nil, time.Time{}
	var id uint64
	fn := func(tx *bolt.Tx) error {
		r := rec // fresh copy per run
		if s.recordTxHook != nil {
			s.recordTxHook(tx.ID())
		}
		var err error
		r.ID, err = s.recordDelivery(tx, &r)
		id = r.ID
		return err
	}
	// Alone: commit at once rather than wait MaxBatchDelay for company.
	// Otherwise join a batch and share its fsync.
	var err error
	if s.recording.Add(1) == 1 {
		err = s.db.Update(fn)
	} else {
		err = s.db.Batch(fn)
	}
	s.recording.Add(-1)
	if err != nil {
		return 0, wrap("RecordDelivery", err)
	}
	d.ID, d.ContentKey, d.ReceivedAt = id, rec.ContentKey, rec.ReceivedAt
	s.log.Debug("delivery recorded", slog.Uint64("delivery", id), slog.String("forge", d.Forge),
		slog.String("repo", d.Repo), slog.String("ref", d.Ref))
	return id, nil
}

// recordDelivery writes d (assigning its ID) and its plan job.
func (s *Store) recordDelivery(tx *bolt.Tx, d *Delivery) (uint64, error) {
	db := tx.Bucket(bucketDeliveries)
	id, err := db.NextSequence()
	if err != nil {
		return 0, err
	}
	d.ID = id
	if err := putJSON(db, u64(id), d); err != nil {
		return 0, err
	}
	if err := addCount(tx, keyDeliveryCount, 1); err != nil {
		return 0, err
	}
	if _, err := s.addPlanJob(tx, id); err != nil {
		return 0, err
	}
	return id, s.appendEvent(tx, EventDeliveryRecorded, deliverySubject(id), map[string]any{
		"forge": d.Forge, "repo": d.Repo, "ref": d.Ref, "after": d.After, "content_key": d.ContentKey,
	})
}

func deliverySubject(id uint64) string { return "delivery/" + strconv.FormatUint(id, 10) }
func planJobSubject(id uint64) string  { return "planjob/" + strconv.FormatUint(id, 10) }

func (s *Store) addPlanJob(tx *bolt.Tx, deliveryID uint64) (uint64, error) {
	jb := tx.Bucket(bucketPlanJobs)
	id, err := jb.NextSequence()
	if err != nil {
		return 0, err
	}
	job := PlanJob{ID: id, DeliveryID: deliveryID, State: PlanJobAvailable, CreatedAt: s.now().UTC()}
	if err := putJSON(jb, u64(id), job); err != nil {
		return 0, err
	}
	return id, tx.Bucket(bucketPlanAvailable).Put(u64(id), nil)
}

// Delivery returns the delivery with the given ID (*NotFoundError if none).
func (s *Store) Delivery(ctx context.Context, id uint64) (*Delivery, error) {
	var d *Delivery
	err := s.view(ctx, "Delivery", func(tx *bolt.Tx) error {
		var err error
		d, err = getDelivery(tx, id)
		return err
	})
	return d, wrap("Delivery", err)
}

func getDelivery(tx *bolt.Tx, id uint64) (*Delivery, error) {
	var d Delivery
	ok, err := getJSON(tx.Bucket(bucketDeliveries), u64(id), &d)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &NotFoundError{Kind: "delivery", Key: strconv.FormatUint(id, 10)}
	}
	return &d, nil
}

func getPlanJob(tx *bolt.Tx, id uint64) (*PlanJob, error) {
	var j PlanJob
	ok, err := getJSON(tx.Bucket(bucketPlanJobs), u64(id), &j)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &NotFoundError{Kind: "plan job", Key: strconv.FormatUint(id, 10)}
	}
	return &j, nil
}

// leaseKey orders leased jobs by expiry so rescue is a range scan.
func leaseKey(expires time.Time, id uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(expires.UnixNano()))
	binary.BigEndian.PutUint64(k[8:], id)
	return k
}

// LeasePlanJob gives the oldest available plan job to worker for leaseFor and
// returns it with its Delivery. It returns ErrNoJob when none is available.
// The worker must call CompletePlanJob before the lease expires; after that
// RescueExpiredLeases may hand the job to someone else.
func (s *Store) LeasePlanJob(ctx context.Context, worker string, leaseFor time.Duration) (*PlanJob, error) {
	if worker == "" {
		return nil, &ValidationError{Op: "LeasePlanJob", Field: "worker", Reason: "is required"}
	}
	if leaseFor <= 0 {
		return nil, &ValidationError{Op: "LeasePlanJob", Field: "leaseFor", Reason: "must be positive"}
	}
	var job *PlanJob
	err := s.update(ctx, "LeasePlanJob", func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketPlanAvailable).Cursor().First()
		if k == nil {
			return ErrNoJob
		}
		j, err := getPlanJob(tx, binary.BigEndian.Uint64(k))
		if err != nil {
			return err
		}
		now := s.now().UTC()
		j.State, j.LeasedBy, j.LeasedAt, j.LeaseExpires = PlanJobLeased, worker, now, now.Add(leaseFor)
		j.Attempt++
		if err := tx.Bucket(bucketPlanAvailable).Delete(k); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPlanLeased).Put(leaseKey(j.LeaseExpires, j.ID), nil); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketPlanJobs), u64(j.ID), j); err != nil {
			return err
		}
		if j.Delivery, err = getDelivery(tx, j.DeliveryID); err != nil {
			return err
		}
		job = j
		return s.appendEvent(tx, EventPlanJobLeased, planJobSubject(j.ID), map[string]any{
			"worker": worker, "attempt": j.Attempt, "delivery": j.DeliveryID,
		})
	})
	if err != nil {
		return nil, wrap("LeasePlanJob", err)
	}
	return job, nil
}

// CompletePlanJob finishes a leased plan job: it enqueues res.Requests, records
// the disposition on the job's delivery, and deletes the job — all in one
// transaction. It returns the delivery as stored. ErrLeaseLost means the job
// is no longer leased by res.Worker (the result was not recorded).
func (s *Store) CompletePlanJob(ctx context.Context, jobID uint64, res PlanResult) (*Delivery, error) {
	if res.Worker == "" {
		return nil, &ValidationError{Op: "CompletePlanJob", Field: "PlanResult.Worker", Reason: "is required"}
	}
	if len(res.Requests) == 0 && res.Reason == "" {
		return nil, &ValidationError{Op: "CompletePlanJob", Field: "PlanResult.Reason", Reason: "is required when no requests are made"}
	}
	for i := range res.Requests {
		if err := validateRequest("CompletePlanJob", &res.Requests[i]); err != nil {
			return nil, err
		}
	}
	var out *Delivery
	err := s.update(ctx, "CompletePlanJob", func(tx *bolt.Tx) error {
		j, err := getPlanJob(tx, jobID)
		if err != nil {
			return err
		}
		if j.State != PlanJobLeased || j.LeasedBy != res.Worker {
			return fmt.Errorf("plan job %d (state %s, leased by %q, caller %q): %w", jobID, j.State, j.LeasedBy, res.Worker, ErrLeaseLost)
		}
		d, err := getDelivery(tx, j.DeliveryID)
		if err != nil {
			return err
		}
		disp := &Disposition{Reason: res.Reason}
		for _, r := range res.Requests {
			r.DeliveryIDs = append(r.DeliveryIDs, d.ID)
			r.ContentKeys = append(r.ContentKeys, d.ContentKey)
			er, err := s.enqueue(tx, r)
			if err != nil {
				return err
			}
			disp.Requests = append(disp.Requests, er.summary())
		}
		if err := s.finishPlanJob(tx, j, d, disp); err != nil {
			return err
		}
		out = d
		return nil
	})
	if err != nil {
		return nil, wrap("CompletePlanJob", err)
	}
	return out, nil
}

// finishPlanJob deletes j and stores disp on d.
func (s *Store) finishPlanJob(tx *bolt.Tx, j *PlanJob, d *Delivery, disp *Disposition) error {
	if j.State == PlanJobLeased {
		if err := tx.Bucket(bucketPlanLeased).Delete(leaseKey(j.LeaseExpires, j.ID)); err != nil {
			return err
		}
	} else if err := tx.Bucket(bucketPlanAvailable).Delete(u64(j.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketPlanJobs).Delete(u64(j.ID)); err != nil {
		return err
	}
	d.Disposition, d.PlannedAt = disp, s.now().UTC()
	if err := putJSON(tx.Bucket(bucketDeliveries), u64(d.ID), d); err != nil {
		return err
	}
	return s.appendEvent(tx, EventPlanJobCompleted, deliverySubject(d.ID), map[string]any{
		"job": j.ID, "worker": j.LeasedBy, "disposition": disp,
	})
}

// RescueExpiredLeases returns plan jobs whose lease expired at or before now to
// the available queue (their planner died or stalled) and reports how many it
// moved. A job that has used up Options.MaxPlanAttempts is completed instead,
// with the reason "planning abandoned after N attempts". Safe to call from any
// number of goroutines; the runner calls it periodically.
func (s *Store) RescueExpiredLeases(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.update(ctx, "RescueExpiredLeases", func(tx *bolt.Tx) error {
		n = 0
		lb := tx.Bucket(bucketPlanLeased)
		limit := leaseKey(now, ^uint64(0))
		var expired [][]byte
		c := lb.Cursor()
		for k, _ := c.First(); k != nil && string(k) <= string(limit); k, _ = c.Next() {
			expired = append(expired, append([]byte(nil), k...))
		}
		for _, k := range expired {
			j, err := getPlanJob(tx, binary.BigEndian.Uint64(k[8:]))
			if err != nil {
				return err
			}
			if j.Attempt >= s.opts.MaxPlanAttempts {
				d, err := getDelivery(tx, j.DeliveryID)
				if err != nil {
					return err
				}
				reason := fmt.Sprintf("planning abandoned after %d attempts (last lease held by %s expired)", j.Attempt, j.LeasedBy)
				if err := s.finishPlanJob(tx, j, d, &Disposition{Reason: reason}); err != nil {
					return err
				}
				if err := s.appendEvent(tx, EventPlanJobAbandoned, planJobSubject(j.ID), map[string]any{"attempts": j.Attempt}); err != nil {
					return err
				}
				s.log.Warn("plan job abandoned", slog.Uint64("job", j.ID), slog.Uint64("delivery", j.DeliveryID), slog.Int("attempts", j.Attempt))
				n++
				continue
			}
			if err := lb.Delete(k); err != nil {
				return err
			}
			prev := j.LeasedBy
			j.State, j.LeasedBy, j.LeasedAt, j.LeaseExpires = PlanJobAvailable, "", time.Time{}, time.Time{}
			if err := putJSON(tx.Bucket(bucketPlanJobs), u64(j.ID), j); err != nil {
				return err
			}
			if err := tx.Bucket(bucketPlanAvailable).Put(u64(j.ID), nil); err != nil {
				return err
			}
			if err := s.appendEvent(tx, EventPlanJobRescued, planJobSubject(j.ID), map[string]any{"previous_worker": prev, "attempt": j.Attempt}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, wrap("RescueExpiredLeases", err)
	}
	if n > 0 {
		s.log.Info("plan job leases rescued", slog.Int("jobs", n))
	}
	return n, nil
}
