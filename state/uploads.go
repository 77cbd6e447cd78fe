package state

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The upload index: which request owns each directory of uploaded files
// (the SRPMs of a local-backend scratch build, "<upload id>/x.src.rpm"
// under rida's uploads directory). It is kept in the transactions that
// give a request its uploads, drop them (a push merging in) or delete the
// request (retention), so the retention run can remove, from the edge, a
// directory no request owns: one of a deleted request, of dropped
// uploads, or left by a crash before its submission committed.

var (
	// bucketUploads: upload directory name -> request id BE.
	bucketUploads = []byte("uploads_by_dir")
	// keyUploadsFilled marks the upload index built for files written
	// before it existed.
	keyUploadsFilled = []byte("uploads_filled")
)

// uploadDirs returns the upload directories srpms' files are in: the first
// element of each local path. Koji upload paths (cli-build/…) are files on
// the hub, not in rida's uploads directory.
func uploadDirs(srpms []SRPM) []string {
	var out []string
	for _, s := range srpms {
		dir, _, ok := strings.Cut(s.Path, "/")
		if !ok || dir == "" || dir == "cli-build" || dir == "." || dir == ".." {
			continue
		}
		if len(out) == 0 || out[len(out)-1] != dir {
			out = append(out, dir)
		}
	}
	return out
}

// setUploads records that request id owns the upload directories of add
// and no longer owns those of drop.
func setUploads(tx *bolt.Tx, id uint64, drop, add []SRPM) error {
	b := tx.Bucket(bucketUploads)
	for _, dir := range uploadDirs(drop) {
		if err := b.Delete([]byte(dir)); err != nil {
			return err
		}
	}
	for _, dir := range uploadDirs(add) {
		if err := b.Put([]byte(dir), u64(id)); err != nil {
			return err
		}
	}
	return nil
}

// fillUploads builds the upload index once, from the stored request
// options, for a file written before it existed.
func fillUploads(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyUploadsFilled) != nil {
		return nil
	}
	if b := tx.Bucket(bucketRequestOpts); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			var o RequestOptions
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("decode request options %x: %w", k, err)
			}
			return setUploads(tx, binary.BigEndian.Uint64(k), nil, o.SRPMs)
		})
		if err != nil {
			return err
		}
	}
	return meta.Put(keyUploadsFilled, []byte{1})
}

// UploadsOwned reports, for each upload directory name in dirs, whether a
// stored request owns it. It reads the upload index only.
func (s *Store) UploadsOwned(ctx context.Context, dirs []string) (map[string]bool, error) {
	out := make(map[string]bool, len(dirs))
	err := s.view(ctx, "UploadsOwned", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUploads)
		for _, d := range dirs {
			out[d] = b.Get([]byte(d)) != nil
		}
		return nil
	})
	return out, wrap("UploadsOwned", err)
}

// checkUploads verifies the upload index against the stored request
// options, both ways.
func checkUploads(tx *bolt.Tx, add addFunc) {
	want := map[string]uint64{}
	if b := tx.Bucket(bucketRequestOpts); b != nil {
		_ = b.ForEach(func(k, v []byte) error {
			var o RequestOptions
			if json.Unmarshal(v, &o) != nil || len(k) != 8 {
				add("request options %x: not readable", k)
				return nil
			}
			for _, d := range uploadDirs(o.SRPMs) {
				want[d] = binary.BigEndian.Uint64(k)
			}
			return nil
		})
	}
	_ = tx.Bucket(bucketUploads).ForEach(func(k, v []byte) error {
		id, ok := want[string(k)]
		switch {
		case !ok:
			add("upload index: %q names request %d, whose options list no SRPM in it", k, binary.BigEndian.Uint64(v))
		case len(v) != 8 || binary.BigEndian.Uint64(v) != id:
			add("upload index: %q names request %x, want %d", k, v, id)
		}
		delete(want, string(k))
		return nil
	})
	for d, id := range want {
		add("upload index: request %d's upload directory %q is missing", id, d)
	}
}
