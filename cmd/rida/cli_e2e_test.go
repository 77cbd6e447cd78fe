package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rida-build/rida/examples"
)

// TestCLI_AgainstServe submits a build with the CLI to a real 'rida serve'
// configured with an API token and an allowed SCM prefix, watches it to the
// end, lists it, and shows that a wrong token is refused.
func TestCLI_AgainstServe(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	layout, err := examples.CreateRepos(filepath.Join(dir, "git"), examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("data_dir: %s\napi: {tokens: [{name: ops, token_env: T_API}], allowed_scm: [%q]}\nbackend: {kind: local, local: {sandbox: \"off\"}}\n",
		filepath.Join(dir, "data"), "file://"+filepath.Join(dir, "git")+"/")
	cfgPath := filepath.Join(dir, "rida.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, filepath.Join(dir, "data"), "unused-secret", "--config", cfgPath, "--", "T_API=s3cret-token")

	scmurl := layout.Module.URL + "?#" + layout.Module.Commit
	code, out, errOut := runMain(t, "submit", "--server", p.base, "--token", "wrong", "--branch", layout.Module.Branch, scmurl)
	if code != exitFail || strings.Contains(out+errOut, "s3cret-token") {
		t.Errorf("wrong token: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runMain(t, "submit", "--server", p.base, "--token", "s3cret-token", "--branch", layout.Module.Branch, "--watch", scmurl)
	if code != exitOK {
		t.Fatalf("submit --watch: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "ready") {
		t.Errorf("submit --watch output lacks the final state:\n%s", out)
	}
	code, out, _ = runMain(t, "status", "--server", p.base, "--output", "json")
	if code != exitOK || !strings.Contains(out, `"state_name": "ready"`) || !strings.Contains(out, `"owner": "ops"`) {
		t.Errorf("status list: exit %d\n%s", code, out)
	}
	// Submitting the same commit again is a conflict, as in MBS.
	code, _, errOut = runMain(t, "submit", "--server", p.base, "--token", "s3cret-token", "--branch", layout.Module.Branch, scmurl)
	if code != exitFail || !strings.Contains(errOut, "409") && !strings.Contains(errOut, "already") {
		t.Errorf("resubmit: exit %d, %s", code, errOut)
	}
}
