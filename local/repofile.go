package local

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Files a component's repository or build controls are hostile: a packager
// chooses their type, their links and their size. rida's own process reads
// and writes them only through the helpers below, which
//
//   - resolve every path inside an os.Root, so no symlink or ".." leads out
//     of the checkout (or work directory) they belong to;
//   - accept only regular files: not symlinks, FIFOs, devices or
//     directories (opened O_NONBLOCK, so a FIFO never blocks, and checked
//     again with fstat after opening);
//   - refuse a file with more than one hard link: a hard link to a file
//     outside the tree cannot be told from the real thing by its path.
//     (A checkout is written by go-git from git objects, which cannot
//     express hard links; the check guards against anything else that
//     writes into the tree.)
//   - cap how much they read into memory;
//   - never put a file's content in an error: errors name the file and
//     say what is wrong with it.
//
// A problem with such a file is the component's (a *repoFileError: the
// component fails), not rida's.

// maxSourcesFile caps the dist-git "sources" file: a real one lists a few
// files in well under a kilobyte.
const maxSourcesFile = 1 << 20

// maxMacrosFile caps the module macros file read back from the
// module-build-macros work directory.
const maxMacrosFile = 1 << 20

// repoFileError is a file of a component's repository or build output that
// rida refuses to use. The component fails with it.
type repoFileError struct {
	file string // the path as the packager sees it, relative to the tree
	why  string
}

func (e *repoFileError) Error() string { return e.file + ": " + e.why }

// openRegular opens name inside root for reading, accepting only a regular
// file with a single link of at most max bytes (max < 0: no size limit).
// A missing file is an error satisfying errors.Is(err, fs.ErrNotExist).
func openRegular(root *os.Root, name string, max int64) (*os.File, os.FileInfo, error) {
	if !filepath.IsLocal(name) {
		return nil, nil, &repoFileError{file: name, why: "is not a path inside the tree"}
	}
	fi, err := root.Lstat(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		return nil, nil, &repoFileError{file: name, why: "cannot be read: " + errWithoutPath(err)}
	}
	if err := checkRegular(name, fi, max); err != nil {
		return nil, nil, err
	}
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, &repoFileError{file: name, why: "cannot be opened: " + errWithoutPath(err)}
	}
	// The tree may have changed since Lstat: check what was opened.
	fi, err = f.Stat()
	if err == nil {
		err = checkRegular(name, fi, max)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// checkRegular accepts a regular file with one link of at most max bytes.
func checkRegular(name string, fi os.FileInfo, max int64) error {
	m := fi.Mode()
	switch {
	case m&fs.ModeSymlink != 0:
		return &repoFileError{file: name, why: "is a symlink; rida reads only regular files from a repository or build"}
	case !m.IsRegular():
		return &repoFileError{file: name, why: fmt.Sprintf("is not a regular file (%s)", fileType(m))}
	case links(fi) > 1:
		return &repoFileError{file: name, why: fmt.Sprintf("has %d hard links; rida reads only files with one link", links(fi))}
	case max >= 0 && fi.Size() > max:
		return &repoFileError{file: name, why: fmt.Sprintf("is %d bytes, more than the %d allowed", fi.Size(), max)}
	}
	return nil
}

// readRegular returns the content of name inside root under openRegular's
// rules.
func readRegular(root *os.Root, name string, max int64) ([]byte, error) {
	f, _, err := openRegular(root, name, max)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, &repoFileError{file: name, why: "cannot be read: " + errWithoutPath(err)}
	}
	if int64(len(data)) > max {
		return nil, &repoFileError{file: name, why: fmt.Sprintf("grew beyond the %d bytes allowed while being read", max)}
	}
	return data, nil
}

// checkTree walks a component checkout (its .git directory left out) and
// refuses what rpmbuild, run without a sandbox, could be led out of the
// tree by: a symlink that does not resolve inside the tree (absolute,
// climbing out with "..", through other links, or dangling), and anything
// that is neither a directory, a regular file nor such a symlink. The
// error names the path, never the link's target.
func checkTree(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open checkout: %w", err)
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return &repoFileError{file: p, why: "cannot be read: " + errWithoutPath(err)}
		}
		if p == ".git" && d.IsDir() {
			return fs.SkipDir
		}
		m := d.Type()
		switch {
		case m.IsDir(), m.IsRegular():
			return nil
		case m&fs.ModeSymlink != 0:
			if _, err := root.Stat(p); err != nil {
				return &repoFileError{file: p, why: "is a symlink that does not resolve inside the repository"}
			}
			return nil
		}
		return &repoFileError{file: p, why: fmt.Sprintf("is not a regular file, directory or symlink (%s)", fileType(m))}
	})
}

// links returns the file's hard link count, 1 if unknown.
func links(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// fileType names a non-regular file's type.
func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	}
	return "mode " + m.String()
}

// errWithoutPath returns the error's text without the *PathError's path,
// which the caller names itself.
func errWithoutPath(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return strings.TrimSpace(pe.Op + ": " + pe.Err.Error())
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Op + ": " + le.Err.Error()
	}
	return err.Error()
}
