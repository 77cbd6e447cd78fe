package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/state"
)

// strictServer serves b's API (behind LimitStreams) on a server whose read
// and write timeouts are timeout, as rida serve sets them (shorter).
func strictServer(t *testing.T, b *bundle, timeout time.Duration, maxStreams, perClient int) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(api.LimitStreams(b.srv, maxStreams, perClient))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = timeout, timeout
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func (b *bundle) record(t *testing.T, repo string, msg string) uint64 {
	t.Helper()
	id, err := b.store.RecordDelivery(context.Background(), &state.Delivery{Forge: "github", Event: "push", Repo: repo, Ref: "refs/heads/main",
		Before: strings.Repeat("1", 40), After: strings.Repeat("2", 40), Commits: []state.Commit{{ID: strings.Repeat("2", 40), Message: msg}}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestBackup_OutlivesWriteTimeout: a backup read slowly, for more than
// twice the server's write timeout, arrives whole (its Content-Length) and
// opens as a valid store.
func TestBackup_OutlivesWriteTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 240 {
		b.record(t, fmt.Sprintf("a/r%d", i), strings.Repeat("x", 64<<10))
	}
	// A write may wait for the kernel to drain a good part of the socket
	// buffer (megabytes) before it proceeds, so the timeout is 1s and the
	// client reads ~6 MB/s: each write waits well under 1s, the whole
	// download takes more than twice the timeout.
	srv := strictServer(t, b, time.Second, 0, 0)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/backup", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	size, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if resp.StatusCode != http.StatusOK || err != nil || size < 12<<20 {
		t.Fatalf("backup: %d, Content-Length %q", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := resp.Body.Read(buf)
		f.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d of %d bytes and %s: %v", n, size, time.Since(start), err)
		}
		time.Sleep(40 * time.Millisecond)
	}
	f.Close()
	took := time.Since(start)
	if n != size || took < 2*time.Second {
		t.Fatalf("read %d of %d bytes in %s; the test wants a read slower than 2s", n, size, took)
	}
	restored, err := state.Open(out, state.Options{})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer restored.Close()
	if err := restored.Check(); err != nil {
		t.Fatal(err)
	}
	if d, err := restored.Delivery(context.Background(), 240); err != nil || d.Repo != "a/r239" {
		t.Fatalf("restored delivery 240: %+v %v", d, err)
	}
}

// TestEvents_StreamOutlivesTimeoutsAndIsCapped: an event stream open for
// longer than the server's read and write timeouts still delivers new
// events; a client gets at most perClient streams (429 after), everyone
// together at most maxStreams (503 after), each refusal with Retry-After;
// JSON pages of the event log are not counted.
func TestEvents_StreamOutlivesTimeoutsAndIsCapped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv := strictServer(t, b, 300*time.Millisecond, 3, 2)
	open := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/events", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	first := open()
	if first.StatusCode != http.StatusOK {
		t.Fatalf("first stream: %d", first.StatusCode)
	}
	if r := open(); r.StatusCode != http.StatusOK {
		t.Fatalf("second stream: %d", r.StatusCode)
	}
	if r := open(); r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream of one client: %d, Retry-After %q; want 429 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	// A JSON page is not a stream.
	if r := b.getFrom(t, srv.URL+"/api/v1/events"); r != http.StatusOK {
		t.Fatalf("JSON page while the client has two streams: %d", r)
	}

	time.Sleep(time.Second) // past both timeouts
	id := b.record(t, "a/late", "late")
	lines := bufio.NewScanner(first.Body)
	got := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), "data: ") && strings.Contains(lines.Text(), fmt.Sprintf(`"delivery %d"`, id)) ||
				strings.Contains(lines.Text(), "a/late") {
				got <- lines.Text()
				return
			}
		}
		got <- "stream ended: " + fmt.Sprint(lines.Err())
	}()
	select {
	case l := <-got:
		if strings.HasPrefix(l, "stream ended") {
			t.Fatalf("the stream ended before the new event: %s", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for the new delivery within 5s")
	}
}

func (b *bundle) getFrom(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
