package koji_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/rida-build/rida/koji"
	"github.com/rida-build/rida/koji/internal/wire"
	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/runner"
)

// The recordings in testdata/live are real Koji 1.35.3 hub answers to rida,
// made with the kit in ../shared/koji-live (scripts/koji-live record, session
// keys redacted):
//
//   - koji-live-calls.jsonl: every call rida made in `scripts/koji-live run`
//     and `scripts/koji-live sessions`: two module builds of the sample
//     module, each in a subsession of rida's login (subsession,
//     logoutChild), the second with pa and pc reused; rida's sessions
//     expired in the middle of the second (AuthExpired 1007 faults, a new
//     login, a new subsession); then SIGKILL and a restart.
//   - koji-live-stalled-repo.jsonl: every call rida made in
//     `scripts/koji-live stalled-repo`: a repo request nothing works
//     (repo.checkRequest answers while it stays active) and the newRepo
//     fallback.
//   - koji-live-replies.jsonl: more real replies for builds like these
//     (getBuild, listTagged, listTasks, getTaskInfo with its request, ...)
//     and a fault.
//
// TestDouble_AnswersAsTheRecordedHub holds koji/kojitest to them: the backend
// builds modules on the double as in the recorded runs, and every answer
// the double gave is compared, by shape, with the real hub's answers to the
// same method; every fault the hub gave must come from the double too.

// shapes is, per method, what its answers looked like: for each path into
// the answer ("" the answer itself, ".key" a struct member, "[]" an array
// element) the value types seen there and, for structs, the key sets.
type shapes map[string]*shape

type shape struct {
	types map[string]map[string]bool // path -> types
	keys  map[string]map[string]bool // path -> key sets (sorted, comma-joined)
}

func (s shapes) add(method string, v any) {
	sh := s[method]
	if sh == nil {
		sh = &shape{types: map[string]map[string]bool{}, keys: map[string]map[string]bool{}}
		s[method] = sh
	}
	sh.walk("", v)
}

func put(m map[string]map[string]bool, k, v string) {
	if m[k] == nil {
		m[k] = map[string]bool{}
	}
	m[k][v] = true
}

func (sh *shape) walk(path string, v any) {
	switch v := v.(type) {
	case nil:
		put(sh.types, path, "nil")
	case bool:
		put(sh.types, path, "bool")
	case int64:
		put(sh.types, path, "int")
	case float64:
		put(sh.types, path, "double")
	case string:
		put(sh.types, path, "string")
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			put(sh.types, path, "double")
		} else {
			put(sh.types, path, "int")
		}
	case []any:
		put(sh.types, path, "array")
		for _, e := range v {
			sh.walk(path+"[]", e)
		}
	case map[string]any:
		put(sh.types, path, "struct")
		keys := make([]string, 0, len(v))
		for k, e := range v {
			keys = append(keys, k)
			sh.walk(path+"."+k, e)
		}
		sort.Strings(keys)
		put(sh.keys, path, strings.Join(keys, ","))
	default:
		put(sh.types, path, fmt.Sprintf("%T", v))
	}
}

// nullableByState are members that Koji leaves NULL until the row reaches a
// later state (a task not yet started or finished, a request not yet
// served): the recordings show them in the states the kit's builds passed
// through, the double's answers in whichever states a test's polls caught.
// Only here may one side have nil where the other has a scalar.
var nullableByState = map[string]bool{
	"start_time": true, "start_ts": true, "completion_time": true, "completion_ts": true,
	"host_id": true, "task_id": true, "task_state": true, "repo_id": true, "repo": true,
	// A tag's permission is NULL when none is set: the recorded run made
	// its tags before rida set backend.koji.tag_permission.
	"perm": true, "perm_id": true,
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("recording %.80q: %v", s, err)
	}
	return v
}

