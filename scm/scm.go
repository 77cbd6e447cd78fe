// Package scm reads git repositories for rida: bare mirrors kept on disk and
// fetched incrementally, ref resolution, files at a commit, changed paths
// between commits, and remote ref listing. It wraps go-git and serialises all
// access to one mirror, because go-git repositories are not safe for
// concurrent use.
package scm

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/go-git/go-billy/v5/osfs"

	"github.com/rida-build/rida/urlpolicy"
)

// ErrNotFound is returned (wrapped) when a repository, ref, commit or file
// does not exist.
var ErrNotFound = errors.New("not found")

// missingRepo marks go-git's "repository not found" (a 404 from a server,
// a path that is not a repository) as ErrNotFound: a repository that does
// not exist is the content's fault (a modulemd naming it), not rida's.
// Other errors (unreachable host, refused credentials) are left as they
// are: infrastructure trouble.
func missingRepo(err error) error {
	if errors.Is(err, transport.ErrRepositoryNotFound) {
		return fmt.Errorf("repository %w", ErrNotFound)
	}
	return err
}

// ZeroHash is the all-zero object id forges send for "no commit" (branch
// creation or deletion).
const ZeroHash = "0000000000000000000000000000000000000000"

var (
	fullHash   = regexp.MustCompile(`^[0-9a-f]{40}$`)
	unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)
)

// IsHash reports whether s is a full 40-hex SHA-1 commit id.
func IsHash(s string) bool { return fullHash.MatchString(s) }

// Options configures Mirrors.
type Options struct {
	// Dir holds one bare mirror per repository URL. Required.
	Dir string
	// Logger receives fetch events. Default: slog.Default().
	Logger *slog.Logger
	// RepackAfter repacks a mirror once it holds more than this many pack
	// files, since every go-git fetch adds one and lookups slow down as
	// they pile up. Default 50 (git's gc.autoPackLimit).
	RepackAfter int
	// ObjectCache bounds the bytes of decoded objects go-git keeps in
	// memory per open mirror (an LRU). Default 16 MiB (go-git's own
	// default is 96 MiB per repository).
	ObjectCache int64
	// MaxBlob is the largest file Export writes; a bigger one fails the
	// export naming it. Default 512 MiB.
	MaxBlob int64
	// URLs is the policy every repository URL must pass before anything
	// is fetched, cloned, listed or exported (after NormalizeURL); the
	// mirror is then keyed and fetched by the URL's canonical form. A
	// refused URL is an error matching urlpolicy.ErrDenied (not
	// ErrNotFound). Default nil: no policy, URLs used as NormalizeURL
	// leaves them (rida build-local, whose repositories the operator
	// names).
	URLs *urlpolicy.Policy
}

// Defaults of Options.
const (
	DefaultObjectCache = 16 << 20
	DefaultMaxBlob     = 512 << 20
	// streamAbove: objects larger than this are streamed from their pack
	// (go-git's LargeObjectThreshold) instead of being read whole into
	// memory and cached.
	streamAbove = 1 << 20
)

// Mirrors keeps bare mirrors of remote repositories under one directory.
// It is safe for concurrent use; operations on the same URL are serialised,
// also across Mirrors values opened on the same directory in one process
// (rida serve's planner and local backend each hold one).
type Mirrors struct {
	opts  Options
	locks *lockTable
}

// lockTable holds the locks of the mirrors (keyed by their directories)
// of one mirror directory.
type lockTable struct {
	mu    sync.Mutex
	locks map[string]*mirror
}

// lockTables shares one lockTable per mirror directory in the process.
var lockTables = struct {
	sync.Mutex
	byDir map[string]*lockTable
}{byDir: map[string]*lockTable{}}

func lockTableFor(dir string) *lockTable {
	lockTables.Lock()
	defer lockTables.Unlock()
	t, ok := lockTables.byDir[dir]
	if !ok {
		t = &lockTable{locks: map[string]*mirror{}}
		lockTables.byDir[dir] = t
	}
	return t
}

// mirror serialises every use of one mirror directory and counts its
// repacks, so Repo handles opened before a repack reopen the repository
// instead of reading pack files that are gone.
type mirror struct {
	mu  sync.Mutex
	gen int
}

