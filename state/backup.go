package state

import (
	"context"
	"io"

	bolt "go.etcd.io/bbolt"
)

// WriteBackup writes a consistent copy of the whole store to w, from one
// read transaction, while the store stays in use (bbolt's hot backup). The
// copy is a valid store file: stop rida, put it in place of rida.db, start
// rida. It returns the number of bytes written.
func (s *Store) WriteBackup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.view(ctx, "WriteBackup", func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, wrap("WriteBackup", err)
}
