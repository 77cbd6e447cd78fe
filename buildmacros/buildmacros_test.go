package buildmacros_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/buildmacros"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func demoModule() buildmacros.Module {
	return buildmacros.Module{
		Name:            "rida-demo",
		Stream:          "1.0",
		Version:         9020240101120000,
		Context:         "0d3b5e6c",
		DistTag:         ".module+el9+42+1a2b3c4d",
		BuildoptsMacros: "%rida_demo_greeting Hello from rida-demo\n%rida_demo_answer 42",
		Conflicts:       []string{"rida-demo-filtered = 0:1.0-1.el9"},
		ChangelogTime:   time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC),
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file %s (run with -update to accept)\n--- got ---\n%s\n--- want ---\n%s", name, path, got, want)
	}
}

func TestMacros_Golden(t *testing.T) {
	got, err := buildmacros.Macros(demoModule())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "macros.modules.golden", got)
	for _, line := range []string{
		"%dist .module+el9+42+1a2b3c4d",
		"%modularitylabel rida-demo:1.0:9020240101120000:0d3b5e6c",
		"%_module_build 1",
		"%_module_name rida-demo",
		"%_module_stream 1.0",
		"%_module_version 9020240101120000",
		"%_module_context 0d3b5e6c",
		"%rida_demo_answer 42",
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("macros lack line %q", line)
		}
	}
}

func TestSpec_Golden(t *testing.T) {
	got, err := buildmacros.Spec(demoModule())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "module-build-macros.spec.golden", got)
}

func TestSpec_NoChangelogWhenTimeZero(t *testing.T) {
	m := demoModule()
	m.ChangelogTime = time.Time{}
	got, err := buildmacros.Spec(m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "%changelog") {
		t.Errorf("spec has %%changelog although ChangelogTime is zero:\n%s", got)
	}
}

func TestModule_NVR(t *testing.T) {
	if got, want := demoModule().NVR(), "module-build-macros-0.1-1.module+el9+42+1a2b3c4d"; got != want {
		t.Errorf("NVR() = %q, want %q", got, want)
	}
}

func TestModule_Validate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*buildmacros.Module)
		want   error
		field  string
	}{
		{"OK", func(*buildmacros.Module) {}, nil, ""},
		{"ErrNameRequired", func(m *buildmacros.Module) { m.Name = "" }, buildmacros.ErrFieldRequired, "Name"},
		{"ErrStreamRequired", func(m *buildmacros.Module) { m.Stream = "" }, buildmacros.ErrFieldRequired, "Stream"},
		{"ErrContextRequired", func(m *buildmacros.Module) { m.Context = "" }, buildmacros.ErrFieldRequired, "Context"},
		{"ErrDistTagRequired", func(m *buildmacros.Module) { m.DistTag = "" }, buildmacros.ErrFieldRequired, "DistTag"},
		{"ErrDistTagNoDot", func(m *buildmacros.Module) { m.DistTag = "module+el9" }, buildmacros.ErrFieldInvalid, "DistTag"},
		{"ErrDistTagDash", func(m *buildmacros.Module) { m.DistTag = ".module-el9" }, buildmacros.ErrFieldInvalid, "DistTag"},
		{"ErrNameNewline", func(m *buildmacros.Module) { m.Name = "a\n%dist .x" }, buildmacros.ErrFieldInvalid, "Name"},
		{"ErrStreamColon", func(m *buildmacros.Module) { m.Stream = "a:b" }, buildmacros.ErrFieldInvalid, "Stream"},
		{"ErrConflictNewline", func(m *buildmacros.Module) { m.Conflicts = []string{"a\nb"} }, buildmacros.ErrFieldInvalid, "Conflicts[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := demoModule()
			tt.modify(&m)
			err := m.Validate()
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name field %s", err, tt.field)
			}
			if _, serr := buildmacros.Spec(m); !errors.Is(serr, tt.want) {
				t.Errorf("Spec() error = %v, want %v", serr, tt.want)
			}
			if _, merr := buildmacros.Macros(m); !errors.Is(merr, tt.want) {
				t.Errorf("Macros() error = %v, want %v", merr, tt.want)
			}
		})
	}
}
