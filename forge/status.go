package forge

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// State is rida's commit status state. Each reporter maps it onto the states
// its forge understands; see the package documentation for the table.
type State string

// rida's commit status states.
const (
	// StatePending means the build is queued and has not started.
	StatePending State = "pending"
	// StateRunning means the build is in progress. GitHub, GHES, Gitea and
	// Forgejo have no such state and show it as pending.
	StateRunning State = "running"
	// StateSuccess means the build passed.
	StateSuccess State = "success"
	// StateFailure means the build itself failed (the module did not build).
	StateFailure State = "failure"
	// StateError means rida could not finish the build for reasons that are
	// not the module's fault (infrastructure trouble). It is kept distinct
	// from StateFailure wherever the forge allows it.
	StateError State = "error"
	// StateCanceled means the build was canceled or superseded. GitHub,
	// GHES, Gitea and Forgejo have no such state and show it as error, with
	// the description kept so the reason stays visible.
	StateCanceled State = "canceled"
)

// States returns every valid State, in lifecycle order. It returns a new
// slice on each call.
func States() []State {
	return []State{StatePending, StateRunning, StateSuccess, StateFailure, StateError, StateCanceled}
}

// Valid reports whether s is one of the states returned by States.
func (s State) Valid() bool {
	switch s {
	case StatePending, StateRunning, StateSuccess, StateFailure, StateError, StateCanceled:
		return true
	}
	return false
}

// Status is one commit status to post. The forge keeps the last status
// posted per (Repo, SHA, Context); posting again with the same Context
// replaces what the forge shows.
type Status struct {
	// Repo names the repository: "owner/name" on GitHub, GHES, Gitea and
	// Forgejo; the path_with_namespace ("group/subgroup/project") or the
	// numeric project id on GitLab.
	Repo string
	// SHA is the full commit id: 40 (SHA-1) or 64 (SHA-256) hex digits.
	SHA string
	// Context names the check, e.g. "rida/nodejs:20". It is required and
	// should be stable across builds of the same module stream. GitLab
	// calls it "name".
	Context string
	// State is the rida state; reporters map it per forge.
	State State
	// Description is a short human-readable summary. Reporters truncate
	// it to MaxDescriptionRunes (see TruncateDescription) before sending.
	// Optional.
	Description string
	// TargetURL links to rida's page for the build. Optional, but forges
	// show the status as a link only when it is set.
	TargetURL string
}

// MaxDescriptionRunes is the longest description GitHub accepts (it answers
// 422 beyond 140 characters). Reporters apply it to every forge so a
// status reads the same everywhere.
const MaxDescriptionRunes = 140

// ellipsis marks a truncated description. It is one rune.
const ellipsis = "…"

// TruncateDescription returns s shortened to at most MaxDescriptionRunes
// runes. A shortened description ends in "…" (one rune), and is never cut
// inside a multi-byte character. Invalid UTF-8 is replaced by U+FFFD
// first, so the result is always valid UTF-8. A description that already
// fits is returned unchanged.
func TruncateDescription(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if utf8.RuneCountInString(s) <= MaxDescriptionRunes {
		return s
	}
	runes := []rune(s)[:MaxDescriptionRunes-1]
	cut := strings.TrimRightFunc(string(runes), unicode.IsSpace)
	return cut + ellipsis
}

// githubState maps a rida state onto GitHub's, GHES's, Gitea's and
// Forgejo's states (pending, success, failure, error).
func githubState(s State) string {
	switch s {
	case StatePending, StateRunning:
		return "pending"
	case StateSuccess:
		return "success"
	case StateFailure:
		return "failure"
	case StateError, StateCanceled:
		return "error"
	}
	return ""
}

// gitlabState maps a rida state onto GitLab's states (pending, running,
// success, failed, canceled).
func gitlabState(s State) string {
	switch s {
	case StatePending:
		return "pending"
	case StateRunning:
		return "running"
	case StateSuccess:
		return "success"
	case StateFailure, StateError:
		return "failed"
	case StateCanceled:
		return "canceled"
	}
	return ""
}

// description returns the description to send for s: truncated and, for a
// cancellation shown as "error" on forges without a canceled state, never
// empty so the reason for the error state stays visible.
func description(s Status, hasCanceled bool) string {
	d := s.Description
	if s.State == StateCanceled && !hasCanceled && strings.TrimSpace(d) == "" {
		d = "canceled"
	}
	return TruncateDescription(d)
}

// validate checks the fields every forge needs. ownerName requires Repo
// to be "owner/name" (GitHub, GHES, Gitea, Forgejo).
func (s Status) validate(ownerName bool) error {
	if s.Repo == "" {
		return invalid("Repo", "is empty")
	}
	if ownerName {
		owner, name, ok := strings.Cut(s.Repo, "/")
		if !ok || !validPathSegment(owner) || !validPathSegment(name) {
			return invalid("Repo", fmt.Sprintf("%q is not \"owner/name\"", s.Repo))
		}
	} else if strings.HasPrefix(s.Repo, "/") || strings.HasSuffix(s.Repo, "/") || strings.ContainsFunc(s.Repo, unsafeRune) {
		return invalid("Repo", fmt.Sprintf("%q is not a project path or id", s.Repo))
	}
	if !validSHA(s.SHA) {
		return invalid("SHA", fmt.Sprintf("%q is not a full commit id (40 or 64 hex digits)", s.SHA))
	}
	if strings.TrimSpace(s.Context) == "" {
		return invalid("Context", "is empty")
	}
	if !s.State.Valid() {
		return invalid("State", fmt.Sprintf("%q is not a rida state", s.State))
	}
	return nil
}

func invalid(field, why string) error {
	return fmt.Errorf("%w: %s %s", ErrInvalidStatus, field, why)
}

// validPathSegment accepts one URL path segment that go-github will not
// reinterpret: no slashes, no dot segments, no query or escape characters.
func validPathSegment(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsFunc(s, func(r rune) bool {
		return r == '/' || unsafeRune(r)
	})
}

func unsafeRune(r rune) bool {
	return r == '?' || r == '#' || r == '%' || r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r)
}

func validSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// shortSHA abbreviates a commit id for error messages.
func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
