package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TreeDir returns the directory of module build id (NSVC name, stream,
// version, context) under workDir: the one Backend.BuildDir gives it.
func TreeDir(workDir, name, stream string, version uint64, context string, id int64) string {
	base := fmt.Sprintf("%s-%s-%d-%s-%d", name, stream, version, context, id)
	base = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_', r == '+':
			return r
		}
		return '_'
	}, base)
	return filepath.Join(workDir, base)
}

// RemoveTree removes the tree of a finished module build under workDir
// (logs, repository, rpm database, what work/ is left), for retention,
// and returns the bytes it held. A tree that is not there is no error
// (0 bytes): the removal may be repeated. A later build that would reuse
// components from it gets runner.ErrReuseUnavailable from Reuse and builds
// them instead. It must not be called for a build that is still running or
// that a running build reuses from or is built against; the caller
// (retention, state.TreeCandidates) decides that.
func RemoveTree(workDir, name, stream string, version uint64, context string, id int64) (int64, error) {
	dir := TreeDir(workDir, name, stream, version, context, id)
	if filepath.Dir(dir) != filepath.Clean(workDir) || strings.HasPrefix(filepath.Base(dir), ".") {
		return 0, fmt.Errorf("local: remove tree %s: not a build directory of %s", dir, workDir)
	}
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			size += fi.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("local: remove tree %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return 0, fmt.Errorf("local: remove tree %s: %w", dir, err)
	}
	return size, nil
}
