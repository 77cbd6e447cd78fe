package api

import (
	"cmp"
	"net/http"
	"time"
)

// defaultStreamIdle is how long a stream waits for the client to take a
// write when the server has no WriteTimeout to go by.
const defaultStreamIdle = time.Minute

// streamIdle is how long a long response (a download, the event stream)
// may wait for the client to take one write: the server's WriteTimeout
// (config http.write_timeout), else defaultStreamIdle; 0 when the server
// sets neither a read nor a write timeout.
func streamIdle(r *http.Request) time.Duration {
	hs, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return defaultStreamIdle
	}
	if hs.WriteTimeout <= 0 && hs.ReadTimeout <= 0 {
		return 0
	}
	return cmp.Or(max(hs.WriteTimeout, 0), defaultStreamIdle)
}

// progressWriter lets a response outlive the server's read and write
// timeouts as long as the client keeps reading, through
// http.ResponseController: the read deadline is cleared (the request is
// read; its expiry would cancel the request's context while the response
// is still being sent), and before every write the write deadline moves
// to idle from now. A client that stops reading is cut off after idle;
// one that reads slowly but steadily is not.
type progressWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
}

// streaming wraps w in a progressWriter for r's server. Call it once the
// request's body, if any, has been read.
func streaming(w http.ResponseWriter, r *http.Request) *progressWriter {
	p := &progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), idle: streamIdle(r)}
	if p.idle > 0 {
		// Errors (a writer that cannot set deadlines) leave the server's
		// deadlines in place.
		_ = p.rc.SetReadDeadline(time.Time{})
	}
	p.extend()
	return p
}

// extend moves the write deadline to idle from now; without server
// deadlines it does nothing.
func (p *progressWriter) extend() {
	if p.idle > 0 {
		_ = p.rc.SetWriteDeadline(time.Now().Add(p.idle))
	}
}

// Write extends the write deadline, then writes.
func (p *progressWriter) Write(b []byte) (int, error) {
	p.extend()
	return p.ResponseWriter.Write(b)
}

// Flush extends the write deadline, then flushes.
func (p *progressWriter) Flush() {
	p.extend()
	_ = p.rc.Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (p *progressWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }
