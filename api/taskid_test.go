package api_test

import (
	"net/http"
	"testing"

	"github.com/rida-build/rida/state"
)

// A component's task id (the Koji build task) is MBS's task_id, in the
// module build's tasks.rpms and in the component build; null without one.
func TestServer_TaskIDs(t *testing.T) {
	b := setup(t)
	t0 := b.clock.Now()
	b.putBuild(state.ModuleBuild{Name: "kojimod", Stream: "main", Version: 1, Context: "dddd", Components: []state.ComponentBuild{
		{Key: "module-build-macros", Package: "module-build-macros", Batch: 1, State: "complete", NVR: "module-build-macros-1-1", TaskID: 4711, Started: t0},
		{Key: "pkg-a", Package: "pkg-a", Batch: 2, State: "building", TaskID: 4712, Started: t0},
		{Key: "pkg-b", Package: "pkg-b", Batch: 2, State: "queued"},
	}}, state.ModuleStateInit, state.ModuleStateWait, state.ModuleStateBuild)
	for _, path := range []string{"/module-build-service/1/module-builds/1", "/module-build-service/2/module-builds/1?verbose=true"} {
		r := b.get(path)
		expect(t, r, http.StatusOK, "")
		rpms := r.json(t)["tasks"].(map[string]any)["rpms"].(map[string]any)
		for pkg, want := range map[string]any{"module-build-macros": float64(4711), "pkg-a": float64(4712), "pkg-b": nil} {
			if got := rpms[pkg].(map[string]any)["task_id"]; got != want {
				t.Errorf("%s: tasks.rpms.%s.task_id %v, want %v", path, pkg, got, want)
			}
		}
	}
	for path, want := range map[string]any{
		"/module-build-service/1/component-builds/10002":              float64(4712),
		"/module-build-service/1/component-builds/10002?verbose=true": float64(4712),
		"/module-build-service/1/component-builds/10003":              nil,
	} {
		r := b.get(path)
		expect(t, r, http.StatusOK, "")
		if got := r.json(t)["task_id"]; got != want {
			t.Errorf("%s: task_id %v, want %v", path, got, want)
		}
	}
}
