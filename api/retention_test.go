package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/state"
)

// A module build retention deleted is gone from the API: the MBS list
// (unfiltered, by name and stream, by state) no longer shows it and counts
// one build less, its own URL answers 404, and the pages' list no longer
// links it; the builds kept are unchanged.
func TestServer_PrunedBuildIsGone(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var built []uint64
	for v := range 3 {
		mb := b.putBuild(state.ModuleBuild{Name: "foo", Stream: "main", Version: uint64(100 + v), Context: "aaaa", ModuleRepo: modRepo},
			state.ModuleStateInit, state.ModuleStateBuild, state.ModuleStateDone, state.ModuleStateReady)
		built = append(built, mb.ID)
	}
	list := func(query string) ([]int, float64) {
		t.Helper()
		r := b.get("/module-build-service/2/module-builds/?" + query)
		expect(t, r, http.StatusOK, "")
		return ids(t, r), r.json(t)["meta"].(map[string]any)["total"].(float64)
	}
	if got, total := list(""); fmt.Sprint(got) != "[3 2 1]" || total != 3 {
		t.Fatalf("before: ids %v, total %v", got, total)
	}
	b.tick(time.Hour)
	p, err := b.store.Prune(ctx, b.clock.Now(), state.Retention{SupersededBuilds: 2})
	if err != nil || p.SupersededBuilds != 1 {
		t.Fatalf("prune: %+v %v, want build %d deleted", p, err, built[0])
	}
	for _, q := range []string{"", "name=foo", "name=foo&stream=main", "state=ready"} {
		if got, total := list(q); fmt.Sprint(got) != "[3 2]" || total != 2 {
			t.Errorf("%q: ids %v, total %v; want [3 2] of 2", q, got, total)
		}
	}
	expect(t, b.get(fmt.Sprintf("/module-build-service/2/module-builds/%d", built[0])), http.StatusNotFound, "")
	expect(t, b.get(fmt.Sprintf("/module-build-service/2/module-builds/%d", built[1])), http.StatusOK, "")
	page := b.get("/")
	expect(t, page, http.StatusOK, "")
	if strings.Contains(string(page.body), fmt.Sprintf(`href="/builds/%d"`, built[0])) || !strings.Contains(string(page.body), fmt.Sprintf(`href="/builds/%d"`, built[1])) {
		t.Errorf("the builds page still links the deleted build %d, or not the kept %d", built[0], built[1])
	}
}
