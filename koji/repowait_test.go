package koji_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/internal/testlog"
	"github.com/rida-build/rida/koji"
	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/runner"
)

// repoWaitBackend is a backend whose repo waits end after timeout, logging
// into log.
func repoWaitBackend(t *testing.T, bd *bundle, timeout time.Duration, log *testlog.Buffer) *koji.Backend {
	t.Helper()
	be, err := koji.NewBackend(koji.BackendOptions{
		Client: bd.client, BaseModuleTag: baseTag, Owner: "kojiadmin", Intents: bd.store,
		Logger:  newTestTextLogger(log),
		PollMin: time.Millisecond, PollMax: 5 * time.Millisecond, RepoTimeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// A repo that never comes (nothing works the hub's repo requests) ends the
// batch within RepoTimeout as an infrastructure error naming the build tag
// and the repo request, with warnings while it waits.
func TestBackend_RepoWaitTimesOut(t *testing.T) {
	for _, tc := range []struct {
		version, what string
	}{
		{"1.35.3", "repo request %d (repo.request)"},
		{"1.34.1", "newRepo task %d"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			bd := setup(t, kojitest.Options{Version: tc.version, RepoDuration: kojitest.Manual})
			var log testlog.Buffer
			be := repoWaitBackend(t, bd, 300*time.Millisecond, &log)
			b := mustPlan(t, testStream("stalled", map[string]int64{"a": 0}), 23)
			start := time.Now()
			_, err := runner.Execute(context.Background(), be, b, runner.ExecuteOptions{Logger: quiet})
			took := time.Since(start)
			var ie *runner.InfraError
			if !errors.As(err, &ie) {
				t.Fatalf("want an InfraError, got %v", err)
			}
			if took > 10*time.Second {
				t.Errorf("took %s", took)
			}
			// The id the backend waited on, as the hub double saw it.
			id := 0
			for _, c := range bd.hub.FlatCalls() {
				if c.Method == "repo.checkRequest" {
					if n, ok := c.Args[0].(int64); ok {
						id = int(n)
					}
				}
			}
			if tc.version == "1.34.1" {
				ids := bd.hub.TaskIDs("newRepo")
				if len(ids) != 1 {
					t.Fatalf("newRepo tasks %v", ids)
				}
				id = ids[0]
			}
			if id == 0 {
				t.Fatalf("no repo request polled; calls %v", steps(bd.hub))
			}
			tag := "module-stalled-master-20260101000000-c0ffee42-build"
			msg := err.Error()
			wants := []string{tag, fmt.Sprintf(tc.what, id), "within 300ms", "backend.koji.repo_timeout"}
			if tc.version == "1.35.3" {
				// The request's fallback: one newRepo call, its task named.
				var fb []int
				for _, tid := range bd.hub.TaskIDs("newRepo") {
					if tid != taskOf(bd.hub, id) {
						fb = append(fb, tid)
					}
				}
				if len(fb) != 1 {
					t.Fatalf("newRepo fallback tasks %v", fb)
				}
				wants = append(wants, fmt.Sprintf("newRepo fallback, task %d, was still open", fb[0]))
				id = fb[0]
			}
			// The newRepo task rida started (the fallback, or on 1.34 the
			// wait's own) is cancelled on the hub.
			wants = append(wants, "rida cancelled it")
			if st, _ := bd.hub.TaskState(id); st != 3 {
				t.Errorf("newRepo task %d in state %d, want 3 (CANCELED)", id, st)
			}
			for _, want := range wants {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not name %q", msg, want)
				}
			}
			if b.Batches[1].Components[0].State != runner.ComponentQueued {
				t.Errorf("component a: %s, want never submitted", b.Batches[1].Components[0].State)
			}
			out := log.String()
			if !strings.Contains(out, "level=WARN msg=\"koji: still waiting for the build tag's repo\" tag="+tag) ||
				!strings.Contains(out, "level=WARN msg=\"koji: gave up waiting for the build tag's repo\"") {
				t.Errorf("log:\n%s", out)
			}
		})
	}
}

// taskOf is the newRepo task the hub double started for repo request id
// (0 if none), as repo.checkRequest answers.
func taskOf(h *kojitest.Hub, id int) int {
	c, err := koji.NewClient(koji.ClientOptions{HubURL: h.URL, Logger: quiet})
	if err != nil {
		return 0
	}
	v, err := c.Call(context.Background(), "repo.checkRequest", id)
	if err != nil {
		return 0
	}
	var r struct {
		Request struct {
			TaskID int `json:"task_id"`
		} `json:"request"`
	}
	if v.Decode(&r) != nil {
		return 0
	}
	return r.Request.TaskID
}

// newRepoCalls counts the newRepo calls the hub double got.
func newRepoCalls(h *kojitest.Hub) int {
	n := 0
	for _, c := range h.FlatCalls() {
		if c.Method == "newRepo" {
			n++
		}
	}
	return n
}

// A repo request nothing works (no task) gets one newRepo fallback after
// half of RepoTimeout, and the fallback's repo ends the wait: the build
// completes.
func TestBackend_RepoRequestFallsBackToNewRepo(t *testing.T) {
	bd := setup(t, kojitest.Options{StallRepoRequests: true})
	var log testlog.Buffer
	be := repoWaitBackend(t, bd, 2*time.Second, &log)
	b := mustPlan(t, testStream("fallback", map[string]int64{"a": 0, "b": 1}), 25)
	start := time.Now()
	if _, err := runner.Execute(context.Background(), be, b, runner.ExecuteOptions{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	// Two regenerations (after the macros batch and after a's batch), each
	// one request and one fallback; b's is the last batch (no wait).
	if n := newRepoCalls(bd.hub); n != 2 {
		t.Errorf("%d newRepo calls, want 2 (one per stuck request)", n)
	}
	if took := time.Since(start); took < 2*time.Second || took > 10*time.Second {
		t.Errorf("took %s, want two waits of about half the repo_timeout", took)
	}
	if !strings.Contains(log.String(), `msg="koji: repo request made no progress for`) ||
		!strings.Contains(log.String(), `falling back to newRepo"`) {
		t.Errorf("log:\n%s", log.String())
	}
	for _, c := range b.Batches[len(b.Batches)-1].Components {
		if c.State != runner.ComponentComplete {
			t.Errorf("%s: %s", c.Key, c.State)
		}
	}
}

// A repo request that makes progress (a builder works its task) is not
// given a fallback.
func TestBackend_RepoRequestWorkedNoFallback(t *testing.T) {
	bd := setup(t, kojitest.Options{RepoDuration: 600 * time.Millisecond})
	var log testlog.Buffer
	be := repoWaitBackend(t, bd, 800*time.Millisecond, &log)
	b := mustPlan(t, testStream("worked", map[string]int64{"a": 0}), 26)
	if _, err := runner.Execute(context.Background(), be, b, runner.ExecuteOptions{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if n := newRepoCalls(bd.hub); n != 0 {
		t.Errorf("%d newRepo calls on requests being worked", n)
	}
}

// When the fallback fails too, the build ends as infrastructure trouble
// naming the request and the failed newRepo task, before the deadline.
func TestBackend_RepoFallbackFails(t *testing.T) {
	bd := setup(t, kojitest.Options{StallRepoRequests: true, RepoDuration: kojitest.Manual})
	var log testlog.Buffer
	be := repoWaitBackend(t, bd, 10*time.Second, &log)
	b := mustPlan(t, testStream("nofallback", map[string]int64{"a": 0}), 27)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if ids := bd.hub.TaskIDs("newRepo"); len(ids) > 0 {
				_ = bd.hub.FailTask(ids[0], "createrepo_c: no space left on device")
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	start := time.Now()
	_, err := runner.Execute(context.Background(), be, b, runner.ExecuteOptions{Logger: quiet})
	var ie *runner.InfraError
	if !errors.As(err, &ie) {
		t.Fatalf("want an InfraError, got %v", err)
	}
	if took := time.Since(start); took > 9*time.Second {
		t.Errorf("took %s: the failed fallback should end the wait", took)
	}
	ids := bd.hub.TaskIDs("newRepo")
	if len(ids) != 1 {
		t.Fatalf("newRepo tasks %v", ids)
	}
	msg := err.Error()
	for _, want := range []string{"module-nofallback-master-20260101000000-c0ffee42-build", "(repo.request) made no progress",
		fmt.Sprintf("newRepo fallback (task %d) failed", ids[0]), "no space left on device"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
}

// A repo that comes before the deadline is waited for: the timeout bounds
// the wait, it does not shorten a normal one.
func TestBackend_RepoWaitWithinTimeout(t *testing.T) {
	bd := setup(t, kojitest.Options{RepoDuration: 50 * time.Millisecond})
	var log testlog.Buffer
	be := repoWaitBackend(t, bd, 5*time.Second, &log)
	b := mustPlan(t, testStream("slowrepo", map[string]int64{"a": 0, "b": 1}), 24)
	if _, err := runner.Execute(context.Background(), be, b, runner.ExecuteOptions{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "level=WARN") {
		t.Errorf("warnings on a short wait:\n%s", log.String())
	}
}

func TestNewBackend_RepoTimeout(t *testing.T) {
	_, err := koji.NewBackend(koji.BackendOptions{Client: &koji.Client{}, BaseModuleTag: baseTag, Owner: "o", RepoTimeout: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "RepoTimeout") {
		t.Errorf("negative RepoTimeout: %v", err)
	}
}

func newTestTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
