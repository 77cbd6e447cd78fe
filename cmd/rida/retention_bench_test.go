package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/runner/runnertest"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/state"

	bolt "go.etcd.io/bbolt"
)

// treeBackend is the simulated backend writing a build tree as the local
// backend's would be laid out (logs at Prepare, repo/ at Finish), of
// treeLogs + treeRepo bytes, so retention has trees to remove.
type treeBackend struct {
	*runnertest.SimBackend
	dir string
}

const treeLogs, treeRepo = 64 << 10, 192 << 10

func (t treeBackend) tree(b *runner.Build) string {
	return local.TreeDir(t.dir, b.Name, b.Stream, b.Version, b.Context, b.ID)
}

func writeFile(path string, n int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strings.Repeat("x", n)), 0o644)
}

func (t treeBackend) Prepare(ctx context.Context, b *runner.Build) error {
	return writeFile(filepath.Join(t.tree(b), "logs", "build.log"), treeLogs)
}

func (t treeBackend) Finish(ctx context.Context, b *runner.Build) (*runner.Result, error) {
	res, err := t.SimBackend.Finish(ctx, b)
	if err != nil {
		return nil, err
	}
	repo := filepath.Join(t.tree(b), "repo")
	if err := writeFile(filepath.Join(repo, "packages.rpm"), treeRepo); err != nil {
		return nil, err
	}
	res.Dir, res.Location = repo, repo
	return res, nil
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// BenchmarkRetention_1000Builds runs 1,000 successive module builds of the
// demo module (a component commit pushed before each; every 10th build
// fails) through the runner on the simulated backend with a real store and
// real git mirrors, with a simulated clock 6 hours apart per build, and
// the retention run (pruner.runOnce, the built-in retention) after each
// build. Every 100 builds it logs the disk use: rida.db's file size, its
// pages in use (file size less bbolt's free pages, read from a snapshot)
// and its size after `rida compact` (of a snapshot), the build trees, the
// mirrors, the events, the build records and requests stored. At the end
// the store must pass Check.
func BenchmarkRetention_1000Builds(b *testing.B) {
	builds := 1000
	if s := os.Getenv("RIDA_RETENTION_BUILDS"); s != "" {
		fmt.Sscan(s, &builds)
	}
	for b.Loop() {
		runRetention(b, builds)
	}
}

func runRetention(b *testing.B, builds int) {
	ctx := context.Background()
	dir := b.TempDir()
	layout, err := examples.CreateRepos(filepath.Join(dir, "git"), examples.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	dbPath := filepath.Join(dir, "rida.db")
	store, err := state.Open(dbPath, state.Options{Now: now})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mirrors, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(dir, "mirrors"), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	trees := filepath.Join(dir, "builds")
	sim := &runnertest.SimBackend{Default: time.Millisecond, Fail: map[string]bool{}}
	finished := make(chan state.ModuleBuild, 16)
	r, err := runner.New(runner.Options{
		Store: store, Backend: treeBackend{sim, trees}, Modules: runner.SCMModules{Mirrors: mirrors}, Resolver: scm.Resolver{Mirrors: mirrors},
		NotFound: scm.ErrNotFound, RebuildStrategy: runner.StrategyChangedAndAfter, Logger: quiet, PollInterval: 20 * time.Millisecond,
		OnFinish: func(mb state.ModuleBuild) { finished <- mb },
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer r.Stop()
	p := &pruner{store: store, log: quiet, r: state.DefaultRetention, treesDir: trees, mirrors: mirrors, mirrorAge: defaultMirrorRetention}
	comp := layout.Components["rida-demo-tools"]
	// The table goes to stdout: a benchmark's own log is cut at 10 lines.
	logf := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	logf("| builds | simulated days | rida.db | in use | compacted | build trees (count) | mirrors | events | build records / requests | failed / ready | ms per build (last 100) | of which retention |")
	logf("|---|---|---|---|---|---|---|---|---|---|---|---|")
	var failed, ready int
	start := time.Now()
	lap, lapAt := start, 0
	var pruneTime time.Duration // the retention runs' since lap
	for i := 1; i <= builds; i++ {
		if _, err := comp.CommitFiles(fmt.Sprintf("push %d", i), map[string]string{"N": fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
		sim.Fail["rida-demo-tools"] = i%10 == 0
		if _, err := store.Enqueue(ctx, state.BuildRequest{
			Module: examples.ModuleName, Stream: examples.ModuleStream, Kind: state.RequestComponent,
			Reasons: []string{fmt.Sprintf("push %d", i)}, ModuleRepo: layout.Module.URL,
		}); err != nil {
			b.Fatal(err)
		}
		r.Notify()
		select {
		case mb := <-finished:
			switch mb.State {
			case state.ModuleStateFailed:
				failed++
			case state.ModuleStateReady:
				ready++
			default:
				b.Fatalf("build %d ended %s: %s", mb.ID, mb.State, mb.StateReason)
			}
		case <-time.After(time.Minute):
			b.Fatalf("build %d did not finish", i)
		}
		mu.Lock()
		clock = clock.Add(6 * time.Hour)
		mu.Unlock()
		pruneStart := time.Now()
		if _, err := p.runOnce(ctx, now()); err != nil {
			b.Fatal(err)
		}
		pruneTime += time.Since(pruneStart)
		if i%100 == 0 || i == builds {
			fi, err := os.Stat(dbPath)
			if err != nil {
				b.Fatal(err)
			}
			sz := storeSizes(b, store)
			entries, _ := os.ReadDir(trees)
			events, err := store.EventsSince(ctx, 0, 10000)
			if err != nil {
				b.Fatal(err)
			}
			nEvents := len(events)
			for len(events) == 10000 {
				if events, err = store.EventsSince(ctx, events[len(events)-1].Seq, 10000); err != nil {
					b.Fatal(err)
				}
				nEvents += len(events)
			}
			logf("| %d | %d | %.2f MiB | %.2f MiB | %.2f MiB | %.2f MiB (%d) | %.2f MiB | %d | %d / %d | %d / %d | %.0f | %.1f |", i, i/4,
				mib(fi.Size()), mib(sz.inUse), mib(sz.compacted), mib(dirSize(trees)), len(entries), mib(dirSize(filepath.Join(dir, "mirrors"))), nEvents,
				sz.builds, sz.requests, failed, ready, float64(time.Since(lap).Milliseconds())/float64(i-lapAt),
				float64(pruneTime.Microseconds())/1000/float64(i-lapAt))
			lap, lapAt, pruneTime = time.Now(), i, 0
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(builds), "ms/build")
	if err := store.Check(); err != nil {
		b.Fatal(err)
	}
}

// sizes is what storeSizes measures.
type sizes struct {
	inUse, compacted int64
	builds, requests int
}

// storeSizes measures a snapshot of the store: the bytes of its pages in
// use (its size less the free pages bbolt would reuse: what the live
// file holds), the size rida compact would leave it at (bbolt grows a
// file in steps, so the file's size says less), and the module build
// records and requests it holds.
func storeSizes(b *testing.B, store *state.Store) sizes {
	snap, err := store.Snapshot(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer snap.Close()
	path := filepath.Join(b.TempDir(), "snap.db")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, snap); err != nil {
		b.Fatal(err)
	}
	f.Close()
	var out sizes
	// Opened read-write: bbolt loads its free list only then.
	db, err := bolt.Open(path, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	st := db.Stats()
	_ = db.View(func(tx *bolt.Tx) error {
		out.inUse = tx.Size() - int64(st.FreePageN+st.PendingPageN)*int64(db.Info().PageSize)
		out.builds = tx.Bucket([]byte("module_builds")).Stats().KeyN
		out.requests = tx.Bucket([]byte("requests")).Stats().KeyN
		return nil
	})
	db.Close()
	if _, _, err := state.Compact(path); err != nil {
		b.Fatal(err)
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error { out.compacted = tx.Size(); return nil })
	return out
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