// NewMirrors returns a Mirrors rooted at opts.Dir, creating it if needed.
func NewMirrors(opts Options) (*Mirrors, error) {
	if opts.Dir == "" {
		return nil, errors.New("scm: Options.Dir is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RepackAfter <= 0 {
		opts.RepackAfter = 50
	}
	if opts.ObjectCache <= 0 {
		opts.ObjectCache = DefaultObjectCache
	}
	if opts.MaxBlob <= 0 {
		opts.MaxBlob = DefaultMaxBlob
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("scm: mirror dir %s: %w", opts.Dir, err)
	}
	opts.Dir = dir
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("scm: create mirror dir: %w", err)
	}
	return &Mirrors{opts: opts, locks: lockTableFor(dir)}, nil
}

// storage returns go-git's storage of the bare repository in dir with a
// sized object cache, streaming objects above streamAbove bytes.
func storage(dir string, cacheSize int64) *filesystem.Storage {
	return filesystem.NewStorageWithOptions(osfs.New(dir),
		cache.NewObjectLRU(cache.FileSize(cacheSize)),
		filesystem.Options{LargeObjectThreshold: streamAbove})
}

// open opens the bare repository in dir through storage.
func open(dir string, cacheSize int64) (*git.Repository, error) {
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); errors.Is(err, os.ErrNotExist) {
		return nil, git.ErrRepositoryNotExists
	}
	return git.Open(storage(dir, cacheSize), nil)
}

// NormalizeURL turns a plain local path into a file:// URL and leaves other
// URLs as they are, so one repository has one mirror whatever form names it.
func NormalizeURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("scm: empty repository URL")
	}
	if strings.HasPrefix(raw, "/") {
		return "file://" + filepath.Clean(raw), nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("scm: repository URL %q: %w", Redact(raw), err)
	}
	switch u.Scheme {
	case "file", "http", "https", "ssh", "git":
		return raw, nil
	case "":
		abs, err := filepath.Abs(raw)
		if err != nil {
			return "", fmt.Errorf("scm: repository path %q: %w", raw, err)
		}
		return "file://" + abs, nil
	default:
		return "", fmt.Errorf("scm: repository URL %q: unsupported scheme %q", Redact(raw), u.Scheme)
	}
}

// Redact removes a password or token from a URL so it can be logged.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = url.User(u.User.Username())
	return u.String()
}

// Check normalizes rawURL (NormalizeURL) and applies Options.URLs: it
// returns the URL's canonical form, which is what m fetches, or an error
// matching urlpolicy.ErrDenied naming the URL without its password.
func (m *Mirrors) Check(rawURL string) (string, error) {
	u, err := NormalizeURL(rawURL)
	if err != nil || m.opts.URLs == nil {
		return u, err
	}
	c, err := m.opts.URLs.Check(u)
	if err != nil {
		return "", fmt.Errorf("scm: repository %w", err)
	}
	return c, nil
}

// ListRemoteRefs is the package's ListRemoteRefs for a URL that passes
// Options.URLs.
func (m *Mirrors) ListRemoteRefs(ctx context.Context, rawURL string) (map[string]string, error) {
	u, err := m.Check(rawURL)
	if err != nil {
		return nil, err
	}
	return ListRemoteRefs(ctx, u)
}

func (m *Mirrors) mirror(key string) *mirror {
	t := m.locks
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.locks[key]
	if !ok {
		l = &mirror{}
		t.locks[key] = l
	}
	return l
}

func (m *Mirrors) dirFor(u string) string {
	sum := sha256.Sum256([]byte(u))
	base := filepath.Base(strings.TrimSuffix(strings.TrimRight(u, "/"), ".git"))
	base = unsafeName.ReplaceAllString(base, "_")
	return filepath.Join(m.opts.Dir, base+"-"+hex.EncodeToString(sum[:6])+".git")
}

// Repo is a fetched bare mirror. Its methods are safe for concurrent use.
type Repo struct {
	URL    string
	Dir    string
	repo   *git.Repository
	mirror *mirror
	gen    int
	cache  int64 // object cache size when reopened
}

// lock takes the mirror's lock and reopens the repository if it was
// repacked since this handle was opened.
func (r *Repo) lock() error {
	r.mirror.mu.Lock()
	if r.gen != r.mirror.gen {
		repo, err := open(r.Dir, cmp.Or(r.cache, DefaultObjectCache))
		if err != nil {
			r.mirror.mu.Unlock()
			return fmt.Errorf("scm: reopen %s: %w", r.Dir, err)
		}
		r.repo, r.gen = repo, r.mirror.gen
	}
	return nil
}

func (r *Repo) unlock() { r.mirror.mu.Unlock() }

