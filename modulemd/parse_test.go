package modulemd

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const testHeader = `document: modulemd
version: 2
data:
  summary: s
  description: d
  license:
    module: [MIT]
`

// mustParseOne parses a single-stream source document.
func mustParseOne(t *testing.T, doc string) *Stream {
	t.Helper()
	ss, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(ss) != 1 {
		t.Fatalf("Parse: got %d streams, want 1", len(ss))
	}
	return ss[0]
}

func TestParse_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want string // substring of the error
	}{
		{"Empty", "", "no YAML document"},
		{"TwoDocuments", testHeader + "---\n" + testHeader, "exactly one document, found 2"},
		{"Fragment", "bar:\n  rationale: r\n", "no document type specified"},
		{"NoData", "document: modulemd\nversion: 2\n", "no data section"},
		{"DataNotMap", "document: modulemd\nversion: 2\ndata: foo\n", "data section is not a mapping"},
		{"NoVersion", "document: modulemd\ndata: {}\n", "no document version"},
		{"UnknownRoot", testHeader + "extra: 1\n", `unknown key "extra" in document root`},
		{"UnknownDataKey", testHeader + "  bogus: 1\n", "bogus: unknown key"},
		{"UnknownComponentKey", testHeader + "  components:\n    rpms:\n      foo:\n        rationale: r\n        bogus: 1\n", "components.rpms.foo.bogus: unknown key"},
		{"UnknownModuleComponentKey", testHeader + "  components:\n    modules:\n      foo:\n        bogus: 1\n", "components.modules.foo.bogus: unknown key"},
		{"UnknownDepKey", testHeader + "  dependencies:\n  - bogus: {}\n", "dependencies[0].bogus: unknown key"},
		{"StreamV1", "document: modulemd\nversion: 1\ndata:\n  summary: s\n", "stream v1 is not accepted"},
		{"Defaults", "document: modulemd-defaults\nversion: 1\ndata:\n  module: m\n", "not a module source document"},
		{"UnknownVersion", "document: modulemd\nversion: 3000\ndata: {}\n", "not a module source document"},
		{"NegativeVersion", testHeader + "  version: -1\n", `version: "-1" is negative`},
		{"VersionNotInt", testHeader + "  version: notanint\n", "not an unsigned 64-bit integer"},
		{"VersionOverflow", testHeader + "  version: 18446744073709551616\n", "not an unsigned 64-bit integer"},
		{"BuildorderFloat", testHeader + "  components:\n    rpms:\n      a:\n        buildorder: 1.5\n", "components.rpms.a.buildorder"},
		{"BoolYes", testHeader + "  static_context: yes\n", "neither true nor false"},
		{"BadEOL", testHeader + "  servicelevels:\n    rawhide:\n      eol: 2077-13-45\n", "servicelevels.rawhide.eol"},
		{"DepsNotList", testHeader + "  dependencies:\n    buildrequires: {}\n", "dependencies: expected a list"},
		{"StreamsNotList", testHeader + "  dependencies:\n  - buildrequires:\n      platform: f39\n", "dependencies[0].buildrequires.platform: expected a list"},
		{"EmptyListItem", testHeader + "  api:\n    rpms: [a, \"\"]\n", "api.rpms[1]: empty list item"},
		{"DuplicateKey", testHeader + "  summary: again\n", "summary: duplicate key"},
		{"Alias", testHeader + "  xmd: &x {a: b}\n  references: *x\n", "aliases are not allowed"},
		{"MergeKey", testHeader + "  xmd:\n    base: &b {a: 1}\n    c:\n      <<: *b\n", "merge keys are not allowed"},
		{"NotUTF8", testHeader + "  description: \xff\xfe\n", "not valid UTF-8"},
		{"NUL", testHeader + "  description: a\x00b\n", "NUL byte"},
		{"InvalidYAML", testHeader + "  summary: [unclosed\n", "invalid YAML"},
		{"XmdNotMap", testHeader + "  xmd: [a]\n", "xmd: expected a mapping"},
		{"PackagerV2Name", "document: modulemd-packager\nversion: 2\ndata:\n  name: foo\n", "name: not allowed in a modulemd-packager v2 document"},
		{"PackagerV2Buildopts", "document: modulemd-packager\nversion: 2\ndata:\n  buildopts: {}\n", "buildopts: not allowed"},
		{"PackagerV2Artifacts", "document: modulemd-packager\nversion: 2\ndata:\n  artifacts: {}\n", "artifacts: not allowed"},
		{"PackagerV3Dependencies", "document: modulemd-packager\nversion: 3\ndata:\n  dependencies: []\n", "dependencies: unknown key"},
		{"PackagerV3NoConfigurations", "document: modulemd-packager\nversion: 3\ndata:\n  summary: s\n", "at least one build configuration"},
		{"PackagerV3LongContext", "document: modulemd-packager\nversion: 3\ndata:\n  configurations:\n  - context: a2345678901\n    platform: f39\n", "longer than 10"},
		{"PackagerV3ContextUnderscore", "document: modulemd-packager\nversion: 3\ndata:\n  configurations:\n  - context: a_b\n    platform: f39\n", "[a-zA-Z0-9]"},
		{"PackagerV3NoContext", "document: modulemd-packager\nversion: 3\ndata:\n  configurations:\n  - platform: f39\n", "configurations[0].context: missing"},
		{"PackagerV3NoPlatform", "document: modulemd-packager\nversion: 3\ndata:\n  configurations:\n  - context: A\n", "configurations[0].platform: missing"},
		{"PackagerV3DuplicateContext", "document: modulemd-packager\nversion: 3\ndata:\n  configurations:\n  - {context: A, platform: f39}\n  - {context: A, platform: f40}\n", `duplicate context "A"`},
		{"PackagerV3TwoStreams", "document: modulemd-packager\nversion: 3\ndata:\n  configurations:\n  - context: A\n    platform: f39\n    requires:\n      nodejs: [18, 20]\n", "configurations[0].requires.nodejs: must specify a single stream"},
		{"PackagerV3UnknownConfigKey", "document: modulemd-packager\nversion: 3\ndata:\n  configurations:\n  - context: A\n    platform: f39\n    bogus: 1\n", "configurations[0].bogus: unknown key"},
		{"PackagerV3LicenseMap", "document: modulemd-packager\nversion: 3\ndata:\n  license:\n    module: [MIT]\n", "license: expected a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *ParseError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParse_ComponentKeys(t *testing.T) {
	t.Parallel()
	bad := []string{`"a/b"`, `"../x"`, `".hidden"`, `"-rf"`, `"a b"`, `"a\tb"`, `"a\\\\b"`, `"x..y"`, `"a\u0001b"`}
	for _, key := range bad {
		for _, where := range []string{"rpms", "modules"} {
			doc := testHeader + "  components:\n    " + where + ":\n      " + key + ":\n        rationale: r\n"
			if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), "component key") {
				t.Errorf("%s key %s: err = %v, want a component key error", where, key, err)
			}
		}
		doc := testHeader + "  components:\n    rpms:\n      ok:\n        name: " + key + "\n"
		if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), "package name") {
			t.Errorf("name %s: err = %v, want a package name error", key, err)
		}
	}
	good := testHeader + "  components:\n    rpms:\n      python3.11-foo_bar+:\n        rationale: r\n"
	if _, err := Parse([]byte(good)); err != nil {
		t.Errorf("good key: %v", err)
	}
}

