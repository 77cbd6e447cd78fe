package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/runner"
)

// TestServe_CrashAtEveryFailpoint kills rida serve (SIGKILL, from inside,
// at the failpoint) at each point between two of the runner's transactions,
// restarts it, and checks that the stream still progresses: the pushed
// build ends ready, and a later push to the same stream builds too.
func TestServe_CrashAtEveryFailpoint(t *testing.T) {
	for _, fp := range runner.Failpoints() {
		t.Run(fp, func(t *testing.T) {
			dir := t.TempDir()
			layout, err := examples.CreateRepos(mustDir(t, filepath.Join(dir, "git")), examples.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "rida.yaml")
			if err := os.WriteFile(cfg, []byte("backend: {kind: local, local: {sandbox: \"off\"}}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			const secret = "crash-secret"
			data := filepath.Join(dir, "data")
			p := startServe(t, data, secret, "--config", cfg, "--", "RIDA_TEST_FAILPOINT="+fp)
			d := &demo{base: p.base, secret: secret, client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}, timeout: 2 * time.Minute}
			id, err := d.deliverID(context.Background(), "modules/rida-demo", layout.Module, strings.Repeat("0", 40), layout.Module.Commit, "import")
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.done:
			case <-time.After(time.Minute):
				t.Fatalf("rida did not reach failpoint %s", fp)
			}
			p2 := startServe(t, data, secret, "--config", cfg)
			d.base = p2.base
			b, err := d.follow(context.Background(), id)
			if err != nil || b["state_name"] != "ready" {
				t.Fatalf("after the crash at %s: %v %v (%v)\n%s", fp, b["state_name"], err, b["state_reason"], d.out)
			}
			// The stream is not stuck: a component push builds again.
			tools := layout.Components["rida-demo-tools"]
			after, err := tools.CommitFiles("change", map[string]string{"NOTES": "x\n"})
			if err != nil {
				t.Fatal(err)
			}
			b2, err := d.push(context.Background(), "rpms/rida-demo-tools", tools, tools.Commit, after, "change")
			if err != nil || b2["state_name"] != "ready" || b2["id"] == b["id"] {
				t.Fatalf("the next push after the crash at %s: %v %v\n%s", fp, b2["state_name"], err, d.out)
			}
		})
	}
}

func mustDir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
