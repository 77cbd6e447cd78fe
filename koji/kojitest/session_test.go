package kojitest_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/rida-build/rida/koji"
	"github.com/rida-build/rida/koji/internal/wire"
	"github.com/rida-build/rida/koji/kojitest"
)

// call sends one request with explicit session headers (sid 0: none) and
// returns the answer or the fault.
func call(t *testing.T, url string, sid int64, key string, callnum int, method string, args ...any) (any, *wire.Fault) {
	t.Helper()
	body, err := wire.EncodeCall(method, args)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if sid != 0 {
		req.Header.Set("Koji-Session-Id", strconv.FormatInt(sid, 10))
		req.Header.Set("Koji-Session-Key", key)
		req.Header.Set("Koji-Session-Callnum", strconv.Itoa(callnum))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	v, f, err := wire.DecodeResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	return v, f
}

// sessionOf makes a login or subsession call and reads its answer.
func sessionOf(t *testing.T, url string, sid int64, key string, callnum int, method string, args ...any) (int64, string) {
	t.Helper()
	v, f := call(t, url, sid, key, callnum, method, args...)
	if f != nil {
		t.Fatalf("fault %d %s", f.Code, f.String)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("answer %#v", v)
	}
	if m["header-auth"] != true {
		t.Errorf("header-auth: %#v", m["header-auth"])
	}
	return m["session-id"].(int64), m["session-key"].(string)
}

func wantWireFault(t *testing.T, f *wire.Fault, code int, msg string) {
	t.Helper()
	if f == nil || f.Code != code || f.String != msg {
		t.Fatalf("want fault %d %q, got %+v", code, msg, f)
	}
}

// Subsessions as kojihub/auth.py has them: a new id and key for the same
// user, tied to the master; logoutChild closes one child of the caller;
// logout of the master closes its children; expiry of the master expires
// them; a closed session is "Invalid session", an expired one AuthExpired
// (for everything but the login methods).
func TestHub_Subsessions(t *testing.T) {
	h, _ := setup(t, kojitest.Options{})
	_, f := call(t, h.URL, 0, "", 0, "subsession")
	wantWireFault(t, f, koji.AuthError, "Not logged in")
	_, f = call(t, h.URL, 0, "", 0, "logoutChild", 1)
	wantWireFault(t, f, koji.AuthError, "Not logged in")

	mid, mkey := sessionOf(t, h.URL, 0, "", 0, "login", "kojiadmin", "kojipass")
	c1, k1 := sessionOf(t, h.URL, mid, mkey, 0, "subsession")
	c2, k2 := sessionOf(t, h.URL, mid, mkey, 1, "subsession")
	if c1 == mid || c2 == c1 || k1 == mkey || k1 == k2 {
		t.Fatalf("subsessions %d, %d of %d share an id or key", c1, c2, mid)
	}
	// A child's callnum is its own: 0 after the master's 1.
	if _, f := call(t, h.URL, c1, k1, 0, "createTag", "a"); f != nil {
		t.Fatalf("child's first write: %v", f)
	}
	u, f := call(t, h.URL, c1, k1, 1, "getLoggedInUser")
	if f != nil || u.(map[string]any)["name"] != "kojiadmin" {
		t.Fatalf("child's user: %v %v", u, f)
	}
	// A subsession of a subsession hangs on the master.
	c3, _ := sessionOf(t, h.URL, c1, k1, 2, "subsession")
	want := map[int64]int64{mid: 0, c1: mid, c2: mid, c3: mid}
	for _, s := range h.Sessions() {
		if m, ok := want[s.ID]; !ok || s.Master != m || s.User != "kojiadmin" || s.Closed {
			t.Errorf("session %+v, want master %d (known %v)", s, m, ok)
		}
	}

	// logoutChild answers None, closes only a child of the caller.
	if v, f := call(t, h.URL, c2, k2, 0, "logoutChild", c1); f != nil || v != nil {
		t.Fatalf("logoutChild by a sibling: %v %v", v, f)
	}
	if _, f := call(t, h.URL, c1, k1, 3, "getTag", "a"); f != nil {
		t.Fatalf("a sibling's logoutChild closed c1: %v", f)
	}
	if v, f := call(t, h.URL, mid, mkey, 2, "logoutChild", c1); f != nil || v != nil {
		t.Fatalf("logoutChild: %v %v", v, f)
	}
	_, f = call(t, h.URL, c1, k1, 4, "getTag", "a")
	wantWireFault(t, f, koji.AuthError, "Invalid session or bad credentials")
	if _, f := call(t, h.URL, mid, mkey, 3, "logoutChild", 99999); f != nil {
		t.Fatalf("logoutChild of no session: %v", f)
	}

	// Expiry of the master expires its children; login still answers.
	h.ExpireSession(mid)
	_, f = call(t, h.URL, c2, k2, 1, "getTag", "a")
	wantWireFault(t, f, koji.AuthExpired, `session "`+strconv.FormatInt(c2, 10)+`" has expired`)
	_, f = call(t, h.URL, mid, mkey, 4, "getKojiVersion")
	wantWireFault(t, f, koji.AuthExpired, `session "`+strconv.FormatInt(mid, 10)+`" has expired`)
	if _, f := call(t, h.URL, mid, mkey, 5, "login", "kojiadmin", "kojipass"); f != nil {
		t.Fatalf("login on an expired session: %v", f)
	}

	// logout of a master closes its children.
	m2, mk2 := sessionOf(t, h.URL, 0, "", 0, "login", "kojiadmin", "kojipass")
	c4, k4 := sessionOf(t, h.URL, m2, mk2, 0, "subsession")
	if _, f := call(t, h.URL, m2, mk2, 1, "logout"); f != nil {
		t.Fatal(f)
	}
	_, f = call(t, h.URL, c4, k4, 0, "getTag", "a")
	wantWireFault(t, f, koji.AuthError, "Invalid session or bad credentials")
}

// Hold stalls the matching requests only: others are answered meanwhile,
// and the held one is answered once released.
func TestHub_HoldStallsOnlyMatchingRequests(t *testing.T) {
	h, _ := setup(t, kojitest.Options{})
	held, release := h.Hold(func(c kojitest.Call) bool {
		return c.Method == "getTag" && len(c.Args) == 1 && c.Args[0] == "slow"
	})
	done := make(chan *wire.Fault, 1)
	go func() {
		_, f := call(t, h.URL, 0, "", 0, "getTag", "slow")
		done <- f
	}()
	var got kojitest.Call
	select {
	case got = <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the request was not held")
	}
	if got.Method != "getTag" || got.Args[0] != "slow" {
		t.Fatalf("held %+v", got)
	}
	for range 3 {
		if v, f := call(t, h.URL, 0, "", 0, "getTag", "fast"); f != nil || v != nil {
			t.Fatalf("an unmatched request while one is held: %v %v", v, f)
		}
	}
	select {
	case <-done:
		t.Fatal("the held request was answered before release")
	default:
	}
	release()
	select {
	case f := <-done:
		if f != nil {
			t.Fatal(f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held request was not answered after release")
	}
	// A multiCall is matched by the calls it carries.
	held, release = h.Hold(func(c kojitest.Call) bool { return len(c.Sub) == 1 && c.Sub[0].Method == "getTag" })
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c, err := koji.NewClient(koji.ClientOptions{HubURL: h.URL, Retry: koji.RetryOptions{Attempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.MultiCall(ctx, []koji.MultiCallEntry{{Method: "getTag", Args: []any{"x"}}}); err == nil {
		t.Fatal("a held multiCall was answered")
	}
	if c := <-held; c.Method != "multiCall" || c.Sub[0].Args[0] != "x" {
		t.Fatalf("held %+v", c)
	}
}
