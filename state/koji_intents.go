package state

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketKojiIntents holds, per module build, what the Koji backend was about
// to submit and the task it got: key = build id (8 bytes) + component key.
var bucketKojiIntents = []byte("koji_intents")

// KojiIntent is one component submission of the Koji backend.
type KojiIntent struct {
	Src    string `json:"src"`
	TaskID int    `json:"task_id,omitempty"`
}

func intentKey(buildID int64, component string) []byte {
	k := make([]byte, 8, 8+len(component))
	binary.BigEndian.PutUint64(k, uint64(buildID))
	return append(k, component...)
}

// RecordKojiIntent durably records that component of module build buildID
// is about to be submitted to Koji with src, clearing any earlier task id:
// after a crash the backend looks the task up instead of submitting again.
func (s *Store) RecordKojiIntent(ctx context.Context, buildID int64, component, src string) error {
	return wrap("RecordKojiIntent", s.update(ctx, "RecordKojiIntent", func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketKojiIntents)
		if err != nil {
			return err
		}
		return putJSON(b, intentKey(buildID, component), KojiIntent{Src: src})
	}))
}

// RecordKojiTask durably records the Koji task of a submitted component.
func (s *Store) RecordKojiTask(ctx context.Context, buildID int64, component string, taskID int) error {
	return wrap("RecordKojiTask", s.update(ctx, "RecordKojiTask", func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketKojiIntents)
		if err != nil {
			return err
		}
		var in KojiIntent
		if _, err := getJSON(b, intentKey(buildID, component), &in); err != nil {
			return err
		}
		in.TaskID = taskID
		return putJSON(b, intentKey(buildID, component), in)
	}))
}

// KojiIntents returns the recorded submissions of module build buildID by
// component key (empty when none).
func (s *Store) KojiIntents(ctx context.Context, buildID int64) (map[string]KojiIntent, error) {
	out := map[string]KojiIntent{}
	err := s.view(ctx, "KojiIntents", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKojiIntents)
		if b == nil {
			return nil
		}
		prefix := intentKey(buildID, "")
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && len(k) >= 8 && string(k[:8]) == string(prefix); k, v = c.Next() {
			var in KojiIntent
			if err := json.Unmarshal(v, &in); err != nil {
				return fmt.Errorf("decode koji intent %q: %w", k, err)
			}
			out[string(k[8:])] = in
		}
		return nil
	})
	return out, wrap("KojiIntents", err)
}
