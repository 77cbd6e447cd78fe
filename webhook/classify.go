package webhook

import (
	"fmt"
	"path"
	"strings"
)

// RepoKind says what a repository holds for the planner.
type RepoKind string

const (
	// RepoUnknown: the repository matches no configuration; its pushes get
	// the disposition "repository not configured".
	RepoUnknown RepoKind = ""
	// RepoModule: a module repository; its modulemd file (see
	// PlannerOptions.ModuleFile) defines one module stream per branch.
	RepoModule RepoKind = "module"
	// RepoComponent: a component (package) repository, e.g. dist-git's
	// rpms/<name>.
	RepoComponent RepoKind = "component"
)

// Classifier decides from a repository's full name ("namespace/name", as the
// forge sends it in Delivery.Repo) whether it is a module or a component
// repository. The zero value classifies nothing.
//
// Precedence: an exact entry in Repos, then ModulePatterns, then
// ComponentPatterns (the first match wins). Patterns use path.Match syntax,
// so "*" does not cross a "/": "modules/*" matches "modules/nodejs" but not
// "modules/a/b". Matching is case-sensitive.
type Classifier struct {
	// ModulePatterns match module repositories, e.g. "modules/*".
	ModulePatterns []string
	// ComponentPatterns match component repositories, e.g. "rpms/*".
	ComponentPatterns []string
	// Repos classifies single repositories by exact full name; it wins over
	// the patterns. Values must be RepoModule or RepoComponent.
	Repos map[string]RepoKind
}

// Validate reports the first malformed pattern or unknown kind, naming the
// field.
func (c Classifier) Validate() error {
	for field, pats := range map[string][]string{"ModulePatterns": c.ModulePatterns, "ComponentPatterns": c.ComponentPatterns} {
		for i, p := range pats {
			if err := checkGlob(p); err != nil {
				return fmt.Errorf("Classifier.%s[%d] %q: %w", field, i, p, err)
			}
		}
	}
	for repo, k := range c.Repos {
		if k != RepoModule && k != RepoComponent {
			return fmt.Errorf("Classifier.Repos[%q] is %q: want %q or %q", repo, k, RepoModule, RepoComponent)
		}
	}
	return nil
}

// Classify returns the kind of the repository with full name repo, or
// RepoUnknown. Malformed patterns never match (Validate reports them).
func (c Classifier) Classify(repo string) RepoKind {
	if k, ok := c.Repos[repo]; ok {
		return k
	}
	if matchAny(c.ModulePatterns, repo) {
		return RepoModule
	}
	if matchAny(c.ComponentPatterns, repo) {
		return RepoComponent
	}
	return RepoUnknown
}

// RepoName returns the last path element of a repository's full name (or
// URL), without a ".git" suffix: the module name of a module repository and
// the component name of a component repository.
func RepoName(repo string) string {
	repo = strings.TrimRight(repo, "/")
	if i := strings.LastIndexAny(repo, "/:"); i >= 0 {
		repo = repo[i+1:]
	}
	return strings.TrimSuffix(repo, ".git")
}

func checkGlob(p string) error {
	if p == "" {
		return fmt.Errorf("empty pattern")
	}
	_, err := path.Match(p, "")
	return err
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, err := path.Match(p, s); err == nil && ok {
			return true
		}
	}
	return false
}

// pathIgnored reports whether the changed path p matches one of the ignore
// patterns. A pattern without "/" matches the path's last element anywhere
// ("README*" ignores "README.md" and "docs/README"); a pattern with "/"
// matches the whole path with path.Match; a pattern ending in "/**" ignores
// everything under that directory ("docs/**").
func pathIgnored(patterns []string, p string) bool {
	for _, pat := range patterns {
		switch {
		case strings.HasSuffix(pat, "/**"):
			if dir := strings.TrimSuffix(pat, "/**"); strings.HasPrefix(p, dir+"/") {
				return true
			}
		case !strings.Contains(pat, "/"):
			if ok, err := path.Match(pat, path.Base(p)); err == nil && ok {
				return true
			}
		default:
			if ok, err := path.Match(pat, p); err == nil && ok {
				return true
			}
		}
	}
	return false
}

// branchTracked reports whether branch matches one of the tracked-branch
// patterns; no patterns means every branch is tracked.
func branchTracked(patterns []string, branch string) bool {
	return len(patterns) == 0 || matchAny(patterns, branch)
}