// Fetch brings the mirror of rawURL up to date (cloning it the first time)
// and returns it. All branches and tags are mirrored as refs/heads/* and
// refs/tags/*, so a forced push moves the local ref too.
func (m *Mirrors) Fetch(ctx context.Context, rawURL string) (*Repo, error) {
	return m.get(ctx, rawURL, "")
}

// get returns the mirror of rawURL. With have a full commit hash already
// in the mirror, nothing is fetched (a commit never changes); otherwise the
// mirror is fetched (cloned the first time).
func (m *Mirrors) get(ctx context.Context, rawURL, have string) (*Repo, error) {
	u, err := m.Check(rawURL)
	if err != nil {
		return nil, err
	}
	mi := m.mirror(m.dirFor(u))
	mi.mu.Lock()
	defer mi.mu.Unlock()
	r, dir, err := m.fetchLocked(ctx, u, mi, have)
	if err != nil {
		return nil, err
	}
	stampUsed(dir)
	return &Repo{URL: u, Dir: dir, repo: r, mirror: mi, gen: mi.gen, cache: m.opts.ObjectCache}, nil
}

// fetchLocked is get's body, run with mi's lock held.
func (m *Mirrors) fetchLocked(ctx context.Context, u string, mi *mirror, have string) (*git.Repository, string, error) {
	dir := m.dirFor(u)
	start := time.Now()
	r, err := open(dir, m.opts.ObjectCache)
	switch {
	case errors.Is(err, git.ErrRepositoryNotExists):
		if r, err = m.cloneWithGit(ctx, u, dir); err != nil {
			// go-git's clone then, whose errors tell a missing repository
			// (ErrNotFound) from trouble reaching it.
			m.opts.Logger.Debug("scm: git clone failed, cloning with go-git", "url", Redact(u), "err", err)
			_ = os.RemoveAll(dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, "", fmt.Errorf("scm: clone %s: %w", Redact(u), err)
			}
			r, err = git.CloneContext(ctx, storage(dir, m.opts.ObjectCache), nil, &git.CloneOptions{URL: u, Mirror: true, Tags: git.NoTags})
			if err != nil {
				_ = os.RemoveAll(dir)
				return nil, "", fmt.Errorf("scm: clone %s: %w", Redact(u), missingRepo(err))
			}
		}
		m.opts.Logger.Debug("scm: cloned mirror", "url", Redact(u), "took", time.Since(start))
	case err != nil:
		return nil, "", fmt.Errorf("scm: open mirror of %s: %w", Redact(u), err)
	case have != "" && hasCommit(r, have):
		m.opts.Logger.Debug("scm: commit already in mirror, not fetched", "url", Redact(u), "commit", have)
	default:
		err = r.FetchContext(ctx, &git.FetchOptions{
			RefSpecs: []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
			Force:    true, Prune: true, Tags: git.NoTags,
		})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil, "", fmt.Errorf("scm: fetch %s: %w", Redact(u), missingRepo(err))
		}
		m.opts.Logger.Debug("scm: fetched mirror", "url", Redact(u), "took", time.Since(start))
		if m.maybeRepack(dir) {
			// Handles opened earlier point at the packs just replaced.
			mi.gen++
			if r, err = open(dir, m.opts.ObjectCache); err != nil {
				return nil, "", fmt.Errorf("scm: reopen mirror of %s after repack: %w", Redact(u), err)
			}
		}
	}
	return r, dir, nil
}

// cloneWithGit makes the first copy of a mirror with git's own
// "git clone --bare" (branches to refs/heads/*, tags to refs/tags/*, HEAD
// as the remote's), then opens it with go-git, which does everything else.
// A thin wrapper over a measured shortfall: go-git's clone of a repository
// with 20,000 commits took 2× as long as git's and allocated ~470 MB in
// rida's process while indexing the pack (docs/benchmarks.md). Any
// failure (no git, an unreachable or missing repository) returns an error
// and the caller clones with go-git instead.
func (m *Mirrors) cloneWithGit(ctx context.Context, u, dir string) (*git.Repository, error) {
	bin, err := exec.LookPath("git")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "clone", "--bare", "--quiet", "--", u, dir)
	// Never prompt for credentials; no user or system configuration.
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("git clone: %w: %s", err, redactIn(strings.TrimSpace(string(out)), u))
	}
	r, err := open(dir, m.opts.ObjectCache)
	if err != nil {
		return nil, fmt.Errorf("open after git clone: %w", err)
	}
	return r, nil
}

