package webhook

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Code classifies a request failure; ErrorStatus maps it to an HTTP status.
// This table is the only place that decides status codes (the api package
// mirrors it).
type Code string

const (
	CodeInvalid              Code = "invalid"                // 400: a header or the payload is malformed or missing
	CodeUnauthorized         Code = "unauthorized"           // 401: signature/token missing or wrong
	CodeNotFound             Code = "not_found"              // 404: unknown path or forge not enabled
	CodeMethodNotAllowed     Code = "method_not_allowed"     // 405: not POST
	CodeTooLarge             Code = "too_large"              // 413: body over MaxBody
	CodeUnsupportedMediaType Code = "unsupported_media_type" // 415: not application/json
	CodeTimeout              Code = "timeout"                // 408: the body did not arrive within the body deadline
	CodeUnavailable          Code = "unavailable"            // 503: the delivery could not be recorded; redeliver
	CodeBusy                 Code = "busy"                   // 503: too many webhook requests at once; retry later
	CodeInternal             Code = "internal"               // 500: a bug
)

var codeStatus = map[Code]int{
	CodeInvalid:              http.StatusBadRequest,
	CodeUnauthorized:         http.StatusUnauthorized,
	CodeNotFound:             http.StatusNotFound,
	CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	CodeTooLarge:             http.StatusRequestEntityTooLarge,
	CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	CodeTimeout:              http.StatusRequestTimeout,
	CodeUnavailable:          http.StatusServiceUnavailable,
	CodeBusy:                 http.StatusServiceUnavailable,
	CodeInternal:             http.StatusInternalServerError,
}

// Error is a request failure: Code decides the status, Message is shown to
// the client and must say exactly what was wrong (naming the header or
// field), Err is the internal cause, logged but never sent.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// ErrorStatus returns the HTTP status for err: its *Error's code, else 500.
func ErrorStatus(err error) int {
	var e *Error
	if errors.As(err, &e) {
		if st, ok := codeStatus[e.Code]; ok {
			return st
		}
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON shape of every error response (as MBS).
type errorBody struct {
	Status  int    `json:"status"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeError answers with err as JSON {"status", "error", "message"}. Errors
// that are not *Error get a generic message: internals are never echoed.
func writeError(w http.ResponseWriter, err error) {
	st := ErrorStatus(err)
	msg := "internal error"
	var e *Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	writeJSON(w, st, errorBody{Status: st, Error: http.StatusText(st), Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
