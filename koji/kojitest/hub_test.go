package kojitest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"

	"github.com/rida-build/rida/koji"
	"github.com/rida-build/rida/koji/internal/wire"
	"github.com/rida-build/rida/koji/kojitest"
)

func setup(t *testing.T, opts kojitest.Options) (*kojitest.Hub, *koji.Client) {
	t.Helper()
	h := kojitest.New(t, opts)
	c, err := koji.NewClient(koji.ClientOptions{HubURL: h.URL, Retry: koji.RetryOptions{Attempts: 1},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return h, c
}

func mustLogin(t *testing.T, c *koji.Client) {
	t.Helper()
	if err := c.Login(context.Background(), "kojiadmin", "kojipass"); err != nil {
		t.Fatal(err)
	}
}

func wantFault(t *testing.T, err error, code int, msg string) {
	t.Helper()
	var f *koji.Fault
	if !errors.As(err, &f) {
		t.Fatalf("want fault %d, got %v", code, err)
	}
	if f.Code != code || (msg != "" && f.String != msg) {
		t.Fatalf("want fault %d %q, got %d %q", code, msg, f.Code, f.String)
	}
}

func TestHub_ArgumentErrors(t *testing.T) {
	_, c := setup(t, kojitest.Options{})
	ctx := context.Background()
	mustLogin(t, c)
	for _, tc := range []struct {
		name   string
		method string
		args   []any
		want   string
	}{
		// The hub's own strings (koji-wire-samples.md, koji-listapi-argerrors.json).
		{"too many getTag", "getTag", []any{"f99-build", 1, 2, 3, 4}, "get_tag() takes from 1 to 4 positional arguments but 5 were given"},
		{"too many build", "build", []any{"a", "b", nil, nil, nil, nil}, "RootExports.build() takes from 3 to 6 positional arguments but 7 were given"},
		{"too many getKojiVersion", "getKojiVersion", []any{1}, "RootExports.getKojiVersion() takes 1 positional argument but 2 were given"},
		{"too many createBuildTarget", "createBuildTarget", []any{"a", "b", "c", "d"}, "create_build_target() takes 3 positional arguments but 4 were given"},
		{"missing", "createBuildTarget", []any{"a"}, "create_build_target() missing 2 required positional arguments: 'build_tag' and 'dest_tag'"},
		{"unexpected kwarg", "getTag", []any{"x", koji.KW{"nope": 1}}, "get_tag() got an unexpected keyword argument 'nope'"},
		{"twice", "getTag", []any{"x", koji.KW{"tagInfo": "y"}}, "get_tag() got multiple values for argument 'tagInfo'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Call(ctx, tc.method, tc.args...)
			wantFault(t, err, koji.ParameterError, tc.want)
		})
	}
	t.Run("unknown method", func(t *testing.T) {
		_, err := c.Call(ctx, "noSuchMethod")
		wantFault(t, err, koji.GenericError, "Invalid method: noSuchMethod")
	})
	t.Run("missing tag", func(t *testing.T) {
		v, err := c.Call(ctx, "getTag", "nope")
		if err != nil || !v.IsNil() {
			t.Fatalf("non-strict: %v %v", v, err)
		}
		_, err = c.Call(ctx, "getTag", "nope", koji.KW{"strict": true})
		wantFault(t, err, koji.GenericError, "No such tagInfo: 'nope'")
	})
	t.Run("empty maxdepth as a real hub answers it", func(t *testing.T) {
		if _, err := c.Call(ctx, "createTag", "p"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Call(ctx, "createTag", "ch"); err != nil {
			t.Fatal(err)
		}
		link := map[string]any{"parent_id": 1, "priority": 0, "maxdepth": "", "intransitive": false, "noconfig": false, "pkg_filter": ""}
		_, err := c.Call(ctx, "setInheritanceData", "ch", []any{link})
		wantFault(t, err, koji.ServerException, "")
		link["maxdepth"] = nil
		if _, err := c.Call(ctx, "setInheritanceData", "ch", []any{link}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHub_WritesNeedLogin(t *testing.T) {
	_, c := setup(t, kojitest.Options{})
	ctx := context.Background()
	_, err := c.Call(ctx, "createTag", "x")
	wantFault(t, err, koji.ActionNotAllowed, "tag permission required (user not logged in)")
	_, err = c.Call(ctx, "build", "git+https://x/rpms/a.git#1", "t", nil)
	wantFault(t, err, koji.ActionNotAllowed, "")
	if err := c.Login(ctx, "kojiadmin", "wrong"); !koji.IsFault(err, koji.AuthError) {
		t.Fatalf("bad password: %v", err)
	}
	mustLogin(t, c)
	if _, err := c.Call(ctx, "createTag", "x"); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = c.Call(ctx, "createTag", "y")
	wantFault(t, err, koji.ActionNotAllowed, "")
}

// rawCall sends one request with explicit session headers (call) and
// returns its fault.
func rawCall(t *testing.T, url string, sid int64, key string, callnum int, method string, args ...any) *wire.Fault {
	t.Helper()
	_, f := call(t, url, sid, key, callnum, method, args...)
	return f
}

func TestHub_CallnumSequencing(t *testing.T) {
	h, _ := setup(t, kojitest.Options{})
	f := rawCall(t, h.URL, 0, "", -1, "login", "kojiadmin", "kojipass")
	if f != nil {
		t.Fatal(f)
	}
	// Log in by hand to learn the session.
	body, _ := wire.EncodeCall("login", []any{"kojiadmin", "kojipass"})
	resp, err := http.Post(h.URL, "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	v, _, _ := wire.DecodeResponse(out)
	sid, key := v.(map[string]any)["session-id"].(int64), v.(map[string]any)["session-key"].(string)

	if f := rawCall(t, h.URL, sid, key, 0, "createTag", "a"); f != nil {
		t.Fatalf("first write: %v", f)
	}
	// Reads do not store the callnum: 0 again is fine for a read...
	if f := rawCall(t, h.URL, sid, key, 0, "getTag", "a"); f == nil || f.Code != koji.RetryError {
		t.Fatalf("replayed callnum after a committed write: want 1009, got %v", f)
	}
	if f := rawCall(t, h.URL, sid, key, 3, "createTag", "b"); f != nil {
		t.Fatalf("callnum 3: %v", f)
	}
	if f := rawCall(t, h.URL, sid, key, 2, "getTag", "b"); f == nil || f.Code != koji.SequenceError || f.String != "3 > 2 (session "+strconv.FormatInt(sid, 10)+")" {
		t.Fatalf("callnum went backwards: want 1008, got %v", f)
	}
	// repo* methods are in the hub's RetryWhitelist.
	if f := rawCall(t, h.URL, sid, key, 3, "repo.checkRequest", 99); f == nil || f.Code != koji.GenericError {
		t.Fatalf("whitelisted retry: want the method's own answer, got %v", f)
	}
	if f := rawCall(t, h.URL, sid, key+"x", 9, "getTag", "b"); f == nil || f.Code != koji.AuthError {
		t.Fatalf("bad key: %v", f)
	}
}

func TestHub_ProtocolErrors(t *testing.T) {
	h, _ := setup(t, kojitest.Options{})
	resp, err := http.Get(h.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	resp, err = http.Post(h.URL, "text/xml", bytes.NewReader([]byte("not xml")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("garbage: %d", resp.StatusCode)
	}
	if resp.Header.Get("Koji-Version") != "" {
		t.Log("400 carries Koji-Version")
	}
}

func TestHub_OldHubHasNoRepoRequests(t *testing.T) {
	_, c := setup(t, kojitest.Options{Version: "1.34.1"})
	mustLogin(t, c)
	_, err := c.Call(context.Background(), "repo.request", "x")
	wantFault(t, err, koji.GenericError, "Invalid method: repo.request")
}

func TestHub_BuildTaskLifecycle(t *testing.T) {
	h, c := setup(t, kojitest.Options{BuildDuration: kojitest.Manual})
	ctx := context.Background()
	mustLogin(t, c)
	for _, call := range []struct {
		m    string
		args []any
	}{
		{"createTag", []any{"m"}},
		{"createTag", []any{"m-build", koji.KW{"arches": "x86_64"}}},
		{"createBuildTarget", []any{"m", "m-build", "m"}},
		{"packageListAdd", []any{"m", "foo", koji.KW{"owner": "kojiadmin"}}},
	} {
		if _, err := c.Call(ctx, call.m, call.args...); err != nil {
			t.Fatalf("%s: %v", call.m, err)
		}
	}
	var a, b int
	if err := c.CallInto(ctx, &a, "build", "git+https://x/rpms/foo.git#1", "m", map[string]any{"skip_tag": true}); err != nil {
		t.Fatal(err)
	}
	if err := c.CallInto(ctx, &b, "build", "git+https://x/rpms/bar.git#2", "m", map[string]any{"skip_tag": true}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Call(ctx, "getTaskResult", a)
	wantFault(t, err, koji.GenericError, "Task "+strconv.Itoa(a)+" is not finished")
	if err := h.CompleteTask(a); err != nil {
		t.Fatal(err)
	}
	if err := h.FailTask(b, "error building package (arch x86_64), mock exited with status 1"); err != nil {
		t.Fatal(err)
	}
	var builds []struct {
		NVR   string `json:"nvr"`
		State int    `json:"state"`
	}
	if err := c.CallInto(ctx, &builds, "listBuilds", koji.KW{"taskID": a}); err != nil || len(builds) != 1 || builds[0].NVR != "foo-1.0-1" || builds[0].State != 1 {
		t.Fatalf("listBuilds: %v %+v", err, builds)
	}
	_, err = c.Call(ctx, "getTaskResult", b)
	wantFault(t, err, koji.BuildError, "error building package (arch x86_64), mock exited with status 1")
	var tagTask int
	if err := c.CallInto(ctx, &tagTask, "tagBuild", "m", "foo-1.0-1"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Call(ctx, "tagBuild", "m-build", "foo-1.0-1")
	wantFault(t, err, koji.TagError, "Package foo not in list for m-build")
	// tagBuild tasks complete at the next request by default.
	if _, err := c.Call(ctx, "getKojiVersion"); err != nil {
		t.Fatal(err)
	}
	if got := h.Tagged("m"); len(got) != 1 || got[0] != "foo-1.0-1" {
		t.Errorf("tagged: %v", got)
	}
	// listTagged at an event gives the tag's contents then.
	for event, want := range map[int]int{0: 0, 1 << 30: 1} {
		var rows []map[string]any
		if err := c.CallInto(ctx, &rows, "listTagged", "m", koji.KW{"event": event}); err != nil || len(rows) != want {
			t.Errorf("listTagged m at event %d: %v, %d builds; want %d", event, err, len(rows), want)
		}
	}
	res, err := c.MultiCall(ctx, []koji.MultiCallEntry{
		{Method: "getTaskInfo", Args: []any{a}}, {Method: "cancelTask", Args: []any{a}}, {Method: "getTag", Args: []any{"nope", koji.KW{"strict": true}}},
	})
	if err != nil || res[0].Fault != nil || res[1].Fault != nil || !res[1].Value.IsNil() || res[2].Fault == nil {
		t.Fatalf("multicall: %v %+v", err, res)
	}
	calls := h.Calls()
	if last := calls[len(calls)-1]; last.Method != "multiCall" || len(last.Sub) != 3 || last.Sub[2].Fault != koji.GenericError {
		t.Errorf("recorded: %+v", last)
	}
}

// TestHub_InheritanceWithSeveralParents holds the double to Koji's
// readInheritanceData/_writeInheritanceData: links come back by priority
// whatever order they were written in, a write merges into the current
// links (an unchanged link stays), and duplicate priorities are refused
// with the hub's message, the parents listed current links first (the
// replies of a Koji 1.35.3 hub to the same calls, checked with the
// koji-live kit).
func TestHub_InheritanceWithSeveralParents(t *testing.T) {
	h, c := setup(t, kojitest.Options{})
	mustLogin(t, c)
	ctx := context.Background()
	child := h.SeedTag(kojitest.TagSeed{Name: "child"})
	p1 := h.SeedTag(kojitest.TagSeed{Name: "p1"})
	p2 := h.SeedTag(kojitest.TagSeed{Name: "p2"})
	p3 := h.SeedTag(kojitest.TagSeed{Name: "p3"})
	entry := func(parent, prio int) map[string]any {
		return map[string]any{"parent_id": parent, "priority": prio, "maxdepth": nil,
			"intransitive": false, "noconfig": false, "pkg_filter": ""}
	}
	if _, err := c.Call(ctx, "setInheritanceData", child, []any{entry(p2, 10), entry(p1, 0)}); err != nil {
		t.Fatal(err)
	}
	type row struct {
		ParentID int    `json:"parent_id"`
		ChildID  int    `json:"child_id"`
		Name     string `json:"name"`
		Priority int    `json:"priority"`
		MaxDepth *int   `json:"maxdepth"`
	}
	read := func() []row {
		t.Helper()
		v, err := c.Call(ctx, "getInheritanceData", "child")
		if err != nil {
			t.Fatal(err)
		}
		var rows []row
		if err := v.Decode(&rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	rows := read()
	if len(rows) != 2 || rows[0].Name != "p1" || rows[0].Priority != 0 || rows[1].Name != "p2" || rows[1].Priority != 10 ||
		rows[0].ChildID != child || rows[0].MaxDepth != nil {
		t.Fatalf("inheritance %+v", rows)
	}
	// Existing links sent back unchanged plus a new one: all three kept.
	if _, err := c.Call(ctx, "setInheritanceData", child, []any{entry(p1, 0), entry(p2, 10), entry(p3, 20)}); err != nil {
		t.Fatal(err)
	}
	if rows := read(); len(rows) != 3 || rows[2].Name != "p3" || rows[2].Priority != 20 {
		t.Fatalf("inheritance %+v", rows)
	}
	// Only the new link sent: the others stay (clear defaults to false).
	_, err := c.Call(ctx, "setInheritanceData", child, []any{map[string]any{"parent_id": p3, "delete link": true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, "setInheritanceData", child, []any{entry(p3, 30)}); err != nil {
		t.Fatal(err)
	}
	if rows := read(); len(rows) != 3 || rows[2].Name != "p3" || rows[2].Priority != 30 {
		t.Fatalf("inheritance %+v", rows)
	}
	_, err = c.Call(ctx, "setInheritanceData", child, []any{entry(p3, 10)})
	wantFault(t, err, koji.GenericError, "Multiple parent tags (["+strconv.Itoa(p2)+", "+strconv.Itoa(p3)+
		"]) cannot have the same priority value (10) on child tag "+strconv.Itoa(child))
	_, err = c.Call(ctx, "setInheritanceData", child, []any{entry(999, 40)})
	wantFault(t, err, koji.GenericError, "No such tagInfo: 999")
	_, err = c.Call(ctx, "setInheritanceData", child, []any{map[string]any{"parent_id": 999}})
	wantFault(t, err, koji.GenericError, "No value for priority") // fields are checked before the parent
	if rows := read(); len(rows) != 3 || rows[2].Priority != 30 {
		t.Fatalf("a refused write changed the inheritance: %+v", rows)
	}
	// Koji 1.35 does not refuse a tag inheriting from itself.
	if _, err := c.Call(ctx, "setInheritanceData", child, []any{entry(child, 50)}); err != nil {
		t.Fatal(err)
	}
	if rows := read(); len(rows) != 4 || rows[3].Name != "child" {
		t.Fatalf("inheritance %+v", rows)
	}
}
