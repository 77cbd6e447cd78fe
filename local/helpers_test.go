package local_test

import (
	"cmp"
	"log/slog"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
)

// recorder applies ComponentUpdates to a build's components, as the runner
// does, and keeps every update.
type recorder struct {
	mu      sync.Mutex
	build   *runner.Build
	updates []runner.ComponentUpdate
}

func (r *recorder) report(u runner.ComponentUpdate) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, u)
	for _, batch := range r.build.Batches {
		for _, c := range batch.Components {
			if c.Key != u.Key {
				continue
			}
			c.State, c.Reason = u.State, u.Reason
			c.LogPath = cmp.Or(u.LogPath, c.LogPath)
			c.NVR = cmp.Or(u.NVR, c.NVR)
			if u.RPMs != nil {
				c.RPMs = u.RPMs
			}
			if u.State == runner.ComponentBuilding {
				c.Started = u.Time
			} else if u.State.Terminal() {
				c.Finished = u.Time
			}
		}
	}
}

// updatesFor returns the updates of one component, in order.
func (r *recorder) updatesFor(key string) []runner.ComponentUpdate {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runner.ComponentUpdate
	for _, u := range r.updates {
		if u.Key == key {
			out = append(out, u)
		}
	}
	return out
}

// newBuild returns a runner.Build of rida-demo-like NSVC whose batch 1 is
// module-build-macros and whose later batches are given.
func newBuild(id int64, batches ...[]*runner.Component) *runner.Build {
	b := &runner.Build{
		ID: id, Name: "rida-demo", Stream: "1.0", Version: 9020240101120000, Context: "0d3b5e6c",
		DistTag: ".module+el9+" + strconv.FormatInt(id, 10) + "+1a2b3c4d",
		Batches: []*runner.Batch{{Number: 1, Components: []*runner.Component{
			{Key: runner.MacrosComponent, Package: runner.MacrosComponent, Batch: 1, State: runner.ComponentQueued},
		}}},
	}
	for i, comps := range batches {
		for _, c := range comps {
			c.Batch, c.State = i+2, runner.ComponentQueued
		}
		b.Batches = append(b.Batches, &runner.Batch{Number: i + 2, Components: comps})
	}
	return b
}

// demoBuild builds the example module's repositories and a runner.Build
// whose batches follow the modulemd's buildorder (batch 1 =
// module-build-macros, then one batch per buildorder value, ascending).
func demoBuild(t testing.TB, id int64) *runner.Build {
	t.Helper()
	layout, err := examples.CreateRepos(t.TempDir(), examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Data struct {
			Components struct {
				RPMs map[string]struct {
					Ref        string `yaml:"ref"`
					Buildorder int    `yaml:"buildorder"`
				} `yaml:"rpms"`
			} `yaml:"components"`
		} `yaml:"data"`
	}
	if err := yaml.Unmarshal(examples.ModuleYAML(), &doc); err != nil {
		t.Fatal(err)
	}
	byOrder := map[int][]*runner.Component{}
	for key, c := range doc.Data.Components.RPMs {
		byOrder[c.Buildorder] = append(byOrder[c.Buildorder], &runner.Component{
			Key: key, Package: key, Repository: layout.ComponentURL(key), Ref: c.Ref,
			Commit: layout.Components[key].Commit,
		})
	}
	var orders []int
	for o := range byOrder {
		orders = append(orders, o)
	}
	slices.Sort(orders)
	var batches [][]*runner.Component
	for _, o := range orders {
		comps := byOrder[o]
		slices.SortFunc(comps, func(a, b *runner.Component) int { return strings.Compare(a.Key, b.Key) })
		batches = append(batches, comps)
	}
	return newBuild(id, batches...)
}

// specRepo creates a git repository holding <name>.spec (and extra files)
// and returns a component for it.
func specRepo(t testing.TB, name, spec string, extra map[string]string) *runner.Component {
	t.Helper()
	return hostileRepo(t, name, spec, extra, nil)
}

// tinySpec returns a noarch spec whose %build runs build (shell lines).
func tinySpec(name, header, build string) string {
	return `Name: ` + name + `
Version: 1
Release: 1%{?dist}
Summary: test package ` + name + `
License: MIT
BuildArch: noarch
` + header + `
%description
Test package. Module %{?_module_name}.

%build
` + build + `
echo ok > out.txt

%install
install -D -m 0644 out.txt %{buildroot}/usr/share/` + name + `/out.txt

%files
/usr/share/` + name + `/out.txt
`
}

// mustNew creates a Backend in a temp work dir.
func mustNew(t testing.TB, opts local.Options) *local.Backend {
	t.Helper()
	if opts.WorkDir == "" {
		opts.WorkDir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b, err := local.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// mustBuildBatches prepares build and builds its batches up to and
// including batch number upto, failing the test on infrastructure errors.
func mustBuildBatches(t testing.TB, ctxB *local.Backend, build *runner.Build, rec *recorder, upto int) {
	t.Helper()
	ctx := t.Context()
	if err := ctxB.Prepare(ctx, build); err != nil {
		t.Fatal(err)
	}
	for _, batch := range build.Batches {
		if batch.Number > upto {
			break
		}
		if err := ctxB.BuildBatch(ctx, build, batch, rec.report); err != nil {
			t.Fatalf("batch %d: %v", batch.Number, err)
		}
	}
}

// rpmQuery runs rpm -qp --qf format on file.
func rpmQuery(t testing.TB, file, format string) string {
	t.Helper()
	out, err := exec.Command("rpm", "-qp", "--qf", format, file).Output()
	if err != nil {
		t.Fatalf("rpm -qp %s: %v", file, err)
	}
	return string(out)
}

// nevraFile maps name-E:V-R.arch to the RPM file name name-V-R.arch.rpm.
func nevraFile(nevra string) string {
	i := strings.LastIndex(nevra[:strings.Index(nevra, ":")], "-")
	name := nevra[:i]
	rest := nevra[strings.Index(nevra, ":")+1:]
	return name + "-" + rest + ".rpm"
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
