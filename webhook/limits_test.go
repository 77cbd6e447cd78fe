package webhook

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// slowSender opens a connection to srv and sends a signed GitHub push's
// headers with a Content-Length of n, then one byte of body: it holds a
// receiver slot while it does not send the rest.
func slowSender(t *testing.T, srv *httptest.Server, n int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /webhooks/github HTTP/1.1\r\nHost: rida\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: slow\r\n"+
		"X-Hub-Signature-256: sha256=%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", strings.Repeat("0", 64), n)
	return c
}

// TestReceiver_Limits: requests beyond MaxConcurrent get 503 with
// Retry-After after SlotWait, while the slots are held by senders that
// stall; a stalled sender gets 408 after BodyTimeout, which frees its
// slot.
func TestReceiver_Limits(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	rc, err := NewReceiver(ReceiverOptions{Store: store, Forges: allForges(testSecret), MaxBody: testMaxBody,
		MaxConcurrent: 2, SlotWait: 300 * time.Millisecond, BodyTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	start := time.Now()
	a := slowSender(t, srv, 1000)
	slowSender(t, srv, 1000)

	body := fixture(t, GitHub, "push.json")
	post := func() *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/github", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", "fast")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(testSecret, body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// Once both senders hold their slots (on a loaded machine they may
	// need a moment to get past the header checks), a third request is
	// refused once it waited SlotWait.
	for wait := time.Now().Add(5 * time.Second); ; {
		t0 := time.Now()
		resp := post()
		d := time.Since(t0)
		if resp.StatusCode == http.StatusServiceUnavailable {
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			if d < 300*time.Millisecond || d > time.Second {
				t.Fatalf("the 503 took %s, want it after SlotWait (300ms)", d)
			}
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("third request: %d, want 503 while both slots are held", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The stalled senders are answered 408 once their body deadline
	// passes, and the slots are free again.
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(a), nil)
	if err != nil {
		t.Fatalf("stalled sender: %v", err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled sender got %d, want 408", r.StatusCode)
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("stalled sender answered after %s, before the body timeout", d)
	}
	// The slots are released as the handlers return, just after the
	// answers: allow a moment.
	for wait := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp := post()
		if resp.StatusCode == http.StatusAccepted {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("after the timeouts: %d, want 202", resp.StatusCode)
		}
	}
}

// TestReceiver_WaitsForASlot: a request beyond MaxConcurrent waits for a
// slot (up to SlotWait) instead of being refused: it is recorded (202)
// once the request holding the only slot ends.
func TestReceiver_WaitsForASlot(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	rc, err := NewReceiver(ReceiverOptions{Store: store, Forges: allForges(testSecret), MaxBody: testMaxBody,
		MaxConcurrent: 1, SlotWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	const n = 1000
	holder := slowSender(t, srv, n)
	time.Sleep(200 * time.Millisecond) // the holder takes the slot
	body := fixture(t, GitHub, "push.json")
	type answer struct {
		code int
		took time.Duration
	}
	done := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/github", strings.NewReader(string(body)))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", "waits")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(testSecret, body))
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- answer{code: -1}
			return
		}
		resp.Body.Close()
		done <- answer{resp.StatusCode, time.Since(t0)}
	}()
	select {
	case a := <-done:
		t.Fatalf("answered %d while the only slot was held", a.code)
	case <-time.After(500 * time.Millisecond):
	}
	// The holder sends the rest of its (badly signed) body: it is
	// answered and frees the slot.
	if _, err := holder.Write([]byte(strings.Repeat(" ", n-2) + "}")); err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.code != http.StatusAccepted || a.took < 500*time.Millisecond {
		t.Fatalf("waiting request: %d after %s, want 202 after the holder ended", a.code, a.took)
	}
}
