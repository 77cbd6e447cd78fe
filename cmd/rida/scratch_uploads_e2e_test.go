package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/internal/testfs"
	"github.com/rida-build/rida/local"
)

// scratchYAML is a small module of two demo components, one batch, with a
// fixed version so that scratch builds of it share N:S:V (and get _1, _2).
// name is the data.name line, or "" for none.
func scratchYAML(name string) string {
	return "document: modulemd\nversion: 2\ndata:\n" + name +
		"  version: 20260101000000\n  summary: Scratch module\n  description: Built from a submitted modulemd.\n" +
		"  license: {module: [MIT]}\n" +
		"  dependencies:\n  - buildrequires: {platform: [el9]}\n    requires: {platform: [el9]}\n" +
		"  components:\n    rpms:\n" +
		"      rida-demo-lib: {rationale: lib, ref: main, buildorder: 10}\n" +
		"      rida-demo-data: {rationale: data, ref: main, buildorder: 10}\n"
}

// uploadSpec is the spec the test's SRPM is made from: rida-demo-tools at
// a version the repository's spec (1.0) does not have.
const uploadSpec = `Name: rida-demo-tools
Version: 9.9
Release: 1%{?dist}
Summary: rida-demo-tools from an uploaded SRPM
License: MIT
BuildArch: noarch
%description
Built from the SRPM uploaded with the scratch build.
%install
mkdir -p %{buildroot}/usr/share/rida-demo-tools-srpm
echo srpm > %{buildroot}/usr/share/rida-demo-tools-srpm/marker
%files
/usr/share/rida-demo-tools-srpm/marker
`

