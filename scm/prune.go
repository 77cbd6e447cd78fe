package scm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// usedStamp is the file in a mirror whose modification time says when the
// mirror was last fetched or read from (Fetch, Export, ref resolution).
const usedStamp = "rida-used"

// prunePrefix marks a mirror directory on its way out: renamed first, so
// no reader ever opens a half-removed mirror, then removed.
const prunePrefix = ".pruning-"

// stampUsed records that the mirror in dir was used now.
func stampUsed(dir string) {
	p := filepath.Join(dir, usedStamp)
	now := time.Now()
	if err := os.Chtimes(p, now, now); errors.Is(err, fs.ErrNotExist) {
		_ = os.WriteFile(p, nil, 0o644)
	}
}

// lastUsed is when the mirror in dir was last used: its stamp, or for a
// mirror made before stamps, the directory's own modification time
// (a fetch rewrites files at its top: FETCH_HEAD, packed-refs).
func lastUsed(dir string) (time.Time, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return time.Time{}, err
	}
	t := fi.ModTime()
	if st, err := os.Stat(filepath.Join(dir, usedStamp)); err == nil && st.ModTime().After(t) {
		t = st.ModTime()
	}
	return t, nil
}

// Prune removes the mirrors under the mirror directory not used since
// before, and what an interrupted Prune left, and returns the directories
// it removed. A mirror in use (its lock held by a fetch, a read or an
// export) is skipped and looked at again next time; a handle opened on a
// removed mirror fails its next call, and the next Fetch clones it again.
func (m *Mirrors) Prune(before time.Time) ([]string, error) {
	entries, err := os.ReadDir(m.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("scm: prune mirrors: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		dir := filepath.Join(m.opts.Dir, name)
		switch {
		case !e.IsDir():
			continue
		case strings.HasPrefix(name, prunePrefix):
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, err)
			}
			continue
		case !strings.HasSuffix(name, ".git"):
			continue
		}
		mi := m.mirror(dir)
		if !mi.mu.TryLock() {
			continue // in use
		}
		err := func() error {
			defer mi.mu.Unlock()
			used, err := lastUsed(dir)
			if err != nil || !used.Before(before) {
				return err
			}
			trash := filepath.Join(m.opts.Dir, prunePrefix+name)
			if err := os.Rename(dir, trash); err != nil {
				return err
			}
			// Handles opened before reopen, find nothing and fail.
			mi.gen++
			removed = append(removed, dir)
			m.opts.Logger.Info("scm: removed a mirror not used since", "dir", dir, "used", used)
			return os.RemoveAll(trash)
		}()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("scm: prune mirrors: %w", err)
	}
	return removed, nil
}
