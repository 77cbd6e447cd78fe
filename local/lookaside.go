package local

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/rida-build/rida/scm"
)

// sourceEntry is one line of a dist-git "sources" file: a file kept in the
// lookaside cache instead of git.
type sourceEntry struct {
	file, algo, sum string
}

var (
	// "SHA512 (foo-1.0.tar.gz) = 0123..." (fedpkg's current format).
	taggedSource = regexp.MustCompile(`^([A-Za-z0-9]+) \(([^)/]+)\) = ([0-9a-fA-F]+)$`)
	// "0123...  foo-1.0.tar.gz" (the old md5 format).
	plainSource = regexp.MustCompile(`^([0-9a-fA-F]{32})\s+(\S+)$`)
)

// parseSources reads a dist-git "sources" file.
func parseSources(data []byte) ([]sourceEntry, error) {
	var out []sourceEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var e sourceEntry
		if m := taggedSource.FindStringSubmatch(line); m != nil {
			e = sourceEntry{file: m[2], algo: strings.ToLower(m[1]), sum: strings.ToLower(m[3])}
		} else if m := plainSource.FindStringSubmatch(line); m != nil {
			e = sourceEntry{file: m[2], algo: "md5", sum: strings.ToLower(m[1])}
		} else {
			// The line is not quoted: a sources file is repository content.
			return nil, fmt.Errorf("sources line %d is neither \"ALGO (file) = hash\" nor \"md5  file\"", n)
		}
		if !plainFileName(e.file) {
			return nil, fmt.Errorf("sources line %d does not name a plain file in the repository's top directory", n)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sources: %w", err)
	}
	return out, nil
}

// plainFileName reports whether name is a file name rida may create in a
// checkout's top directory: no separator, not "." or "..", not ".git", no
// control characters.
func plainFileName(name string) bool {
	if name == "" || name == "." || name == ".." || name == ".git" || len(name) > 255 ||
		strings.ContainsAny(name, "/\\") || !filepath.IsLocal(name) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func newHash(algo string) (hash.Hash, error) {
	switch algo {
	case "md5":
		return md5.New(), nil
	case "sha1":
		return sha1.New(), nil
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("hash %q is not supported (md5, sha1, sha256, sha512)", algo)
}

// lookasideError is a lookaside download that failed for a reason that is
// the component's (the file is not in the cache, its hash differs), as
// opposed to the cache being out of reach.
type lookasideError struct{ msg string }

func (e *lookasideError) Error() string { return e.msg }

// fetchSources downloads the files a component's "sources" file lists from
// the lookaside cache into dir, checking each against its hash; a file
// already there with the right hash is kept. cacheURL is the package's
// cache root (https://host/repo/pkgs/rpms/<name>); the file is at
// <cacheURL>/<file>/<algo>/<hash>/<file>, or <cacheURL>/<file>/<md5>/<file>
// for the old format, as dist-git serves them. A component without a
// "sources" file needs nothing.
//
// dir is the component's checkout: every file in it is read and written
// through an os.Root under the rules of openRegular, so a symlinked
// "sources", a "*.part" symlink or a file name with ".." cannot make rida
// read or write outside it. Problems of the checkout or of the cache's
// answer are the component's (*repoFileError, *lookasideError); a cache
// out of reach is an infrastructure error.
func (b *Backend) fetchSources(ctx context.Context, dir, cacheURL string, log io.Writer) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open checkout: %w", err)
	}
	defer root.Close()
	data, err := readRegular(root, "sources", maxSourcesFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	entries, err := parseSources(data)
	if err != nil {
		return &lookasideError{err.Error()}
	}
	if len(entries) > 0 && cacheURL == "" {
		return &lookasideError{"the component has a sources file but no lookaside cache is configured (backend.local.lookaside, or the component's cache: in the modulemd)"}
	}
	for _, e := range entries {
		ok, err := hashMatches(root, e)
		if err != nil {
			return err
		}
		if ok {
			fmt.Fprintf(log, "lookaside: %s already present\n", e.file)
			continue
		}
		u := strings.TrimRight(cacheURL, "/") + "/" + url.PathEscape(e.file) + "/"
		if e.algo != "md5" || len(e.sum) != 32 {
			u += e.algo + "/"
		}
		u += e.sum + "/" + url.PathEscape(e.file)
		if b.opts.URLs != nil {
			checked, err := b.opts.URLs.Check(u)
			if err != nil {
				return &lookasideError{"lookaside cache: " + err.Error()}
			}
			u = checked
		}
		fmt.Fprintf(log, "lookaside: GET %s\n", scm.Redact(u))
		if err := b.download(ctx, root, u, e); err != nil {
			return err
		}
	}
	return nil
}

// hashMatches reports whether the checkout already holds e.file with e's
// hash. A missing file does not match; one that is not a regular file is
// the component's error.
func hashMatches(root *os.Root, e sourceEntry) (bool, error) {
	f, _, err := openRegular(root, e.file, -1)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	h, err := newHash(e.algo)
	if err != nil {
		return false, &lookasideError{fmt.Sprintf("%s: %v", e.file, err)}
	}
	if _, err := io.Copy(h, f); err != nil {
		return false, &repoFileError{file: e.file, why: "cannot be read: " + errWithoutPath(err)}
	}
	return hex.EncodeToString(h.Sum(nil)) == e.sum, nil
}

// download fetches u into e.file inside root: into a fresh e.file+".part"
// (whatever had that name, a symlink included, is removed first, never
// followed), then renamed over e.file once its hash matches.
func (b *Backend) download(ctx context.Context, root *os.Root, u string, e sourceEntry) error {
	h, err := newHash(e.algo)
	if err != nil {
		return &lookasideError{fmt.Sprintf("%s: %v", e.file, err)}
	}
	shown := scm.Redact(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &lookasideError{fmt.Sprintf("%s: bad lookaside URL %s", e.file, shown)}
	}
	resp, err := b.opts.HTTPClient.Do(req)
	var refused *lookasideError
	if errors.As(err, &refused) {
		// A redirect the URL policy refuses (see New): the cache's answer.
		return &lookasideError{fmt.Sprintf("%s: %s %s", e.file, shown, refused.msg)}
	}
	if err != nil {
		return fmt.Errorf("lookaside %s: %s: %s", e.file, shown, errWithoutURL(err)) // out of reach: infrastructure
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return &lookasideError{fmt.Sprintf("%s is not in the lookaside cache (%s answered 404)", e.file, shown)}
	case resp.StatusCode >= 500:
		return fmt.Errorf("lookaside %s: %s answered %s", e.file, shown, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return &lookasideError{fmt.Sprintf("%s: %s answered %s", e.file, shown, resp.Status)}
	}
	tmp := e.file + ".part"
	if err := root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &repoFileError{file: tmp, why: "cannot be replaced: " + errWithoutPath(err)}
	}
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return &repoFileError{file: tmp, why: "cannot be created: " + errWithoutPath(err)}
	}
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		root.Remove(tmp)
		return fmt.Errorf("lookaside %s: %w", e.file, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.sum {
		root.Remove(tmp)
		return &lookasideError{fmt.Sprintf("%s from the lookaside cache has %s %s, the sources file says %s", e.file, e.algo, got, e.sum)}
	}
	if err := root.Rename(tmp, e.file); err != nil {
		root.Remove(tmp)
		return &repoFileError{file: e.file, why: "cannot be replaced by the downloaded file: " + errWithoutPath(err)}
	}
	return nil
}

// errWithoutURL returns an HTTP client error's text without the URL,
// which may carry credentials; the caller shows the redacted one.
func errWithoutURL(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}
