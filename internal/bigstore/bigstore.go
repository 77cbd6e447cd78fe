// Package bigstore builds the large store that issue 12's benchmarks run
// on (the API's list, build page and /metrics, the webhook ack at 500/s,
// the start-up of rida serve): Builds module builds, Deliveries planned
// deliveries and exactly Events events, every record written through the
// state package's exported methods as rida's own writes make them.
//
// Seeding takes a while, so the file is built once and cached on disk,
// keyed by this package's seed version and state.SchemaVersion, and shared
// by every benchmark binary (they may run at once: `make bench` runs the
// packages in parallel; a lock file makes one of them seed and the others
// wait). Benchmarks never open the cached file itself: they take a private
// copy with CopyTo, because opening a store writes to it.
//
// It is test support: only benchmarks import it.
package bigstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rida-build/rida/state"
)

// The size of the seeded store.
const (
	// Builds is the number of module builds: 300 streams (mod000 … mod299,
	// stream 1), 5 components each, a modulemd, all ready.
	Builds = 100_000
	// Deliveries is the number of GitHub push deliveries, each recorded
	// (RecordDelivery) and then planned (LeasePlanJob, CompletePlanJob
	// with the reason a component push outside every module gets).
	Deliveries = 200_000
	// Events is the exact length of the event log: what the writes above
	// log (one event per build, three per delivery), topped up with
	// RecordBuildErrors on the builds, round robin.
	Events = 1_000_000
	// Streams is the number of module streams the builds are spread over.
	Streams = 300
)

// seedVersion names the seed's content: change it whenever the seed
// changes, so a cached file from an older seed is not used.
const seedVersion = 2

// maxAge is how old a cached file may be. The seed's timestamps are the
// time it was written and rida serve's retention removes events after 90
// days by default: an older file would measure a start-up that prunes.
const maxAge = 30 * 24 * time.Hour

// Dir is where the cached file lives: $RIDA_BIGSTORE_DIR, else
// rida-bigstore in the system temp directory.
func Dir() string {
	if d := os.Getenv("RIDA_BIGSTORE_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "rida-bigstore")
}

func cachedName() string {
	return fmt.Sprintf("seed-v%d-schema%d.db", seedVersion, state.SchemaVersion)
}

// once keeps one process from taking the lock twice.
var once struct {
	sync.Once
	path string
	err  error
}

// Path returns the cached seeded file, seeding it first when it is
// missing or older than 30 days (about 1 to 3 minutes on a 2-core
// machine). Callers must not open it: use CopyTo.
func Path() (string, error) {
	once.Do(func() { once.path, once.err = ensure(Dir()) })
	return once.path, once.err
}

// CopyTo copies the seeded file (see Path) to dir/rida.db and returns that
// path, ready for state.Open or rida serve --data-dir dir.
func CopyTo(dir string) (string, error) {
	src, err := Path()
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "rida.db")
	if err := copyFile(src, dst); err != nil {
		return "", fmt.Errorf("bigstore: copy %s to %s: %w", src, dst, err)
	}
	return dst, nil
}

func ensure(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("bigstore: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("bigstore: %w", err)
	}
	defer lock.Close()
	// Another benchmark binary seeding at the same time: wait for it.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("bigstore: lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	path := filepath.Join(dir, cachedName())
	if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) < maxAge {
		return path, nil
	}
	// Files of other seed or schema versions are of no further use.
	old, _ := filepath.Glob(filepath.Join(dir, "seed-*.db*"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	tmp := path + ".tmp"
	if err := Seed(context.Background(), tmp); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("bigstore: %w", err)
	}
	return path, nil
}

// Seed writes the big store into a new file at path (it must not exist):
// Builds module builds, Deliveries planned deliveries, exactly Events
// events. It writes with state.Options.NoSync (no fsync per commit) and
// syncs the file once at the end.
func Seed(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("bigstore: seed %s: file exists", path)
	}
	st, err := state.Open(path, state.Options{NoSync: true})
	if err != nil {
		return err
	}
	if err := seed(ctx, st); err != nil {
		st.Close()
		return fmt.Errorf("bigstore: seed %s: %w", path, err)
	}
	if err := st.Close(); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

const modulemd = "document: modulemd\nversion: 2\ndata:\n  summary: s\n  description: d\n  license: {module: [MIT]}\n"

func seed(ctx context.Context, st *state.Store) error {
	for i := range Builds {
		mb := state.ModuleBuild{Name: fmt.Sprintf("mod%03d", i%Streams), Stream: "1", Version: uint64(i), Context: "c0ffee00",
			State: state.ModuleStateReady, Modulemd: modulemd, Identity: strconv.Itoa(i)}
		for c := range 5 {
			mb.Components = append(mb.Components, state.ComponentBuild{Key: fmt.Sprintf("pkg%d", c), Package: fmt.Sprintf("pkg%d", c),
				Batch: 2, State: "complete", NVR: fmt.Sprintf("pkg%d-1-1", c), RPMs: []string{fmt.Sprintf("pkg%d-0:1-1.noarch", c)}})
		}
		if _, err := st.PutModuleBuild(ctx, mb); err != nil {
			return err
		}
	}
	for i := range Deliveries {
		d := &state.Delivery{Forge: "github", DeliveryGUID: strconv.Itoa(i), Event: "push", Repo: "rpms/p", CloneURL: "https://x/rpms/p",
			Ref: "refs/heads/main", Before: fmt.Sprintf("%040x", i), After: fmt.Sprintf("%040x", i+1),
			Commits: []state.Commit{{ID: fmt.Sprintf("%040x", i+1), Message: "change"}}, Sender: "packager"}
		if _, err := st.RecordDelivery(ctx, d); err != nil {
			return err
		}
		// Planned as the planner plans a push to a component no module
		// lists: leased, then completed with a reason.
		job, err := st.LeasePlanJob(ctx, "bigstore", time.Minute)
		if err != nil {
			return err
		}
		if _, err := st.CompletePlanJob(ctx, job.ID, state.PlanResult{Worker: "bigstore", Reason: "no module uses rpms/p"}); err != nil {
			return err
		}
	}
	last, err := lastSeq(ctx, st)
	if err != nil {
		return err
	}
	if last > Events {
		return fmt.Errorf("the builds and deliveries logged %d events, more than %d", last, Events)
	}
	errs := []string{"pkg3: rpmbuild exited with status 1", "see build.log"}
	for n := range Events - last {
		if err := st.RecordBuildErrors(ctx, n%Builds+1, errs); err != nil {
			return err
		}
	}
	if last, err = lastSeq(ctx, st); err != nil {
		return err
	}
	if last != Events {
		return fmt.Errorf("%d events written, want %d", last, Events)
	}
	return nil
}

// lastSeq returns the event log's last sequence number: every seeded
// event is kept, so it is also their count.
func lastSeq(ctx context.Context, st *state.Store) (uint64, error) {
	var lo, hi uint64 = 0, 1
	has := func(seq uint64) (bool, error) {
		evs, err := st.EventsSince(ctx, seq-1, 1)
		return len(evs) > 0, err
	}
	for {
		ok, err := has(hi)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		lo, hi = hi, hi*2
	}
	// lo exists (or is 0), hi does not.
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := has(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return errors.Join(out.Sync(), out.Close())
}
