package modulemd

import (
	"reflect"
	"strings"
	"testing"
)

func comps(spec map[string]Component) *Stream {
	s := &Stream{Components: Components{RPMs: map[string]*Component{}}}
	for k, c := range spec {
		c.Key = k
		s.Components.RPMs[k] = &c
	}
	return s
}

func TestBatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		stream  *Stream
		want    []Batch
		wantErr string
	}{
		{"NoComponents", &Stream{}, nil, ""},
		{"AllDefault", comps(map[string]Component{"b": {}, "a": {}, "c": {}}),
			[]Batch{{2, []string{"a", "b", "c"}}}, ""},
		{"Buildorder", comps(map[string]Component{
			"z": {BuildOrder: -1}, "a": {}, "b": {}, "m": {BuildOrder: 10}, "n": {BuildOrder: 10}, "x": {BuildOrder: 100},
		}), []Batch{{2, []string{"z"}}, {3, []string{"a", "b"}}, {4, []string{"m", "n"}}, {5, []string{"x"}}}, ""},
		{"Buildafter", comps(map[string]Component{
			"nodejs": {BuildAfter: []string{"libuv", "http-parser", "nghttp2"}},
			"libuv":  {}, "http-parser": {}, "nghttp2": {},
			"npm":  {BuildAfter: []string{"nodejs"}},
			"docs": {BuildAfter: []string{"libuv"}},
		}), []Batch{{2, []string{"http-parser", "libuv", "nghttp2"}}, {3, []string{"docs", "nodejs"}}, {4, []string{"npm"}}}, ""},
		{"BuildafterDuplicateEntry", comps(map[string]Component{"a": {}, "b": {BuildAfter: []string{"a", "a"}}}),
			[]Batch{{2, []string{"a"}}, {3, []string{"b"}}}, ""},
		{"ErrCycle", comps(map[string]Component{
			"a": {BuildAfter: []string{"c"}}, "b": {BuildAfter: []string{"a"}}, "c": {BuildAfter: []string{"b"}}, "d": {},
		}), nil, "buildafter cycle: a -> c -> b -> a"},
		{"ErrSelf", comps(map[string]Component{"a": {BuildAfter: []string{"a"}}}), nil, `"a" refers to the component itself`},
		{"ErrUnknown", comps(map[string]Component{"a": {BuildAfter: []string{"x"}}}), nil, `"x" is not a component`},
		{"ErrMixed", comps(map[string]Component{"a": {BuildOrder: 1}, "b": {BuildAfter: []string{"a"}}}), nil, "cannot mix"},
		{"ErrModules", &Stream{Components: Components{Modules: map[string]*ModuleComponent{"inc": {}}}}, nil, "included modules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Batches(tt.stream)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Batches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBatches_CorpusBuildafter(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"testdata/libmodulemd/testdata/buildafter/good_buildafter_v2.yaml"} {
		ss := corpusStreams(t)[f]
		if len(ss) != 1 {
			t.Fatalf("%s: %d streams", f, len(ss))
		}
		got, err := Batches(ss[0])
		if err != nil {
			t.Fatal(err)
		}
		want := []Batch{{2, []string{"http-parser", "libuv", "nghttp2"}}, {3, []string{"nodejs"}}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Batches = %v, want %v", got, want)
		}
	}
}
