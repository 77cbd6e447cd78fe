package api

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
)

// Stream limit defaults (config http.max_streams, http.max_streams_per_client).
const (
	DefaultMaxStreams          = 64
	DefaultMaxStreamsPerClient = 4
)

// LimitStreams bounds the Server-Sent Events streams of GET /api/v1/events
// (requests accepting text/event-stream) that next serves: at most max at
// once (more get 503 with Retry-After) and at most perClient from one
// client address (more get 429 with Retry-After). Other requests pass
// through untouched. max or perClient 0 means its default. Behind a reverse
// proxy every client has the proxy's address: the per-client cap then
// bounds the proxy's streams.
func LimitStreams(next http.Handler, max, perClient int) http.Handler {
	if max <= 0 {
		max = DefaultMaxStreams
	}
	if perClient <= 0 {
		perClient = DefaultMaxStreamsPerClient
	}
	return &streamLimiter{next: next, slots: make(chan struct{}, max), perClient: perClient, byClient: map[string]int{}}
}

type streamLimiter struct {
	next      http.Handler
	slots     chan struct{}
	perClient int

	mu       sync.Mutex
	byClient map[string]int
}

func (l *streamLimiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/events" || !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		l.next.ServeHTTP(w, r)
		return
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	l.mu.Lock()
	if l.byClient[client] >= l.perClient {
		l.mu.Unlock()
		limitError(w, http.StatusTooManyRequests, fmt.Sprintf("this client has too many event streams open (at most %d); close one or retry later", l.perClient))
		return
	}
	l.byClient[client]++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		if l.byClient[client]--; l.byClient[client] <= 0 {
			delete(l.byClient, client)
		}
		l.mu.Unlock()
	}()
	select {
	case l.slots <- struct{}{}:
		defer func() { <-l.slots }()
	default:
		limitError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many event streams open (at most %d); retry later", cap(l.slots)))
		return
	}
	l.next.ServeHTTP(w, r)
}

// limitError answers a refused stream in the API's error shape, with
// Retry-After.
func limitError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Retry-After", streamRetryAfter)
	writeJSON(w, status, map[string]any{"status": status, "error": http.StatusText(status), "message": msg})
}

// streamRetryAfter is the Retry-After (seconds) of a refused stream.
const streamRetryAfter = "10"
