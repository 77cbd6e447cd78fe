package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rida-build/rida/state"
)

// Error is an answer the API chose: Status and a Message that says exactly
// which field, parameter or rule failed.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// fail is the API's one error→HTTP mapping:
//
//	*Error                  → its status and message
//	state.ErrNotFound       → 404 "No such <kind> found: <key>"
//	*state.ValidationError  → 400 "<field>: <reason>"
//	context canceled        → 503 (the client went away or rida is stopping)
//	anything else           → 500; the error is logged, not shown
//
// HTML pages get the same status with a short HTML body; everything else gets
// MBS's JSON {"status", "error", "message"}.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := s.classify(r, err)
	if wantsHTML(r) {
		s.web.renderError(w, status, msg)
		return
	}
	writeJSON(w, status, map[string]any{"status": status, "error": http.StatusText(status), "message": msg})
}

func (s *Server) classify(r *http.Request, err error) (int, string) {
	var (
		ae *Error
		nf *state.NotFoundError
		ve *state.ValidationError
	)
	switch {
	case errors.As(err, &ae):
		return ae.Status, ae.Message
	case errors.As(err, &nf):
		return http.StatusNotFound, fmt.Sprintf("No such %s found: %s", nf.Kind, nf.Key)
	case errors.Is(err, state.ErrNotFound):
		return http.StatusNotFound, "not found"
	case errors.As(err, &ve):
		return http.StatusBadRequest, ve.Field + ": " + ve.Reason
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "the request was interrupted; try again"
	}
	s.opts.Logger.Error("api: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, "rida failed to answer this request; see rida's log"
}

// wantsHTML reports whether r is for a web page (not an API path).
func wantsHTML(r *http.Request) bool {
	p := r.URL.Path
	if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/module-build-service/") {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html") || p == "/" || strings.HasPrefix(p, "/builds") || strings.HasPrefix(p, "/deliveries")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"status": 500, "error": "Internal Server Error", "message": "rida failed to encode its answer"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(secondsOnly(buf.Bytes()))
}

// jsonTime matches a JSON string that is exactly an RFC 3339 time, as
// encoding/json writes time.Time (nanoseconds and a zone offset included).
var jsonTime = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)"`)

// secondsOnly rewrites every time in an encoded JSON answer to Zulu ISO
// 8601 in whole seconds (2026-03-01T12:00:00Z), as docs/api.md promises:
// records such as deliveries, requests and components carry time.Time
// fields that encoding/json would write with nanoseconds.
func secondsOnly(data []byte) []byte {
	return jsonTime.ReplaceAllFunc(data, func(m []byte) []byte {
		t, err := time.Parse(time.RFC3339Nano, string(m[1:len(m)-1]))
		if err != nil {
			return m
		}
		return []byte(`"` + t.UTC().Format("2006-01-02T15:04:05Z") + `"`)
	})
}

// nilIfZero is nil for 0, so JSON shows null for "none".
func nilIfZero(n uint64) any {
	if n == 0 {
		return nil
	}
	return n
}

// pathID parses the {id} path value.
func pathID(r *http.Request) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		return 0, errorf(http.StatusBadRequest, "id %q is not a positive integer", r.PathValue("id"))
	}
	return id, nil
}

// decodeBody decodes a JSON object body (at most 1 MiB) into a map, so
// callers can reject unknown keys by name.
func decodeBody(r *http.Request) (map[string]json.RawMessage, error) {
	var body map[string]json.RawMessage
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if err := dec.Decode(&body); err != nil {
		return nil, errorf(http.StatusBadRequest, "the body must be a JSON object: %v", err)
	}
	if body == nil {
		return nil, errorf(http.StatusBadRequest, "the body must be a JSON object, got null")
	}
	return body, nil
}

// unknownKeys returns 400 "The request contains unspecified parameters: ..."
// (MBS's wording) when body has a key not in allowed.
func unknownKeys(body map[string]json.RawMessage, allowed ...string) error {
	var bad []string
	for k := range body {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
			}
		}
		if !ok {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return errorf(http.StatusBadRequest, "The request contains unspecified parameters: %s", strings.Join(bad, ", "))
	}
	return nil
}

// stringField decodes body[key] as a string ("" when absent).
func stringField(body map[string]json.RawMessage, key string) (string, error) {
	raw, ok := body[key]
	if !ok {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", errorf(http.StatusBadRequest, "%s must be a string", key)
	}
	return v, nil
}

// uintField decodes body[key] as a positive integer (0 when absent).
func uintField(body map[string]json.RawMessage, key string) (uint64, error) {
	raw, ok := body[key]
	if !ok {
		return 0, nil
	}
	var v uint64
	if err := json.Unmarshal(raw, &v); err != nil || v == 0 {
		return 0, errorf(http.StatusBadRequest, "%s must be a positive integer", key)
	}
	return v, nil
}

// buildFromPath loads the module build named by the request's {id}; on a
// bad id or a store error it has already answered and returns false.
func (s *Server) buildFromPath(w http.ResponseWriter, r *http.Request) (*state.ModuleBuild, bool) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	mb, err := s.opts.Store.GetModuleBuild(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return mb, true
}
