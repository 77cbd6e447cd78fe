package modulemd

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeResolver resolves refs from a table and records its calls.
type fakeResolver struct {
	mu    sync.Mutex
	refs  map[string]string // "repo#ref" -> commit
	calls []string
}

func (f *fakeResolver) ResolveRef(_ context.Context, repo, ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, repo+"#"+ref)
	if c, ok := f.refs[repo+"#"+ref]; ok {
		return c, nil
	}
	return "", errors.New("no such ref")
}

const (
	hashA = "1111111111111111111111111111111111111111"
	hashB = "2222222222222222222222222222222222222222"
)

func enrichSource() string {
	return testHeader + `  dependencies:
  - buildrequires:
      platform: [f39]
    requires:
      platform: [f39]
  components:
    rpms:
      foo:
        rationale: r
      bar:
        name: bar-real
        rationale: r
        repository: https://git.example.com/custom/bar.git
        ref: v1.0
`
}

func enrichOptions(r RefResolver) EnrichOptions {
	return EnrichOptions{
		Name:              "mymod",
		Branch:            "stable",
		ModuleCommit:      "abcdefabcdefabcdefabcdefabcdefabcdefabcd",
		CommitTime:        time.Date(2020, 5, 18, 19, 38, 9, 0, time.FixedZone("CEST", 2*3600)),
		ScmURL:            "https://git.example.com/modules/mymod.git?#abcdef",
		DefaultRepository: "https://git.example.com/rpms/",
		Resolver:          r,
	}
}

func TestEnrich(t *testing.T) {
	t.Parallel()
	s := mustParseOne(t, enrichSource())
	r := &fakeResolver{refs: map[string]string{
		"https://git.example.com/rpms/foo#stable":     hashA,
		"https://git.example.com/custom/bar.git#v1.0": hashB,
	}}
	if err := Enrich(context.Background(), s, enrichOptions(r)); err != nil {
		t.Fatal(err)
	}
	if s.Name != "mymod" || s.Stream != "stable" {
		t.Errorf("name:stream = %s:%s", s.Name, s.Stream)
	}
	// 17:38:09 UTC, prefixed with "39" from platform f39.
	if s.Version != 3920200518173809 {
		t.Errorf("version = %d, want 3920200518173809", s.Version)
	}
	// python3 -c 'import json,hashlib;from collections import OrderedDict as O;
	//   b=hashlib.sha1(json.dumps(O(sorted({"platform":"f39"}.items()))).encode()).hexdigest();
	//   r=hashlib.sha1(json.dumps(O(sorted({"platform":["f39"]}.items()))).encode()).hexdigest();
	//   print(hashlib.sha1((b+":"+r).encode()).hexdigest()[:8])'  -> c44cc2b9
	if s.Context != "c44cc2b9" {
		t.Errorf("context = %q, want c44cc2b9", s.Context)
	}
	foo := s.Components.RPMs["foo"]
	if foo.Repository != "https://git.example.com/rpms/foo" || foo.Ref != "stable" {
		t.Errorf("foo repository/ref = %q %q", foo.Repository, foo.Ref)
	}
	wantMBS := map[string]any{
		"mse":    true,
		"commit": "abcdefabcdefabcdefabcdefabcdefabcdefabcd",
		"scmurl": "https://git.example.com/modules/mymod.git?#abcdef",
		"buildrequires": map[string]any{
			"platform": map[string]any{"stream": "f39", "filtered_rpms": []any{}},
		},
		"requires": map[string]any{"platform": map[string]any{"stream": "f39"}},
		"rpms": map[string]any{
			"foo": map[string]any{"ref": hashA},
			"bar": map[string]any{"ref": hashB},
		},
	}
	if !reflect.DeepEqual(s.Xmd["mbs"], wantMBS) {
		t.Errorf("xmd.mbs = %#v\nwant      %#v", s.Xmd["mbs"], wantMBS)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("enriched stream invalid: %v", err)
	}
	// The enriched stream survives a round trip.
	out, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if back := mustParseOne(t, string(out)); !reflect.DeepEqual(back, s) {
		t.Errorf("round trip of the enriched stream differs:\n%s", out)
	}

	// Enriching again keeps the first resolution and calls nobody.
	r2 := &fakeResolver{}
	if err := Enrich(context.Background(), s, enrichOptions(r2)); err != nil {
		t.Fatal(err)
	}
	if len(r2.calls) != 0 {
		t.Errorf("second Enrich resolved %v again", r2.calls)
	}
}

