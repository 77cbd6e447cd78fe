package state

import (
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Compact rewrites the store file at path without its free pages, giving
// the space retention freed back to the filesystem (bbolt never shrinks a
// file by itself). It copies every bucket into path+".compact" with bbolt's
// Compact, syncs it, and renames it over path, so a crash leaves either the
// old file or the new one. No other process may have the file open: rida
// serve must be stopped. It returns the sizes before and after.
func Compact(path string) (before, after int64, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("state: compact: %w", err)
	}
	before = fi.Size()
	src, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return before, 0, fmt.Errorf("state: compact %s: %w (is rida serve running on it?)", path, err)
	}
	defer src.Close()
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return before, 0, fmt.Errorf("state: compact: %w", err)
	}
	if err := bolt.Compact(dst, src, 64<<20); err != nil {
		dst.Close()
		_ = os.Remove(tmp)
		return before, 0, fmt.Errorf("state: compact %s: %w", path, err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		_ = os.Remove(tmp)
		return before, 0, fmt.Errorf("state: compact: sync: %w", err)
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return before, 0, fmt.Errorf("state: compact: %w", err)
	}
	src.Close()
	if err := os.Rename(tmp, path); err != nil {
		return before, 0, fmt.Errorf("state: compact: %w", err)
	}
	if fi, err = os.Stat(path); err == nil {
		after = fi.Size()
	}
	return before, after, nil
}
