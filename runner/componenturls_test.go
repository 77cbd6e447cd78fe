package runner_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/urlpolicy"
)

// recordingResolver resolves every ref to one commit and records the
// repositories it was asked about.
type recordingResolver struct {
	mu    sync.Mutex
	repos []string
}

func (r *recordingResolver) ResolveRef(_ context.Context, repository, _ string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.repos = append(r.repos, repository)
	return strings.Repeat("a", 40), nil
}

// denyingResolver refuses every repository as scm.Mirrors does one its URL
// policy refuses.
type denyingResolver struct{}

func (denyingResolver) ResolveRef(_ context.Context, repository, _ string) (string, error) {
	return "", &urlpolicy.DeniedError{URL: repository, Why: "it is under none of the allowed prefixes"}
}

func componentModulemd(extra string) []byte {
	return []byte("document: modulemd\nversion: 2\ndata:\n  summary: s\n  description: d.\n  license:\n    module: [MIT]\n" +
		"  components:\n    rpms:\n      foo:\n        rationale: r.\n" + extra)
}

// TestInit_ComponentURLs: a modulemd's own repository: and cache: are
// refused unless allowed (MBS's RPMS_ALLOW_REPOSITORY / RPMS_ALLOW_CACHE),
// and when allowed must pass the URL policy; a refusal is the module's
// failure (InvalidModuleError) naming the field, decided before any
// repository is asked about.
func TestInit_ComponentURLs(t *testing.T) {
	pol := urlpolicy.MustNew("https://src.example.org/rpms/", "https://lookaside.example.org/")
	for _, tc := range []struct {
		name  string
		extra string
		cu    *runner.ComponentURLs
		want  string // "" means Init succeeds
	}{
		{"NoOverride", "", &runner.ComponentURLs{}, ""},
		{"RepositoryRefusedByDefault", "        repository: https://src.example.org/rpms/foo\n", &runner.ComponentURLs{Policy: pol},
			"components.rpms.foo.repository: a repository of its own is not allowed"},
		{"CacheRefusedByDefault", "        cache: https://lookaside.example.org/foo\n", &runner.ComponentURLs{Policy: pol},
			"components.rpms.foo.cache: a cache of its own is not allowed"},
		{"RepositoryAllowedInside", "        repository: https://src.example.org/rpms/foo\n",
			&runner.ComponentURLs{AllowRepository: true, Policy: pol}, ""},
		{"RepositoryAllowedButOutside", "        repository: https://src.example.org.evil/rpms/foo\n",
			&runner.ComponentURLs{AllowRepository: true, Policy: pol}, "components.rpms.foo.repository: https://src.example.org.evil/rpms/foo is not allowed"},
		{"RepositoryTraversal", "        repository: https://src.example.org/rpms/../internal/foo\n",
			&runner.ComponentURLs{AllowRepository: true, Policy: pol}, "components.rpms.foo.repository"},
		{"FileRepository", "        repository: file:///var/lib/rida/mirrors/x.git\n",
			&runner.ComponentURLs{AllowRepository: true, Policy: pol}, "components.rpms.foo.repository: file:///var/lib/rida/mirrors/x.git is not allowed"},
		{"CacheAllowedButOutside", "        cache: http://169.254.169.254/latest\n",
			&runner.ComponentURLs{AllowCache: true, Policy: pol}, "components.rpms.foo.cache"},
		{"NilAllowsAll", "        repository: file:///anywhere\n        cache: http://x/\n", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &recordingResolver{}
			_, err := runner.Init(context.Background(), runner.ModuleSource{
				Name: "m", Branch: "1", Commit: strings.Repeat("b", 40), CommitTime: time.Unix(1e9, 0),
				ScmURL: "https://src.example.org/modules/m?#" + strings.Repeat("b", 40), Modulemd: componentModulemd(tc.extra),
			}, nil, runner.InitOptions{Resolver: res, DefaultRepository: "https://src.example.org/rpms", ComponentURLs: tc.cu})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Init: %v", err)
				}
				return
			}
			var inv *runner.InvalidModuleError
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Init: %v; want an InvalidModuleError saying %q", err, tc.want)
			}
			if len(res.repos) != 0 {
				t.Errorf("refused modulemd made rida resolve refs in %v", res.repos)
			}
		})
	}
	t.Run("RefusedAtFetchIsTheModules", func(t *testing.T) {
		// A URL the mirrors' policy refuses (the default component base,
		// say) is the module's failure, not infrastructure trouble.
		_, err := runner.Init(context.Background(), runner.ModuleSource{
			Name: "m", Branch: "1", Commit: strings.Repeat("b", 40), CommitTime: time.Unix(1e9, 0), Modulemd: componentModulemd(""),
		}, nil, runner.InitOptions{Resolver: denyingResolver{}, DefaultRepository: "https://elsewhere.example/rpms"})
		var inv *runner.InvalidModuleError
		if !errors.As(err, &inv) || !errors.Is(err, urlpolicy.ErrDenied) {
			t.Fatalf("Init: %v (%T); want an InvalidModuleError wrapping urlpolicy.ErrDenied", err, err)
		}
	})
}