func TestEnrich_Options(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		doc     string
		opts    func(o *EnrichOptions)
		check   func(t *testing.T, s *Stream)
		wantErr string
	}{
		{"DefaultRef", enrichSource(), func(o *EnrichOptions) {
			o.DefaultRef = "rawhide"
			o.Resolver = &fakeResolver{refs: map[string]string{
				"https://git.example.com/rpms/foo#rawhide": hashA, "https://git.example.com/custom/bar.git#v1.0": hashB}}
		}, func(t *testing.T, s *Stream) {
			if s.Components.RPMs["foo"].Ref != "rawhide" {
				t.Errorf("ref = %q", s.Components.RPMs["foo"].Ref)
			}
		}, ""},
		{"VersionKept", strings.Replace(enrichSource(), "  dependencies:", "  version: 7\n  dependencies:", 1), nil,
			func(t *testing.T, s *Stream) {
				if s.Version != 7 {
					t.Errorf("version = %d, want 7", s.Version)
				}
			}, ""},
		{"StaticContextKept", strings.Replace(enrichSource(), "  dependencies:", "  static_context: true\n  context: mine\n  dependencies:", 1), nil,
			func(t *testing.T, s *Stream) {
				if s.Context != "mine" || s.Xmd["mbs"].(map[string]any)["static_context"] != true {
					t.Errorf("context = %q, xmd.mbs = %v", s.Context, s.Xmd["mbs"])
				}
			}, ""},
		{"PlatformAdded", testHeader, func(o *EnrichOptions) { o.Platform = "el8.2.0" },
			func(t *testing.T, s *Stream) {
				want := []Dependencies{{BuildRequires: map[string][]string{"platform": {"el8.2.0"}}, Requires: map[string][]string{"platform": {"el8.2.0"}}}}
				if !reflect.DeepEqual(s.Dependencies, want) {
					t.Errorf("deps = %v", s.Dependencies)
				}
				if s.Version != 8020020200518173809 {
					t.Errorf("version = %d, want 8020020200518173809", s.Version)
				}
			}, ""},
		{"NoPlatformNoPrefix", testHeader, nil, func(t *testing.T, s *Stream) {
			if s.Version != 20200518173809 {
				t.Errorf("version = %d", s.Version)
			}
			// python3: sha1(sha1("{}") + ":" + sha1("{}"))[:8]
			if s.Context != ComputeContext(nil, nil) {
				t.Errorf("context = %q", s.Context)
			}
		}, ""},
		{"ResolvedBuildRequires", enrichSource(), func(o *EnrichOptions) {
			o.BuildRequires = map[string]ResolvedModule{
				"platform": {Stream: "f39", Version: 5, Context: "00000000", Ref: "virtual", KojiTag: "module-f39-build"},
				"nodejs":   {Stream: "20"},
			}
		}, func(t *testing.T, s *Stream) {
			br := s.Xmd["mbs"].(map[string]any)["buildrequires"].(map[string]any)
			want := map[string]any{"stream": "f39", "version": "5", "context": "00000000", "ref": "virtual",
				"koji_tag": "module-f39-build", "filtered_rpms": []any{}}
			if !reflect.DeepEqual(br["platform"], want) || br["nodejs"] == nil {
				t.Errorf("buildrequires = %#v", br)
			}
			// python3: build {"nodejs": "20", "platform": "f39"}, runtime {"platform": ["f39"]}
			if s.Context != ComputeContext(map[string]string{"nodejs": "20", "platform": "f39"}, map[string][]string{"platform": {"f39"}}) {
				t.Errorf("context %q ignores the transitive buildrequires", s.Context)
			}
		}, ""},
		{"ErrNameMismatch", strings.Replace(enrichSource(), "data:\n", "data:\n  name: other\n", 1), nil, nil, `name: the document says "other"`},
		{"ErrStreamMismatch", strings.Replace(enrichSource(), "data:\n", "data:\n  stream: other\n", 1), nil, nil, `stream: the document says "other"`},
		{"ErrNoName", enrichSource(), func(o *EnrichOptions) { o.Name = "" }, nil, "name: the document has none"},
		{"ErrNoVersion", enrichSource(), func(o *EnrichOptions) { o.CommitTime = time.Time{} }, nil, "CommitTime is unset"},
		{"ErrMSE", strings.Replace(enrichSource(), "platform: [f39]\n    requires", "platform: [f39, f40]\n    requires", 1), nil, nil,
			"dependencies[0].buildrequires.platform: [f39 f40]: stream expansion is not supported"},
		{"ErrNoRepository", enrichSource(), func(o *EnrichOptions) { o.DefaultRepository = "" }, nil,
			"components.rpms.foo: no repository and no DefaultRepository"},
		{"ErrResolve", enrichSource(), func(o *EnrichOptions) { o.Resolver = &fakeResolver{} }, nil,
			`components.rpms.bar: resolving ref "v1.0" of https://git.example.com/custom/bar.git: no such ref`},
		{"ErrShortHash", enrichSource(), func(o *EnrichOptions) {
			o.Resolver = &fakeResolver{refs: map[string]string{
				"https://git.example.com/rpms/foo#stable": "abc123", "https://git.example.com/custom/bar.git#v1.0": hashB}}
		}, nil, `components.rpms.foo: resolving ref "stable"`},
		{"ErrNoResolver", enrichSource(), func(o *EnrichOptions) { o.Resolver = nil }, nil, "Resolver is nil"},
		{"ErrResolvedStreamDiffers", enrichSource(), func(o *EnrichOptions) {
			o.BuildRequires = map[string]ResolvedModule{"platform": {Stream: "f40"}}
		}, nil, `BuildRequires["platform"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustParseOne(t, tt.doc)
			opts := enrichOptions(&fakeResolver{refs: map[string]string{
				"https://git.example.com/rpms/foo#stable": hashA, "https://git.example.com/custom/bar.git#v1.0": hashB}})
			if tt.opts != nil {
				tt.opts(&opts)
			}
			err := Enrich(context.Background(), s, opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestEnrich_ResolverErrorWrapped(t *testing.T) {
	t.Parallel()
	sentinel := errors.New("boom")
	s := mustParseOne(t, enrichSource())
	opts := enrichOptions(resolverFunc(func(context.Context, string, string) (string, error) { return "", sentinel }))
	err := Enrich(context.Background(), s, opts)
	if !errors.Is(err, sentinel) {
		t.Errorf("err = %v, does not wrap the resolver's error", err)
	}
	if !strings.Contains(err.Error(), "components.rpms.foo") || !strings.Contains(err.Error(), "components.rpms.bar") {
		t.Errorf("err = %v, want both failing components named", err)
	}
}

type resolverFunc func(ctx context.Context, repo, ref string) (string, error)

func (f resolverFunc) ResolveRef(ctx context.Context, repo, ref string) (string, error) {
	return f(ctx, repo, ref)
}

func TestComputeContext(t *testing.T) {
	t.Parallel()
	// Vectors computed with
	//   python3 -c 'import json,hashlib;from collections import OrderedDict as O
	//   def ctx(br,rq):
	//     b=hashlib.sha1(json.dumps(O(sorted(br.items()))).encode()).hexdigest()
	//     r=hashlib.sha1(json.dumps(O(sorted((k,sorted(v)) for k,v in rq.items()))).encode()).hexdigest()
	//     return b,r,hashlib.sha1((b+":"+r).encode()).hexdigest()[:8]
	//   print(ctx(...))'
	// The first two are MBS's own test vectors (formatted_testmodule.yaml
	// and test_models.py test_context_functions).
	tests := []struct {
		br             map[string]string
		rq             map[string][]string
		build, runtime string
		ctx            string
	}{
		{map[string]string{"platform": "f28"}, map[string][]string{"platform": {"f28"}},
			"f4bfd8304625d3f2835a5176ee910f50e86cc201", "3a484dfa1afb31e4a0df5d6bce64aa4cce13cab9", "9c690d0e"},
		{map[string]string{"base-runtime": "f28", "fluffy": "foo", "zebra": "2.0"},
			map[string][]string{"base-runtime": {"master"}, "fidget": {"spinner"}, "glass": {"water"}, "silly": {"puddy"}},
			"089df24993c037e10174f3fa7342ab4dc191a4d4", "bbc84c7b817ab3dd54916c0bcd6c6bdf512f7f9c", "3ee22b28"},
		// Non-ASCII, a quote, a tab and a character beyond the BMP; runtime
		// streams unsorted on input.
		{map[string]string{"platform": "f39", "nödejs": "20\"\U0001F600\t"},
			map[string][]string{"platform": {"f39"}, "nödejs": {"20", "18"}},
			"1f8addd30f6f26f80979599e9a773f984c84ce15", "db15f5c1c95664c6a2ba81611773c4fbc0360425", "66625656"},
		{map[string]string{"platform": "el9", "nodejs": "20"}, map[string][]string{"platform": {"el9"}, "nodejs": {"20"}},
			"d986fe9ac47622ed959a235502b28bd2c7568f15", "603d3e4751f53f8b252a9d09915af13a79a6ee74", "5a98a2ef"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			b, r := contextParts(tt.br, tt.rq)
			if b != tt.build || r != tt.runtime {
				t.Errorf("parts = %s, %s; want %s, %s", b, r, tt.build, tt.runtime)
			}
			if got := ComputeContext(tt.br, tt.rq); got != tt.ctx {
				t.Errorf("ComputeContext = %s, want %s", got, tt.ctx)
			}
		})
	}
}

func TestStreamVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stream string
		want   uint64
		ok     bool
	}{
		{"f32", 32, true},
		{"f28", 28, true},
		{"el8.2.0", 80200, true},
		{"el8.1.0", 80100, true},
		{"fl7.0.1-beta", 70001, true},
		{"el9", 9, true},
		{"el8.", 8, true},
		{"rawhide", 0, false},
		{"", 0, false},
		{"f99999999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := StreamVersion(tt.stream)
		if got != tt.want || ok != tt.ok {
			t.Errorf("StreamVersion(%q) = %d, %v; want %d, %v", tt.stream, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPrefixedVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		version  uint64
		platform string
		want     uint64
	}{
		{20200518173809, "f32", 3220200518173809},
		{20180205135154, "f28", 2820180205135154},
		{20180205135154, "fl7.0.1-beta", 7000120180205135154},
		{20200511133146, "el8.2.0", 8020020200511133146},
		{20200511133146, "el8.10.0", 8100020200511133146},
		{20200511133146, "el19.10.0", 20200511133146}, // 19100020200511133146 overflows uint64
		{20200511133146, "", 20200511133146},
		{20200511133146, "rawhide", 20200511133146},
	}
	for _, tt := range tests {
		if got := PrefixedVersion(tt.version, tt.platform); got != tt.want {
			t.Errorf("PrefixedVersion(%d, %q) = %d, want %d", tt.version, tt.platform, got, tt.want)
		}
	}
}

// A resolver error per component: the message names the first few and
// counts the rest, every error stays reachable.
func TestEnrich_ManyResolveErrorsShortReason(t *testing.T) {
	s := &Stream{Summary: "s", Description: "d", Components: Components{RPMs: map[string]*Component{}}}
	for i := range 2000 {
		key := fmt.Sprintf("c%04d", i)
		s.Components.RPMs[key] = &Component{Key: key, Rationale: "r", Ref: "main"}
	}
	missing := errors.New("repository not found")
	err := Enrich(context.Background(), s, EnrichOptions{Name: "m", Branch: "1", CommitTime: time.Unix(0, 0), DefaultRepository: "https://git/rpms",
		Resolver: resolverFunc(func(_ context.Context, repo, ref string) (string, error) { return "", missing })})
	var re *ResolveError
	if !errors.Is(err, missing) || !errors.As(err, &re) {
		t.Fatalf("err %v: want the resolver's error and a *ResolveError reachable", err)
	}
	var all *ResolveErrors
	if !errors.As(err, &all) || len(all.Errs) != 2000 {
		t.Fatalf("want all 2000 errors kept")
	}
	msg := err.Error()
	if !strings.Contains(msg, "components.rpms.c0000") || !strings.Contains(msg, "and 1997 more") || len(msg) > 1000 {
		t.Errorf("message (%d bytes): %s", len(msg), msg)
	}
}
