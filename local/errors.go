package local

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, by operation.
var (
	// New: Options.Sandbox is "on" but bubblewrap cannot run here.
	ErrSandboxUnavailable = errors.New("sandbox unavailable")

	// BuildBatch, Finish: Prepare was not called for this build (its
	// directory does not exist).
	ErrNotPrepared = errors.New("build not prepared")

	// BuildBatch: a component batch came before module-build-macros was
	// built, so there are no module macros to build it with.
	ErrNoModuleMacros = errors.New("module-build-macros not built")

	// Prepare: a module the build is built against (runner.Build.Deps)
	// cannot be put into the build root: it has no result directory (built
	// by another backend), or one of its package files is missing, is a
	// symlink or is not a regular file. The error names the dependency's
	// NSVC and the file.
	ErrDepUnavailable = errors.New("module dependency unavailable")
)

// ToolError is an infrastructure failure of an external tool (rpm,
// rpmbuild, createrepo_c, ...): it is missing, could not start, or failed
// doing backend bookkeeping. A package that does not build is not a
// ToolError; it is a failed component update.
type ToolError struct {
	// Op says what the backend was doing, e.g. "install batch 2 into rpmdb".
	Op string
	// Tool is the binary; Args its arguments.
	Tool string
	Args []string
	// Output is the tail of the command's combined output, if it ran.
	Output string
	Err    error
}

func (e *ToolError) Error() string {
	var s strings.Builder
	fmt.Fprintf(&s, "local: %s: %s: %v", e.Op, e.Tool, e.Err)
	if e.Output != "" {
		fmt.Fprintf(&s, ": %s", e.Output)
	}
	return s.String()
}

func (e *ToolError) Unwrap() error { return e.Err }