// TestScratchUploads_E2E submits scratch builds to a real 'rida serve'
// (local backend in its bubblewrap sandbox, real git repositories and
// rpmbuild) the way rpkg's module-scratch-build does:
//
//   - a modulemd as the JSON "modulemd" parameter, then as a multipart
//     "yaml" file part whose name gives the module's name: both built from
//     the submitted YAML to done, contexts _1 and _2, no scmurl;
//   - an scmurl scratch build with one SRPM file part (made here with
//     rpmbuild -bs) replacing rida-demo-tools: that component's RPM is the
//     SRPM's (version 9.9, the repository has 1.0), the others come from
//     their repositories, the build lists the SRPM;
//   - MBS's refusals, each naming the problem, and a hostile file name
//     that writes nothing outside the uploads directory.
func TestScratchUploads_E2E(t *testing.T) {
	// The SRPM is built in the sandbox where it can run; elsewhere (and
	// unless RIDA_REQUIRE_SANDBOX says it must) with the sandbox off, so
	// the submission rules are still checked.
	backend := "{kind: local}"
	be, err := local.New(local.Options{WorkDir: t.TempDir(), Sandbox: local.SandboxAuto})
	if err != nil {
		t.Fatal(err)
	}
	if p := be.SandboxProblem(); p != nil {
		if os.Getenv("RIDA_REQUIRE_SANDBOX") != "" {
			t.Fatalf("RIDA_REQUIRE_SANDBOX is set but the sandbox cannot run: %v", p)
		}
		t.Logf("the bubblewrap sandbox cannot run here (%v): building with the sandbox off", p)
		backend = `{kind: local, local: {sandbox: "off"}}`
	}
	dir := t.TempDir()
	git := filepath.Join(dir, "git")
	if err := os.MkdirAll(git, 0o755); err != nil {
		t.Fatal(err)
	}
	layout, err := examples.CreateRepos(git, examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("api: {tokens: [{name: packager, token_env: T_API}], allowed_scm: [%q]}\nrepos: {component_base_url: %q}\nbackend: %s\n",
		"file://"+git+"/", layout.ComponentsBaseURL, backend)
	cfgPath := filepath.Join(dir, "rida.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	p := startServe(t, data, "unused", "--config", cfgPath, "--", "T_API=tok")
	defer p.term(t)
	api := p.base + "/module-build-service/1/module-builds/"

	send := func(req *http.Request) (int, map[string]any) {
		t.Helper()
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %d %s", req.URL, resp.StatusCode, raw)
		}
		return resp.StatusCode, m
	}
	postJSON := func(body map[string]any) (int, map[string]any) {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, api, bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		return send(req)
	}
	// postForm sends fields and files ({part name, file name, content})
	// as multipart/form-data, as requests does with data= and files=.
	postForm := func(fields map[string]string, files ...[3]string) (int, map[string]any) {
		t.Helper()
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k, v := range fields {
			_ = mw.WriteField(k, v)
		}
		for _, f := range files {
			w, _ := mw.CreateFormFile(f[0], f[1])
			_, _ = io.WriteString(w, f[2])
		}
		mw.Close()
		req, _ := http.NewRequest(http.MethodPost, api, &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		return send(req)
	}
	watch := func(id any) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(4 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s%v?verbose=true", api, id), nil)
			_, b := send(req)
			if st := b["state_name"]; st == "done" || st == "failed" || st == "ready" {
				return b
			}
		}
		t.Fatalf("build %v did not end", id)
		return nil
	}
	created := func(code int, b map[string]any) any {
		t.Helper()
		if code != http.StatusCreated || b["id"] == nil {
			t.Fatalf("submit: %d %v", code, b)
		}
		return b["id"]
	}

	// (a) A modulemd as JSON, then as a yaml file part (no name inside:
	// the file's name gives it).
	first := watch(created(postJSON(map[string]any{"modulemd": scratchYAML("  name: rida-scratch\n"), "scratch": true})))
	second := watch(created(postForm(map[string]string{"scratch": "True"}, [3]string{"yaml", "rida-scratch.yaml", scratchYAML("")})))
	for i, b := range []map[string]any{first, second} {
		suffix := fmt.Sprintf("_%d", i+1)
		if b["state_name"] != "done" || b["scratch"] != true || b["name"] != "rida-scratch" || b["stream"] != "master" ||
			b["version"] != "20260101000000" || !strings.HasSuffix(fmt.Sprint(b["context"]), suffix) || b["scmurl"] != nil ||
			!strings.HasPrefix(fmt.Sprint(b["koji_tag"]), "scrmod-") {
			t.Errorf("YAML build %d: %v (%v) %v:%v:%v:%v scratch %v scmurl %v koji_tag %v", i+1, b["state_name"], b["state_reason"],
				b["name"], b["stream"], b["version"], b["context"], b["scratch"], b["scmurl"], b["koji_tag"])
		}
		if rpms := b["tasks"].(map[string]any)["rpms"].(map[string]any); len(rpms) != 3 {
			t.Errorf("YAML build %d: tasks %v, want module-build-macros and the two components", i+1, rpms)
		}
	}
	if strings.TrimSuffix(fmt.Sprint(first["context"]), "_1") != strings.TrimSuffix(fmt.Sprint(second["context"]), "_2") {
		t.Errorf("contexts %v and %v do not share their base", first["context"], second["context"])
	}

	// (b) An scmurl scratch build with an uploaded SRPM for rida-demo-tools.
	srpmDir := t.TempDir()
	spec := filepath.Join(srpmDir, "rida-demo-tools.spec")
	if err := os.WriteFile(spec, []byte(uploadSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("rpmbuild", "-bs", "--define", "dist %{nil}", "--define", "_topdir "+srpmDir,
		"--define", "_sourcedir "+srpmDir, "--define", "_srcrpmdir "+srpmDir, spec).CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild -bs: %v\n%s", err, out)
	}
	srpm, err := os.ReadFile(filepath.Join(srpmDir, "rida-demo-tools-9.9-1.src.rpm"))
	if err != nil {
		t.Fatal(err)
	}
	scm := map[string]string{"scmurl": layout.Module.URL + "?#" + layout.Module.Commit, "branch": layout.Module.Branch, "scratch": "true"}
	b := watch(created(postForm(scm, [3]string{"srpms", "rida-demo-tools-9.9-1.src.rpm", string(srpm)})))
	if b["state_name"] != "done" || b["scratch"] != true || !strings.HasSuffix(fmt.Sprint(b["context"]), "_1") {
		t.Fatalf("SRPM build: %v (%v) context %v", b["state_name"], b["state_reason"], b["context"])
	}
	srpms, _ := b["srpms"].([]any)
	if len(srpms) != 1 || !strings.HasSuffix(fmt.Sprint(srpms[0]), "/rida-demo-tools-9.9-1.src.rpm") {
		t.Errorf("build srpms %v", b["srpms"])
	}
	dist := fmt.Sprint(b["dist_tag"])
	comps := b["components"].([]any)
	if len(comps) != 1+len(examples.Components()) {
		t.Errorf("%d components, want module-build-macros and the demo's %d", len(comps), len(examples.Components()))
	}
	for _, c := range comps {
		comp := c.(map[string]any)
		switch comp["key"] {
		case "rida-demo-tools":
			if comp["nvr"] != "rida-demo-tools-9.9-1"+dist || comp["srpm"] != srpms[0] || comp["commit"] != nil {
				t.Errorf("rida-demo-tools: nvr %v srpm %v commit %v", comp["nvr"], comp["srpm"], comp["commit"])
			}
		case "module-build-macros":
		default:
			if nvr := fmt.Sprint(comp["nvr"]); !strings.Contains(nvr, "-1.0-1"+dist) || comp["srpm"] != nil {
				t.Errorf("%v: nvr %v srpm %v (should come from its repository)", comp["key"], nvr, comp["srpm"])
			}
		}
	}
	rpm := filepath.Join(fmt.Sprint(b["result_dir"]), "rida-demo-tools-9.9-1"+dist+".noarch.rpm")
	out, err := exec.Command("rpm", "-qp", "--qf", "%{VERSION} %{SUMMARY}", rpm).Output()
	if err != nil || string(out) != "9.9 rida-demo-tools from an uploaded SRPM" {
		t.Errorf("built rida-demo-tools RPM %s: %q %v", rpm, out, err)
	}
	if mmd := fmt.Sprint(b["modulemd"]); !strings.Contains(mmd, "rida-demo-tools:\n          ref: null") {
		t.Errorf("xmd.mbs.rpms.rida-demo-tools.ref is not null:\n%s", mmd)
	}

	// (c) Refusals.
	uploads := filepath.Join(data, "uploads")
	kept := testfs.Files(t, uploads)
	if len(kept) == 0 {
		t.Fatalf("no upload stored under %s by (b)", uploads)
	}
	yaml := scratchYAML("  name: rida-scratch\n")
	for _, tc := range []struct {
		name   string
		send   func() (int, map[string]any)
		status int
		want   string
	}{
		{"yaml without scratch", func() (int, map[string]any) { return postJSON(map[string]any{"modulemd": yaml}) }, 403, "YAML submission is not enabled"},
		{"module_name without yaml", func() (int, map[string]any) {
			return postJSON(map[string]any{"scmurl": scm["scmurl"], "branch": scm["branch"], "module_name": "x"})
		}, 400, `The "module_name" parameter is only used with a modulemd submission`},
		{"srpms not a list", func() (int, map[string]any) {
			return postJSON(map[string]any{"scmurl": scm["scmurl"], "branch": scm["branch"], "scratch": true, "srpms": "rida-demo-tools-9.9-1.src.rpm"})
		}, 400, "srpms must be a list of strings"},
		{"srpm of no component", func() (int, map[string]any) {
			return postForm(scm, [3]string{"srpms", "zzz-1-1.src.rpm", string(srpm)})
		}, 400, "(package zzz) matches no component of rida-demo:1.0"},
		{"xmd.mbs", func() (int, map[string]any) {
			return postJSON(map[string]any{"modulemd": yaml + "  xmd: {mbs: {commit: abc}}\n", "scratch": true})
		}, 400, `The "mbs" xmd field is reserved for MBS`},
		{"cli-build path", func() (int, map[string]any) {
			return postJSON(map[string]any{"scmurl": scm["scmurl"], "branch": scm["branch"], "scratch": true, "srpms": []string{"cli-build/1/rida-demo-tools-9.9-1.src.rpm"}})
		}, 400, "must be sent as multipart/form-data file parts"},
		{"hostile file name", func() (int, map[string]any) {
			return postForm(scm, [3]string{"srpms", "../../x.src.rpm", string(srpm)})
		}, 400, `"x.src.rpm" is not named name-version-release.src.rpm`},
	} {
		code, m := tc.send()
		if code != tc.status || !strings.Contains(fmt.Sprint(m["message"]), tc.want) {
			t.Errorf("%s: %d %v, want %d with %q", tc.name, code, m["message"], tc.status, tc.want)
		}
	}
	if got := testfs.Files(t, uploads); !slices.Equal(got, kept) {
		t.Errorf("uploads after the refusals: %v, want %v", got, kept)
	}
	for _, p := range []string{filepath.Join(dir, "x.src.rpm"), filepath.Join(data, "x.src.rpm"), filepath.Join(dir, "zzz-1-1.src.rpm")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
}
