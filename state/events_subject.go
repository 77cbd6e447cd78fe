package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The events-by-subject index, kept by appendEvent and Prune in the
// transactions that write and remove events, so one object's events (a
// build's MBS messages) are read without scanning the log.
var (
	// bucketEventsBySubject: subject \x00 seq BE -> nil.
	bucketEventsBySubject = []byte("events_by_subject")

	keyEventsBySubjectFilled = []byte("events_by_subject_filled")
)

func eventSubjectKey(subject string, seq uint64) []byte {
	return append(append([]byte(subject), 0), u64(seq)...)
}

// fillEventsBySubject indexes the event log once for a file written
// before the index existed.
func fillEventsBySubject(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyEventsBySubjectFilled) != nil {
		return nil
	}
	idx := tx.Bucket(bucketEventsBySubject)
	err := tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
		var e struct {
			Subject string `json:"subject"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("decode event %x: %w", k, err)
		}
		return idx.Put(eventSubjectKey(e.Subject, binary.BigEndian.Uint64(k)), nil)
	})
	if err != nil {
		return err
	}
	return meta.Put(keyEventsBySubjectFilled, []byte{1})
}

// deleteEventIf is Prune's apply for the event log: it deletes the event
// at k, and its index entry, when pickEvent still takes it.
func deleteEventIf(tx *bolt.Tx, k []byte, cutoff time.Time) (bool, error) {
	b := tx.Bucket(bucketEvents)
	v := b.Get(k)
	if v == nil {
		return false, nil
	}
	take, _, err := pickEvent(v, cutoff)
	if err != nil || !take {
		return false, err
	}
	var e struct {
		Subject string `json:"subject"`
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return false, err
	}
	if err := tx.Bucket(bucketEventsBySubject).Delete(eventSubjectKey(e.Subject, binary.BigEndian.Uint64(k))); err != nil {
		return false, err
	}
	return true, b.Delete(k)
}

// SubjectEvents returns up to limit events about subject (e.g.
// "modulebuild/12") with Seq > after, oldest first, through the
// events-by-subject index. limit <= 0 means 100; it is capped at 10000.
func (s *Store) SubjectEvents(ctx context.Context, subject string, after uint64, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = defaultEventsLimit
	}
	limit = min(limit, maxEventsLimit)
	var out []Event
	err := s.view(ctx, "SubjectEvents", func(tx *bolt.Tx) error {
		prefix := append([]byte(subject), 0)
		events := tx.Bucket(bucketEvents)
		c := tx.Bucket(bucketEventsBySubject).Cursor()
		for k, _ := c.Seek(eventSubjectKey(subject, after+1)); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			if len(k) != len(prefix)+8 {
				continue
			}
			seq := k[len(prefix):]
			v := events.Get(seq)
			if v == nil {
				continue
			}
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode event %d: %w", binary.BigEndian.Uint64(seq), err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, wrap("SubjectEvents", err)
}
