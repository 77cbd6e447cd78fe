package koji_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/koji"
	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/runner"
)

var _ runner.Backend = (*koji.Backend)(nil)

const baseTag = "module-el9-build"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testStream returns an enriched stream whose components build in batches
// by buildorder (key -> buildorder).
func testStream(name string, order map[string]int64) *modulemd.Stream {
	rpms := map[string]*modulemd.Component{}
	refs := map[string]any{}
	for key, bo := range order {
		rpms[key] = &modulemd.Component{Key: key, Rationale: "test", Repository: "https://src.example.com/rpms/" + key,
			Ref: "main", BuildOrder: bo}
		refs[key] = map[string]any{"ref": fmt.Sprintf("%040x", len(key)*7919+int(bo))}
	}
	return &modulemd.Stream{
		Name: name, Stream: "master", Version: 20260101000000, Context: "c0ffee42",
		Summary: "test module", Description: "A test module.", License: modulemd.License{Module: []string{"MIT"}},
		Components: modulemd.Components{RPMs: rpms},
		Xmd:        map[string]any{"mbs": map[string]any{"rpms": refs}},
	}
}

type bundle struct {
	hub     *kojitest.Hub
	client  *koji.Client
	store   *koji.MemoryIntentStore
	backend *koji.Backend
}

func setup(t testing.TB, hubOpts kojitest.Options) *bundle {
	t.Helper()
	h := kojitest.New(t, hubOpts)
	h.SeedTag(kojitest.TagSeed{Name: baseTag, Arches: "x86_64 aarch64", Groups: map[string][]string{
		"build":      {"bash", "rpm-build", "redhat-rpm-config"},
		"srpm-build": {"bash", "rpm-build", "git"},
	}})
	bd := &bundle{hub: h, store: &koji.MemoryIntentStore{}}
	bd.client = newClient(t, h)
	bd.backend = newBackend(t, bd.client, bd.store)
	return bd
}