// redactIn replaces the URL u in s by its redacted form.
func redactIn(s, u string) string {
	if shown := Redact(u); shown != u {
		return strings.ReplaceAll(s, u, shown)
	}
	return s
}

// hasCommit reports whether the commit with full hash h is in r.
func hasCommit(r *git.Repository, h string) bool {
	if !IsHash(h) {
		return false
	}
	_, err := r.CommitObject(plumbing.NewHash(h))
	return err == nil
}

// maybeRepack repacks the mirror in dir when it holds too many packs and
// reports whether it did.
func (m *Mirrors) maybeRepack(dir string) bool {
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if len(packs) <= m.opts.RepackAfter {
		return false
	}
	// git's own repack, not go-git's RepackObjects: the latter was seen to
	// lose objects fetched into the mirror afterwards (a commit fetched
	// after the repack could not be found).
	out, err := exec.Command("git", "-C", dir, "repack", "-a", "-d", "-q").CombinedOutput()
	if err != nil {
		m.opts.Logger.Warn("scm: repack failed", "dir", dir, "err", err, "output", strings.TrimSpace(string(out)))
	}
	return true
}

// Open opens a repository on disk directly (a working tree or a bare
// repository), without mirroring it.
func Open(path string) (*Repo, error) {
	r, err := git.PlainOpenWithOptions(path, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, fmt.Errorf("scm: open %s: %w", path, err)
	}
	return &Repo{URL: "file://" + path, Dir: path, repo: r, mirror: &mirror{}}, nil
}

// Resolve turns a branch name, tag name, full ref name or commit hash into
// the full hash of a commit (annotated tags are peeled).
func (r *Repo) Resolve(ref string) (string, error) {
	if err := r.lock(); err != nil {
		return "", err
	}
	defer r.unlock()
	return r.resolve(ref)
}

func (r *Repo) resolve(ref string) (string, error) {
	if ref == "" {
		ref = "HEAD"
	}
	candidates := []string{ref}
	if !strings.HasPrefix(ref, "refs/") && ref != "HEAD" && !IsHash(ref) {
		candidates = []string{"refs/heads/" + ref, "refs/tags/" + ref, "refs/remotes/origin/" + ref}
	}
	for _, c := range candidates {
		h, err := r.repo.ResolveRevision(plumbing.Revision(c))
		if err == nil {
			if _, err := r.repo.CommitObject(*h); err != nil {
				return "", fmt.Errorf("scm: %s: ref %q: %w", Redact(r.URL), ref, ErrNotFound)
			}
			return h.String(), nil
		}
	}
	return "", fmt.Errorf("scm: %s: ref %q: %w", Redact(r.URL), ref, ErrNotFound)
}

// DefaultBranch returns the branch the repository's HEAD names (for a
// mirror: the remote's default branch).
func (r *Repo) DefaultBranch() (string, error) {
	if err := r.lock(); err != nil {
		return "", err
	}
	defer r.unlock()
	ref, err := r.repo.Storer.Reference(plumbing.HEAD)
	if err != nil {
		return "", fmt.Errorf("scm: %s: HEAD: %w", Redact(r.URL), err)
	}
	if ref.Type() != plumbing.SymbolicReference || !ref.Target().IsBranch() {
		return "", fmt.Errorf("scm: %s: HEAD does not name a branch", Redact(r.URL))
	}
	return ref.Target().Short(), nil
}

// Commit is what rida needs to know about one commit.
type Commit struct {
	Hash    string
	Time    time.Time // committer time, UTC
	Message string
}

// Commit returns the commit a ref resolves to.
func (r *Repo) Commit(ref string) (Commit, error) {
	if err := r.lock(); err != nil {
		return Commit{}, err
	}
	defer r.unlock()
	h, err := r.resolve(ref)
	if err != nil {
		return Commit{}, err
	}
	c, err := r.repo.CommitObject(plumbing.NewHash(h))
	if err != nil {
		return Commit{}, fmt.Errorf("scm: %s: commit %s: %w", Redact(r.URL), h, err)
	}
	return Commit{Hash: h, Time: c.Committer.When.UTC(), Message: c.Message}, nil
}

