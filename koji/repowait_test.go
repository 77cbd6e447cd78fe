package koji_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/koji"
	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/runner"
)

// repoWaitBackend is a backend whose repo waits end after timeout, logging
// into log.
func repoWaitBackend(t *testing.T, bd *bundle, timeout time.Duration, log *syncBuffer) *koji.Backend {
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
			var log syncBuffer
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
			for _, want := range []string{tag, fmt.Sprintf(tc.what, id), "within 300ms", "backend.koji.repo_timeout"} {
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

// A repo that comes before the deadline is waited for: the timeout bounds
// the wait, it does not shorten a normal one.
func TestBackend_RepoWaitWithinTimeout(t *testing.T) {
	bd := setup(t, kojitest.Options{RepoDuration: 50 * time.Millisecond})
	var log syncBuffer
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

// syncBuffer is a bytes.Buffer safe for a logger and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
