package koji_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/runner"
)

// Every component's updates carry the id of its Koji build task, from the
// first building update on, for components that build and for those that
// fail.
func TestBackend_ReportsTaskIDs(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	bd.hub.FailBuildsMatching("rpms/c#", "mock exited with status 1")
	b := mustPlan(t, testStream("taskidmod", map[string]int64{"a": 0, "b": 1, "c": 1}), 21)
	var mu sync.Mutex
	first := map[string]runner.Component{} // each component's first building event
	_, err := runner.Execute(context.Background(), bd.backend, b, runner.ExecuteOptions{Logger: quiet,
		Progress: func(ev runner.Event) {
			if ev.Component == nil || ev.Component.State != runner.ComponentBuilding {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if _, ok := first[ev.Component.Key]; !ok {
				first[ev.Component.Key] = *ev.Component
			}
		}})
	var bf *runner.BuildFailure
	if !errors.As(err, &bf) {
		t.Fatalf("want the BuildFailure of c, got %v", err)
	}
	// The hub double's build task of each component, by its source.
	want := map[string]int64{}
	for _, id := range bd.hub.TaskIDs("build") {
		src := bd.hub.TaskSource(id)
		key := runner.MacrosComponent
		if !strings.HasPrefix(src, "cli-build/") {
			key = strings.TrimPrefix(src[:strings.Index(src, "#")], "git+https://src.example.com/rpms/")
		}
		want[key] = int64(id)
	}
	if len(want) != 4 {
		t.Fatalf("build tasks %v", want)
	}
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			if c.TaskID == 0 || c.TaskID != want[c.Key] {
				t.Errorf("%s (%s): task id %d, want the hub's %d", c.Key, c.State, c.TaskID, want[c.Key])
			}
			if ev := first[c.Key]; ev.TaskID != want[c.Key] {
				t.Errorf("%s: first building update has task id %d, want %d", c.Key, ev.TaskID, want[c.Key])
			}
			if wantLog := fmt.Sprintf("/work/tasks/%d/%d/", want[c.Key]%10000, want[c.Key]); c.State == runner.ComponentFailed && !strings.HasSuffix(c.LogPath, wantLog) {
				t.Errorf("%s: log %q, want the task's directory", c.Key, c.LogPath)
			}
		}
	}
}

// A resumed batch reports the task ids of the tasks it re-attaches to.
func TestBackend_ReattachReportsTaskIDs(t *testing.T) {
	bd := setup(t, kojitest.Options{BuildDuration: kojitest.Manual})
	ctx := context.Background()
	b := mustPlan(t, testStream("reattachid", map[string]int64{"a": 0}), 22)
	if err := bd.backend.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	// Batch 1 submits the macros build and waits; stop it there.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bd.backend.BuildBatch(cctx, b, b.Batches[0], func(runner.ComponentUpdate) {}) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(bd.hub.TaskIDs("build")) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	ids := bd.hub.TaskIDs("build")
	if len(ids) != 1 {
		t.Fatalf("build tasks %v", ids)
	}
	be2 := newBackend(t, bd.client, bd.store)
	if err := be2.Prepare(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := bd.hub.CompleteTask(ids[0]); err != nil {
		t.Fatal(err)
	}
	var got []runner.ComponentUpdate
	if err := be2.BuildBatch(ctx, b, b.Batches[0], func(u runner.ComponentUpdate) { got = append(got, u) }); err != nil {
		t.Fatal(err)
	}
	if len(got) < 2 || got[0].State != runner.ComponentBuilding || got[0].TaskID != int64(ids[0]) ||
		got[len(got)-1].State != runner.ComponentComplete || got[len(got)-1].TaskID != int64(ids[0]) {
		t.Errorf("updates %+v, want building and complete with task %d", got, ids[0])
	}
}
