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
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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
		if m := taggedSource.FindStringSubmatch(line); m != nil {
			out = append(out, sourceEntry{file: m[2], algo: strings.ToLower(m[1]), sum: strings.ToLower(m[3])})
			continue
		}
		if m := plainSource.FindStringSubmatch(line); m != nil && !strings.Contains(m[2], "/") {
			out = append(out, sourceEntry{file: m[2], algo: "md5", sum: strings.ToLower(m[1])})
			continue
		}
		return nil, fmt.Errorf("sources line %d: %q is neither \"ALGO (file) = hash\" nor \"md5  file\"", n, line)
	}
	return out, sc.Err()
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
func (b *Backend) fetchSources(ctx context.Context, dir, cacheURL string, log io.Writer) error {
	data, err := os.ReadFile(filepath.Join(dir, "sources"))
	if errors.Is(err, os.ErrNotExist) {
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
		dst := filepath.Join(dir, e.file)
		if ok, err := hashMatches(dst, e); err == nil && ok {
			fmt.Fprintf(log, "lookaside: %s already present\n", e.file)
			continue
		}
		u := strings.TrimRight(cacheURL, "/") + "/" + url.PathEscape(e.file) + "/"
		if e.algo != "md5" || len(e.sum) != 32 {
			u += e.algo + "/"
		}
		u += e.sum + "/" + url.PathEscape(e.file)
		fmt.Fprintf(log, "lookaside: GET %s\n", u)
		if err := b.download(ctx, u, dst, e); err != nil {
			return err
		}
	}
	return nil
}

func hashMatches(path string, e sourceEntry) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h, err := newHash(e.algo)
	if err != nil {
		return false, err
	}
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == e.sum, nil
}

func (b *Backend) download(ctx context.Context, u, dst string, e sourceEntry) error {
	h, err := newHash(e.algo)
	if err != nil {
		return &lookasideError{fmt.Sprintf("%s: %v", e.file, err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &lookasideError{fmt.Sprintf("%s: %v", e.file, err)}
	}
	resp, err := b.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("lookaside %s: %w", e.file, err) // out of reach: infrastructure
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return &lookasideError{fmt.Sprintf("%s is not in the lookaside cache (%s answered 404)", e.file, u)}
	case resp.StatusCode >= 500:
		return fmt.Errorf("lookaside %s: %s answered %s", e.file, u, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return &lookasideError{fmt.Sprintf("%s: %s answered %s", e.file, u, resp.Status)}
	}
	tmp := dst + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("lookaside %s: %w", e.file, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.sum {
		os.Remove(tmp)
		return &lookasideError{fmt.Sprintf("%s from the lookaside cache has %s %s, the sources file says %s", e.file, e.algo, got, e.sum)}
	}
	return os.Rename(tmp, dst)
}
