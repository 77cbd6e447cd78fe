package local

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rida-build/rida/runner"
)

func TestFinalModulemd_NilModulemd(t *testing.T) {
	b := &runner.Build{Name: "m", Stream: "s", Version: 3, Context: "c"}
	out, err := finalModulemd(b, []string{"a-0:1-1.noarch", "a-0:1-1.src"})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Document string `yaml:"document"`
		Version  int    `yaml:"version"`
		Data     struct {
			Name      string `yaml:"name"`
			Stream    string `yaml:"stream"`
			Version   uint64 `yaml:"version"`
			Context   string `yaml:"context"`
			Artifacts struct {
				RPMs []string `yaml:"rpms"`
			} `yaml:"artifacts"`
		} `yaml:"data"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Document != "modulemd" || doc.Version != 2 || doc.Data.Name != "m" || doc.Data.Stream != "s" ||
		doc.Data.Version != 3 || doc.Data.Context != "c" || len(doc.Data.Artifacts.RPMs) != 2 {
		t.Errorf("minimal modulemd wrong:\n%s", out)
	}
	if !strings.HasPrefix(string(out), "---\n") || !strings.HasSuffix(string(out), "...\n") {
		t.Errorf("document markers missing:\n%s", out)
	}
}

func TestFinalModulemd_ReplacesArtifacts(t *testing.T) {
	root := `document: modulemd
version: 2
data:
  name: m
  xmd: {keep: me}
  artifacts:
    rpms: [old-0:1-1.noarch]
`
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(root), &doc); err != nil {
		t.Fatal(err)
	}
	data := mappingValue(doc.Content[0], "data")
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "new-0:1-1.noarch"}}}
	setMappingValue(mappingValue(data, "artifacts"), "rpms", seq)
	out, _ := yaml.Marshal(&doc)
	if strings.Contains(string(out), "old-0") || !strings.Contains(string(out), "new-0:1-1.noarch") || !strings.Contains(string(out), "keep: me") {
		t.Errorf("edit wrong:\n%s", out)
	}
}

func TestBuildoptsMacrosFromYAML(t *testing.T) {
	got, err := buildoptsMacrosFromYAML([]byte("data:\n  buildopts:\n    rpms:\n      macros: |\n        %a 1\n        %b 2\n"))
	if err != nil || got != "%a 1\n%b 2\n" {
		t.Errorf("got %q, %v", got, err)
	}
	if got, err := buildoptsMacrosFromYAML([]byte("data:\n  name: x\n")); err != nil || got != "" {
		t.Errorf("no buildopts: got %q, %v", got, err)
	}
}

func TestErrorLines(t *testing.T) {
	dir := t.TempDir()
	log := dir + "/x.log"
	content := "+ git clone\nchecked out abc\n" + rpmbuildMarker + "\n+ rpmbuild -ba x.spec\nExecuting(%build): /bin/sh -e /tmp/rpm-tmp.1\n+ umask 022\nsomething odd\nthis package is broken\n+ exit 1\nerror: Bad exit status from /tmp/rpm-tmp.1 (%build)\n\nRPM build errors:\n    Bad exit status from /tmp/rpm-tmp.1 (%build)\n"
	if err := writeFile(log, content); err != nil {
		t.Fatal(err)
	}
	want := "something odd; this package is broken; error: Bad exit status from /tmp/rpm-tmp.1 (%build)"
	if got := errorLines(log); got != want {
		t.Errorf("errorLines =\n%q\nwant\n%q", got, want)
	}
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o644) }

func TestRPMFileName(t *testing.T) {
	for in, want := range map[string]string{
		"foo-0:1.0-1.module+el9+1+abcdef12.noarch": "foo-1.0-1.module+el9+1+abcdef12.noarch.rpm",
		"foo-bar-2:3-4.src":                        "foo-bar-3-4.src.rpm",
		"x-1-1.noarch":                             "x-1-1.noarch.rpm",
	} {
		if got := rpmFileName(in); got != want {
			t.Errorf("rpmFileName(%q) = %q, want %q", in, got, want)
		}
	}
}
