package koji

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rida-build/rida/koji/internal/wire"
)

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "wire", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var betweenTags = regexp.MustCompile(`>\s+<`)

// compact removes the whitespace the hub puts between elements.
func compact(b []byte) string {
	return strings.TrimSpace(betweenTags.ReplaceAllString(string(b), "><"))
}

// recordedCalls are the recorded requests and the Go arguments that must
// produce them: the same values, as the hub decodes them (kolo/xmlrpc
// writes another declaration, no whitespace and members in map order).
var recordedCalls = []struct {
	file   string
	method string
	args   []any
}{
	{"01-login", "login", []any{"kojiadmin", "<PASSWORD>", KW{"opts": nil}}},
	{"02-createTag", "createTag", []any{"f99"}},
	{"03-createTag-kw", "createTag", []any{"f99-build", KW{"arches": "x86_64"}}},
	{"04-editTag2", "editTag2", []any{"f99-build", KW{"extra": map[string]any{"mock.package_manager": "dnf", "rpm.macro.dist": ".fc99"}}}},
	{"05-getTag", "getTag", []any{"f99-build"}},
	{"06-setInheritanceData", "setInheritanceData", []any{"f99-build", []any{map[string]any{
		"parent_id": 1, "priority": 0, "maxdepth": nil, "intransitive": false, "noconfig": false, "pkg_filter": ""}}}},
	{"07-groupListAdd", "groupListAdd", []any{"f99-build", "build"}},
	{"08-groupPackageListAdd", "groupPackageListAdd", []any{"f99-build", "build", "bash"}},
	{"09-packageListAdd", "packageListAdd", []any{"f99", "testpkg", KW{"owner": "kojiadmin"}}},
	{"10-createBuildTarget", "createBuildTarget", []any{"f99-candidate", "f99-build", "f99"}},
	{"11-build", "build", []any{"git+https://src.example.com/rpms/testpkg.git#0123abc", "f99-candidate", map[string]any{"scratch": false}}},
	{"12-getTaskInfo", "getTaskInfo", []any{1, KW{"request": true}}},
	{"13-listTasks", "listTasks", []any{KW{"opts": map[string]any{"method": "build", "decode": true}, "queryOpts": map[string]any{"order": "-id", "limit": 5}}}},
	{"14-cancelTask", "cancelTask", []any{1}},
	{"15-newRepo", "newRepo", []any{"f99-build"}},
	{"16-multiCall", "multiCall", []any{[]any{
		map[string]any{"methodName": "getTag", "params": []any{"f99-build"}},
		map[string]any{"methodName": "getTag", "params": []any{"no-such-tag", KW{"strict": true}}},
	}}},
	{"17-unknownMethod", "noSuchMethod", nil},
	{"18-tooManyArgs", "getTag", []any{"f99-build", 1, 2, 3, 4}},
}

