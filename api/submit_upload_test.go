package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/internal/testfs"
	"github.com/rida-build/rida/state"
)

// upYAML is a submitted modulemd with two components; name and stream
// are filled in by the cases.
func upYAML(nameStream string) string {
	return "document: modulemd\nversion: 2\ndata:\n" + nameStream +
		"  summary: S\n  description: D\n  license: {module: [MIT]}\n" +
		"  components:\n    rpms:\n      pkg-a: {rationale: r}\n      pkg-b: {rationale: r}\n"
}

// part is one multipart/form-data part: a field, or a file when file != "".
type part struct{ name, file, value string }

// multipartDo sends parts as multipart/form-data to path with token.
func (b *bundle) multipartDo(path, token string, parts ...part) response {
	b.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.file != "" {
			w, err = mw.CreateFormFile(p.name, p.file)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		if err != nil {
			b.t.Fatal(err)
		}
		io.WriteString(w, p.value)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.http.URL+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := b.http.Client().Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// submitted returns the request options of the build a 201 answered.
func (b *bundle) submitted(r response) (map[string]any, state.RequestOptions, *state.BuildRequest) {
	b.t.Helper()
	if r.status != http.StatusCreated {
		b.t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := r.json(b.t)
	ctx := context.Background()
	rid := uint64(got["request_id"].(float64))
	opts, err := b.store.RequestOptionsFor(ctx, rid)
	if err != nil {
		b.t.Fatal(err)
	}
	req, err := b.store.Request(ctx, rid)
	if err != nil {
		b.t.Fatal(err)
	}
	return got, opts, req
}

func jsonBody(m map[string]any) string {
	raw, _ := json.Marshal(m)
	return string(raw)
}

// TestServer_Submit_Modulemd: a scratch build submitted with its modulemd,
// as the modulemd parameter (JSON) or a yaml file part (multipart), with
// MBS's name and stream rules; the modulemd is stored with the request,
// which names no repository; the refusals name the rule.
func TestServer_Submit_Modulemd(t *testing.T) {
	b := setup(t)
	path := "/module-build-service/1/module-builds/"
	yaml := upYAML("  name: upmod\n  stream: s1\n")

	// JSON: name and stream from the document, overrides honoured.
	got, opts, req := b.submitted(b.do(http.MethodPost, path, testToken, jsonBody(map[string]any{"modulemd": yaml, "scratch": true})))
	if got["name"] != "upmod" || got["stream"] != "s1" || got["scratch"] != true || got["scmurl"] != nil || got["state_name"] != "init" {
		t.Errorf("build %v:%v scratch %v scmurl %v state %v", got["name"], got["stream"], got["scratch"], got["scmurl"], got["state_name"])
	}
	if opts.Modulemd != yaml || !opts.SubmittedAt.Equal(b.clock.Now()) || !opts.Scratch || opts.Owner != "alice" {
		t.Errorf("options %+v", opts)
	}
	if req.ModuleRepo != "" || req.ModuleCommit != "" || req.Key != "upmod:s1" || fmt.Sprint(req.Reasons) != "[scratch build of a submitted modulemd by alice]" {
		t.Errorf("request %+v", req)
	}
	// module_stream wins over the document's stream; module_name does not
	// win over the document's name.
	got, _, _ = b.submitted(b.do(http.MethodPost, path, testToken, jsonBody(map[string]any{"modulemd": yaml, "scratch": true, "module_name": "other", "module_stream": "s2"})))
	if got["name"] != "upmod" || got["stream"] != "s2" {
		t.Errorf("overrides: %v:%v", got["name"], got["stream"])
	}
	// No name or stream in the document: module_name, and stream master.
	bare := upYAML("")
	got, _, _ = b.submitted(b.do(http.MethodPost, path, testToken, jsonBody(map[string]any{"modulemd": bare, "scratch": true, "module_name": "named"})))
	if got["name"] != "named" || got["stream"] != "master" {
		t.Errorf("defaults: %v:%v", got["name"], got["stream"])
	}
	// Multipart, a yaml file part: its basename without .yaml is the name;
	// form fields are strings ("True" as requests sends it).
	r := b.multipartDo(path, testToken, part{name: "scratch", value: "True"}, part{name: "module_stream", value: "f1"},
		part{name: "yaml", file: "../dir/fromfile.yaml", value: bare})
	got, opts, _ = b.submitted(r)
	if got["name"] != "fromfile" || got["stream"] != "f1" || opts.Modulemd != bare {
		t.Errorf("yaml file part: %v:%v %q", got["name"], got["stream"], opts.Modulemd)
	}

	cases := []struct {
		name, body string
		status     int
		want       string
	}{
		{"not scratch", jsonBody(map[string]any{"modulemd": yaml}), 403, "YAML submission is not enabled"},
		{"scratch false", jsonBody(map[string]any{"modulemd": yaml, "scratch": false}), 403, "YAML submission is not enabled"},
		{"module_name without yaml", `{"scmurl": "https://src.example.org/modules/baz?#abc1234", "branch": "main", "module_name": "x"}`, 400, `The \"module_name\" parameter is only used with a modulemd submission`},
		{"module_stream without yaml", `{"scmurl": "https://src.example.org/modules/baz?#abc1234", "branch": "main", "module_stream": "x", "scratch": true}`, 400, `The \"module_stream\" parameter is only used`},
		{"with scmurl", jsonBody(map[string]any{"modulemd": yaml, "scratch": true, "scmurl": "https://src.example.org/modules/baz?#abc1234", "branch": "main"}), 400, `takes no \"scmurl\" or \"branch\"`},
		{"not a string", `{"modulemd": {"a": 1}, "scratch": true}`, 400, "modulemd must be a string"},
		{"not yaml", jsonBody(map[string]any{"modulemd": "{[", "scratch": true}), 400, "The submitted modulemd is not valid: modulemd:"},
		{"invalid", jsonBody(map[string]any{"modulemd": strings.Replace(yaml, "  summary: S\n", "", 1), "scratch": true}), 400, "summary: is required"},
		{"xmd.mbs", jsonBody(map[string]any{"modulemd": yaml + "  xmd: {mbs: {commit: abc}}\n", "scratch": true}), 400, `The \"mbs\" xmd field is reserved for MBS`},
		{"no name", jsonBody(map[string]any{"modulemd": bare, "scratch": true}), 400, "The module's name is not known"},
		{"bad name", jsonBody(map[string]any{"modulemd": bare, "scratch": true, "module_name": "../x"}), 400, `The module name \"../x\" is not usable`},
		{"bad stream", jsonBody(map[string]any{"modulemd": yaml, "scratch": true, "module_stream": "a b"}), 400, `The module stream \"a b\" is not usable`},
		{"platform", jsonBody(map[string]any{"modulemd": bare, "scratch": true, "module_name": "platform"}), 400, "the base module's"},
		{"srpms refused here", jsonBody(map[string]any{"modulemd": yaml, "scratch": true, "srpms": []string{"cli-build/1/pkg-a-1-1.src.rpm"}}), 403, "Uploaded SRPMs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, b.do(http.MethodPost, path, testToken, tc.body), tc.status, tc.want)
		})
	}
	t.Run("both modulemd and yaml", func(t *testing.T) {
		expect(t, b.multipartDo(path, testToken, part{name: "scratch", value: "true"}, part{name: "modulemd", value: yaml},
			part{name: "yaml", file: "x.yaml", value: yaml}), 400, "not both")
	})
	t.Run("form scratch not a boolean", func(t *testing.T) {
		expect(t, b.multipartDo(path, testToken, part{name: "scratch", value: "maybe"}, part{name: "yaml", file: "x.yaml", value: yaml}), 400, "scratch must be true or false")
	})
	t.Run("another file part", func(t *testing.T) {
		expect(t, b.multipartDo(path, testToken, part{name: "scratch", value: "true"}, part{name: "spec", file: "x.spec", value: "x"}), 400, `unexpected file part \"spec\"`)
	})
	t.Run("a second upload of a queued stream", func(t *testing.T) {
		// upmod:s1 is still queued (nothing runs here): one upload never
		// replaces another's.
		expect(t, b.do(http.MethodPost, path, testToken, jsonBody(map[string]any{"modulemd": yaml, "scratch": true})), 409, "is not merged with another")
	})
}

// TestServer_Submit_Owner: "owner" is MBS's NO_AUTH parameter: rida takes
// it from an admin only (or naming the caller), else 403.
func TestServer_Submit_Owner(t *testing.T) {
	b := setup(t, setupOpts{mutate: func(o *api.Options) {
		o.Tokens = map[string]string{"alice": testToken, "root": "root-token"}
		o.AdminUsers = []string{"root"}
	}})
	path := "/module-build-service/1/module-builds/"
	good := `"scmurl": "https://src.example.org/modules/baz?#abc1234", "branch": "main", "scratch": true`
	expect(t, b.do(http.MethodPost, path, testToken, `{`+good+`, "owner": "carol"}`), 403, `The \"owner\" parameter (\"carol\") may only be given by an admin`)
	if got, _, _ := b.submitted(b.do(http.MethodPost, path, testToken, `{`+good+`, "owner": "alice"}`)); got["owner"] != "alice" {
		t.Errorf("own name as owner: %v", got["owner"])
	}
	if got, _, _ := b.submitted(b.do(http.MethodPost, path, "root-token", `{`+good+`, "owner": "carol"}`)); got["owner"] != "carol" {
		t.Errorf("admin for carol: %v", got["owner"])
	}
}

// TestServer_Submit_KojiSRPMs: with the Koji backend, srpms are Koji
// upload paths; each replaces the component of its package (the stem, as
// MBS reads it, else the name of name-version-release.src.rpm); the
// build JSON lists them.
func TestServer_Submit_KojiSRPMs(t *testing.T) {
	b := setup(t, setupOpts{mutate: func(o *api.Options) { o.SRPMs = api.SRPMsKoji }})
	path := "/module-build-service/2/module-builds/"
	yaml := upYAML("  name: kmod\n")
	submit := func(stream string, srpms any) response {
		return b.do(http.MethodPost, path, testToken, jsonBody(map[string]any{"modulemd": yaml, "scratch": true, "module_stream": stream, "srpms": srpms}))
	}
	r := submit("s1", []string{"cli-build/1700000000.1.abcd/pkg-a-2.0-3.src.rpm", "cli-build/1700000000.2.efgh/pkg-b.src.rpm"})
	if r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var list []map[string]any
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(list[0]["srpms"]) != "[cli-build/1700000000.1.abcd/pkg-a-2.0-3.src.rpm cli-build/1700000000.2.efgh/pkg-b.src.rpm]" {
		t.Errorf("build srpms %v", list[0]["srpms"])
	}
	opts, err := b.store.RequestOptionsFor(context.Background(), uint64(list[0]["request_id"].(float64)))
	var got map[string]any
	if err != nil || !slices.Equal(opts.SRPMs, []state.SRPM{{Package: "pkg-a", Path: "cli-build/1700000000.1.abcd/pkg-a-2.0-3.src.rpm"},
		{Package: "pkg-b", Path: "cli-build/1700000000.2.efgh/pkg-b.src.rpm"}}) {
		t.Errorf("options %+v, %v", opts.SRPMs, err)
	}
	// A build without srpms shows an empty list.
	if b := b.get(fmt.Sprintf("/module-build-service/2/module-builds/%v", list[0]["id"])); !strings.Contains(string(b.body), `"srpms"`) {
		t.Errorf("GET lacks srpms: %s", b.body)
	}
	cases := []struct {
		name   string
		srpms  any
		status int
		want   string
	}{
		{"not a list", "cli-build/1/pkg-a-1-1.src.rpm", 400, "srpms must be a list of strings"},
		{"not strings", []int{1}, 400, "srpms must be a list of strings"},
		{"null", nil, 400, "srpms must be a list of strings"},
		{"dot-dot", []string{"cli-build/../../etc/pkg-a-1-1.src.rpm"}, 400, "is not a Koji upload path"},
		{"absolute", []string{"/tmp/pkg-a-1-1.src.rpm"}, 400, "is not a Koji upload path"},
		{"not srpm", []string{"cli-build/1/pkg-a-1-1.noarch.rpm"}, 400, "is not a Koji upload path"},
		{"no component", []string{"cli-build/1/zzz-1-1.src.rpm"}, 400, "srpms: cli-build/1/zzz-1-1.src.rpm (package zzz) matches no component of kmod:s2 (components: pkg-a, pkg-b)"},
		{"twice", []string{"cli-build/1/pkg-a-1-1.src.rpm", "cli-build/2/pkg-a-1-2.src.rpm"}, 400, "are both package pkg-a"},
		{"file part", nil, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "file part" {
				expect(t, b.multipartDo(path, testToken, part{name: "scratch", value: "true"}, part{name: "yaml", file: "kmod.yaml", value: yaml},
					part{name: "srpms", file: "pkg-a-1-1.src.rpm", value: "x"}), 400, "upload the SRPM to the Koji hub")
				return
			}
			expect(t, submit("s2", tc.srpms), tc.status, tc.want)
		})
	}
	// As form fields (requests' data= with a list): repeated srpms fields.
	got, opts, _ = b.submitted(b.multipartDo("/module-build-service/1/module-builds/", testToken, part{name: "scratch", value: "true"},
		part{name: "module_stream", value: "s3"}, part{name: "yaml", file: "kmod.yaml", value: yaml},
		part{name: "srpms", value: "cli-build/1/pkg-a-1-1.src.rpm"}, part{name: "srpms", value: "cli-build/2/pkg-b-1-1.src.rpm"}))
	if len(opts.SRPMs) != 2 || opts.SRPMs[1] != (state.SRPM{Package: "pkg-b", Path: "cli-build/2/pkg-b-1-1.src.rpm"}) || len(got["srpms"].([]any)) != 2 {
		t.Errorf("form srpms: %+v, build %v", opts.SRPMs, got["srpms"])
	}
	// Without scratch: 403, whatever the list holds.
	expect(t, b.do(http.MethodPost, path, testToken, `{"scmurl": "https://src.example.org/modules/baz?#abc1234", "branch": "main", "srpms": "x"}`),
		403, "srpms may only be submitted with scratch builds")
}

// fakeModulemds returns one modulemd for every repository.
type fakeModulemds struct{ yaml string }

func (f fakeModulemds) ReadModulemd(context.Context, string, string, string) ([]byte, error) {
	return []byte(f.yaml), nil
}

// TestServer_Submit_UploadedSRPMs: with the local backend, SRPM files are
// multipart file parts stored under the uploads directory (a new
// directory per submission, the client's file name reduced to its last
// element); a refused submission leaves no file; hostile names, a Koji
// path, an SRPM matching no component (of a submitted or a repository's
// modulemd) and a body over the size limit are refused, naming the
// problem, and nothing is written outside the uploads directory.
func TestServer_Submit_UploadedSRPMs(t *testing.T) {
	var uploads string
	b := setup(t, setupOpts{mutate: func(o *api.Options) {
		uploads = filepath.Join(o.DataDir, "uploads")
		o.SRPMs, o.UploadDir, o.MaxUpload = api.SRPMsUploaded, uploads, 64<<10
		o.Modulemds = fakeModulemds{upYAML("")}
	}})
	path := "/module-build-service/1/module-builds/"
	before := testfs.Files(t, b.dataDir)
	scratch := part{name: "scratch", value: "true"}
	yaml := func(stream string) part {
		return part{name: "yaml", file: "umod.yaml", value: upYAML("  stream: " + stream + "\n")}
	}
	srpm := []byte("\xed\xab\xee\xdb fake srpm")

	// A hostile name: only the last element is kept.
	got, opts, _ := b.submitted(b.multipartDo(path, testToken, scratch, yaml("s1"),
		part{name: "srpms", file: "../../pkg-a-2.0-1.src.rpm", value: string(srpm)}))
	if len(opts.SRPMs) != 1 || opts.SRPMs[0].Package != "pkg-a" || !strings.HasSuffix(opts.SRPMs[0].Path, "/pkg-a-2.0-1.src.rpm") ||
		fmt.Sprint(got["srpms"]) != "["+opts.SRPMs[0].Path+"]" {
		t.Fatalf("options %+v, build srpms %v", opts.SRPMs, got["srpms"])
	}
	if data, err := os.ReadFile(filepath.Join(uploads, opts.SRPMs[0].Path)); err != nil || !bytes.Equal(data, srpm) {
		t.Errorf("stored SRPM: %q, %v", data, err)
	}
	// An scmurl submission's SRPMs are matched against the repository's
	// modulemd.
	_, opts2, _ := b.submitted(b.multipartDo(path, testToken, scratch, part{name: "scmurl", value: "https://src.example.org/modules/baz?#abc1234"},
		part{name: "branch", value: "main"}, part{name: "srpms", file: "pkg-b-1-1.src.rpm", value: string(srpm)}))
	if len(opts2.SRPMs) != 1 || opts2.SRPMs[0].Package != "pkg-b" || opts2.HasUploads() == false || opts2.Modulemd != "" {
		t.Errorf("scm submission options %+v", opts2)
	}
	stored := testfs.Files(t, uploads)
	if len(stored) != 2 {
		t.Fatalf("uploads %v", stored)
	}

	cases := []struct {
		name   string
		parts  []part
		status int
		want   string
	}{
		{"only dots", []part{scratch, yaml("s2"), {name: "srpms", file: "../..", value: "x"}}, 400, "is not usable"},
		{"no NVR", []part{scratch, yaml("s2"), {name: "srpms", file: "../../x.src.rpm", value: "x"}}, 400, `\"x.src.rpm\" is not named name-version-release.src.rpm`},
		{"odd characters", []part{scratch, yaml("s2"), {name: "srpms", file: "pkg-a-1-1;rm.src.rpm", value: "x"}}, 400, "is not usable"},
		{"not an srpm", []part{scratch, yaml("s2"), {name: "srpms", file: "pkg-a-1-1.noarch.rpm", value: "x"}}, 400, "is not named name-version-release.src.rpm"},
		{"no component", []part{scratch, yaml("s2"), {name: "srpms", file: "zzz-1-1.src.rpm", value: "x"}}, 400, "srpms: "},
		{"no component in the repository", []part{scratch, {name: "scmurl", value: "https://src.example.org/modules/baz?#abc1234"},
			{name: "branch", value: "main"}, {name: "srpms", file: "zzz-1-1.src.rpm", value: "x"}}, 400, "(package zzz) matches no component of baz:main"},
		{"twice", []part{scratch, yaml("s2"), {name: "srpms", file: "pkg-a-1-1.src.rpm", value: "x"}, {name: "srpms", file: "pkg-a-1-1.src.rpm", value: "y"}}, 400, "is sent twice"},
		{"not scratch", []part{yaml("s2"), {name: "srpms", file: "pkg-a-1-1.src.rpm", value: "x"}, {name: "scratch", value: "false"}}, 403, "YAML submission is not enabled"},
		{"koji path here", []part{scratch, yaml("s2"), {name: "srpms", value: "cli-build/1/pkg-a-1-1.src.rpm"}}, 400, "must be sent as multipart/form-data file parts"},
		{"too large", []part{scratch, yaml("s2"), {name: "srpms", file: "pkg-a-1-1.src.rpm", value: strings.Repeat("x", 65<<10)}}, 413, "larger than the 65536 bytes allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, b.multipartDo(path, testToken, tc.parts...), tc.status, tc.want)
		})
	}
	t.Run("koji path in JSON", func(t *testing.T) {
		expect(t, b.do(http.MethodPost, path, testToken, jsonBody(map[string]any{"modulemd": upYAML("  name: j\n"), "scratch": true,
			"srpms": []string{"cli-build/1/pkg-a-1-1.src.rpm"}})), 400, "Koji upload paths (cli-build/…) only work with the Koji backend")
	})
	// The refused submissions left nothing behind; nothing was written
	// outside the uploads directory.
	if after := testfs.Files(t, uploads); !slices.Equal(after, stored) {
		t.Errorf("uploads after the refusals: %v, want %v", after, stored)
	}
	var outside []string
	for _, f := range testfs.Files(t, b.dataDir) {
		if !strings.HasPrefix(f, "uploads"+string(filepath.Separator)) && !slices.Contains(before, f) {
			outside = append(outside, f)
		}
	}
	if len(outside) > 0 {
		t.Errorf("files written outside the uploads directory: %v", outside)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(b.dataDir), "pkg-a-2.0-1.src.rpm")); err == nil {
		t.Errorf("the hostile name was followed out of the data directory")
	}
}