// ReadFile returns the content of path at commit (a hash or ref). A file
// larger than limit bytes is refused (limit <= 0 means no limit).
func (r *Repo) ReadFile(commit, path string, limit int64) ([]byte, error) {
	if err := r.lock(); err != nil {
		return nil, err
	}
	defer r.unlock()
	h, err := r.resolve(commit)
	if err != nil {
		return nil, err
	}
	c, err := r.repo.CommitObject(plumbing.NewHash(h))
	if err != nil {
		return nil, fmt.Errorf("scm: %s: commit %s: %w", Redact(r.URL), h, err)
	}
	f, err := c.File(path)
	if errors.Is(err, object.ErrFileNotFound) {
		return nil, fmt.Errorf("scm: %s: %s at %.12s: %w", Redact(r.URL), path, h, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("scm: %s: %s at %.12s: %w", Redact(r.URL), path, h, err)
	}
	if limit > 0 && f.Size > limit {
		return nil, fmt.Errorf("scm: %s: %s at %.12s is %d bytes, over the %d byte limit", Redact(r.URL), path, h, f.Size, limit)
	}
	rd, err := f.Reader()
	if err != nil {
		return nil, fmt.Errorf("scm: %s: read %s: %w", Redact(r.URL), path, err)
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// ChangedPaths lists the paths that differ between the trees of two commits
// (both sides of a rename count; no rename detection, so no blob reads).
// An empty from means "everything in to changed".
func (r *Repo) ChangedPaths(ctx context.Context, from, to string) ([]string, error) {
	if err := r.lock(); err != nil {
		return nil, err
	}
	defer r.unlock()
	tt, err := r.tree(to)
	if err != nil {
		return nil, err
	}
	var ft *object.Tree
	if from != "" && from != ZeroHash {
		if ft, err = r.tree(from); err != nil {
			return nil, err
		}
	}
	changes, err := object.DiffTreeWithOptions(ctx, ft, tt, nil)
	if err != nil {
		return nil, fmt.Errorf("scm: %s: diff %.12s..%.12s: %w", Redact(r.URL), from, to, err)
	}
	seen := map[string]bool{}
	var out []string
	for _, ch := range changes {
		for _, n := range []string{ch.From.Name, ch.To.Name} {
			if n != "" && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out, nil
}

func (r *Repo) tree(ref string) (*object.Tree, error) {
	h, err := r.resolve(ref)
	if err != nil {
		return nil, err
	}
	c, err := r.repo.CommitObject(plumbing.NewHash(h))
	if err != nil {
		return nil, fmt.Errorf("scm: %s: commit %s: %w", Redact(r.URL), h, err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("scm: %s: tree of %s: %w", Redact(r.URL), h, err)
	}
	return t, nil
}

// ListRemoteRefs lists the refs a remote advertises (ls-remote), as full ref
// name → commit hash, without cloning. It applies no URL policy: use
// Mirrors.ListRemoteRefs for URLs that come from content.
func ListRemoteRefs(ctx context.Context, rawURL string) (map[string]string, error) {
	u, err := NormalizeURL(rawURL)
	if err != nil {
		return nil, err
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{u}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{PeelingOption: git.AppendPeeled})
	if err != nil {
		return nil, fmt.Errorf("scm: ls-remote %s: %w", Redact(u), missingRepo(err))
	}
	out := make(map[string]string, len(refs))
	for _, ref := range refs {
		if ref.Type() != plumbing.HashReference {
			continue
		}
		out[ref.Name().String()] = ref.Hash().String()
	}
	// An annotated tag's peeled entry names the commit; prefer it.
	for name, h := range out {
		if strings.HasSuffix(name, "^{}") {
			out[strings.TrimSuffix(name, "^{}")] = h
			delete(out, name)
		}
	}
	return out, nil
}

// Resolver resolves component refs for modulemd enrichment. Branches and
// tags are looked up with ls-remote; a commit hash is checked to exist in
// the repository's mirror, fetched only when the commit is not there yet.
type Resolver struct {
	Mirrors *Mirrors
}

// ResolveRef returns the full commit hash ref names in repository. A commit
// hash already in the mirror is not fetched again.
func (s Resolver) ResolveRef(ctx context.Context, repository, ref string) (string, error) {
	if IsHash(ref) {
		repo, err := s.Mirrors.get(ctx, repository, ref)
		if err != nil {
			return "", err
		}
		return repo.Resolve(ref)
	}
	refs, err := s.Mirrors.ListRemoteRefs(ctx, repository)
	if err != nil {
		return "", err
	}
	for _, name := range []string{ref, "refs/heads/" + ref, "refs/tags/" + ref} {
		if h, ok := refs[name]; ok {
			return h, nil
		}
	}
	return "", fmt.Errorf("scm: %s: ref %q: %w", Redact(repository), ref, ErrNotFound)
}
