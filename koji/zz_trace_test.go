package koji_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/koji"
	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/runner"
)

type traceCaller struct {
	c     *koji.Client
	mu    sync.Mutex
	start time.Time
	log   []string
}

func (t *traceCaller) rec(s string, t0 time.Time) {
	t.mu.Lock()
	t.log = append(t.log, fmt.Sprintf("%8.2f %6.2f %s", float64(t0.Sub(t.start).Microseconds())/1000, float64(time.Since(t0).Microseconds())/1000, s))
	t.mu.Unlock()
}
func (t *traceCaller) Call(ctx context.Context, m string, a ...any) (koji.Value, error) {
	t0 := time.Now()
	defer t.rec(m, t0)
	return t.c.Call(ctx, m, a...)
}
func (t *traceCaller) CallOnce(ctx context.Context, m string, a ...any) (koji.Value, error) {
	t0 := time.Now()
	defer t.rec(m, t0)
	return t.c.CallOnce(ctx, m, a...)
}
func (t *traceCaller) MultiCall(ctx context.Context, calls []koji.MultiCallEntry) ([]koji.MultiCallResult, error) {
	t0 := time.Now()
	var ms []string
	for _, c := range calls {
		ms = append(ms, c.Method)
	}
	defer t.rec("multi["+compact(ms)+"]", t0)
	return t.c.MultiCall(ctx, calls)
}
func compact(ms []string) string {
	var out []string
	for i := 0; i < len(ms); {
		j := i
		for j < len(ms) && ms[j] == ms[i] {
			j++
		}
		out = append(out, fmt.Sprintf("%s×%d", ms[i], j-i))
		i = j
	}
	return strings.Join(out, ",")
}

func TestZZTrace(t *testing.T) {
	if os.Getenv("KOJI_TRACE") == "" {
		t.Skip()
	}
	order := map[string]int64{}
	for i := range 200 {
		order[fmt.Sprintf("pkg%03d", i)] = int64(i / 10)
	}
	bd := setup(t, kojitest.Options{BuildDuration: 20 * time.Millisecond, RepoDuration: 10 * time.Millisecond})
	tc := &traceCaller{c: bd.client}
	be, _ := koji.NewBackend(koji.BackendOptions{Client: tc, Arches: []string{"x86_64"}, BaseModuleTag: baseTag, Owner: "kojiadmin", Logger: quiet,
		PollMin: 2 * time.Millisecond, PollMax: 10 * time.Millisecond})
	for i := range 2 {
		build := mustPlan(t, testStream(fmt.Sprintf("bench%d", i), order), int64(100+i))
		tc.mu.Lock()
		tc.log = nil
		tc.start = time.Now()
		tc.mu.Unlock()
		if _, err := runner.Execute(context.Background(), be, build, runner.ExecuteOptions{Logger: quiet}); err != nil {
			t.Fatal(err)
		}
		t.Logf("run %d: %v", i, time.Since(tc.start))
	}
	t.Log("\n" + strings.Join(tc.log, "\n"))
}
