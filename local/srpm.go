package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rida-build/rida/runner"
)

// takeSRPM copies component c's uploaded source RPM (c.SRPM, a path
// relative to Options.Uploads) into dir and checks with rpm that it is a
// source package of c's package. It returns the copy's path, or why the
// component fails (the SRPM is not usable), or an error for trouble of
// rida's own (the uploads directory cannot be read).
//
// The upload is read only as a regular file with one link inside the
// uploads directory (no symlink or ".." leads out of it); the copy, made
// with O_EXCL, is what rpmbuild gets, inside the component's work
// directory that the sandbox binds.
func (b *Backend) takeSRPM(ctx context.Context, st *buildState, c *runner.Component, dir string, log io.Writer) (path, why string, err error) {
	fmt.Fprintf(log, "+ take the uploaded source RPM %s\n", c.SRPM)
	if b.opts.Uploads == "" {
		return "", "", errors.New("the component is to be built from an uploaded SRPM, and this backend has no uploads directory (Options.Uploads)")
	}
	if !filepath.IsLocal(c.SRPM) || !strings.HasSuffix(c.SRPM, ".src.rpm") {
		return "", fmt.Sprintf("SRPM %q is not a .src.rpm file inside the uploads directory", c.SRPM), nil
	}
	root, err := os.OpenRoot(b.opts.Uploads)
	if err != nil {
		return "", "", fmt.Errorf("open the uploads directory: %w", err)
	}
	defer root.Close()
	in, _, err := openRegular(root, c.SRPM, -1)
	var re *repoFileError
	switch {
	case errors.As(err, &re):
		return "", "SRPM " + err.Error(), nil
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Sprintf("SRPM %s is no longer in the uploads directory", c.SRPM), nil
	case err != nil:
		return "", "", fmt.Errorf("open SRPM %s: %w", c.SRPM, err)
	}
	defer in.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, filepath.Base(c.SRPM))
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return "", "", fmt.Errorf("copy SRPM %s: %w", c.SRPM, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", "", fmt.Errorf("copy SRPM %s: %w", c.SRPM, err)
	}
	if err := out.Close(); err != nil {
		return "", "", fmt.Errorf("copy SRPM %s: %w", c.SRPM, err)
	}
	// The package name from the header, not from the file name.
	got, err := b.tool(ctx, "query the uploaded SRPM", b.opts.Test.RPM, log,
		"--dbpath", st.rpmdb, "-qp", "--qf", `%{NAME}\t%{SOURCERPM}\n`, path)
	if err != nil {
		var te *ToolError
		if errors.As(err, &te) && ctx.Err() == nil {
			return "", fmt.Sprintf("SRPM %s is not a package rpm can read (rpm: %v)", c.SRPM, te.Err), nil
		}
		return "", "", err
	}
	name, source, _ := strings.Cut(strings.TrimSpace(string(got)), "\t")
	switch {
	case source != "(none)":
		return "", fmt.Sprintf("SRPM %s is a binary package, not a source RPM", c.SRPM), nil
	case name != c.Package:
		return "", fmt.Sprintf("SRPM %s is package %q, not %q", c.SRPM, name, c.Package), nil
	}
	return path, "", nil
}