func TestWire_EncodeCall_MatchesRecordedRequests(t *testing.T) {
	for _, tc := range recordedCalls {
		t.Run(tc.file, func(t *testing.T) {
			want := mustRead(t, tc.file+".request.xml")
			got, err := wire.EncodeCall(tc.method, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			gm, gp, err := wire.DecodeCall(got)
			if err != nil {
				t.Fatal(err)
			}
			wm, wp, err := wire.DecodeCall(want)
			if err != nil {
				t.Fatal(err)
			}
			if gm != wm || !reflect.DeepEqual(gp, wp) {
				t.Errorf("decoded differ\n got: %s %#v\nwant: %s %#v", gm, gp, wm, wp)
			}
		})
	}
}

func TestWire_NilIsSentAsNilElement(t *testing.T) {
	var nilPtr *int
	var nilMap map[string]any
	got, err := wire.EncodeCall("echo", []any{nil, nilPtr, map[string]any{"maxdepth": nil}, nilMap})
	if err != nil {
		t.Fatal(err)
	}
	s := compact(got)
	if strings.Contains(s, "<value/>") || strings.Contains(s, "<param></param>") {
		t.Fatalf("empty value sent (the hub reads it as \"\"): %s", s)
	}
	if n := strings.Count(s, "<nil/>"); n != 3 {
		t.Errorf("want 3 <nil/>, got %d in %s", n, s)
	}
	_, params, err := wire.DecodeCall(got)
	if err != nil {
		t.Fatal(err)
	}
	if params[0] != nil || params[1] != nil || params[2].(map[string]any)["maxdepth"] != nil {
		t.Errorf("decoded %#v", params)
	}
}

// Integers travel as <int> whatever their size (kolo has no <i8>; Python's
// xmlrpc.client reads <int> with int(), unbounded) and come back as the
// same int64; the hub's <i8> is read too.
func TestWire_LargeIntsTravel(t *testing.T) {
	got, err := wire.EncodeCall("echo", []any{int64(1) << 40, 7, uint32(1) << 31})
	if err != nil {
		t.Fatal(err)
	}
	s := compact(got)
	for _, want := range []string{"<int>1099511627776</int>", "<int>7</int>", "<int>2147483648</int>"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %s in %s", want, s)
		}
	}
	_, params, err := wire.DecodeCall(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{int64(1) << 40, int64(7), int64(1) << 31}; !reflect.DeepEqual(params, want) {
		t.Errorf("decoded %#v, want %#v", params, want)
	}
}

func TestWire_DecodeRecordedResponses(t *testing.T) {
	t.Run("getTaskInfo nil double int", func(t *testing.T) {
		v, f, err := wire.DecodeResponse(mustRead(t, "12-getTaskInfo.response.xml"))
		if err != nil || f != nil {
			t.Fatal(err, f)
		}
		m := v.(map[string]any)
		if m["host_id"] != nil || m["completion_ts"] != nil || m["parent"] != nil {
			t.Errorf("nil members: %#v", m)
		}
		if m["create_ts"] != 1795422936.334881 || m["weight"] != 1.0 {
			t.Errorf("doubles: %#v %#v", m["create_ts"], m["weight"])
		}
		if m["id"] != int64(1) || m["state"] != int64(0) {
			t.Errorf("ints: %#v %#v", m["id"], m["state"])
		}
		req := m["request"].([]any)
		if req[0] != "git+https://src.example.com/rpms/testpkg.git#0123abc" || req[2].(map[string]any)["scratch"] != false {
			t.Errorf("request: %#v", req)
		}
		// Typed decode: nil leaves pointers nil, doubles are float64.
		var ti struct {
			HostID   *int     `json:"host_id"`
			CreateTS float64  `json:"create_ts"`
			StartTS  *float64 `json:"start_ts"`
			Weight   float64  `json:"weight"`
			State    int      `json:"state"`
		}
		if err := (Value{v}).Decode(&ti); err != nil {
			t.Fatal(err)
		}
		if ti.HostID != nil || ti.StartTS != nil || ti.CreateTS != 1795422936.334881 || ti.Weight != 1 {
			t.Errorf("typed decode: %+v", ti)
		}
	})
	t.Run("i8, nil and empty strings", func(t *testing.T) {
		// As Python's marshaller writes them: "" is <string></string>,
		// which kolo alone would read as nil.
		body := "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n<value><i8>1099511627776</i8></value>\n<value><nil/></value>\n<value><string></string></value>\n<value><struct>\n<member>\n<name>pkg_filter</name>\n<value><string></string></value>\n</member>\n<member>\n<name>maxdepth</name>\n<value><nil/></value></member>\n</struct></value>\n<value><array><data>\n</data></array></value>\n<value><struct>\n</struct></value>\n</data></array></value>\n</param>\n</params>\n</methodResponse>\n"
		v, _, err := wire.DecodeResponse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		want := []any{int64(1) << 40, nil, "", map[string]any{"pkg_filter": "", "maxdepth": nil}, []any{}, map[string]any{}}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("got %#v want %#v", v, want)
		}
	})
	t.Run("faults", func(t *testing.T) {
		for file, want := range map[string]wire.Fault{
			"17-unknownMethod.response.xml": {Code: 1000, String: "Invalid method: noSuchMethod"},
			"18-tooManyArgs.response.xml":   {Code: 1019, String: "get_tag() takes from 1 to 4 positional arguments but 5 were given"},
		} {
			_, f, err := wire.DecodeResponse(mustRead(t, file))
			if err != nil || f == nil || f.Code != want.Code || f.String != want.String {
				t.Errorf("%s: %v %+v", file, err, f)
			}
		}
	})
}

