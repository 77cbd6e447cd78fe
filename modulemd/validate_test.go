package modulemd

import (
	"errors"
	"reflect"
	"testing"
)

// validStream returns a small stream that passes Validate.
func validStream() *Stream {
	return &Stream{
		Summary:     "s",
		Description: "d",
		License:     License{Module: []string{"MIT"}},
		Components: Components{RPMs: map[string]*Component{
			"foo": {Key: "foo", Rationale: "r"},
			"bar": {Key: "bar", Rationale: "r"},
		}},
	}
}

func TestStream_Validate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(s *Stream)
		want   []FieldError
	}{
		{"OK", func(s *Stream) {}, nil},
		{"ErrSummaryRequired", func(s *Stream) { s.Summary = "" }, []FieldError{{"summary", "is required"}}},
		{"ErrDescriptionRequired", func(s *Stream) { s.Description = "" }, []FieldError{{"description", "is required"}}},
		{"ErrLicenseRequired", func(s *Stream) { s.License.Module = nil }, []FieldError{{"license.module", "is required"}}},
		{"NonStaticContextFree", func(s *Stream) { s.Context = "any-thing-goes-here-really-long" }, nil},
		{"StaticContextOK", func(s *Stream) { s.StaticContext, s.Context = true, "Ab_1234567890" }, nil},
		{"ErrStaticContextMissing", func(s *Stream) { s.StaticContext = true }, []FieldError{{"context", "is required with static_context"}}},
		{"ErrStaticContextLong", func(s *Stream) { s.StaticContext, s.Context = true, "abcdefghijklmn" },
			[]FieldError{{"context", `"abcdefghijklmn" is longer than 13 characters`}}},
		{"ErrStaticContextChars", func(s *Stream) { s.StaticContext, s.Context = true, "a-b" },
			[]FieldError{{"context", `"a-b" may only contain [a-zA-Z0-9_]`}}},
		{"DepsAllNegative", func(s *Stream) {
			s.Dependencies = []Dependencies{{BuildRequires: map[string][]string{"platform": {"-f27", "-f28"}}, Requires: map[string][]string{"platform": {}}}}
		}, nil},
		{"ErrDepsMixed", func(s *Stream) {
			s.Dependencies = []Dependencies{{}, {Requires: map[string][]string{"platform": {"f39", "-f38"}}}}
		}, []FieldError{{"dependencies[1].requires.platform", "mixes included and excluded (-) streams"}}},
		{"ArtifactsOK", func(s *Stream) { s.Artifacts.RPMs = []string{"bar-0:1.23-1.module_deadbeef.x86_64", "a-b-10:1-2.src"} }, nil},
		{"ErrArtifactNoEpoch", func(s *Stream) { s.Artifacts.RPMs = []string{"ok-0:1-1.noarch", "MissingEpoch-0-0.src"} },
			[]FieldError{{"artifacts.rpms[1]", `"MissingEpoch-0-0.src" is not in N-E:V-R.A form`}}},
		{"ErrArtifactNoArch", func(s *Stream) { s.Artifacts.RPMs = []string{"a-0:1-1"} },
			[]FieldError{{"artifacts.rpms[0]", `"a-0:1-1" is not in N-E:V-R.A form`}}},
		{"ErrArtifactEpochNotNumber", func(s *Stream) { s.Artifacts.RPMs = []string{"a-x:1-1.noarch"} },
			[]FieldError{{"artifacts.rpms[0]", `"a-x:1-1.noarch" is not in N-E:V-R.A form`}}},
		{"BuildorderZeroWithBuildafter", func(s *Stream) { s.Components.RPMs["foo"].BuildAfter = []string{"bar"} }, nil},
		{"ErrBuildorderAndBuildafterComponent", func(s *Stream) {
			s.Components.RPMs["foo"].BuildAfter = []string{"bar"}
			s.Components.RPMs["foo"].BuildOrder = 1
		}, []FieldError{
			{"components.rpms.foo", "cannot mix buildorder and buildafter in one component"},
			{"components.rpms", "cannot mix buildorder (foo) and buildafter (foo) in one stream"},
		}},
		{"ErrBuildorderAndBuildafterStream", func(s *Stream) {
			s.Components.RPMs["foo"].BuildAfter = []string{"bar"}
			s.Components.RPMs["bar"].BuildOrder = -1
		}, []FieldError{{"components.rpms", "cannot mix buildorder (bar) and buildafter (foo) in one stream"}}},
		{"ErrBuildafterUnknown", func(s *Stream) { s.Components.RPMs["foo"].BuildAfter = []string{"baz"} },
			[]FieldError{{"components.rpms.foo.buildafter", `"baz" is not a component`}}},
		{"ErrBuildafterSelf", func(s *Stream) { s.Components.RPMs["foo"].BuildAfter = []string{"foo"} },
			[]FieldError{{"components.rpms.foo.buildafter", `"foo" refers to the component itself`}}},
		{"ErrBuildafterCycle", func(s *Stream) {
			s.Components.RPMs["foo"].BuildAfter = []string{"bar"}
			s.Components.RPMs["bar"].BuildAfter = []string{"foo"}
		}, []FieldError{{"components.rpms.bar.buildafter", "buildafter cycle: bar -> foo -> bar"}}},
		{"ErrBuildafterLongCycle", func(s *Stream) {
			s.Components.RPMs["a"] = &Component{Key: "a", BuildAfter: []string{"foo"}}
			s.Components.RPMs["foo"].BuildAfter = []string{"bar"}
			s.Components.RPMs["bar"].BuildAfter = []string{"a"}
			s.Components.RPMs["z"] = &Component{Key: "z", BuildAfter: []string{"a"}}
		}, []FieldError{{"components.rpms.a.buildafter", "buildafter cycle: a -> foo -> bar -> a"}}},
		{"ArchesSubset", func(s *Stream) {
			s.BuildOpts = &BuildOpts{Arches: []string{"x86_64", "aarch64"}}
			s.Components.RPMs["foo"].Arches = []string{"aarch64"}
		}, nil},
		{"ArchesWithoutBuildopts", func(s *Stream) { s.Components.RPMs["foo"].Arches = []string{"s390x"} }, nil},
		{"ErrArchesNotSubset", func(s *Stream) {
			s.BuildOpts = &BuildOpts{Arches: []string{"x86_64"}}
			s.Components.RPMs["foo"].Arches = []string{"x86_64", "i686"}
		}, []FieldError{{"components.rpms.foo.arches", `"i686" is not in buildopts.arches`}}},
		{"ErrComponentKey", func(s *Stream) { s.Components.RPMs["../x"] = &Component{Key: "../x"} },
			[]FieldError{{"components.rpms.../x", "component key starts with '.'"}}},
		{"ErrComponentName", func(s *Stream) { s.Components.RPMs["foo"].Name = "a b" },
			[]FieldError{{"components.rpms.foo.name", "package name contains whitespace"}}},
		{"ErrKeyMismatch", func(s *Stream) { s.Components.RPMs["foo"].Key = "other" },
			[]FieldError{{"components.rpms.foo", `Key field "other" differs from the map key`}}},
		{"ErrSeveral", func(s *Stream) { s.Summary, s.Description = "", "" },
			[]FieldError{{"summary", "is required"}, {"description", "is required"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := validStream()
			tt.mutate(s)
			err := s.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want *ValidationError", err)
			}
			if !reflect.DeepEqual(ve.Errors, tt.want) {
				t.Errorf("errors = %q\nwant     %q", ve.Errors, tt.want)
			}
		})
	}
}

func TestValidationError_Error(t *testing.T) {
	t.Parallel()
	e := &ValidationError{Errors: []FieldError{
		{"components.rpms.foo.buildafter", `"bar" is not a component`},
		{"summary", "is required"},
	}}
	want := `modulemd: invalid stream: components.rpms.foo.buildafter: "bar" is not a component; summary: is required`
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
}
