package koji_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/runner/backendtest"
)

// The Koji backend against the hub double, which plays kojid here: build
// tasks wait (kojitest.Manual) and a goroutine completes every one except
// those of hanging components; failing components fail through
// FailBuildsMatching when completed.
func TestBackend_Conformance(t *testing.T) {
	var mu sync.Mutex
	hubs := map[runner.Backend]*kojid{}
	backendtest.Exercise(t, backendtest.Harness{
		NewBackend: func(t *testing.T) runner.Backend {
			bd := setup(t, kojitest.Options{BuildDuration: kojitest.Manual})
			d := &kojid{hub: bd.hub, hang: map[string]bool{}}
			d.start(t)
			mu.Lock()
			hubs[bd.backend] = d
			mu.Unlock()
			return bd.backend
		},
		NewComponent: func(t *testing.T, be runner.Backend, name string, how backendtest.Behavior) *runner.Component {
			mu.Lock()
			d := hubs[be]
			mu.Unlock()
			switch how {
			case backendtest.Fails:
				d.hub.FailBuildsMatching("rpms/"+name+"#", "error building package (arch x86_64), mock exited with status 1; see build.log for more information")
			case backendtest.Hangs:
				d.mu.Lock()
				d.hang["rpms/"+name+"#"] = true
				d.mu.Unlock()
			}
			sum := sha1.Sum([]byte(name))
			return &runner.Component{Key: name, Package: name, Repository: "https://src.example.com/rpms/" + name,
				Ref: "main", Commit: hex.EncodeToString(sum[:])}
		},
	})
}

// kojid completes the hub's open build tasks, but not those whose source
// matches a hanging component.
type kojid struct {
	hub  *kojitest.Hub
	mu   sync.Mutex
	hang map[string]bool
	done map[int]bool
}

func (d *kojid) start(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	t.Cleanup(func() { stop(); <-stopped })
	d.done = map[int]bool{}
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, id := range d.hub.TaskIDs("build") {
				if d.done[id] || d.hangs(d.hub.TaskSource(id)) {
					continue
				}
				if st, _ := d.hub.TaskState(id); st == kojitest.TaskFree || st == kojitest.TaskOpen {
					_ = d.hub.CompleteTask(id) // a task cancelled meanwhile is not an error here
				}
				d.done[id] = true
			}
		}
	}()
}

func (d *kojid) hangs(src string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for s := range d.hang {
		if strings.Contains(src, s) {
			return true
		}
	}
	return false
}