// replayHub answers each request with the next canned body and records
// requests with their headers.
type replayHub struct {
	mu       sync.Mutex
	answers  []func(w http.ResponseWriter)
	requests []*http.Request
	bodies   [][]byte
}

func (rh *replayHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rh.mu.Lock()
	rh.requests = append(rh.requests, r)
	rh.bodies = append(rh.bodies, body)
	var a func(http.ResponseWriter)
	if len(rh.answers) > 0 {
		a, rh.answers = rh.answers[0], rh.answers[1:]
	}
	rh.mu.Unlock()
	if a == nil {
		http.Error(w, "no more answers", http.StatusInternalServerError)
		return
	}
	a(w)
}

func xmlAnswer(body []byte) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/xml")
		w.Header().Set("Koji-Version", "1.35.3")
		w.Write(body)
	}
}

func statusAnswer(code int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { http.Error(w, "boom", code) }
}

func newReplay(t *testing.T, answers ...func(http.ResponseWriter)) (*replayHub, *Client) {
	t.Helper()
	rh := &replayHub{answers: answers}
	srv := httptest.NewServer(rh)
	t.Cleanup(srv.Close)
	c, err := NewClient(ClientOptions{HubURL: srv.URL + "/kojihub", Logger: newTextLogger(io.Discard), Retry: RetryOptions{Attempts: 3, Base: time.Millisecond, Max: 2 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return rh, c
}

func TestClient_LoginThenSessionHeadersAndCallnum(t *testing.T) {
	rh, c := newReplay(t,
		xmlAnswer(mustRead(t, "01-login.response.xml")),
		xmlAnswer(mustRead(t, "02-createTag.response.xml")),
		xmlAnswer(mustRead(t, "03-createTag-kw.response.xml")),
		xmlAnswer(mustRead(t, "16-multiCall.response.xml")),
	)
	ctx := context.Background()
	if err := c.Login(ctx, "kojiadmin", "s3cret"); err != nil {
		t.Fatal(err)
	}
	var id int
	if err := c.CallInto(ctx, &id, "createTag", "f99"); err != nil || id != 1 {
		t.Fatalf("createTag: %v %d", err, id)
	}
	if err := c.CallInto(ctx, &id, "createTag", "f99-build", KW{"arches": "x86_64"}); err != nil || id != 2 {
		t.Fatalf("createTag kw: %v %d", err, id)
	}
	res, err := c.MultiCall(ctx, []MultiCallEntry{
		{Method: "getTag", Args: []any{"f99-build"}},
		{Method: "getTag", Args: []any{"no-such-tag", KW{"strict": true}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var tag struct {
		Name  string         `json:"name"`
		Perm  *string        `json:"perm"`
		Extra map[string]any `json:"extra"`
	}
	if err := res[0].Value.Decode(&tag); err != nil || tag.Name != "f99-build" || tag.Perm != nil || tag.Extra["mock.package_manager"] != "dnf" {
		t.Errorf("multicall[0]: %v %+v", err, tag)
	}
	if f := res[1].Fault; f == nil || f.Code != GenericError || f.String != "No such tagInfo: 'no-such-tag'" || len(f.Traceback) != 3 {
		t.Errorf("multicall[1]: %+v", res[1])
	}

	if h := rh.requests[0].Header; h.Get("Koji-Session-Id") != "" || h.Get("Koji-Session-Callnum") != "" {
		t.Errorf("login sent session headers: %v", h)
	}
	if !strings.Contains(string(rh.bodies[0]), "<string>s3cret</string>") {
		t.Errorf("login body: %s", rh.bodies[0])
	}
	for i, wantCallnum := range []string{"0", "1", "2"} {
		h := rh.requests[i+1].Header
		if h.Get("Koji-Session-Id") != "5" || h.Get("Koji-Session-Key") != "1-dIEELKH0s8umEeMeqFa" || h.Get("Koji-Session-Callnum") != wantCallnum {
			t.Errorf("request %d headers: id=%q key=%q callnum=%q", i+1, h.Get("Koji-Session-Id"), h.Get("Koji-Session-Key"), h.Get("Koji-Session-Callnum"))
		}
	}
	// The recorded requests' headers carry the same callnums.
	if hdr := string(mustRead(t, "02-createTag.headers")); !strings.Contains(hdr, "Koji-Session-Callnum: 0") {
		t.Errorf("recorded headers: %s", hdr)
	}
}

func TestClient_FaultIsTypedAndNotRetried(t *testing.T) {
	rh, c := newReplay(t, xmlAnswer(mustRead(t, "18-tooManyArgs.response.xml")), xmlAnswer(mustRead(t, "05-getTag.response.xml")))
	_, err := c.Call(context.Background(), "getTag", "f99-build", 1, 2, 3, 4)
	var f *Fault
	if !errors.As(err, &f) || f.Code != ParameterError {
		t.Fatalf("want ParameterError fault, got %v", err)
	}
	if !IsFault(err, ParameterError) || !errors.Is(err, &Fault{Code: ParameterError}) {
		t.Errorf("IsFault/errors.Is failed for %v", err)
	}
	if len(rh.requests) != 1 {
		t.Errorf("fault was retried: %d requests", len(rh.requests))
	}
}

func TestClient_RetryError1009IsNotRetried(t *testing.T) {
	body := wire.EncodeFault(&wire.Fault{Code: RetryError, String: "unable to retry call 3 (method build) for session 5"})
	rh, c := newReplay(t, xmlAnswer(body), xmlAnswer(body))
	_, err := c.Call(context.Background(), "build", "x", "y")
	if !IsFault(err, RetryError) || len(rh.requests) != 1 {
		t.Fatalf("got %v after %d requests", err, len(rh.requests))
	}
}

func TestClient_5xxRetriedWithNewCallnum(t *testing.T) {
	rh, c := newReplay(t,
		xmlAnswer(mustRead(t, "01-login.response.xml")),
		statusAnswer(http.StatusServiceUnavailable),
		statusAnswer(http.StatusBadGateway),
		xmlAnswer(mustRead(t, "02-createTag.response.xml")),
	)
	ctx := context.Background()
	if err := c.Login(ctx, "kojiadmin", "pw"); err != nil {
		t.Fatal(err)
	}
	var id int
	if err := c.CallInto(ctx, &id, "createTag", "f99"); err != nil || id != 1 {
		t.Fatalf("%v %d", err, id)
	}
	var callnums []string
	for _, r := range rh.requests[1:] {
		callnums = append(callnums, r.Header.Get("Koji-Session-Callnum"))
	}
	if !reflect.DeepEqual(callnums, []string{"0", "1", "2"}) {
		t.Errorf("callnums of attempts: %v", callnums)
	}
}

// A call waiting to retry holds no lock: another call on the same session
// goes through meanwhile, with the next callnum, and the retry after it
// gets a later one.
func TestClient_RetryWaitDoesNotBlockOtherCalls(t *testing.T) {
	rh := &replayHub{answers: []func(http.ResponseWriter){
		xmlAnswer(mustRead(t, "01-login.response.xml")),
		statusAnswer(http.StatusServiceUnavailable),         // A's first attempt
		xmlAnswer(mustRead(t, "05-getTag.response.xml")),    // B
		xmlAnswer(mustRead(t, "02-createTag.response.xml")), // A's retry
	}}
	srv := httptest.NewServer(rh)
	t.Cleanup(srv.Close)
	const wait = 2 * time.Second
	c, err := NewClient(ClientOptions{HubURL: srv.URL + "/kojihub", Logger: newTextLogger(io.Discard),
		Retry: RetryOptions{Attempts: 2, Base: wait, Max: wait}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Login(ctx, "kojiadmin", "pw"); err != nil {
		t.Fatal(err)
	}
	aDone := make(chan error, 1)
	go func() { _, err := c.Call(ctx, "createTag", "f99"); aDone <- err }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		rh.mu.Lock()
		n := len(rh.requests)
		rh.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("A's first attempt never arrived")
		}
	}
	start := time.Now()
	if _, err := c.Call(ctx, "getTag", "f99-build"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > wait/2 {
		t.Errorf("B waited %v behind A's retry wait", took)
	}
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	var callnums []string
	for _, r := range rh.requests[1:] {
		callnums = append(callnums, r.Header.Get("Koji-Session-Callnum"))
	}
	if want := []string{"0", "1", "2"}; !reflect.DeepEqual(callnums, want) {
		t.Errorf("callnums %v, want %v", callnums, want)
	}
}

func TestClient_4xxAndExhaustedRetries(t *testing.T) {
	t.Run("4xx not retried", func(t *testing.T) {
		rh, c := newReplay(t, statusAnswer(http.StatusBadRequest), statusAnswer(http.StatusBadRequest))
		_, err := c.Call(context.Background(), "getTag", "x")
		var he *HTTPError
		var ce *CallError
		if !errors.As(err, &he) || he.StatusCode != 400 || !errors.As(err, &ce) || ce.Attempts != 1 || len(rh.requests) != 1 {
			t.Fatalf("got %v (%d requests)", err, len(rh.requests))
		}
	})
	t.Run("5xx gives up after Attempts", func(t *testing.T) {
		rh, c := newReplay(t, statusAnswer(500), statusAnswer(500), statusAnswer(500), statusAnswer(500))
		_, err := c.Call(context.Background(), "getTag", "x")
		var ce *CallError
		if !errors.As(err, &ce) || ce.Attempts != 3 || len(rh.requests) != 3 {
			t.Fatalf("got %v (%d requests)", err, len(rh.requests))
		}
	})
	t.Run("transport error retried", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c, _ := NewClient(ClientOptions{HubURL: url + "/kojihub", Retry: RetryOptions{Attempts: 2, Base: time.Millisecond}})
		_, err := c.Call(context.Background(), "getTag", "x")
		var ce *CallError
		if !errors.As(err, &ce) || ce.Attempts != 2 {
			t.Fatalf("got %v", err)
		}
	})
}

func TestClient_LogsNoCredentials(t *testing.T) {
	var logs strings.Builder
	rh := &replayHub{answers: []func(http.ResponseWriter){
		xmlAnswer(mustRead(t, "01-login.response.xml")), statusAnswer(503), xmlAnswer(mustRead(t, "02-createTag.response.xml")),
	}}
	srv := httptest.NewServer(rh)
	defer srv.Close()
	c, _ := NewClient(ClientOptions{HubURL: srv.URL + "/kojihub", Logger: newTextLogger(&logs), Retry: RetryOptions{Base: time.Millisecond}})
	if err := c.Login(context.Background(), "kojiadmin", "hunter2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), "createTag", "f99"); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "dIEELKH0s8umEeMeqFa"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log contains %q:\n%s", secret, logs.String())
		}
	}
}

func TestNewClient_Validates(t *testing.T) {
	for _, u := range []string{"", "koji.example.com/kojihub", "ftp://x/kojihub"} {
		if _, err := NewClient(ClientOptions{HubURL: u}); !errors.Is(err, ErrHubURL) {
			t.Errorf("%q: got %v", u, err)
		}
	}
}

func TestClient_SSLLoginPostsToSSLLoginEndpoint(t *testing.T) {
	rh, c := newReplay(t, xmlAnswer(mustRead(t, "01-login.response.xml")), xmlAnswer(mustRead(t, "05-getTag.response.xml")))
	if err := c.SSLLogin(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), "getTag", "f99-build"); err != nil {
		t.Fatal(err)
	}
	if p := rh.requests[0].URL.Path; p != "/kojihub/ssllogin" || !strings.Contains(string(rh.bodies[0]), "<methodName>sslLogin</methodName>") {
		t.Errorf("sslLogin went to %s: %s", p, rh.bodies[0])
	}
	if p, h := rh.requests[1].URL.Path, rh.requests[1].Header; p != "/kojihub" || h.Get("Koji-Session-Callnum") != "0" || h.Get("Koji-Session-Id") != "5" {
		t.Errorf("after sslLogin: %s %v", p, h)
	}
}
