package scm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// maxSymlinkTarget caps a symlink's target (PATH_MAX).
const maxSymlinkTarget = 4096

// TreeError is a file of an exported tree that rida refuses to write: a
// name that is not a plain path element, a file over Options.MaxBlob, an
// unknown mode. It names the path inside the tree and never quotes
// content. The repository's content is at fault, not rida.
type TreeError struct {
	Path string
	Why  string
}

func (e *TreeError) Error() string { return e.Path + ": " + e.Why }

// Export writes the tree of commit rev of the repository at rawURL into
// dir, taken from the repository's mirror: fetched only when rev is not a
// full hash already in the mirror (the planner fetched it for the push, or
// an earlier build did), cloned the first time.
//
// Only the tree is written, no history and no .git: directories (0755),
// regular files (0644, 0755 when git records them executable) and
// symlinks, whose targets are written as they are (the caller checks they
// stay inside the tree). Submodules become empty directories, as git
// leaves them; their content is not fetched. Every write goes through an
// os.Root of dir and creates a new entry (O_EXCL, Mkdir): nothing is
// followed out of dir and nothing is overwritten, so a tree with duplicate
// names fails. Entry names must be plain path elements (no "/", NUL, ".",
// "..", ".git"). A file larger than Options.MaxBlob fails the export,
// naming it. Blobs are streamed to disk, never held whole in memory.
//
// Problems of the tree are *TreeError; a missing repository or commit
// wraps ErrNotFound.
func (m *Mirrors) Export(ctx context.Context, rawURL, rev, dir string) error {
	repo, err := m.get(ctx, rawURL, rev)
	if err != nil {
		return err
	}
	if err := repo.lock(); err != nil {
		return err
	}
	defer repo.unlock()
	t, err := repo.tree(rev)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("scm: export %s: %w", Redact(repo.URL), err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("scm: export %s: %w", Redact(repo.URL), err)
	}
	defer root.Close()
	x := exporter{ctx: ctx, repo: repo, root: root, maxBlob: m.opts.MaxBlob}
	if err := x.tree(t, ""); err != nil {
		var te *TreeError
		if errors.As(err, &te) {
			return err
		}
		return fmt.Errorf("scm: export %s at %.12s: %w", Redact(repo.URL), rev, err)
	}
	return nil
}

type exporter struct {
	ctx     context.Context
	repo    *Repo
	root    *os.Root
	maxBlob int64
}

// tree writes the entries of t under the directory prefix ("" for the top).
func (x *exporter) tree(t *object.Tree, prefix string) error {
	for _, e := range t.Entries {
		if err := x.ctx.Err(); err != nil {
			return context.Cause(x.ctx)
		}
		p := path.Join(prefix, e.Name)
		if why := badName(e.Name); why != "" {
			quoted := fmt.Sprintf("%q", e.Name)
			if prefix != "" {
				quoted = prefix + "/" + quoted
			}
			return &TreeError{Path: quoted, Why: why}
		}
		switch e.Mode {
		case filemode.Dir:
			if err := x.mkdir(p); err != nil {
				return err
			}
			sub, err := x.repo.repo.TreeObject(e.Hash)
			if err != nil {
				return fmt.Errorf("tree %s: %w", p, err)
			}
			if err := x.tree(sub, p); err != nil {
				return err
			}
		case filemode.Regular, filemode.Deprecated:
			if err := x.file(p, e.Hash, 0o644); err != nil {
				return err
			}
		case filemode.Executable:
			if err := x.file(p, e.Hash, 0o755); err != nil {
				return err
			}
		case filemode.Symlink:
			if err := x.symlink(p, e.Hash); err != nil {
				return err
			}
		case filemode.Submodule:
			// As git leaves an uninitialised submodule: an empty directory.
			if err := x.mkdir(p); err != nil {
				return err
			}
		default:
			return &TreeError{Path: p, Why: fmt.Sprintf("has git mode %o, which rida does not write", uint32(e.Mode))}
		}
	}
	return nil
}

// badName says why name cannot be a path element of an exported tree, or
// "" when it can.
func badName(name string) string {
	switch {
	case name == "", name == ".", name == "..":
		return "is not a file name"
	case strings.ContainsAny(name, "/\x00"):
		return "has a slash or NUL in its name"
	case strings.EqualFold(name, ".git"):
		return "is named .git, which rida does not write"
	}
	return ""
}

func (x *exporter) mkdir(p string) error {
	if err := x.root.Mkdir(p, 0o755); err != nil {
		return x.writeErr(p, err)
	}
	return nil
}

// writeErr turns an error creating p into a *TreeError when the tree is at
// fault (the name exists already: a duplicate entry), else returns it.
func (x *exporter) writeErr(p string, err error) error {
	if errors.Is(err, fs.ErrExist) {
		return &TreeError{Path: p, Why: "appears twice in the tree"}
	}
	return fmt.Errorf("write %s: %w", p, err)
}

// blob returns the blob h after checking its size against limit.
func (x *exporter) blob(p string, h plumbing.Hash, limit int64) (*object.Blob, error) {
	b, err := x.repo.repo.BlobObject(h)
	if err != nil {
		return nil, fmt.Errorf("blob of %s: %w", p, err)
	}
	if b.Size > limit {
		return nil, &TreeError{Path: p, Why: fmt.Sprintf("is %d bytes, more than the %d allowed", b.Size, limit)}
	}
	return b, nil
}

// file streams blob h into a new file p with mode perm.
func (x *exporter) file(p string, h plumbing.Hash, perm os.FileMode) (err error) {
	b, err := x.blob(p, h, x.maxBlob)
	if err != nil {
		return err
	}
	rd, err := b.Reader()
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	defer rd.Close()
	f, err := x.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
	if err != nil {
		return x.writeErr(p, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %s: %w", p, cerr)
		}
	}()
	// The size was checked from the object's header; the limit holds even
	// if the stream says otherwise.
	n, err := io.Copy(f, io.LimitReader(ctxReader{x.ctx, rd}, x.maxBlob+1))
	if err != nil {
		if x.ctx.Err() != nil {
			return context.Cause(x.ctx)
		}
		return fmt.Errorf("write %s: %w", p, err)
	}
	if n > x.maxBlob {
		return &TreeError{Path: p, Why: fmt.Sprintf("is more than the %d bytes allowed", x.maxBlob)}
	}
	// The umask must not take the executable bit git records.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// symlink creates symlink p with blob h as its target.
func (x *exporter) symlink(p string, h plumbing.Hash) error {
	b, err := x.blob(p, h, maxSymlinkTarget)
	if err != nil {
		return err
	}
	rd, err := b.Reader()
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	defer rd.Close()
	target, err := io.ReadAll(io.LimitReader(rd, maxSymlinkTarget+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if len(target) == 0 || len(target) > maxSymlinkTarget || strings.IndexByte(string(target), 0) >= 0 {
		return &TreeError{Path: p, Why: "is a symlink with an empty, NUL-holding or over-long target"}
	}
	if err := x.root.Symlink(string(target), p); err != nil {
		return x.writeErr(p, err)
	}
	return nil
}

// ctxReader stops a long copy when ctx ends.
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
