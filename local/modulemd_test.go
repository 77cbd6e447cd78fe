package local_test

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/runner"
)

// With a real modulemd stream, the module author's buildopts.rpms.macros
// reach every component build, and Finish keeps the stream's fields while
// setting artifacts.rpms.
func TestBackend_Finish_WithModulemd(t *testing.T) {
	t.Parallel()
	streams, err := modulemd.Parse(examples.ModuleYAML())
	if err != nil || len(streams) != 1 {
		t.Fatalf("modulemd.Parse(example) = %d streams, %v", len(streams), err)
	}
	be := mustNew(t, local.Options{})
	c := specRepo(t, "greeter", strings.Replace(tinySpec("greeter", "", ""), "Test package.", "Greeting: %{?rida_demo_greeting}.", 1), nil)
	build := newBuild(11, []*runner.Component{c})
	build.Modulemd = streams[0]
	rec := &recorder{build: build}
	mustBuildBatches(t, be, build, rec, 99)
	if c.State != runner.ComponentComplete {
		t.Fatalf("greeter: %s %s", c.State, c.Reason)
	}
	res, err := be.Finish(t.Context(), build)
	if err != nil {
		t.Fatal(err)
	}
	desc := rpmQuery(t, res.Dir+"/greeter-1-1"+build.DistTag+".noarch.rpm", "%{DESCRIPTION}")
	if !strings.Contains(desc, "Greeting: Hello from the rida-demo module.") {
		t.Errorf("buildopts macro not applied; description %q", desc)
	}
	var doc struct {
		Data struct {
			Summary    string         `yaml:"summary"`
			License    map[string]any `yaml:"license"`
			Components map[string]any `yaml:"components"`
			Artifacts  struct {
				RPMs []string `yaml:"rpms"`
			} `yaml:"artifacts"`
		} `yaml:"data"`
	}
	if err := yaml.Unmarshal(res.Modulemd, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Data.Summary != "Demonstration module for rida" || doc.Data.License == nil || doc.Data.Components == nil {
		t.Errorf("Finish lost modulemd fields: %+v", doc.Data)
	}
	want := []string{"greeter-0:1-1" + build.DistTag + ".noarch", "greeter-0:1-1" + build.DistTag + ".src"}
	if strings.Join(doc.Data.Artifacts.RPMs, ",") != strings.Join(want, ",") {
		t.Errorf("artifacts.rpms = %v, want %v", doc.Data.Artifacts.RPMs, want)
	}
}