func newClient(t testing.TB, h *kojitest.Hub) *koji.Client {
	t.Helper()
	c, err := koji.NewClient(koji.ClientOptions{HubURL: h.URL, Logger: quiet, Retry: koji.RetryOptions{Base: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(context.Background(), "kojiadmin", "kojipass"); err != nil {
		t.Fatal(err)
	}
	return c
}

func newBackend(t testing.TB, c koji.Caller, store koji.IntentStore) *koji.Backend {
	t.Helper()
	be, err := koji.NewBackend(koji.BackendOptions{
		Client: c, TopURL: "https://kojipkgs.example.com", Arches: []string{"x86_64", "aarch64"},
		BaseModuleTag: baseTag, Owner: "kojiadmin", Logger: quiet, Intents: store,
		AllowedSCM: []string{"https://src.example.com/"},
		PollMin:    time.Millisecond, PollMax: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func mustPlan(t testing.TB, s *modulemd.Stream, id int64) *runner.Build {
	t.Helper()
	b, err := runner.Plan(s, runner.PlanOptions{ID: id, Marking: "el9"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// step is an interesting call: method and its first argument(s).
func steps(h *kojitest.Hub) []string {
	var out []string
	for _, c := range h.FlatCalls() {
		switch c.Method {
		case "createTag", "setInheritanceData", "groupListAdd", "createBuildTarget", "repo.request", "newRepo":
			out = append(out, fmt.Sprintf("%s %v", c.Method, c.Args[0]))
		case "build":
			src := c.Args[0].(string)
			if strings.HasPrefix(src, "cli-build/") {
				src = "cli-build"
			} else {
				src = strings.TrimPrefix(src[:strings.Index(src, "#")], "git+https://src.example.com/rpms/")
			}
			out = append(out, "build "+src)
		case "tagBuild":
			nvr := c.Args[1].(string)
			out = append(out, fmt.Sprintf("tagBuild %v %s", c.Args[0], nvr[:strings.Index(nvr, "-")]))
		}
		if c.Fault != 0 {
			out = append(out, fmt.Sprintf("  fault %d", c.Fault))
		}
	}
	return out
}

// sortRuns sorts each run of consecutive equal-prefix steps (the order of
// calls within one multiCall or one batch is not part of the contract).
func sortRuns(s []string, prefix string) []string {
	out := slices.Clone(s)
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && strings.HasPrefix(out[j], prefix) {
			j++
		}
		if j > i {
			slices.Sort(out[i:j])
			i = j
		} else {
			i++
		}
	}
	return out
}

func TestBackend_ThreeBatchModule(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	b := mustPlan(t, testStream("testmodule", map[string]int64{"a": 0, "b": 1, "c": 1, "d": 2}), 7)
	if len(b.Batches) != 4 {
		t.Fatalf("planned %d batches", len(b.Batches))
	}
	res, err := runner.Execute(context.Background(), bd.backend, b, runner.ExecuteOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	tag := "module-testmodule-master-20260101000000-c0ffee42"
	if res.Location != tag {
		t.Errorf("location %q", res.Location)
	}

	want := []string{
		"createTag " + tag,
		"createTag " + tag + "-build",
		"groupListAdd " + tag + "-build", "groupListAdd " + tag + "-build",
		"setInheritanceData 3", // the build tag's id
		"createBuildTarget " + tag,
		"build cli-build",
		"tagBuild " + tag + "-build module",
		"repo.request " + tag + "-build",
		"build a",
		"tagBuild " + tag + "-build a", "tagBuild " + tag + " a",
		"repo.request " + tag + "-build",
		"build b", "build c",
		"tagBuild " + tag + "-build b", "tagBuild " + tag + "-build c", "tagBuild " + tag + " b", "tagBuild " + tag + " c",
		"repo.request " + tag + "-build",
		"build d",
		"tagBuild " + tag + "-build d", "tagBuild " + tag + " d",
	}
	got := sortRuns(steps(bd.hub), "tagBuild")
	if !slices.Equal(got, sortRuns(want, "tagBuild")) {
		t.Errorf("call sequence:\n got %q\nwant %q", got, sortRuns(want, "tagBuild"))
	}

	for _, name := range []string{tag, tag + "-build"} {
		ts, ok := bd.hub.Tag(name)
		if !ok {
			t.Fatalf("no tag %s", name)
		}
		if ts.Arches != "x86_64 aarch64" || ts.Extra["mock.package_manager"] != "dnf" || ts.Extra["repo_include_all"] != true {
			t.Errorf("%s: arches %q extra %v", name, ts.Arches, ts.Extra)
		}
		if !slices.Equal(ts.Packages, []string{"a", "b", "c", "d", "module-build-macros"}) {
			t.Errorf("%s: package list %v", name, ts.Packages)
		}
	}
	bt, _ := bd.hub.Tag(tag + "-build")
	if !slices.Equal(bt.Parents, []string{baseTag}) {
		t.Errorf("inheritance %v", bt.Parents)
	}
	for g, want := range map[string][]string{
		"build":      {"bash", "rpm-build", "redhat-rpm-config", "module-build-macros"},
		"srpm-build": {"bash", "rpm-build", "git", "module-build-macros"},
	} {
		if !slices.Equal(bt.Groups[g], want) {
			t.Errorf("group %s: %v", g, bt.Groups[g])
		}
	}

	// The macros SRPM was uploaded and is a real RPM.
	first := bd.hub.TaskIDs("build")[0]
	src := bd.hub.TaskSource(first)
	if !strings.HasPrefix(src, "cli-build/") || !strings.HasSuffix(src, "/module-build-macros-0.1-1"+b.DistTag+".src.rpm") {
		t.Errorf("macros src %q", src)
	}
	if data, ok := bd.hub.Upload(src); !ok || !bytes.HasPrefix(data, []byte{0xed, 0xab, 0xee, 0xdb}) {
		t.Errorf("upload of %s missing or not an RPM (%d bytes)", src, len(data))
	}

	nvrA := "a-1.0-1" + b.DistTag
	if c := b.Batches[1].Components[0]; c.State != runner.ComponentComplete || c.NVR != nvrA ||
		!slices.Equal(c.RPMs, []string{"a-0:1.0-1" + b.DistTag + ".aarch64", "a-0:1.0-1" + b.DistTag + ".src", "a-0:1.0-1" + b.DistTag + ".x86_64"}) {
		t.Errorf("component a: %+v", c)
	}
	if !bytes.Contains(res.Modulemd, []byte("- d-0:1.0-1"+b.DistTag+".x86_64")) || bytes.Contains(res.Modulemd, []byte("module-build-macros-0:")) {
		t.Errorf("modulemd artifacts:\n%s", res.Modulemd)
	}
	if got := bd.hub.Tagged(tag); len(got) != 4 || slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "module-build-macros") }) {
		t.Errorf("module tag holds %v", got)
	}
	if got := bd.hub.Tagged(tag + "-build"); len(got) != 5 {
		t.Errorf("build tag holds %v", got)
	}

	// Every poll is one request: a multiCall of getTaskInfo for all open tasks.
	for _, c := range bd.hub.Calls() {
		if c.Method == "getTaskInfo" {
			t.Errorf("getTaskInfo outside a multiCall")
		}
	}
}

func TestBackend_FailingTaskFailsModule(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	const msg = "error building package (arch x86_64), mock exited with status 1; see build.log for more information"
	bd.hub.FailBuildsMatching("rpms/c#", msg)
	b := mustPlan(t, testStream("failmod", map[string]int64{"a": 0, "b": 1, "c": 1, "d": 2}), 8)
	_, err := runner.Execute(context.Background(), bd.backend, b, runner.ExecuteOptions{Logger: quiet})
	var bf *runner.BuildFailure
	if !errors.As(err, &bf) || !slices.Equal(bf.Components, []string{"c"}) {
		t.Fatalf("want BuildFailure of c, got %v", err)
	}
	var cTask int
	for _, id := range bd.hub.TaskIDs("build") {
		if strings.Contains(bd.hub.TaskSource(id), "rpms/c#") {
			cTask = id
		}
	}
	wantReason := fmt.Sprintf("c: koji build task %d failed: BuildError: %s", cTask, msg)
	if len(bf.Details) != 1 || bf.Details[0] != wantReason {
		t.Errorf("reason:\n got %q\nwant %q", bf.Details, wantReason)
	}
	var bComp *runner.Component
	for _, c := range b.Batches[2].Components {
		if c.Key == "b" {
			bComp = c
		}
	}
	if bComp.State != runner.ComponentComplete {
		t.Errorf("sibling b: %s (should finish)", bComp.State)
	}
	for _, s := range steps(bd.hub) {
		if s == "build d" || strings.HasPrefix(s, "tagBuild module-failmod-master-20260101000000-c0ffee42 b") {
			t.Errorf("after the failure: %s", s)
		}
	}
}

func TestBackend_RefusesRepositoryOutsideAllowedSCM(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	s := testStream("scmmod", map[string]int64{"a": 0, "evil": 0})
	s.Components.RPMs["evil"].Repository = "https://evil.example.org/rpms/evil"
	b := mustPlan(t, s, 9)
	_, err := runner.Execute(context.Background(), bd.backend, b, runner.ExecuteOptions{Logger: quiet})
	var bf *runner.BuildFailure
	if !errors.As(err, &bf) || !slices.Equal(bf.Components, []string{"evil"}) || !strings.Contains(bf.Error(), "not under an allowed SCM prefix") {
		t.Fatalf("got %v", err)
	}
	for _, id := range bd.hub.TaskIDs("build") {
		if strings.Contains(bd.hub.TaskSource(id), "evil") {
			t.Errorf("evil was submitted")
		}
	}
}

func TestBackend_RestartReattachesWithoutResubmitting(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	ctx := context.Background()
	b := mustPlan(t, testStream("restartmod", map[string]int64{"a": 0, "b": 0, "c": 0, "d": 1}), 10)
	if err := bd.backend.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	noop := func(runner.ComponentUpdate) {}
	if err := bd.backend.BuildBatch(ctx, b, b.Batches[0], noop); err != nil {
		t.Fatal(err)
	}

	// Batch 2 is submitted, then the process "dies" while the builds run.
	bd.hub.SetBuildDuration(kojitest.Manual)
	batch := b.Batches[1]
	crashCtx, crash := context.WithCancel(ctx)
	var mu sync.Mutex
	building := map[string]bool{}
	allBuilding := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- bd.backend.BuildBatch(crashCtx, b, batch, func(u runner.ComponentUpdate) {
			mu.Lock()
			defer mu.Unlock()
			if u.State == runner.ComponentBuilding {
				building[u.Key] = true
				if len(building) == len(batch.Components) {
					close(allBuilding)
				}
			}
		})
	}()
	<-allBuilding
	crash()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted batch: %v", err)
	}
	// Also lose one task id, as a crash between the hub's answer and the
	// record would.
	intents, _ := bd.store.Tasks(ctx, b.ID)
	if err := bd.store.RecordIntent(ctx, b.ID, "b", intents["b"].Src); err != nil {
		t.Fatal(err)
	}
	submitted := bd.hub.TaskIDs("build")
	for _, id := range submitted[1:] {
		if err := bd.hub.CompleteTask(id); err != nil {
			t.Fatal(err)
		}
	}

	// A new process: new session, new backend, same hub and intents.
	c2 := newClient(t, bd.hub)
	be2 := newBackend(t, c2, bd.store)
	updates := map[string]runner.ComponentUpdate{}
	if err := be2.BuildBatch(ctx, b, batch, func(u runner.ComponentUpdate) {
		mu.Lock()
		updates[u.Key] = u
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if got := bd.hub.TaskIDs("build"); !slices.Equal(got, submitted) {
		t.Errorf("resubmitted: build tasks %v, before the restart %v", got, submitted)
	}
	for _, c := range batch.Components {
		if u := updates[c.Key]; u.State != runner.ComponentComplete || u.NVR == "" {
			t.Errorf("%s after restart: %+v", c.Key, u)
		}
	}
	intents, _ = bd.store.Tasks(ctx, b.ID)
	if intents["b"].TaskID == 0 {
		t.Errorf("lost task of b was not rediscovered: %+v", intents["b"])
	}
	// Each component submitted exactly once over both runs.
	count := map[string]int{}
	for _, id := range bd.hub.TaskIDs("build") {
		count[bd.hub.TaskSource(id)]++
	}
	for src, n := range count {
		if n != 1 {
			t.Errorf("%s submitted %d times", src, n)
		}
	}
	// The resumed build talks through a new subsession of the new login.
	masters := map[int64]int64{}
	for _, s := range bd.hub.Sessions() {
		masters[s.ID] = s.Master
	}
	found := false
	for _, c := range bd.hub.FlatCalls() {
		if c.Method == "listTasks" {
			found = true
			if masters[c.Session] != c2.SessionID() {
				t.Errorf("after the restart, listTasks on session %d (master %d), want a subsession of %d", c.Session, masters[c.Session], c2.SessionID())
			}
		}
	}
	if !found {
		t.Error("no listTasks after the restart")
	}
}

func TestBackend_OldHubUsesNewRepo(t *testing.T) {
	bd := setup(t, kojitest.Options{Version: "1.34.1"})
	b := mustPlan(t, testStream("oldhub", map[string]int64{"a": 0, "b": 1}), 11)
	if _, err := runner.Execute(context.Background(), bd.backend, b, runner.ExecuteOptions{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	var repoSteps []string
	for _, s := range steps(bd.hub) {
		if strings.HasPrefix(s, "repo.request") || strings.HasPrefix(s, "newRepo") {
			repoSteps = append(repoSteps, s)
		}
	}
	want := "newRepo module-oldhub-master-20260101000000-c0ffee42-build"
	if !slices.Equal(repoSteps, []string{want, want}) {
		t.Errorf("repo steps %v", repoSteps)
	}
}

func TestBackend_PrepareIsIdempotent(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	ctx := context.Background()
	b := mustPlan(t, testStream("idem", map[string]int64{"a": 0}), 12)
	if err := bd.backend.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	bd.hub.ResetCalls()
	if err := newBackend(t, bd.client, bd.store).Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, c := range bd.hub.FlatCalls() {
		switch c.Method {
		case "createTag", "editTag2", "setInheritanceData", "groupListAdd", "groupPackageListAdd", "createBuildTarget":
			t.Errorf("second Prepare called %s %v", c.Method, c.Args)
		}
	}
}

func TestBackend_Cancel(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	ctx := context.Background()
	b := mustPlan(t, testStream("cancelmod", map[string]int64{"a": 0, "b": 0}), 13)
	if err := bd.backend.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := bd.backend.BuildBatch(ctx, b, b.Batches[0], func(runner.ComponentUpdate) {}); err != nil {
		t.Fatal(err)
	}
	bd.hub.SetBuildDuration(kojitest.Manual)
	runCtx, stop := context.WithCancel(ctx)
	started := make(chan struct{}, 2)
	done := make(chan []runner.ComponentUpdate, 1)
	go func() {
		var ups []runner.ComponentUpdate
		bd.backend.BuildBatch(runCtx, b, b.Batches[1], func(u runner.ComponentUpdate) {
			ups = append(ups, u)
			if u.State == runner.ComponentBuilding {
				started <- struct{}{}
			}
		})
		done <- ups
	}()
	<-started
	<-started
	if err := bd.backend.Cancel(ctx, b); err != nil {
		t.Fatal(err)
	}
	ups := <-done // the watcher sees the cancellations and returns
	stop()
	canceled := 0
	for _, u := range ups {
		if u.State == runner.ComponentCanceled {
			canceled++
		}
	}
	if canceled != 2 {
		t.Errorf("updates %+v", ups)
	}
	for _, id := range bd.hub.TaskIDs("build")[1:] {
		if st, _ := bd.hub.TaskState(id); st != kojitest.TaskCanceled {
			t.Errorf("task %d state %d", id, st)
		}
	}
}

func TestNewBackend_Validates(t *testing.T) {
	c, _ := koji.NewClient(koji.ClientOptions{HubURL: "http://x/kojihub"})
	for name, opts := range map[string]koji.BackendOptions{
		"Client":        {BaseModuleTag: "b", Owner: "o"},
		"BaseModuleTag": {Client: c, Owner: "o"},
		"Owner":         {Client: c, BaseModuleTag: "b"},
	} {
		_, err := koji.NewBackend(opts)
		if !errors.Is(err, koji.ErrOptionRequired) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTargetName_LimitedAsMBS(t *testing.T) {
	if got := koji.TargetName("m", "s", 1, "c"); got != "module-m-s-1-c" {
		t.Errorf("short: %s", got)
	}
	long := koji.TargetName("averyveryverylongmodulename", "averylongstream", 20260101000000, "c0ffee42")
	if !strings.HasPrefix(long, "module-") || len(long) != len("module-")+16 {
		t.Errorf("long: %s", long)
	}
}

func BenchmarkKoji_200Components20Batches(b *testing.B) {
	const (
		batches   = 20
		perBatch  = 10
		buildTime = 20 * time.Millisecond
		repoTime  = 10 * time.Millisecond
	)
	order := map[string]int64{}
	for i := range batches * perBatch {
		order[fmt.Sprintf("pkg%03d", i)] = int64(i / perBatch)
	}
	bd := setup(b, kojitest.Options{BuildDuration: buildTime, RepoDuration: repoTime})
	be, err := koji.NewBackend(koji.BackendOptions{
		Client: bd.client, Arches: []string{"x86_64"}, BaseModuleTag: baseTag, Owner: "kojiadmin", Logger: quiet,
		PollMin: 2 * time.Millisecond, PollMax: 10 * time.Millisecond,
	})
	if err != nil {
		b.Fatal(err)
	}
	// Critical path: every batch (macros included) builds once, and every
	// batch but the last waits for one repo regeneration.
	critical := time.Duration(batches+1)*buildTime + time.Duration(batches)*repoTime
	var wall time.Duration
	for i := 0; b.Loop(); i++ {
		bd.hub.ResetCalls()
		build := mustPlan(b, testStream(fmt.Sprintf("bench%d", i), order), int64(100+i))
		start := time.Now()
		if _, err := runner.Execute(context.Background(), be, build, runner.ExecuteOptions{Logger: quiet}); err != nil {
			b.Fatal(err)
		}
		wall += time.Since(start)
	}
	calls := bd.hub.Calls()
	polls, polled := 0, 0
	for _, c := range calls {
		if c.Method == "multiCall" && len(c.Sub) > 0 && c.Sub[0].Method == "getTaskInfo" {
			polls++
			polled += len(c.Sub)
		}
		if c.Method == "repo.checkRequest" {
			polls++
		}
	}
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "wall-ms/op")
	b.ReportMetric(float64(critical.Milliseconds()), "critical-ms")
	b.ReportMetric(float64(wall)/float64(b.N)/float64(critical), "wall/critical")
	b.ReportMetric(float64(len(calls)), "requests/lastop")
	if polls > 0 {
		b.ReportMetric(1, "requests/poll")
		b.ReportMetric(float64(polled)/float64(polls), "tasks/poll")
		b.ReportMetric(float64(polls), "polls/lastop")
	}
}

func TestBackend_SubmissionTransportErrorLooksBeforeResubmitting(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	ctx := context.Background()
	b := mustPlan(t, testStream("flaky", map[string]int64{"a": 0}), 14)
	if err := bd.backend.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := bd.backend.BuildBatch(ctx, b, b.Batches[0], func(runner.ComponentUpdate) {}); err != nil {
		t.Fatal(err)
	}
	bd.hub.ResetCalls()
	bd.hub.FailRequests(http.StatusBadGateway) // the build call's answer is lost
	var final runner.ComponentUpdate
	if err := bd.backend.BuildBatch(ctx, b, b.Batches[1], func(u runner.ComponentUpdate) { final = u }); err != nil {
		t.Fatal(err)
	}
	if final.State != runner.ComponentComplete {
		t.Fatalf("a: %+v", final)
	}
	var seq []string
	for _, c := range bd.hub.FlatCalls() {
		if c.Method == "build" || c.Method == "listTasks" || c.Method == "getLoggedInUser" {
			seq = append(seq, c.Method)
		}
	}
	if !slices.Equal(seq, []string{"build", "getLoggedInUser", "listTasks", "build"}) {
		t.Errorf("sequence %v", seq)
	}
	if n := len(bd.hub.TaskIDs("build")); n != 2 { // macros + a
		t.Errorf("%d build tasks", n)
	}
}

func TestBackend_BatchSubmissionTransportErrorLooksBeforeResubmitting(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	ctx := context.Background()
	b := mustPlan(t, testStream("flakybatch", map[string]int64{"a": 0, "b": 0, "c": 0}), 15)
	if err := bd.backend.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := bd.backend.BuildBatch(ctx, b, b.Batches[0], func(runner.ComponentUpdate) {}); err != nil {
		t.Fatal(err)
	}
	bd.hub.ResetCalls()
	bd.hub.FailRequests(http.StatusBadGateway) // the batch's multiCall of build calls is lost
	var mu sync.Mutex
	final := map[string]runner.ComponentState{}
	if err := bd.backend.BuildBatch(ctx, b, b.Batches[1], func(u runner.ComponentUpdate) {
		mu.Lock()
		final[u.Key] = u.State
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if final[k] != runner.ComponentComplete {
			t.Errorf("%s: %s", k, final[k])
		}
	}
	calls := bd.hub.Calls()
	if len(calls) == 0 || calls[0].Method != "multiCall" || calls[0].Sub != nil {
		t.Fatalf("first request %+v, want the failed multiCall", calls[0])
	}
	var seq []string
	for _, c := range bd.hub.FlatCalls() {
		if c.Method == "build" || c.Method == "listTasks" || c.Method == "getLoggedInUser" {
			seq = append(seq, c.Method)
		}
	}
	if !slices.Equal(seq, []string{"getLoggedInUser", "listTasks", "build", "build", "build"}) {
		t.Errorf("sequence %v", seq)
	}
	count := map[string]int{}
	for _, id := range bd.hub.TaskIDs("build") {
		count[bd.hub.TaskSource(id)]++
	}
	if len(count) != 4 {
		t.Errorf("sources %v", count)
	}
	for src, n := range count {
		if n != 1 {
			t.Errorf("%s submitted %d times", src, n)
		}
	}
	intents, _ := bd.store.Tasks(ctx, b.ID)
	for _, k := range []string{"a", "b", "c"} {
		if intents[k].TaskID == 0 {
			t.Errorf("%s: no task recorded", k)
		}
	}
}

// Tags get MBS's koji_tag_permission: "admin" by default, another by
// option, set on an existing tag that lacks it; a permission the hub does
// not have fails Prepare naming it.
func TestBackend_TagPermission(t *testing.T) {
	ctx := context.Background()
	bd := setup(t, kojitest.Options{})
	b := mustPlan(t, testStream("permmod", map[string]int64{"a": 0}), 11)
	if err := bd.backend.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	tag := "module-permmod-master-20260101000000-c0ffee42"
	for _, name := range []string{tag, tag + "-build"} {
		if ts, _ := bd.hub.Tag(name); ts.Perm != "admin" {
			t.Errorf("%s: perm %q, want admin", name, ts.Perm)
		}
	}

	// Another permission, on the tags made above: editTag2 sets it.
	be, err := koji.NewBackend(koji.BackendOptions{Client: bd.client, BaseModuleTag: baseTag, Owner: "kojiadmin",
		Logger: quiet, TagPermission: "tag"})
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{tag, tag + "-build"} {
		if ts, _ := bd.hub.Tag(name); ts.Perm != "tag" {
			t.Errorf("%s: perm %q, want tag", name, ts.Perm)
		}
	}

	be, err = koji.NewBackend(koji.BackendOptions{Client: bd.client, BaseModuleTag: baseTag, Owner: "kojiadmin",
		Logger: quiet, TagPermission: "module-admin"})
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Prepare(ctx, b); err == nil || !strings.Contains(err.Error(), `no permission "module-admin"`) {
		t.Errorf("unknown permission: %v", err)
	}
}
