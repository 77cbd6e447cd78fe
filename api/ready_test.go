package api_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/state"
)

// storeReadier marks ready as the runner does.
type storeReadier struct{ st *state.Store }

func (r storeReadier) MarkReady(ctx context.Context, id uint64) (*state.ModuleBuild, error) {
	mb, err := r.st.GetModuleBuild(ctx, id)
	if err != nil {
		return nil, err
	}
	mb.State, mb.StateReason = state.ModuleStateReady, "marked ready"
	return r.st.PutModuleBuild(ctx, *mb)
}

func TestAPI_MarkReady(t *testing.T) {
	b := setup(t, setupOpts{mutate: func(o *api.Options) { o.Readier = storeReadier{o.Store.(*state.Store)} }})
	done := b.putBuild(state.ModuleBuild{Name: "m", Stream: "s"}, state.ModuleStateInit, state.ModuleStateBuild, state.ModuleStateDone)
	building := b.putBuild(state.ModuleBuild{Name: "n", Stream: "s"}, state.ModuleStateInit, state.ModuleStateBuild)
	scratch := b.putBuild(state.ModuleBuild{Name: "m", Stream: "s", Scratch: true}, state.ModuleStateInit, state.ModuleStateBuild, state.ModuleStateDone)
	for _, tc := range []struct {
		name, path, token string
		status            int
		want              string
	}{
		{"NoToken", fmt.Sprintf("/api/v1/builds/%d/ready", done.ID), "", http.StatusUnauthorized, "Bearer"},
		{"NotDone", fmt.Sprintf("/api/v1/builds/%d/ready", building.ID), testToken, http.StatusConflict, "only a done build can become ready"},
		{"Scratch", fmt.Sprintf("/api/v1/builds/%d/ready", scratch.ID), testToken, http.StatusConflict, "is a scratch build, which stays done"},
		{"Unknown", "/api/v1/builds/999/ready", testToken, http.StatusNotFound, ""},
		{"BadID", "/api/v1/builds/x/ready", testToken, http.StatusBadRequest, "id"},
		{"OK", fmt.Sprintf("/api/v1/builds/%d/ready", done.ID), testToken, http.StatusOK, `"state_name": "ready"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, b.do(http.MethodPost, tc.path, tc.token, ""), tc.status, tc.want)
		})
	}
	mb, err := b.store.GetModuleBuild(context.Background(), done.ID)
	if err != nil || mb.State != state.ModuleStateReady {
		t.Errorf("after POST ready: %v %v", mb.State, err)
	}
}

func TestRoundDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		340 * time.Millisecond:  "340ms",
		1234 * time.Millisecond: "1.2s",
		83 * time.Second:        "1m23s",
		0:                       "0s",
	} {
		if got := api.RoundDuration(d); got != want {
			t.Errorf("RoundDuration(%s) = %s, want %s", d, got, want)
		}
	}
}

func TestAPI_Backup(t *testing.T) {
	b := setup(t)
	b.putBuild(state.ModuleBuild{Name: "m", Stream: "s"}, state.ModuleStateInit, state.ModuleStateReady)
	expect(t, b.do(http.MethodGet, "/api/v1/backup", "", ""), http.StatusUnauthorized, "Bearer")
	r := b.do(http.MethodGet, "/api/v1/backup", testToken, "")
	if r.status != http.StatusOK || len(r.body) < 4096 {
		t.Fatalf("backup: %d, %d bytes", r.status, len(r.body))
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, r.body, 0o600); err != nil {
		t.Fatal(err)
	}
	restored, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	builds, err := restored.ModuleBuilds(context.Background(), nil)
	if err != nil || len(builds) != 1 || builds[0].State != state.ModuleStateReady {
		t.Errorf("restored builds = %+v, %v", builds, err)
	}
}

func TestAPI_BuildMessages(t *testing.T) {
	b := setup(t)
	mb := b.putBuild(state.ModuleBuild{Name: "m", Stream: "s", Components: []state.ComponentBuild{{Key: "foo", Package: "foo", Batch: 2, State: "queued"}}},
		state.ModuleStateInit, state.ModuleStateWait, state.ModuleStateBuild)
	if err := b.store.UpdateComponentBuild(context.Background(), mb.ID, state.ComponentBuild{Key: "foo", Package: "foo", Batch: 2, State: "failed", Reason: "rpmbuild exited 1"}); err != nil {
		t.Fatal(err)
	}
	r := b.get(fmt.Sprintf("/module-build-service/1/module-builds/%d/messages?per_page=2&page=2", mb.ID))
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	m := r.json(t)
	items := m["items"].([]any)
	meta := m["meta"].(map[string]any)
	if meta["total"] != float64(4) || len(items) != 2 {
		t.Fatalf("meta %v, %d items", meta, len(items))
	}
	last := items[1].(map[string]any)["message"].(string)
	if last != "component foo: failed: rpmbuild exited 1" {
		t.Errorf("last message %q", last)
	}
	if first := items[0].(map[string]any)["message"].(string); !strings.HasPrefix(first, "state wait → build") {
		t.Errorf("message %q", first)
	}
	expect(t, b.get("/module-build-service/1/module-builds/999/messages"), http.StatusNotFound, "")
}
