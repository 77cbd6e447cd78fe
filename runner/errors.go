package runner

import (
	"errors"
	"fmt"
	"strings"
)

// BuildFailure means the module did not build because one or more of its
// components did not build: a packaging problem, reported as "failure".
type BuildFailure struct {
	// Components lists the keys of the failed components, in build order.
	Components []string
	// Details holds each failed component's own reason.
	Details []string
}

// Error returns MBS's wording, "Component(s) a, b failed to build.", followed
// by each component's reason so the log path is right there.
func (e *BuildFailure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Component(s) %s failed to build.", strings.Join(e.Components, ", "))
	for _, d := range e.Details {
		b.WriteString(" ")
		b.WriteString(d)
	}
	return b.String()
}

// ErrReuseUnavailable is wrapped by a Reuser's error when the earlier
// build's output is no longer there (files cleaned up, a Koji build deleted
// or never completed): Execute then builds the component instead of
// failing the module.
var ErrReuseUnavailable = errors.New("the earlier build's output is not available")

// InfraError means the build could not be carried out (backend unreachable,
// disk full, a tool missing): reported as "error", and worth retrying.
type InfraError struct {
	Op  string
	Err error
}

// Error implements error.
func (e *InfraError) Error() string { return "infrastructure error: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *InfraError) Unwrap() error { return e.Err }
