package state

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by Store methods, grouped by operation. Callers test them
// with errors.Is (sentinels) or errors.As (typed errors); messages are for
// people and may change.

// Open.
var (
	// ErrSchemaTooNew is matched (errors.Is) by a *SchemaVersionError whose
	// file was written by a newer rida.
	ErrSchemaTooNew = errors.New("state file has a newer schema than this rida understands")
)

// SchemaVersionError is returned by Open when the file's schema version is not
// one this build can use. The file is left untouched.
type SchemaVersionError struct {
	Path      string
	Found     uint64 // version recorded in the file's meta bucket
	Supported uint64 // SchemaVersion of this build
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("state: open %s: schema version %d, this rida supports up to %d (upgrade rida or use another state file)",
		e.Path, e.Found, e.Supported)
}

// Is reports whether target is ErrSchemaTooNew and the file is newer.
func (e *SchemaVersionError) Is(target error) bool {
	return target == ErrSchemaTooNew && e.Found > e.Supported
}

// Leasing and queue.
var (
	// ErrNoJob is returned by LeasePlanJob when no plan job is available and
	// by StartNext when no pending build request may start (none pending, or
	// every pending request's key already has one running).
	ErrNoJob = errors.New("state: no job available")

	// ErrLeaseLost is returned by CompletePlanJob when the job is no longer
	// leased by the calling worker (its lease expired and it was rescued,
	// possibly re-leased by another worker). The caller must drop its result:
	// the job will be (or was) planned again.
	ErrLeaseLost = errors.New("state: plan job lease lost")
)

// NotFoundError says that the record Kind with key Key does not exist.
// It matches ErrNotFound with errors.Is.
type NotFoundError struct {
	Kind string // "delivery", "plan job", "running request", "module build", ...
	Key  string
}

// ErrNotFound is matched by every *NotFoundError.
var ErrNotFound = errors.New("state: not found")

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("state: %s %s not found", e.Kind, e.Key)
}

// Is reports whether target is ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ValidationError says that an argument is unusable; Field names it the way
// the caller spelled it (Go field name).
type ValidationError struct {
	Op     string // method, e.g. "RecordDelivery"
	Field  string
	Reason string
}

// ErrInvalid is matched by every *ValidationError.
var ErrInvalid = errors.New("state: invalid argument")

func (e *ValidationError) Error() string {
	return fmt.Sprintf("state: %s: %s %s", e.Op, e.Field, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Check.

// CheckError lists every inconsistency found by (*Store).Check. It matches
// ErrInconsistent with errors.Is.
type CheckError struct {
	Problems []string
}

// ErrInconsistent is matched by every *CheckError.
var ErrInconsistent = errors.New("state: store is inconsistent")

func (e *CheckError) Error() string {
	const max = 20
	p := e.Problems
	more := ""
	if len(p) > max {
		more = fmt.Sprintf("\n  ... and %d more", len(p)-max)
		p = p[:max]
	}
	return fmt.Sprintf("state: check found %d problem(s):\n  %s%s", len(e.Problems), strings.Join(p, "\n  "), more)
}

// Is reports whether target is ErrInconsistent.
func (e *CheckError) Is(target error) bool { return target == ErrInconsistent }
