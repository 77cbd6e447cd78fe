package state

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// Stored counters in the meta bucket, kept in the transactions that add or
// remove what they count, so a count is a key read, never a walk.
var (
	keyDeliveryCount       = []byte("count_deliveries")
	keyDeliveryCountFilled = []byte("count_deliveries_filled")
)

func count(tx *bolt.Tx, key []byte) uint64 {
	v := tx.Bucket(bucketMeta).Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func addCount(tx *bolt.Tx, key []byte, delta int64) error {
	n := int64(count(tx, key)) + delta
	if n < 0 {
		n = 0
	}
	return tx.Bucket(bucketMeta).Put(key, u64(uint64(n)))
}

// fillCounters sets the counters once for a file written before they
// existed (one count at Open).
func fillCounters(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyDeliveryCountFilled) != nil {
		return nil
	}
	if err := meta.Put(keyDeliveryCount, u64(uint64(tx.Bucket(bucketDeliveries).Stats().KeyN))); err != nil {
		return err
	}
	return meta.Put(keyDeliveryCountFilled, []byte{1})
}
