package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/modgraph"
	"github.com/rida-build/rida/state"
)

const cliToken = "cli-token"

type cliBranches struct{}

// CommitOnBranch: "good…" commits are on every branch, others on none.
func (cliBranches) CommitOnBranch(_ context.Context, _, _, rev string) (string, bool, error) {
	return rev + strings.Repeat("0", max(0, 40-len(rev))), strings.HasPrefix(rev, "good"), nil
}

type cliCanceler struct{ st *state.Store }

func (c cliCanceler) Cancel(ctx context.Context, id uint64, who string) error {
	mb, err := c.st.RequestCancel(ctx, id, "cancelled by "+who)
	if err != nil {
		return err
	}
	mb.State, mb.StateReason = state.ModuleStateFailed, mb.CancelRequestedBy
	_, err = c.st.PutModuleBuild(ctx, *mb)
	return err
}

// cliServer serves the real API handler over a real bbolt store with three
// builds (1 ready, 2 failed, 3 building), an index entry and a delivery.
func cliServer(t *testing.T) (*httptest.Server, *state.Store) {
	t.Helper()
	st, err := state.Open(filepath.Join(t.TempDir(), "rida.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(mb state.ModuleBuild, states ...state.ModuleState) {
		mb.State = states[0]
		out, err := st.PutModuleBuild(ctx, mb)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states[1:] {
			out.State, out.StateReason = s, "now "+s.String()
			if out, err = st.PutModuleBuild(ctx, *out); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(state.ModuleBuild{Name: "foo", Stream: "main", Version: 1, Context: "c1"}, state.ModuleStateInit, state.ModuleStateDone, state.ModuleStateReady)
	put(state.ModuleBuild{Name: "foo", Stream: "main", Version: 2, Context: "c2"}, state.ModuleStateInit, state.ModuleStateFailed)
	put(state.ModuleBuild{Name: "bar", Stream: "f40", Version: 3, Context: "c3", Components: []state.ComponentBuild{
		{Key: "pkg-a", Package: "pkg-a", Batch: 2, State: "building"},
	}}, state.ModuleStateInit, state.ModuleStateBuild)
	if err := st.SetModuleComponents(ctx, "foo", "main", "https://src.example.org/modules/foo", []state.IndexedComponent{{Name: "pkg-a", Ref: "main"}}); err != nil {
		t.Fatal(err)
	}
	d := &state.Delivery{Forge: "gitea", Event: "push", Repo: "rpms/pkg-a", Ref: "refs/heads/main", Before: strings.Repeat("1", 40), After: strings.Repeat("2", 40), Sender: "bob"}
	if _, err := st.RecordDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	job, err := st.LeasePlanJob(ctx, "w", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CompletePlanJob(ctx, job.ID, state.PlanResult{Worker: "w", Requests: []state.BuildRequest{{Module: "foo", Stream: "main", Kind: state.RequestComponent, ModuleRepo: "https://src.example.org/modules/foo"}}}); err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Options{
		Store: st, Canceler: cliCanceler{st}, Branches: cliBranches{}, Tokens: map[string]string{"ci": cliToken}, AdminUsers: []string{"ci"},
		SCMURLPrefixes: []string{"https://src.example.org/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		if err := st.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		st.Close()
	})
	return hs, st
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI_Commands(t *testing.T) {
	hs, _ := cliServer(t)
	t.Setenv("RIDA_SERVER", hs.URL)
	t.Setenv("RIDA_TOKEN", "")
	cases := []struct {
		name string
		args []string
		code int
		out  []string // substrings of stdout
		err  string   // substring of stderr
	}{
		{"status list", []string{"status"}, 0, []string{"ID", "bar:f40:3:c3", "build", "foo:main:1:c1", "3 of 3 build(s)"}, ""},
		{"status list filtered", []string{"status", "--state", "failed"}, 0, []string{"foo:main:2:c2", "1 of 1"}, ""},
		{"status ready", []string{"status", "1"}, 0, []string{"build 1  foo:main:1:c1", "state   ready", "trace:"}, ""},
		{"status failed exits 1", []string{"status", "2"}, 1, []string{"state   failed"}, ""},
		{"status missing", []string{"status", "99"}, 1, nil, "404 Not Found: No such module build found: 99"},
		{"status components", []string{"status", "3"}, 0, []string{"components:", "pkg-a", "building"}, ""},
		{"status bad id", []string{"status", "x"}, 2, nil, `ID "x" is not a positive integer`},
		{"status bad output", []string{"status", "--output", "yaml"}, 2, nil, "--output"},
		{"submit no token", []string{"submit", "https://src.example.org/modules/baz?#good1", "--branch", "main"}, 1, nil, "401"},
		{"submit", []string{"submit", "https://src.example.org/modules/baz?#good1", "--branch", "main", "--token", cliToken}, 0, []string{"module build 4 submitted: baz:main (init)"}, ""},
		{"submit not on branch", []string{"submit", "https://src.example.org/modules/baz?#bad1", "--branch", "main", "--token", cliToken}, 1, nil, "Commit bad1 is not in branch main."},
		{"submit no branch", []string{"submit", "https://src.example.org/modules/baz?#good1"}, 2, nil, "need exactly one SCMURL and --branch"},
		{"cancel", []string{"cancel", "3", "--token", cliToken}, 0, []string{"build 3: failed (cancelled by ci)"}, ""},
		{"cancel again", []string{"cancel", "3", "--token", cliToken}, 1, nil, "only builds in init, wait or build can be cancelled"},
		{"rerun none", []string{"rerun", "--token", cliToken}, 2, nil, "exactly one of --delivery, --build or --module"},
		{"rerun delivery", []string{"rerun", "--delivery", "1", "--token", cliToken}, 0, []string{"foo:main: build request"}, ""},
		{"rerun build forced", []string{"rerun", "--build", "2", "--force", "--token", cliToken}, 0, []string{"foo:main: build request", "(merged)"}, ""},
		{"deliveries", []string{"deliveries"}, 0, []string{"rpms/pkg-a", "foo:main (request 1, created)", "1 of 1 deliveries"}, ""},
		{"delivery", []string{"deliveries", "1"}, 0, []string{"delivery 1  gitea rpms/pkg-a", "outcome"}, ""},
		{"delivery missing", []string{"deliveries", "5"}, 1, nil, "No such delivery found: 5"},
		{"which-modules", []string{"which-modules", "pkg-a", "--branch", "main"}, 0, []string{"foo:main", "https://src.example.org/modules/foo"}, ""},
		{"which-modules none", []string{"which-modules", "nope"}, 0, []string{"no indexed module stream includes nope"}, ""},
		{"which-modules usage", []string{"which-modules"}, 2, nil, "need exactly one COMPONENT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if tc.err != "" && !strings.Contains(errOut, tc.err) {
				t.Errorf("stderr lacks %q:\n%s", tc.err, errOut)
			}
		})
	}
}

func TestCLI_JSONOutput(t *testing.T) {
	hs, _ := cliServer(t)
	code, out, errOut := runCLI(t, "status", "1", "--server", hs.URL, "--output", "json")
	var b map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &b) != nil || b["state_name"] != "ready" || b["state_trace"] == nil {
		t.Fatalf("exit %d, stdout %s, stderr %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "which-modules", "pkg-a", "--server", hs.URL, "--output", "json")
	if code != 0 || !strings.Contains(out, `"module": "foo"`) {
		t.Fatalf("which-modules json: %d %s", code, out)
	}
}

func TestCLI_Watch(t *testing.T) {
	hs, st := cliServer(t)
	ctx := context.Background()
	go func() {
		time.Sleep(150 * time.Millisecond)
		mb, _ := st.GetModuleBuild(ctx, 3)
		mb.Components[0].State, mb.Components[0].NVR = "complete", "pkg-a-1-1"
		_, _ = st.PutModuleBuild(ctx, *mb)
		time.Sleep(150 * time.Millisecond)
		mb, _ = st.GetModuleBuild(ctx, 3)
		mb.State, mb.StateReason = state.ModuleStateDone, "all good"
		_, _ = st.PutModuleBuild(ctx, *mb)
	}()
	code, out, errOut := runCLI(t, "status", "3", "--watch", "--interval", "20ms", "--server", hs.URL)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, w := range []string{"state   build", "batch 2 pkg-a: complete pkg-a-1-1", "build 3 finished: done — all good"} {
		if !strings.Contains(out, w) {
			t.Errorf("watch output lacks %q:\n%s", w, out)
		}
	}
	// A build that fails ends the watch with exit 1.
	code, _, _ = runCLI(t, "status", "2", "--watch", "--server", hs.URL)
	if code != 1 {
		t.Errorf("watch of a failed build: exit %d, want 1", code)
	}
}

func TestCLI_ServerTrouble(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"status": 500, "error": "Internal Server Error", "message": "rida failed"}`))
	}))
	defer broken.Close()
	for _, tc := range []struct {
		server, want string
	}{{dead, "server unreachable"}, {broken.URL, "500 Internal Server Error: rida failed"}} {
		code, _, errOut := runCLI(t, "status", "--server", tc.server)
		if code != 3 || !strings.Contains(errOut, tc.want) {
			t.Errorf("server %s: exit %d, stderr %q; want 3 and %q", tc.server, code, errOut, tc.want)
		}
	}
}

func TestCLI_Help(t *testing.T) {
	for _, cmd := range []string{"submit", "status", "cancel", "rerun", "deliveries", "which-modules"} {
		code, _, errOut := runCLI(t, cmd, "--help")
		if code != 0 || !strings.Contains(errOut, "Usage: rida "+cmd) || !strings.Contains(errOut, "Exit status") || !strings.Contains(errOut, "-server") {
			t.Errorf("%s --help: exit %d\n%s", cmd, code, errOut)
		}
	}
	if code, _, _ := runCLI(t, "status", "--bogus"); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
}

func TestCLI_WhichModulesDependents(t *testing.T) {
	hs, st := cliServer(t)
	t.Setenv("RIDA_SERVER", hs.URL)
	ctx := context.Background()
	for ns, brs := range map[string][]modgraph.Requirement{
		"lower:stable": nil,
		"mid:stable":   {{Name: "lower", Streams: []string{"stable"}}, {Name: "base", Streams: []string{}}},
		"upper:main":   {{Name: "mid", Streams: []string{"stable"}}},
	} {
		name, stream, _ := strings.Cut(ns, ":")
		if err := st.SetModuleStream(ctx, state.IndexedStream{Module: name, Stream: stream, ModuleRepo: "https://src.example.org/modules/" + name,
			Components: []state.IndexedComponent{{Name: "pkg-" + name, Ref: stream}}, BuildRequires: brs}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		args    []string
		code    int
		out     []string
		notOut  []string
		errText string
	}{
		{"direct", []string{"which-modules", "--dependents", "lower:stable"}, 0,
			[]string{"lower:stable buildrequires no module (or not indexed)", "MODULE:STREAM  DEPENDS  DEPTH  VIA", "mid:stable     direct   1      lower:stable"}, []string{"upper:main"}, ""},
		{"transitive", []string{"which-modules", "--dependents", "lower:stable", "--transitive"}, 0,
			[]string{"mid:stable     direct      1      lower:stable", "upper:main     transitive  2      mid:stable"}, []string{"beyond depth"}, ""},
		{"its buildrequires", []string{"which-modules", "--dependents", "mid:stable"}, 0,
			[]string{"mid:stable buildrequires lower [stable], base [every stream]", "upper:main"}, nil, ""},
		{"none", []string{"which-modules", "--dependents", "upper:main", "--transitive"}, 0,
			[]string{"upper:main buildrequires mid [stable]", "no indexed module stream buildrequires upper:main"}, nil, ""},
		{"unknown stream", []string{"which-modules", "--dependents", "nope:1"}, 0,
			[]string{"no indexed module stream buildrequires nope:1"}, nil, ""},
		{"not name:stream", []string{"which-modules", "--dependents", "lower"}, 2, nil, nil, `--dependents "lower" is not NAME:STREAM`},
		{"component too", []string{"which-modules", "pkg-a", "--dependents", "lower:stable"}, 2, nil, nil, "--dependents takes no COMPONENT and no --branch"},
		{"transitive alone", []string{"which-modules", "pkg-a", "--transitive"}, 2, nil, nil, "--transitive goes with --dependents"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notOut {
				if strings.Contains(out, w) {
					t.Errorf("stdout has %q:\n%s", w, out)
				}
			}
			if tc.errText != "" && !strings.Contains(errOut, tc.errText) {
				t.Errorf("stderr lacks %q:\n%s", tc.errText, errOut)
			}
		})
	}
	code, out, errOut := runCLI(t, "which-modules", "--dependents", "lower:stable", "--transitive", "--output", "json")
	var got struct {
		Items []struct {
			Module string `json:"module"`
			Direct bool   `json:"direct"`
			Depth  int    `json:"depth"`
		} `json:"items"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got.Items) != 2 || got.Items[1].Module != "upper" || got.Items[1].Direct || got.Items[1].Depth != 2 {
		t.Fatalf("json: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "which-modules", "--help")
	if code != 0 || !strings.Contains(errOut, "--dependents NAME:STREAM [--transitive]") || !strings.Contains(errOut, "-transitive") {
		t.Errorf("--help: exit %d\n%s", code, errOut)
	}
}
