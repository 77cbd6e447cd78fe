// Package testfs holds file-system helpers that tests of several packages
// share.
package testfs

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
)

// Files lists the files (not directories) under dir, relative to it, in
// lexical order; a dir that does not exist has none.
func Files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}
