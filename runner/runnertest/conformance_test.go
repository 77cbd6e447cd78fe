package runnertest_test

import (
	"crypto/sha1"
	"encoding/hex"
	"testing"
	"time"

	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/runner/backendtest"
	"github.com/rida-build/rida/runner/runnertest"
)

// The simulated backend is held to the same contract as the real ones.
func TestSimBackend_Conformance(t *testing.T) {
	backendtest.Exercise(t, backendtest.Harness{
		NewBackend: func(t *testing.T) runner.Backend {
			return &runnertest.SimBackend{
				Default:   5 * time.Millisecond,
				RepoRegen: time.Millisecond,
				Durations: map[string]time.Duration{},
				Fail:      map[string]bool{},
			}
		},
		NewComponent: func(t *testing.T, be runner.Backend, name string, how backendtest.Behavior) *runner.Component {
			sim := be.(*runnertest.SimBackend)
			switch how {
			case backendtest.Fails:
				sim.Fail[name] = true
			case backendtest.Hangs:
				sim.Durations[name] = time.Hour
			}
			sum := sha1.Sum([]byte(name))
			return &runner.Component{Key: name, Package: name, Repository: "https://src.example.com/rpms/" + name,
				Ref: "main", Commit: hex.EncodeToString(sum[:])}
		},
	})
}
