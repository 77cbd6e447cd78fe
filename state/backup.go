package state

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Snapshot is a consistent copy of the store in a temporary file beside
// it, ready to be streamed. The file is unlinked as soon as it is written,
// so nothing is left on disk once the Snapshot is closed, even if the
// process dies meanwhile. Read it, then Close it.
type Snapshot struct {
	f    *os.File
	size int64
}

// Size is the snapshot's length in bytes.
func (b *Snapshot) Size() int64 { return b.size }

// Read reads the snapshot.
func (b *Snapshot) Read(p []byte) (int, error) { return b.f.Read(p) }

// Close releases the snapshot's file.
func (b *Snapshot) Close() error { return b.f.Close() }

// Snapshot copies the whole store into a temporary file in the store's
// directory from one read transaction (bbolt's hot backup). The transaction
// lasts only as long as the local copy takes, never as long as a client
// takes to read the result: a long read transaction would stop writers
// that must grow the file. The copy is a valid store file.
func (s *Store) Snapshot(ctx context.Context) (*Snapshot, error) {
	f, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".backup-*")
	if err != nil {
		return nil, wrap("Snapshot", fmt.Errorf("create the snapshot file: %w", err))
	}
	// Unlinked at once: the open file is all that holds the data, so a
	// crash cannot leave a snapshot behind.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, wrap("Snapshot", fmt.Errorf("unlink the snapshot file: %w", err))
	}
	var n int64
	err = s.view(ctx, "Snapshot", func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(f)
		return err
	})
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, wrap("Snapshot", err)
	}
	return &Snapshot{f: f, size: n}, nil
}

// WriteBackup writes a consistent copy of the whole store to w while the
// store stays in use: a Snapshot, streamed. The copy is a valid store file:
// stop rida, put it in place of rida.db, start rida. A slow w delays no
// writer. It returns the number of bytes written.
func (s *Store) WriteBackup(ctx context.Context, w io.Writer) (int64, error) {
	b, err := s.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	n, err := io.Copy(w, ctxReader{ctx, b})
	if err != nil {
		return n, wrap("WriteBackup", fmt.Errorf("stream the snapshot: %w", err))
	}
	return n, nil
}

// ctxReader stops reading once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
