package state

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Event is one entry of the append-only event log. Every state change writes
// its event in the same transaction as the change, so the log never shows a
// change that did not commit and never misses one that did.
type Event struct {
	// Seq increases by one per event, starting at 1; it is the cursor for
	// EventsSince.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Kind names the change, e.g. "delivery.recorded", "request.merged".
	Kind string `json:"kind"`
	// Subject names the object, e.g. "delivery/12", "request/3", "module/foo:rawhide".
	Subject string `json:"subject"`
	// Data holds kind-specific JSON (may be null).
	Data json.RawMessage `json:"data,omitempty"`
}

// Event kinds written by this package.
const (
	EventDeliveryRecorded = "delivery.recorded"
	EventPlanJobLeased    = "planjob.leased"
	EventPlanJobRescued   = "planjob.rescued"
	EventPlanJobAbandoned = "planjob.abandoned"
	EventPlanJobCompleted = "planjob.completed"
	EventRequestCreated   = "request.created"
	EventRequestMerged    = "request.merged"
	EventRequestStarted   = "request.started"
	EventRequestFinished  = "request.finished"
	EventIndexUpdated     = "index.updated"
	EventModuleBuildPut   = "modulebuild.put"
	EventModuleBuildState = "modulebuild.state"
	// EventModuleBuildCancel: someone asked to stop a build (phase one).
	EventModuleBuildCancel = "modulebuild.cancel"
	// EventComponentBuildState: a component of a module build changed.
	EventComponentBuildState = "componentbuild.state"
	// EventRequestRequeued: a running request went back to pending after a
	// restart.
	EventRequestRequeued = "request.requeued"
	// EventCascade: a build became ready and queued the rebuilds of the
	// streams that buildrequire it (or a note why not).
	EventCascade = "modulebuild.cascade"
	// EventModuleBuildErrors: every error behind a build's failure, when
	// its state reason names only the first few.
	EventModuleBuildErrors = "modulebuild.errors"
	defaultEventsLimit     = 100
	maxEventsLimit         = 10000
)

// appendEvent writes an event in tx. data is JSON-encoded (nil → no data).
func (s *Store) appendEvent(tx *bolt.Tx, kind, subject string, data any) error {
	b := tx.Bucket(bucketEvents)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("event sequence: %w", err)
	}
	ev := Event{Seq: seq, Time: s.now().UTC(), Kind: kind, Subject: subject}
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("encode event %s data: %w", kind, err)
		}
		ev.Data = raw
	}
	if err := tx.Bucket(bucketEventsBySubject).Put(eventSubjectKey(subject, seq), nil); err != nil {
		return err
	}
	return putJSON(b, u64(seq), ev)
}

// EventsSince returns up to limit events with Seq > after, oldest first.
// limit <= 0 means 100; it is capped at 10000. An empty result means the
// caller is up to date.
func (s *Store) EventsSince(ctx context.Context, after uint64, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = defaultEventsLimit
	}
	limit = min(limit, maxEventsLimit)
	var out []Event
	err := s.view(ctx, "EventsSince", func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, wrap("EventsSince", err)
}

// RecordBuildErrors appends every error behind module build id's failure to
// the event log (kind EventModuleBuildErrors, data {"errors": [...]}): the
// state reason names the first few, the log and the build's messages keep
// them all. *NotFoundError if the build does not exist.
func (s *Store) RecordBuildErrors(ctx context.Context, id uint64, errs []string) error {
	return wrap("RecordBuildErrors", s.update(ctx, "RecordBuildErrors", func(tx *bolt.Tx) error {
		if _, err := getModuleBuild(tx, id); err != nil {
			return err
		}
		return s.appendEvent(tx, EventModuleBuildErrors, "modulebuild/"+strconv.FormatUint(id, 10), map[string]any{"errors": errs})
	}))
}