func TestParse_Hostile(t *testing.T) {
	t.Parallel()
	t.Run("TooLarge", func(t *testing.T) {
		t.Parallel()
		data := append([]byte(testHeader+"  description: "), bytes.Repeat([]byte("a"), MaxDocumentSize)...)
		for _, f := range []func([]byte) ([]*Stream, error){Parse, ParseIndex} {
			if _, err := f(data); err == nil || !strings.Contains(err.Error(), "more than the limit") {
				t.Errorf("err = %v, want size limit error", err)
			}
		}
	})
	t.Run("AliasBomb", func(t *testing.T) {
		t.Parallel()
		// Billion laughs: without alias rejection this expands to 10^9 items.
		var b strings.Builder
		b.WriteString(testHeader + "  xmd:\n    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
		for i := 1; i <= 9; i++ {
			b.WriteString("    l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [")
			for j := range 10 {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString("*l" + string(rune('0'+i-1)))
			}
			b.WriteString("]\n")
		}
		for _, f := range []func([]byte) ([]*Stream, error){Parse, ParseIndex} {
			if _, err := f([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "aliases are not allowed") {
				t.Errorf("err = %v, want alias error", err)
			}
		}
	})
	t.Run("DeepNesting", func(t *testing.T) {
		t.Parallel()
		data := testHeader + "  xmd:\n    a: " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "\n"
		if _, err := Parse([]byte(data)); err == nil {
			t.Error("deeply nested xmd accepted")
		}
		data = testHeader + "  xmd:\n    a: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n"
		if _, err := Parse([]byte(data)); err == nil || !strings.Contains(err.Error(), "levels deep") {
			t.Errorf("err = %v, want depth error", err)
		}
	})
}

func TestParse_PackagerV3(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/cases/packager_v3_good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ss, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 {
		t.Fatalf("got %d streams, want 2", len(ss))
	}
	s1, s2 := ss[0], ss[1]
	if s1.Context != "CTX1" || s2.Context != "CTX2" || s1.StaticContext {
		t.Errorf("contexts = %q, %q (static %v)", s1.Context, s2.Context, s1.StaticContext)
	}
	wantDeps := []Dependencies{{
		BuildRequires: map[string][]string{"platform": {"f39"}, "nodejs": {"20"}},
		Requires:      map[string][]string{"platform": {"f39"}, "nodejs": {"20"}},
	}}
	if !reflect.DeepEqual(s1.Dependencies, wantDeps) {
		t.Errorf("deps = %#v", s1.Dependencies)
	}
	if s1.BuildOpts == nil || !reflect.DeepEqual(s1.BuildOpts.Arches, []string{"x86_64"}) || s2.BuildOpts != nil {
		t.Errorf("buildopts = %#v / %#v, want own configuration's", s1.BuildOpts, s2.BuildOpts)
	}
	if !reflect.DeepEqual(s1.License.Module, []string{"MIT"}) {
		t.Errorf("license = %v, want default MIT", s1.License.Module)
	}
	if s1.Name != "foo" || s1.Stream != "latest" || s1.Components.RPMs["b"].BuildAfter[0] != "a" {
		t.Errorf("stream fields not copied: %+v", s1)
	}
	// The streams share nothing.
	s1.Components.RPMs["a"].Ref = "changed"
	if s2.Components.RPMs["a"].Ref != "" {
		t.Error("streams share components")
	}
}

func TestParse_ScalarsAsStrings(t *testing.T) {
	t.Parallel()
	s := mustParseOne(t, testHeader+"  name: 1.10\n  stream: 8\n  version: \"42\"\n  components:\n    rpms:\n      a:\n        ref: 10\n")
	if s.Name != "1.10" || s.Stream != "8" || s.Version != 42 || s.Components.RPMs["a"].Ref != "10" {
		t.Errorf("got name %q stream %q version %d ref %q", s.Name, s.Stream, s.Version, s.Components.RPMs["a"].Ref)
	}
	if s.Components.RPMs["a"].Key != "a" || s.Components.RPMs["a"].PackageName() != "a" {
		t.Errorf("key/package name not set from map key")
	}
}

func TestParseIndex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		doc     string
		streams int
		wantErr string
	}{
		{"Empty", "", 0, ""},
		{"V1Converted", "document: modulemd\nversion: 1\ndata:\n  summary: s\n  eol: 2077-10-23\n  dependencies:\n    buildrequires: {platform: f28}\n", 1, ""},
		{"OthersTolerated", "---\ndocument: modulemd-defaults\nversion: 1\ndata:\n  module: m\n...\n---\ndocument: modulemd-obsoletes\nversion: 1\ndata: {module: m, stream: s, modified: 1, message: x}\n...\n---\ndocument: modulemd-translations\nversion: 1\ndata: {module: m, stream: s, modified: 1}\n" + "---\n" + testHeader, 1, ""},
		{"ObsoletesNoMessage", "document: modulemd-obsoletes\nversion: 1\ndata: {module: m, stream: s, modified: 1}\n", 0, "message: missing"},
		{"Packager", "---\n" + testHeader + "---\ndocument: modulemd-packager\nversion: 3\ndata: {}\n", 0, "document 2: line 9 col 1: modulemd-packager documents are not allowed"},
		{"TrailingEmptyDocument", testHeader + "...\n---\n", 0, "document 2"},
		{"UnknownDocument", "document: bogus\nversion: 1\ndata: {}\n", 0, "unsupported document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ss, err := ParseIndex([]byte(tt.doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ss) != tt.streams {
				t.Errorf("got %d streams, want %d", len(ss), tt.streams)
			}
		})
	}
	ss, err := ParseIndex([]byte("document: modulemd\nversion: 1\ndata:\n  summary: s\n  eol: 2077-10-23\n  dependencies:\n    buildrequires: {platform: f28}\n    requires: {platform: f28}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Dependencies{{BuildRequires: map[string][]string{"platform": {"f28"}}, Requires: map[string][]string{"platform": {"f28"}}}}
	if !reflect.DeepEqual(ss[0].Dependencies, want) || ss[0].ServiceLevels["rawhide"].EOL != "2077-10-23" {
		t.Errorf("v1 conversion: deps %#v, servicelevels %#v", ss[0].Dependencies, ss[0].ServiceLevels)
	}
}

// corpusStreams returns every stream rida reads from the testdata files.
func corpusStreams(t *testing.T) map[string][]*Stream {
	t.Helper()
	out := map[string][]*Stream{}
	for _, dir := range []string{"testdata/libmodulemd", "testdata/cases"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			ss, err := ParseIndex(data)
			if err != nil {
				ss, err = Parse(data)
			}
			if err == nil {
				out[p] = ss
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestMarshal_RoundTrip(t *testing.T) {
	t.Parallel()
	n := 0
	for p, ss := range corpusStreams(t) {
		for i, s := range ss {
			out, err := s.Marshal()
			if err != nil {
				t.Errorf("%s[%d]: Marshal: %v", p, i, err)
				continue
			}
			back, err := Parse(out)
			if err != nil {
				t.Errorf("%s[%d]: Parse(Marshal()): %v\n%s", p, i, err, out)
				continue
			}
			if !reflect.DeepEqual(s, back[0]) {
				t.Errorf("%s[%d]: round trip differs\nbefore: %#v\nafter:  %#v", p, i, s, back[0])
			}
			again, _ := back[0].Marshal()
			if !bytes.Equal(out, again) {
				t.Errorf("%s[%d]: Marshal not stable", p, i)
			}
			n++
		}
	}
	if n < 100 {
		t.Errorf("round-tripped only %d streams", n)
	}
}

func TestMarshal_XmdPreserved(t *testing.T) {
	t.Parallel()
	s := mustParseOne(t, testHeader+`  xmd:
    mbs:
      mse: TRUE
      buildrequires:
        platform: {stream: f29, context: 00000000, version: 4, filtered_rpms: []}
    float: 2.0
    oddfloat: 1.10
    hex: 0x1F
    big: 18446744073709551615
    "null": ~
    list: [a, 1, -2, false]
    date: 2020-03-19
`)
	want := map[string]any{
		"mbs": map[string]any{
			"mse": true,
			"buildrequires": map[string]any{"platform": map[string]any{
				"stream": "f29", "context": "00000000", "version": 4, "filtered_rpms": []any{}}},
		},
		"float":    2.0,
		"oddfloat": "1.10",
		"hex":      "0x1F",
		"big":      uint64(18446744073709551615),
		"null":     nil,
		"list":     []any{"a", 1, -2, false},
		"date":     "2020-03-19",
	}
	if !reflect.DeepEqual(s.Xmd, want) {
		t.Fatalf("xmd = %#v\nwant  %#v", s.Xmd, want)
	}
	out, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back := mustParseOne(t, string(out))
	if !reflect.DeepEqual(back.Xmd, want) {
		t.Errorf("xmd after round trip = %#v\n%s", back.Xmd, out)
	}
	if !strings.Contains(string(out), "mse: TRUE") {
		t.Errorf("booleans in xmd are not written as TRUE/FALSE:\n%s", out)
	}
}

func TestMarshal_UnsupportedXmd(t *testing.T) {
	t.Parallel()
	s := &Stream{Xmd: map[string]any{"ch": make(chan int)}}
	if _, err := s.Marshal(); err == nil || !strings.Contains(err.Error(), "xmd.ch") {
		t.Errorf("err = %v, want an error naming xmd.ch", err)
	}
	s = &Stream{Xmd: map[string]any{"ok": map[string]string{"a": "b"}, "n": int64(3), "l": []string{"x"}}}
	out, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "a: b") || !strings.Contains(string(out), "n: 3") {
		t.Errorf("typed xmd values not written:\n%s", out)
	}
}

// TestMarshal_Golden compares Marshal output with testdata/golden/*.yaml.
// Run `go test ./modulemd/ -run TestMarshal_Golden -update` to rewrite them.
func TestMarshal_Golden(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"stream_v2_spec":    "testdata/libmodulemd/specs/modulemd_stream_v2.yaml",
		"packager_v2_spec":  "testdata/libmodulemd/specs/modulemd_packager_v2.yaml",
		"packager_v3_spec":  "testdata/libmodulemd/specs/modulemd_packager_v3.yaml",
		"packager_v3_good":  "testdata/cases/packager_v3_good.yaml",
		"good_buildorder":   "testdata/cases/good_buildorder.yaml",
		"stream_unicode_v1": "testdata/libmodulemd/testdata/stream_unicode_v1.yaml",
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			ss, err := Parse(data)
			if err != nil {
				ss, err = ParseIndex(data)
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := MarshalIndex(ss)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", name+".yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Marshal output differs from %s (run with -update after checking):\n%s", golden, got)
			}
		})
	}
}
