package local_test

import (
	"testing"

	"github.com/rida-build/rida/local"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/runner/backendtest"
)

// The local backend with real rpmbuild: each component is a git repository
// holding a tiny noarch spec whose %build succeeds, exits 1 or sleeps.
// Sandbox off and two builds at once keep it fast.
func TestBackend_Conformance(t *testing.T) {
	backendtest.Exercise(t, backendtest.Harness{
		NewBackend: func(t *testing.T) runner.Backend {
			return mustNew(t, local.Options{Sandbox: local.SandboxOff, Parallel: 2, Logger: discardLogger()})
		},
		NewComponent: func(t *testing.T, _ runner.Backend, name string, how backendtest.Behavior) *runner.Component {
			var build string
			switch how {
			case backendtest.Fails:
				build = "echo 'package " + name + " is broken' >&2\nexit 1"
			case backendtest.Hangs:
				build = "sleep 600"
			}
			return specRepo(t, name, tinySpec(name, "", build), nil)
		},
	})
}
