package webhook

import (
	"strings"
	"testing"
)

func TestClassifier_Classify(t *testing.T) {
	t.Parallel()
	c := Classifier{
		ModulePatterns:    []string{"modules/*"},
		ComponentPatterns: []string{"rpms/*", "modules/*"},
		Repos:             map[string]RepoKind{"modules/weird": RepoComponent, "team/app-module": RepoModule},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for repo, want := range map[string]RepoKind{
		"modules/nodejs":  RepoModule,    // module patterns before component patterns
		"rpms/foo":        RepoComponent, // pattern
		"modules/weird":   RepoComponent, // explicit entry wins
		"team/app-module": RepoModule,    // explicit entry
		"modules/a/b":     RepoUnknown,   // * does not cross /
		"Modules/nodejs":  RepoUnknown,   // case-sensitive
		"containers/foo":  RepoUnknown,
		"":                RepoUnknown,
	} {
		if got := c.Classify(repo); got != want {
			t.Errorf("Classify(%q) = %q, want %q", repo, got, want)
		}
	}
	if got := (Classifier{}).Classify("rpms/foo"); got != RepoUnknown {
		t.Errorf("zero Classifier classified rpms/foo as %q", got)
	}
}

func TestClassifier_Validate(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		c    Classifier
		want string
	}{
		"BadModulePattern":    {Classifier{ModulePatterns: []string{"ok/*", "bad/["}}, "ModulePatterns[1]"},
		"EmptyComponentGlob":  {Classifier{ComponentPatterns: []string{""}}, "ComponentPatterns[0]"},
		"UnknownKind":         {Classifier{Repos: map[string]RepoKind{"a/b": "container"}}, `Repos["a/b"]`},
		"EmptyKindIsNotAKind": {Classifier{Repos: map[string]RepoKind{"a/b": RepoUnknown}}, `Repos["a/b"]`},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestRepoName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"modules/nodejs":                        "nodejs",
		"group/sub/rpms/foo":                    "foo",
		"https://forge.example/rpms/foo.git":    "foo",
		"https://forge.example/rpms/foo/":       "foo",
		"git@forge.example:rpms/bar.git":        "bar",
		"file:///tmp/x/modules/perl":            "perl",
		"plain":                                 "plain",
		"ssh://git@forge.example/modules/x.git": "x",
	} {
		if got := RepoName(in); got != want {
			t.Errorf("RepoName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPathIgnored(t *testing.T) {
	t.Parallel()
	pats := []string{"README*", ".gitignore", "docs/**", "ci/*.yml"}
	for p, want := range map[string]bool{
		"README.md":         true, // basename pattern
		"sub/README":        true, // basename pattern anywhere
		".gitignore":        true,
		"docs/a/b/c.txt":    true,  // dir/**
		"docs":              false, // the directory name itself is a file here
		"ci/build.yml":      true,  // full-path pattern
		"ci/sub/build.yml":  false, // * does not cross /
		"foo.spec":          false,
		"sources":           false,
		"patches/README.md": true,
	} {
		if got := pathIgnored(pats, p); got != want {
			t.Errorf("pathIgnored(%q) = %v, want %v", p, got, want)
		}
	}
	if pathIgnored(nil, "README") {
		t.Error("no patterns ignored a path")
	}
}

func TestBranchTracked(t *testing.T) {
	t.Parallel()
	if !branchTracked(nil, "anything/at-all") {
		t.Error("no patterns must track every branch")
	}
	pats := []string{"main", "f[0-9][0-9]", "stream-*"}
	for b, want := range map[string]bool{"main": true, "f40": true, "f4": false, "stream-8": true, "feature/x": false} {
		if got := branchTracked(pats, b); got != want {
			t.Errorf("branchTracked(%q) = %v, want %v", b, got, want)
		}
	}
}
