package koji

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/rida-build/rida/runner"
)

// cannedCaller answers getBuild with build and listTagged with tagged[tag].
type cannedCaller struct {
	build  any
	tagged map[string][]any
	calls  []MultiCallEntry
}

func (c *cannedCaller) Call(context.Context, string, ...any) (Value, error) {
	return Value{}, errors.New("unexpected call")
}

func (c *cannedCaller) CallOnce(context.Context, string, ...any) (Value, error) {
	return Value{}, errors.New("unexpected call")
}

func (c *cannedCaller) MultiCall(_ context.Context, calls []MultiCallEntry) ([]MultiCallResult, error) {
	c.calls = append(c.calls, calls...)
	out := make([]MultiCallResult, len(calls))
	for i, e := range calls {
		switch e.Method {
		case "getBuild":
			out[i].Value = Value{c.build}
		case "listTagged":
			out[i].Value = Value{append([]any{}, c.tagged[e.Args[0].(string)]...)}
		default:
			return nil, errors.New("unexpected " + e.Method)
		}
	}
	return out, nil
}

func TestReuse_ChecksTheBuild(t *testing.T) {
	b := &runner.Build{ID: 5, Name: "m", Stream: "s", Version: 1, Context: "c"}
	comp := func() *runner.Component {
		return &runner.Component{Key: "foo", Package: "foo", Batch: 2, State: runner.ComponentReused,
			NVR: "foo-1.0-1.module+el9+4+abc", ReusedFrom: 4, ReusedLocation: "module-m-s-0-c"}
	}
	build := func(state int) map[string]any {
		return map[string]any{"id": int64(9), "nvr": "foo-1.0-1.module+el9+4+abc", "state": int64(state)}
	}
	for _, tc := range []struct {
		name  string
		build any
		want  string
	}{
		{"missing", nil, "build foo-1.0-1.module+el9+4+abc does not exist in Koji"},
		{"failed", build(buildFailed), "build foo-1.0-1.module+el9+4+abc is FAILED, not COMPLETE"},
		{"deleted", build(buildDeleted), "is DELETED, not COMPLETE"},
		{"building", build(buildBuilding), "is BUILDING, not COMPLETE"},
		{"odd state", build(7), "is in state 7, not COMPLETE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := &cannedCaller{build: tc.build}
			be, err := NewBackend(BackendOptions{Client: cc, BaseModuleTag: "base", Owner: "o",
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			err = be.Reuse(t.Context(), b, comp())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "reuse foo from build 4") {
				t.Fatalf("Reuse: %v, want an error with %q", err, tc.want)
			}
			if len(be.state(b).reused) != 0 {
				t.Errorf("queued for tagging: %v", be.state(b).reused)
			}
		})
	}

	// A COMPLETE build is queued for its batch, with what the tags hold.
	cc := &cannedCaller{build: build(buildComplete), tagged: map[string][]any{
		"module-m-s-1-c-build": {map[string]any{"nvr": "foo-1.0-1.module+el9+4+abc"}},
		"module-m-s-1-c":       {map[string]any{"nvr": "foo-0.9-1.module+el9+3+abc"}},
	}}
	be, err := NewBackend(BackendOptions{Client: cc, BaseModuleTag: "base", Owner: "o",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c := comp()
	if err := be.Reuse(t.Context(), b, c); err != nil {
		t.Fatal(err)
	}
	if len(cc.calls) != 3 || cc.calls[1].Args[1].(KW)["package"] != "foo" {
		t.Errorf("calls %+v", cc.calls)
	}
	b.Batches = []*runner.Batch{{Number: 1}, {Number: 2, Components: []*runner.Component{c}}}
	jobs, known := be.state(b).takeReused(b, 2)
	if !known || len(jobs) != 1 || jobs[0].nvr != c.NVR || !jobs[0].inBuildTag || jobs[0].inTag {
		t.Errorf("queued: known %v, %d jobs %+v", known, len(jobs), jobs)
	}
	// Taken once: a reused component Reuse did not see is unknown.
	if jobs, known := be.state(b).takeReused(b, 2); known || len(jobs) != 1 || jobs[0].inBuildTag {
		t.Errorf("second take: known %v, jobs %+v", known, jobs)
	}
}

func TestNVRName(t *testing.T) {
	for nvr, want := range map[string]string{
		"foo-1.0-1.el9":           "foo",
		"python-foo-bar-2-3.fc40": "python-foo-bar",
		"foo-1.0":                 "",
		"foo":                     "",
		"-1-2":                    "",
		"foo-1.0-":                "",
		"foo--1":                  "",
	} {
		got, ok := nvrName(nvr)
		if got != want || ok != (want != "") {
			t.Errorf("nvrName(%q) = %q, %v; want %q", nvr, got, ok, want)
		}
	}
}
