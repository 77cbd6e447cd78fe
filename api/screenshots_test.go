package api_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/state"
)

// TestWeb_Screenshots saves PNG screenshots of the pages, taken by headless
// Chromium at 1400 px and 420 px wide (headless Chromium makes 420 its
// narrowest, 500 px), into the directory $RIDA_SCREENSHOTS names; without
// it the test is skipped, so normal runs write nothing. docs/screenshots/
// holds the committed ones:
//
//	RIDA_SCREENSHOTS=$PWD/docs/screenshots go test ./api -run TestWeb_Screenshots -count=1
func TestWeb_Screenshots(t *testing.T) {
	dir := os.Getenv("RIDA_SCREENSHOTS")
	if dir == "" {
		t.Skip("set RIDA_SCREENSHOTS=DIR to save screenshots of the pages into DIR")
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: run scripts/install-deps — %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := seedWeb(t)
	// A queued cascade from build 1 and a long failed build, as on a busy
	// server.
	if _, err := b.store.Enqueue(context.Background(), state.BuildRequest{Module: "bar", Stream: "main", Kind: state.RequestCascade, CascadeFrom: 1,
		Reasons: []string{"foo:main build 1 became ready"}}); err != nil {
		t.Fatal(err)
	}
	b.putBuild(state.ModuleBuild{Name: "a-module-with-a-rather-long-name", Stream: "stream-with-long-name", Version: 9020260301120000, Context: "deadbeef",
		Components: []state.ComponentBuild{{Key: "pkg-x", Package: "pkg-x", Batch: 2, State: "failed", Reason: "rpmbuild exited 1",
			Started: b.clock.Now(), Finished: b.clock.Now().Add(553 * time.Second)}}},
		state.ModuleStateInit, state.ModuleStateBuild, state.ModuleStateFailed)
	pages := map[string]string{"builds": "/builds", "build": "/builds/1", "request": "/requests/1", "delivery": "/deliveries/1"}
	for name, path := range pages {
		for _, w := range []struct {
			label         string
			width, height int
		}{{"1400", 1400, 1000}, {"420", 420, 1400}} {
			out := filepath.Join(dir, fmt.Sprintf("%s-%s.png", name, w.label))
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
				"--disable-component-update", "--disable-sync", "--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
				fmt.Sprintf("--window-size=%d,%d", w.width, w.height), "--screenshot=" + out, b.http.URL + path}
			msg, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("chromium --screenshot %s: %v\n%s", path, err, msg)
			}
			fi, err := os.Stat(out)
			if err != nil || fi.Size() == 0 {
				t.Fatalf("no screenshot of %s at %s px: %v", path, w.label, err)
			}
			t.Logf("%s at %s px: %s (%d KB)", path, w.label, strings.TrimPrefix(out, dir+"/"), fi.Size()/1024)
		}
	}
}
