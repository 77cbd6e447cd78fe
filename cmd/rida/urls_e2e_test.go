package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
)

// TestServe_URLPolicy runs rida serve with file:// allowed only under the
// test's git directory (--allow-url, as rida demo does) and checks the two
// URLs a push controls: a clone URL elsewhere is refused by the planner
// with a disposition and not fetched, and a modulemd component naming its
// own repository (refused by default, as MBS's RPMS_ALLOW_REPOSITORY) fails
// the build as the packager's failure, naming the field.
func TestServe_URLPolicy(t *testing.T) {
	dir := t.TempDir()
	git := filepath.Join(dir, "git")
	if err := os.MkdirAll(git, 0o755); err != nil {
		t.Fatal(err)
	}
	layout, err := examples.CreateRepos(git, examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "rida.yaml")
	if err := os.WriteFile(cfgPath, []byte("backend: {kind: local, local: {sandbox: \"off\"}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const secret = "urls-secret"
	data := filepath.Join(dir, "data")
	p := startServe(t, data, secret, "--config", cfgPath, "--allow-url", "file://"+git+"/")
	d := &demo{base: p.base, secret: secret, client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}, timeout: 2 * time.Minute}
	ctx := context.Background()
	zero := strings.Repeat("0", 40)

	t.Run("ForeignCloneURL", func(t *testing.T) {
		for name, url := range map[string]string{
			"data dir":  "file://" + filepath.Join(data, "mirrors"),
			"traversal": "file://" + git + "/../data/rida.db",
			"other":     "https://github.com.evil.example/modules/rida-demo.git",
		} {
			foreign := layout.Module
			foreign.URL = url
			id, err := d.deliverID(ctx, "modules/rida-demo", foreign, zero, layout.Module.Commit, "import")
			if err != nil {
				t.Fatal(err)
			}
			reason := waitDisposition(t, d, id)
			if !strings.HasPrefix(reason, "clone URL not allowed: github deliveries clone from") || !strings.Contains(reason, "is not allowed") {
				t.Errorf("%s: disposition %q, want the clone URL refused", name, reason)
			}
		}
		if m, _ := filepath.Glob(filepath.Join(data, "mirrors", "*")); len(m) != 0 {
			t.Errorf("refused deliveries were fetched: %v", m)
		}
	})

	t.Run("ComponentRepositoryOverride", func(t *testing.T) {
		yml, err := os.ReadFile(filepath.Join(layout.Module.Path, examples.ModuleName+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		// The override names a repository rida may fetch (the component's
		// own): refused all the same, because overrides are off.
		own := "        repository: " + layout.ComponentURL("rida-demo-lib") + "\n"
		changed := strings.Replace(string(yml), "      rida-demo-lib:\n", "      rida-demo-lib:\n"+own, 1)
		if changed == string(yml) {
			t.Fatal("rida-demo-lib not found in the modulemd")
		}
		after, err := layout.Module.CommitFiles("own repository", map[string]string{examples.ModuleName + ".yaml": changed})
		if err != nil {
			t.Fatal(err)
		}
		b, err := d.push(ctx, "modules/rida-demo", layout.Module, zero, after, "own repository")
		if err != nil {
			t.Fatal(err)
		}
		reason := fmt.Sprint(b["state_reason"])
		if b["state_name"] != "failed" || !strings.Contains(reason, "components.rpms.rida-demo-lib.repository: a repository of its own is not allowed") {
			t.Errorf("build %v ended %v: %q; want failed naming components.rpms.rida-demo-lib.repository", b["id"], b["state_name"], reason)
		}
	})
}

// waitDisposition polls delivery id until it is planned and returns its
// disposition's reason.
func waitDisposition(t *testing.T, d *demo, id uint64) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var dv struct {
			Delivery struct {
				Disposition *struct {
					Reason string `json:"reason"`
				} `json:"disposition"`
			} `json:"delivery"`
		}
		if err := d.get(context.Background(), fmt.Sprintf("/api/v1/deliveries/%d", id), &dv); err != nil {
			t.Fatal(err)
		}
		if dv.Delivery.Disposition != nil {
			return dv.Delivery.Disposition.Reason
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("delivery %d never planned", id)
	return ""
}
