package koji

import (
	"errors"
	"fmt"
	"strings"
)

// Koji fault codes (koji/__init__.py, koji.convertFault). A *Fault carries
// one of these in Code.
const (
	// ServerException is the code the hub gives any exception that is not
	// a Koji error (a database error, a Python TypeError, ...).
	ServerException = 1
	// GenericError: koji.GenericError, the hub's default ("No such
	// tagInfo", "Invalid method", "Task N is not finished", ...).
	GenericError = 1000
	// LockError: a lock could not be taken.
	LockError = 1001
	// AuthError: bad credentials or an invalid or closed session.
	AuthError = 1002
	// TagError: tagging refused (build not complete, package not in list).
	TagError = 1003
	// ActionNotAllowed: a permission is missing, or the call needs a login.
	ActionNotAllowed = 1004
	// BuildError: a build failed (also the usual fault of a failed task).
	BuildError = 1005
	// AuthLockError: the session is locked to another request.
	AuthLockError = 1006
	// AuthExpired: the session expired; only a login with renew works.
	AuthExpired = 1007
	// SequenceError: the callnum went backwards for this session.
	SequenceError = 1008
	// RetryError: the call reused the callnum of a call the hub already
	// committed, and the method is not safe to run twice. It means the
	// earlier attempt took effect; the client does not retry it.
	RetryError = 1009
	// PreBuildError: a pre-build check failed.
	PreBuildError = 1010
	// PostBuildError: a post-build step failed.
	PostBuildError = 1011
	// BuildrootError: the buildroot could not be set up.
	BuildrootError = 1012
	// FunctionDeprecated: the method was removed.
	FunctionDeprecated = 1013
	// ServerOffline: the hub is in offline mode or its database is down.
	ServerOffline = 1014
	// LiveCDError: a livecd task failed.
	LiveCDError = 1015
	// PluginError: a hub plugin failed.
	PluginError = 1016
	// CallbackError: a hub callback failed.
	CallbackError = 1017
	// ApplianceError: an appliance task failed.
	ApplianceError = 1018
	// ParameterError: the arguments do not match the method's signature.
	ParameterError = 1019
	// ImportError: an import (CG, build) failed.
	ImportError = 1020
	// ConfigurationError: the hub or builder is misconfigured.
	ConfigurationError = 1021
	// LiveMediaError: a livemedia task failed.
	LiveMediaError = 1022
	// GSSAPIAuthError: a GSSAPI login failed.
	GSSAPIAuthError = 1023
	// NameValidationError: a name does not match the hub's naming policy.
	NameValidationError = 1024
)

var faultNames = map[int]string{
	ServerException: "ServerException", GenericError: "GenericError", LockError: "LockError",
	AuthError: "AuthError", TagError: "TagError", ActionNotAllowed: "ActionNotAllowed",
	BuildError: "BuildError", AuthLockError: "AuthLockError", AuthExpired: "AuthExpired",
	SequenceError: "SequenceError", RetryError: "RetryError", PreBuildError: "PreBuildError",
	PostBuildError: "PostBuildError", BuildrootError: "BuildrootError",
	FunctionDeprecated: "FunctionDeprecated", ServerOffline: "ServerOffline",
	LiveCDError: "LiveCDError", PluginError: "PluginError", CallbackError: "CallbackError",
	ApplianceError: "ApplianceError", ParameterError: "ParameterError", ImportError: "ImportError",
	ConfigurationError: "ConfigurationError", LiveMediaError: "LiveMediaError",
	GSSAPIAuthError: "GSSAPIAuthError", NameValidationError: "NameValidationError",
}

// FaultName returns the Koji exception class name of a fault code, e.g.
// "ParameterError" for 1019, or "Fault<code>" for a code Koji does not name.
func FaultName(code int) string {
	if n, ok := faultNames[code]; ok {
		return n
	}
	return fmt.Sprintf("Fault%d", code)
}

// Fault is an XML-RPC fault returned by the hub. It is never retried: the
// hub answered, and the answer is no.
type Fault struct {
	// Code is one of the fault code constants (GenericError, ...).
	Code int
	// String is the hub's faultString (str(exc), or a traceback when the
	// hub runs with KojiDebug).
	String string
	// Traceback holds the frames a multiCall fault carries, if any.
	Traceback []string
}

// Error returns "koji fault <code> (<Name>): <faultString>".
func (f *Fault) Error() string {
	return fmt.Sprintf("koji fault %d (%s): %s", f.Code, FaultName(f.Code), f.String)
}

// Is reports whether target is a *Fault with the same code, so
// errors.Is(err, &koji.Fault{Code: koji.ParameterError}) works.
func (f *Fault) Is(target error) bool {
	t, ok := target.(*Fault)
	return ok && t.Code == f.Code && (t.String == "" || t.String == f.String)
}

// IsFault reports whether err is or wraps a *Fault with the given code.
func IsFault(err error, code int) bool {
	var f *Fault
	return errors.As(err, &f) && f.Code == code
}

// HTTPError is a hub answer that is not HTTP 200. Koji sends faults with
// status 200, so this means a proxy, a crashed hub (5xx, retried) or a bad
// request (4xx, not retried).
type HTTPError struct {
	StatusCode int
	// Body is the start of the response body.
	Body string
}

// Error implements error.
func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("hub answered HTTP %d", e.StatusCode)
	if b := strings.TrimSpace(e.Body); b != "" {
		msg += ": " + b
	}
	return msg
}

// CallError is what Client.Call returns for everything but a fault: the
// hub could not be reached, answered with an HTTP error, or sent something
// that is not XML-RPC. Attempts says how many requests were made.
type CallError struct {
	Method   string
	Attempts int
	Err      error
}

// Error implements error.
func (e *CallError) Error() string {
	return fmt.Sprintf("koji: %s: %v (after %d attempt(s))", e.Method, e.Err, e.Attempts)
}

// Unwrap returns the underlying error.
func (e *CallError) Unwrap() error { return e.Err }

// TaskError is a Koji task the backend depends on (tagBuild, newRepo) that
// did not close successfully. Component build failures are not TaskErrors;
// they are reported as failed components.
type TaskError struct {
	TaskID int
	Method string
	// State is the task's final state name (FAILED, CANCELED).
	State string
	// Reason is Koji's failure text, if known.
	Reason string
}

// Error implements error.
func (e *TaskError) Error() string {
	s := fmt.Sprintf("koji: %s task %d %s", e.Method, e.TaskID, e.State)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Sentinel errors, by operation.
var (
	// NewClient: ClientOptions.HubURL is empty or not an http(s) URL.
	ErrHubURL = errors.New("ClientOptions.HubURL must be an http or https URL")
	// Login, SSLLogin: the hub's answer has no session id or key.
	ErrNoSession = errors.New("login answer has no session")

	// NewBackend: a required option is missing.
	ErrOptionRequired = errors.New("option required")

	// BuildBatch, Finish: Prepare was not called for this build.
	ErrNotPrepared = errors.New("build not prepared")
	// BuildBatch: the upload of the module-build-macros SRPM was refused.
	ErrUpload = errors.New("upload refused by hub")
)
