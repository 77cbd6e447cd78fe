package state

import (
	"context"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ModuleState is a module build's state, with MBS's names and numbers so the
// MBS-compatible API can expose it unchanged.
type ModuleState int

const (
	// ModuleStateInit (0): accepted; the runner reads and validates the modulemd,
	// resolves refs and plans batches, then moves it to wait (or failed).
	ModuleStateInit ModuleState = 0
	// ModuleStateWait (1): planned, waiting for capacity; the runner moves it to build.
	ModuleStateWait ModuleState = 1
	// ModuleStateBuild (2): components are building; the runner moves it to done or failed.
	ModuleStateBuild ModuleState = 2
	// ModuleStateDone (3): every component built; moved to ready automatically or
	// after an external test result.
	ModuleStateDone ModuleState = 3
	// ModuleStateFailed (4): final failure; StateReason says why.
	ModuleStateFailed ModuleState = 4
	// ModuleStateReady (5): done and accepted for use.
	ModuleStateReady ModuleState = 5
	// ModuleStateGarbage (6): cleaned up (MBS's garbage); kept for history.
	ModuleStateGarbage ModuleState = 6
)

var moduleStateNames = [...]string{"init", "wait", "build", "done", "failed", "ready", "garbage"}

// String returns MBS's name for the state.
func (s ModuleState) String() string {
	if s < 0 || int(s) >= len(moduleStateNames) {
		return "ModuleState(" + strconv.Itoa(int(s)) + ")"
	}
	return moduleStateNames[s]
}

// Valid reports whether s is one of the defined states.
func (s ModuleState) Valid() bool { return s >= 0 && int(s) < len(moduleStateNames) }

// StateTransition records one state change of a module build.
type StateTransition struct {
	State  ModuleState `json:"state"`
	Reason string      `json:"reason,omitempty"`
	Time   time.Time   `json:"time"`
}

// ModuleBuild is one module build as the runner records it.
type ModuleBuild struct {
	ID          uint64            `json:"id"` // assigned on first PutModuleBuild
	Name        string            `json:"name"`
	Stream      string            `json:"stream"`
	Version     uint64            `json:"version,omitempty"`
	Context     string            `json:"context,omitempty"`
	RequestID   uint64            `json:"request_id,omitempty"` // build request it serves
	State       ModuleState       `json:"state"`
	StateReason string            `json:"state_reason,omitempty"`
	Transitions []StateTransition `json:"transitions"` // maintained by PutModuleBuild
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`

	// ModuleRepo and ModuleCommit say what was built: the module
	// repository's URL and the full commit hash of its modulemd.
	ModuleRepo   string `json:"module_repo,omitempty"`
	ModuleCommit string `json:"module_commit,omitempty"`
	// Identity is the build's content identity (module commit, resolved
	// component commits, backend); two builds with the same identity build
	// the same thing.
	Identity string `json:"identity,omitempty"`
	// RebuildStrategy is MBS's: all, changed-and-after or only-changed.
	RebuildStrategy string `json:"rebuild_strategy,omitempty"`
	// Owner is who asked for the build ("webhook", a user name, ...).
	Owner string `json:"owner,omitempty"`
	// Modulemd is the enriched modulemd YAML the build was planned from;
	// after done it is the final modulemd with artifacts.
	Modulemd string `json:"modulemd,omitempty"`
	// DistTag is the RPM %dist of the build's components.
	DistTag string `json:"dist_tag,omitempty"`
	// Components lists the component builds, batch 1 (module-build-macros)
	// first. UpdateComponentBuild changes one entry in place.
	Components []ComponentBuild `json:"components,omitempty"`
	// ResultDir and Location say where the output is (local backend: a
	// directory holding repo/; Koji: the module tag).
	ResultDir string `json:"result_dir,omitempty"`
	Location  string `json:"location,omitempty"`
	// CancelRequestedBy is set by RequestCancel: who asked to stop the
	// build, or "superseded by ..." when a newer request replaced it.
	CancelRequestedBy string `json:"cancel_requested_by,omitempty"`
	// FailureKind says why a failed build failed; the runner sets it
	// together with State failed. It decides the commit status: failure
	// for FailureBuild, error for FailureInfra, canceled for
	// FailureCanceled. Empty (older records, other writers) means unknown.
	FailureKind FailureKind `json:"failure_kind,omitempty"`
	// Platform is the platform stream the build buildrequires ("" for
	// none): the resolver matches buildrequired builds on it.
	Platform string `json:"platform,omitempty"`
	// BuildRequires lists the module builds it was built against (MBS:
	// xmd.mbs.buildrequires), platform excluded, sorted by name.
	BuildRequires []BuiltAgainst `json:"buildrequires,omitempty"`
	// Cascade says what the build's becoming ready queued; set by the
	// store in that transaction and kept by later puts.
	Cascade *CascadeRecord `json:"cascade,omitempty"`
	// Scratch marks an MBS scratch build: its context has a suffix _N, it
	// stays done, and nothing reuses, resolves, cascades from or reports
	// it.
	Scratch bool `json:"scratch,omitempty"`
	// SRPMs lists the source RPMs a scratch build was submitted with
	// (MBS's srpms), as RequestOptions.SRPMs names them (SRPM.Path).
	SRPMs []string `json:"srpms,omitempty"`
	// TreePrunedAt is when retention removed the build's tree (the local
	// backend's directory: logs, repository, rpm database); zero while it
	// is kept. Set by MarkTreePruned and kept by later puts.
	TreePrunedAt time.Time `json:"tree_pruned_at,omitzero"`
}

// BuiltAgainst is one module build a build was built against.
type BuiltAgainst struct {
	Name    string `json:"name"`
	Stream  string `json:"stream"`
	Version uint64 `json:"version"`
	Context string `json:"context"`
	// BuildID is rida's id of that build.
	BuildID uint64 `json:"build_id"`
	// Direct is false for a module that came in through another module's
	// requires.
	Direct bool `json:"direct"`
}

// FailureKind classifies a failed module build.
type FailureKind string

const (
	// FailureBuild: the content did not build (a component failed, the
	// modulemd is invalid, a ref does not exist). Commit status "failure".
	FailureBuild FailureKind = "failure"
	// FailureInfra: rida could not finish for reasons that are not the
	// content's fault (backend or forge unreachable, disk full, crash).
	// Commit status "error".
	FailureInfra FailureKind = "error"
	// FailureCanceled: cancelled by someone, or superseded by a newer
	// request (CancelRequestedBy says which). Commit status "canceled".
	FailureCanceled FailureKind = "canceled"
)

// ComponentBuild is one component of a module build, as recorded.
type ComponentBuild struct {
	Key        string `json:"key"`
	Package    string `json:"package"`
	Repository string `json:"repository,omitempty"`
	Cache      string `json:"cache,omitempty"`
	Ref        string `json:"ref,omitempty"`
	Commit     string `json:"commit,omitempty"`
	Batch      int    `json:"batch"`
	// State is the runner's component state: queued, building, complete,
	// failed, canceled or reused.
	State   string   `json:"state"`
	Reason  string   `json:"reason,omitempty"`
	NVR     string   `json:"nvr,omitempty"`
	LogPath string   `json:"log_path,omitempty"`
	TaskID  int64    `json:"task_id,omitempty"` // the backend's build task (Koji's task id); 0: none
	RPMs    []string `json:"rpms,omitempty"`
	// ReusedFrom is the id of the module build a reused component was taken
	// from.
	ReusedFrom uint64 `json:"reused_from,omitempty"`
	// SRPM is the source RPM the component is built from instead of its
	// repository (a scratch build's srpms; SRPM.Path), else empty.
	SRPM     string    `json:"srpm,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

// Terminal reports whether the module build can no longer change state,
// except done → ready.
func (s ModuleState) Terminal() bool {
	return s == ModuleStateDone || s == ModuleStateFailed || s == ModuleStateReady || s == ModuleStateGarbage
}

// PutModuleBuild creates (ID 0) or replaces a module build and returns it as
// stored. Transitions is maintained here, not by the caller: when State
// differs from the stored state (or the build is new) a transition with
// StateReason and the store's clock is appended. *NotFoundError if a non-zero
// ID does not exist.
func (s *Store) PutModuleBuild(ctx context.Context, mb ModuleBuild) (*ModuleBuild, error) {
	switch {
	case mb.Name == "":
		return nil, &ValidationError{Op: "PutModuleBuild", Field: "Name", Reason: "is required"}
	case mb.Stream == "":
		return nil, &ValidationError{Op: "PutModuleBuild", Field: "Stream", Reason: "is required"}
	case !mb.State.Valid():
		return nil, &ValidationError{Op: "PutModuleBuild", Field: "State", Reason: fmt.Sprintf("unknown state %d", mb.State)}
	}
	var out *ModuleBuild
	err := s.update(ctx, "PutModuleBuild", func(tx *bolt.Tx) error {
		var err error
		out, err = s.putModuleBuild(tx, mb)
		return err
	})
	return out, wrap("PutModuleBuild", err)
}

func (s *Store) putModuleBuild(tx *bolt.Tx, mb ModuleBuild) (*ModuleBuild, error) {
	b := tx.Bucket(bucketModuleBuilds)
	now := s.now().UTC()
	var prev *ModuleBuild
	if mb.ID == 0 {
		id, err := b.NextSequence()
		if err != nil {
			return nil, err
		}
		mb.ID, mb.CreatedAt, mb.Transitions = id, now, nil
	} else {
		var err error
		if prev, err = getModuleBuild(tx, mb.ID); err != nil {
			return nil, err
		}
		mb.CreatedAt, mb.Transitions = prev.CreatedAt, prev.Transitions
		if mb.Cascade == nil {
			mb.Cascade = prev.Cascade
		}
		// Fields other writers own are never undone by a put from a copy
		// read before they wrote: a cancel recorded meanwhile
		// (RequestCancel) stays recorded.
		if mb.CancelRequestedBy == "" {
			mb.CancelRequestedBy = prev.CancelRequestedBy
		}
		if mb.TreePrunedAt.IsZero() {
			mb.TreePrunedAt = prev.TreePrunedAt
		}
	}
	mb.UpdatedAt = now
	subject := "modulebuild/" + strconv.FormatUint(mb.ID, 10)
	if prev == nil || prev.State != mb.State {
		mb.Transitions = append(mb.Transitions, StateTransition{State: mb.State, Reason: mb.StateReason, Time: now})
		from := "new"
		if prev != nil {
			from = prev.State.String()
		}
		if err := s.appendEvent(tx, EventModuleBuildState, subject, map[string]any{
			"nsvc": mb.Name + ":" + mb.Stream, "from": from, "to": mb.State.String(), "reason": mb.StateReason,
		}); err != nil {
			return nil, err
		}
	} else if err := s.appendEvent(tx, EventModuleBuildPut, subject, nil); err != nil {
		return nil, err
	}
	if mb.State == ModuleStateReady && (prev == nil || prev.State != ModuleStateReady) {
		if err := s.cascade(tx, &mb); err != nil {
			return nil, fmt.Errorf("cascade from build %d: %w", mb.ID, err)
		}
	}
	if err := putJSON(b, u64(mb.ID), mb); err != nil {
		return nil, err
	}
	if err := indexBuild(tx, prev, &mb); err != nil {
		return nil, err
	}
	if err := s.emitStatuses(tx, StatusEvent{Kind: StatusEventBuildState, Before: prev, After: &mb}); err != nil {
		return nil, err
	}
	return &mb, nil
}

// GetModuleBuild returns the module build with the given ID (*NotFoundError
// if none).
func (s *Store) GetModuleBuild(ctx context.Context, id uint64) (*ModuleBuild, error) {
	var out *ModuleBuild
	err := s.view(ctx, "GetModuleBuild", func(tx *bolt.Tx) error {
		var err error
		out, err = getModuleBuild(tx, id)
		return err
	})
	return out, wrap("GetModuleBuild", err)
}

func getModuleBuild(tx *bolt.Tx, id uint64) (*ModuleBuild, error) {
	var mb ModuleBuild
	ok, err := getJSON(tx.Bucket(bucketModuleBuilds), u64(id), &mb)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &NotFoundError{Kind: "module build", Key: strconv.FormatUint(id, 10)}
	}
	return &mb, nil
}