// recordedShapes reads the recordings; faults are returned per method.
func recordedShapes(t *testing.T) (shapes, map[string][]string) {
	t.Helper()
	out, faults := shapes{}, map[string][]string{}
	names, err := filepath.Glob("testdata/live/*.jsonl")
	if err != nil || len(names) == 0 {
		t.Fatalf("recordings: %v %v", names, err)
	}
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var rec struct {
				Method string `json:"method"`
				Result *string
				Fault  string `json:"FAULT"`
				Calls  []struct{ M, P, R string }
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			switch {
			case rec.Fault != "":
				faults[rec.Method] = append(faults[rec.Method], normFault(rec.Fault))
			case rec.Method == "multiCall":
				for _, c := range rec.Calls {
					one, ok := decodeJSON(t, c.R).([]any)
					if !ok || len(one) != 1 {
						t.Fatalf("multiCall entry %s: %s", c.M, c.R)
					}
					out.add(c.M, one[0])
				}
			case rec.Result != nil:
				out.add(rec.Method, decodeJSON(t, *rec.Result))
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out, faults
}

// tap is a proxy in front of the double that keeps every answer as it
// went over the wire, decoded by the codec the client uses.
type tap struct {
	target string
	mu     sync.Mutex
	got    shapes
	faults map[string][]string
	err    error
}

func (p *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req, _ := http.NewRequest(http.MethodPost, p.target, bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	p.record(body, out)
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}

func (p *tap) record(reqBody, respBody []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fail := func(err error) {
		if p.err == nil {
			p.err = err
		}
	}
	method, params, err := wire.DecodeCall(reqBody)
	if err != nil {
		fail(err)
		return
	}
	v, fault, err := wire.DecodeResponse(respBody)
	if err != nil {
		fail(fmt.Errorf("%s: %w", method, err))
		return
	}
	if fault != nil {
		p.faults[method] = append(p.faults[method], normFault(fmt.Sprintf("%d: %s", fault.Code, fault.String)))
		return
	}
	if method != "multiCall" {
		p.got.add(method, v)
		return
	}
	calls, _ := params[0].([]any)
	entries, _ := v.([]any)
	for i, c := range calls {
		name, _ := c.(map[string]any)["methodName"].(string)
		if one, ok := entries[i].([]any); ok && len(one) == 1 {
			p.got.add(name, one[0])
		} else if f, ok := wire.AsFault(entries[i]); ok {
			p.faults[name] = append(p.faults[name], normFault(fmt.Sprintf("%d: %s", f.Code, f.String)))
		}
	}
}

var digits = regexp.MustCompile(`[0-9]+`)

// normFault is "code: faultString" with every number after the code
// replaced by N: ids differ between the recorded run and the double's
// (e.g. AuthExpired's 'session "7" has expired').
func normFault(f string) string {
	code, msg, _ := strings.Cut(f, ": ")
	return code + ": " + digits.ReplaceAllString(msg, "N")
}

// compareShapes lists every way got differs from want for the methods both
// have.
func compareShapes(want, got shapes) []string {
	var diffs []string
	for method, g := range got {
		w := want[method]
		if w == nil {
			continue
		}
		for path, gt := range g.types {
			wt, ok := w.types[path]
			if !ok {
				continue // a path the recordings never reached (e.g. an empty list there)
			}
			member := path[strings.LastIndexAny(path, ".]")+1:]
			for typ := range gt {
				if wt[typ] {
					continue
				}
				if nullableByState[member] && (typ == "nil" || wt["nil"]) {
					continue
				}
				diffs = append(diffs, fmt.Sprintf("%s%s: the double answers %s, the hub %v", method, path, typ, sortedSet(wt)))
			}
		}
		for path, gk := range g.keys {
			wk, ok := w.keys[path]
			if !ok {
				continue
			}
			for ks := range gk {
				if !wk[ks] {
					diffs = append(diffs, fmt.Sprintf("%s%s: the double's keys\n  %s\nthe hub's\n  %s", method, path, ks, strings.Join(sortedSet(wk), "\n  ")))
				}
			}
		}
	}
	slices.Sort(diffs)
	return diffs
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestDouble_AnswersAsTheRecordedHub(t *testing.T) {
	want, wantFaults := recordedShapes(t)

	h := kojitest.New(t, kojitest.Options{})
	h.SeedTag(kojitest.TagSeed{Name: baseTag, Arches: "x86_64", Groups: map[string][]string{
		"build":      {"bash", "rpm-build", "redhat-rpm-config"},
		"srpm-build": {"bash", "rpm-build", "git"},
	}})
	p := &tap{target: h.URL, got: shapes{}, faults: map[string][]string{}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	c, err := koji.NewClient(koji.ClientOptions{HubURL: srv.URL + "/kojihub", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Login(ctx, "kojiadmin", "kojipass"); err != nil {
		t.Fatal(err)
	}
	be := newBackend(t, c, &koji.MemoryIntentStore{})

	// Two builds of the same module, the second reusing one component,
	// as the kit's recorded run did, and rida's sessions expired at the
	// second build's first task poll, as `scripts/koji-live sessions` did.
	first := mustPlan(t, testStream("samplemod", map[string]int64{"pa": 0, "pb": 1}), 1)
	if _, err := runner.Execute(ctx, be, first, runner.ExecuteOptions{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	s := testStream("samplemod", map[string]int64{"pa": 0, "pb": 1})
	s.Version++
	second := mustPlan(t, s, 2)
	held, release := h.Hold(func(c kojitest.Call) bool {
		return c.Method == "multiCall" && len(c.Sub) > 0 && c.Sub[0].Method == "getTaskInfo"
	})
	go func() {
		<-held
		h.ExpireSession(c.SessionID())
		release()
	}()
	if _, err := runner.Execute(ctx, be, second, runner.ExecuteOptions{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	release()

	// The calls the recorded replies add, with this run's ids.
	tag := "module-samplemod-master-20260101000000-c0ffee42"
	builds := h.TaskIDs("build")
	var buildID int64
	var row []map[string]any
	if err := c.CallInto(ctx, &row, "listBuilds", koji.KW{"taskID": builds[1]}); err != nil || len(row) != 1 {
		t.Fatalf("listBuilds: %v %v", row, err)
	}
	buildID = int64(row[0]["build_id"].(float64))
	for _, call := range []struct {
		method string
		args   []any
	}{
		{"listBuildRPMs", []any{buildID}},
		{"getBuild", []any{buildID}},
		{"getBuild", []any{999999}},
		{"listTagged", []any{tag, koji.KW{"inherit": false, "latest": false}}},
		{"getTag", []any{tag}},
		{"getInheritanceData", []any{tag + "-build"}},
		{"listTasks", []any{map[string]any{"method": "build", "decode": true, "owner": 1}, map[string]any{"order": "-id", "limit": 5}}},
		{"getTaskInfo", []any{builds[0], koji.KW{"request": true}}},
		{"getTaskResult", []any{builds[0]}},
		{"getRepo", []any{tag + "-build"}},
		{"getTaskResult", []any{999999}},
		// The backend's fallback when a repo request makes no progress
		// (TestBackend_RepoRequestFallsBackToNewRepo drives it).
		{"newRepo", []any{tag + "-build"}},
		// A repo wait that gave up cancels its newRepo task
		// (TestBackend_RepoWaitTimesOut drives it).
		{"cancelTask", []any{builds[0]}},
	} {
		_, _ = c.Call(ctx, call.method, call.args...)
	}
	if p.err != nil {
		t.Fatal(p.err)
	}

	// Every method the recordings hold must have been answered here.
	var missing []string
	for m := range want {
		if _, ok := p.got[m]; !ok && m != "listTags" && m != "getFullInheritance" && m != "listTaskOutput" {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		t.Errorf("methods the recordings hold that this run did not call: %v", missing)
	}
	for _, d := range compareShapes(want, p.got) {
		t.Error(d)
	}
	for m, fs := range wantFaults {
		for _, f := range fs {
			if !slices.Contains(p.faults[m], f) {
				t.Errorf("%s: the hub faulted %q, the double %q", m, f, p.faults[m])
			}
		}
	}
}

// The comparison itself: a double that gives listBuilds rows an "id" (the
// bug the recordings caught) or answers {} where the hub answers nil fails.
func TestCompareShapes_CatchesKeyAndNilDifferences(t *testing.T) {
	want := shapes{}
	want.add("listBuilds", decodeJSON(t, `[{"build_id": 1, "extra": null, "nvr": "a-1-1"}]`))
	for _, tc := range []struct {
		got  string
		diff bool
	}{
		{`[{"build_id": 4, "extra": null, "nvr": "b-1-1"}]`, false},
		{`[]`, false},
		{`[{"build_id": 4, "id": 4, "extra": null, "nvr": "b-1-1"}]`, true},
		{`[{"build_id": 4, "extra": {}, "nvr": "b-1-1"}]`, true},
		{`[{"build_id": 4.0, "extra": null, "nvr": "b-1-1"}]`, true},
		{`null`, true},
	} {
		got := shapes{}
		got.add("listBuilds", decodeJSON(t, tc.got))
		if d := compareShapes(want, got); (len(d) > 0) != tc.diff {
			t.Errorf("%s: differences %q, want some: %v", tc.got, d, tc.diff)
		}
	}
}
