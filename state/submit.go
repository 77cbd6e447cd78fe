package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Submissions (POST module-builds) create their module build record in
// state init in the transaction that queues the request, as MBS does, so a
// client gets a build id at once. The runner picks the record up when it
// starts the request (runner.runRequest takes an init or wait record of its
// request).

// SRPM is one source RPM a scratch build was submitted with (MBS's
// srpms): it replaces the component whose package is Package, which is
// then built from it instead of from its repository.
type SRPM struct {
	// Package is the RPM package name the SRPM builds.
	Package string `json:"package"`
	// Path says where the SRPM is: for the Koji backend the upload path
	// the client gave ("cli-build/…/x.src.rpm"); for the local backend the
	// uploaded file's path relative to rida's uploads directory
	// ("<upload id>/x.src.rpm").
	Path string `json:"path"`
}

// HasUploads reports whether the request carries what a submitter
// uploaded (a modulemd or SRPMs), which a later submission must not
// replace by merging into the request.
func (o RequestOptions) HasUploads() bool { return o.Modulemd != "" || len(o.SRPMs) > 0 }

// SRPMPaths returns the Path of every SRPM, in order.
func (o RequestOptions) SRPMPaths() []string {
	var out []string
	for _, s := range o.SRPMs {
		out = append(out, s.Path)
	}
	return out
}

// ErrConflict is matched (errors.Is) by a *ConflictError.
var ErrConflict = errors.New("state: conflict")

// ConflictError says a submission conflicts with an existing build or
// request. Message is for the submitter (MBS's wording where MBS has one).
type ConflictError struct {
	Message string
	// BuildID is the build in the way (0 when a request is).
	BuildID uint64
}

func (e *ConflictError) Error() string        { return e.Message }
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Queued-build reasons: the state_reason an init record gets when it is
// created, saying why it has not started. It is computed at that moment
// (and refreshed when another submission merges into the request); it is
// not kept up to date while the build waits.
const (
	ReasonStreamPaused = "stream paused"
	ReasonAllPaused    = "all streams paused"
	ReasonQueued       = "queued: waiting for a free build slot"
)

// EnqueueWithBuild queues req (merging into the stream's pending request,
// as Enqueue does) with opts, and creates the request's module build record
// in state init with opts' owner, rebuild strategy, scratch flag and SRPMs,
// all in one transaction. The options, an uploaded modulemd and SRPM list
// included, are stored in that transaction too. When req merges into a
// pending request that already has a record in init or wait (an earlier
// submission), that record is reused and updated. It returns the request
// and its queued build records.
//
// Checked in the transaction, a *ConflictError when:
//   - req is not scratch and a done or ready build (not scratch) of the
//     stream built req.ModuleCommit (MBS's "Module (state=N) already
//     exists..."), or one in init, wait or build is building it;
//   - the stream's running or pending request is for req.ModuleCommit;
//   - req is scratch and the stream has a pending request that is not: a
//     scratch build is never merged into a regular one;
//   - the stream has a pending request and either it or opts carries
//     uploads (RequestOptions.HasUploads): one submission's upload never
//     replaces another's.
func (s *Store) EnqueueWithBuild(ctx context.Context, req BuildRequest, opts RequestOptions) (EnqueueResult, []ModuleBuild, error) {
	if err := validateRequest("EnqueueWithBuild", &req); err != nil {
		return EnqueueResult{}, nil, err
	}
	var (
		res    EnqueueResult
		builds []ModuleBuild
	)
	err := s.update(ctx, "EnqueueWithBuild", func(tx *bolt.Tx) error {
		key := RequestKey(req.Module, req.Stream)
		if err := submitConflict(tx, req, opts); err != nil {
			return err
		}
		var err error
		if res, err = s.enqueueTx(tx, req, true); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(bucketRequestOpts)
		if err != nil {
			return err
		}
		var cur RequestOptions
		if _, err := getJSON(b, u64(res.Request.ID), &cur); err != nil {
			return err
		}
		cur.RebuildStrategy = cmpOr(opts.RebuildStrategy, cur.RebuildStrategy)
		cur.Owner = cmpOr(opts.Owner, cur.Owner)
		cur.Scratch = opts.Scratch
		if opts.ReuseFrom != 0 {
			cur.ReuseFrom = opts.ReuseFrom
		}
		if opts.BuildRequireOverrides != nil {
			cur.BuildRequireOverrides = opts.BuildRequireOverrides
		}
		if opts.RequireOverrides != nil {
			cur.RequireOverrides = opts.RequireOverrides
		}
		// Uploads never merge (submitConflict), so these are this
		// submission's own.
		if err := setUploads(tx, res.Request.ID, cur.SRPMs, opts.SRPMs); err != nil {
			return err
		}
		cur.Modulemd, cur.SubmittedAt, cur.SRPMs = opts.Modulemd, opts.SubmittedAt, opts.SRPMs
		if err := putJSON(b, u64(res.Request.ID), cur); err != nil {
			return err
		}
		reason, err := queuedReason(tx, key, res.Request.ID)
		if err != nil {
			return err
		}
		records, err := loadBuilds(tx, idsWithPrefix(tx.Bucket(bucketBuildsByRequest), u64(res.Request.ID)))
		if err != nil {
			return err
		}
		records = slices.DeleteFunc(records, func(mb ModuleBuild) bool {
			return mb.State != ModuleStateInit && mb.State != ModuleStateWait
		})
		if len(records) == 0 {
			records = []ModuleBuild{{Name: req.Module, Stream: req.Stream, RequestID: res.Request.ID, State: ModuleStateInit}}
		}
		for _, mb := range records {
			mb.ModuleRepo, mb.ModuleCommit = res.Request.ModuleRepo, res.Request.ModuleCommit
			mb.Owner, mb.RebuildStrategy, mb.Scratch = cmpOr(cur.Owner, mb.Owner), cmpOr(cur.RebuildStrategy, mb.RebuildStrategy), cur.Scratch
			mb.SRPMs = cur.SRPMPaths()
			if mb.State == ModuleStateInit {
				mb.StateReason = reason
			}
			stored, err := s.putModuleBuild(tx, mb)
			if err != nil {
				return err
			}
			builds = append(builds, *stored)
		}
		return nil
	})
	if err != nil {
		return EnqueueResult{}, nil, wrap("EnqueueWithBuild", err)
	}
	return res, builds, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// submitConflict is EnqueueWithBuild's conflict check. It reads the
// stream's builds through the per-stream index, decoding only those whose
// state (in the index) could conflict.
func submitConflict(tx *bolt.Tx, req BuildRequest, opts RequestOptions) error {
	scratch := opts.Scratch
	key := RequestKey(req.Module, req.Stream)
	entry, err := getQueueEntry(tx, key)
	if err != nil {
		return err
	}
	if entry.Pending != 0 {
		var po RequestOptions
		if b := tx.Bucket(bucketRequestOpts); b != nil {
			if _, err := getJSON(b, u64(entry.Pending), &po); err != nil {
				return err
			}
		}
		if scratch && !po.Scratch {
			return &ConflictError{Message: fmt.Sprintf("A build of %s is already queued (request %d); a scratch build is not merged into it: submit the scratch build again once that build has started.", key, entry.Pending)}
		}
		if opts.HasUploads() || po.HasUploads() {
			return &ConflictError{Message: fmt.Sprintf("A scratch build of %s is already queued (request %d); a submission with an uploaded modulemd or SRPMs is not merged with another: submit it again once that build has started.", key, entry.Pending)}
		}
	}
	if req.ModuleCommit == "" || scratch {
		return nil
	}
	for _, id := range []uint64{entry.Running, entry.Pending} {
		if id == 0 {
			continue
		}
		r, err := getRequest(tx, id)
		if err != nil {
			return err
		}
		if r.ModuleCommit == req.ModuleCommit {
			return &ConflictError{Message: fmt.Sprintf("Module %s at %s is already queued as build request %d (%s).", key, req.ModuleCommit, r.ID, r.State)}
		}
	}
	prefix := streamPrefix(req.Module, req.Stream)
	c := tx.Bucket(bucketBuildsByStream).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) != 1 || len(k) != len(prefix)+8 {
			continue
		}
		if st := ModuleState(v[0]); st == ModuleStateFailed || st == ModuleStateGarbage {
			continue
		}
		mb, err := getModuleBuild(tx, binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil {
			return err
		}
		if mb.Scratch || mb.ModuleCommit != req.ModuleCommit {
			continue
		}
		if mb.State == ModuleStateDone || mb.State == ModuleStateReady {
			return &ConflictError{BuildID: mb.ID, Message: fmt.Sprintf("Module (state=%d) already exists. Only a new build, resubmission of a failed build or build against new buildrequirements is allowed.", int(mb.State))}
		}
		return &ConflictError{BuildID: mb.ID, Message: fmt.Sprintf("Module %s at %s is already being built as build %d (%s).", key, req.ModuleCommit, mb.ID, mb.State)}
	}
	return nil
}

// queuedReason says why request id of key has not started: its stream is
// paused, another build of the stream is running, or it waits for a slot.
func queuedReason(tx *bolt.Tx, key string, id uint64) (string, error) {
	if paused := tx.Bucket(bucketPaused); paused != nil {
		if paused.Get([]byte(PauseAll)) != nil {
			return ReasonAllPaused, nil
		}
		if paused.Get([]byte(key)) != nil {
			return ReasonStreamPaused, nil
		}
	}
	entry, err := getQueueEntry(tx, key)
	if err != nil {
		return "", err
	}
	if entry.Running == 0 || entry.Running == id {
		return ReasonQueued, nil
	}
	ids := idsWithPrefix(tx.Bucket(bucketBuildsByRequest), u64(entry.Running))
	for _, bid := range ids {
		mb, err := getModuleBuild(tx, bid)
		if err != nil {
			return "", err
		}
		if !mb.State.Terminal() {
			return "queued behind build " + strconv.FormatUint(bid, 10), nil
		}
	}
	return "queued behind build request " + strconv.FormatUint(entry.Running, 10), nil
}

// queuedBuildsMerged keeps the queued records of pending request r in step
// after a push or cascade merged into it (enqueue): they take r's module
// commit and repository, and a scratch request becomes a regular one (the
// push asks for a real build of the repository: an uploaded modulemd and
// SRPMs are dropped with the scratch flag).
func (s *Store) queuedBuildsMerged(tx *bolt.Tx, r *BuildRequest) error {
	ids := idsWithPrefix(tx.Bucket(bucketBuildsByRequest), u64(r.ID))
	if len(ids) == 0 {
		return nil
	}
	unscratch := false
	if b := tx.Bucket(bucketRequestOpts); b != nil {
		var o RequestOptions
		if _, err := getJSON(b, u64(r.ID), &o); err != nil {
			return err
		}
		if o.Scratch {
			o.Scratch, unscratch = false, true
			// The dropped files go with the next retention run.
			if err := setUploads(tx, r.ID, o.SRPMs, nil); err != nil {
				return err
			}
			o.Modulemd, o.SubmittedAt, o.SRPMs = "", time.Time{}, nil
			if err := putJSON(b, u64(r.ID), o); err != nil {
				return err
			}
		}
	}
	for _, id := range ids {
		mb, err := getModuleBuild(tx, id)
		if err != nil {
			return err
		}
		if mb.State != ModuleStateInit && mb.State != ModuleStateWait {
			continue
		}
		if mb.ModuleCommit == r.ModuleCommit && mb.ModuleRepo == r.ModuleRepo && !(unscratch && mb.Scratch) {
			continue
		}
		mb.ModuleCommit, mb.ModuleRepo = r.ModuleCommit, r.ModuleRepo
		if unscratch {
			mb.Scratch, mb.SRPMs = false, nil
		}
		if _, err := s.putModuleBuild(tx, *mb); err != nil {
			return err
		}
	}
	return nil
}

// CancelQueued ends module build id, cancelled with reason, when it is a
// queued record (init or wait) of a request that is still pending: in one
// transaction the request leaves the queue (finished, canceled) and every
// queued record of it fails with reason. It returns the build as stored
// and true; false (and no change) when the build's request is not pending,
// so the runner's ordinary cancel applies.
func (s *Store) CancelQueued(ctx context.Context, id uint64, reason string) (*ModuleBuild, bool, error) {
	var (
		out  *ModuleBuild
		done bool
	)
	err := s.update(ctx, "CancelQueued", func(tx *bolt.Tx) error {
		mb, err := getModuleBuild(tx, id)
		if err != nil {
			return err
		}
		if (mb.State != ModuleStateInit && mb.State != ModuleStateWait) || mb.RequestID == 0 {
			return nil
		}
		r, err := getRequest(tx, mb.RequestID)
		if err != nil {
			return err
		}
		if r.State != RequestPending {
			return nil
		}
		entry, err := getQueueEntry(tx, r.Key)
		if err != nil {
			return err
		}
		if entry.Pending == r.ID {
			entry.Pending = 0
			if err := putQueueEntry(tx, r.Key, entry); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketQueuePending).Delete(pendingKey(r.Kind, r.ID)); err != nil {
			return err
		}
		now := s.now().UTC()
		r.State, r.Result, r.ResultReason, r.FinishedAt, r.UpdatedAt = RequestFinished, ResultCanceled, reason, now, now
		if err := putJSON(tx.Bucket(bucketRequests), u64(r.ID), r); err != nil {
			return err
		}
		if err := s.appendEvent(tx, EventRequestFinished, requestSubject(r.ID), map[string]any{"key": r.Key, "result": ResultCanceled, "reason": reason}); err != nil {
			return err
		}
		records, err := loadBuilds(tx, idsWithPrefix(tx.Bucket(bucketBuildsByRequest), u64(r.ID)))
		if err != nil {
			return err
		}
		for _, rec := range records {
			if rec.State != ModuleStateInit && rec.State != ModuleStateWait {
				continue
			}
			rec.State, rec.StateReason, rec.FailureKind = ModuleStateFailed, reason, FailureCanceled
			rec.CancelRequestedBy = cmpOr(rec.CancelRequestedBy, reason)
			stored, err := s.putModuleBuild(tx, rec)
			if err != nil {
				return err
			}
			if stored.ID == id {
				out = stored
			}
		}
		done = true
		return nil
	})
	if err != nil {
		return nil, false, wrap("CancelQueued", err)
	}
	return out, done, nil
}

// moveQueuedBuilds hands the queued records (init or wait) of request from,
// which a restart merged into request to, over to it when it has none of
// its own; otherwise they end as garbage naming it. Called by
// RequeueRunning in its transaction.
func (s *Store) moveQueuedBuilds(tx *bolt.Tx, from, to uint64) error {
	old, err := loadBuilds(tx, idsWithPrefix(tx.Bucket(bucketBuildsByRequest), u64(from)))
	if err != nil {
		return err
	}
	if len(old) == 0 {
		return nil
	}
	own, err := loadBuilds(tx, idsWithPrefix(tx.Bucket(bucketBuildsByRequest), u64(to)))
	if err != nil {
		return err
	}
	keep := !slices.ContainsFunc(own, func(mb ModuleBuild) bool {
		return mb.State == ModuleStateInit || mb.State == ModuleStateWait
	})
	for _, mb := range old {
		if mb.State != ModuleStateInit && mb.State != ModuleStateWait {
			continue
		}
		if keep {
			mb.RequestID = to
		} else {
			mb.State, mb.StateReason = ModuleStateGarbage, fmt.Sprintf("merged into build request %d after a restart", to)
		}
		if _, err := s.putModuleBuild(tx, mb); err != nil {
			return err
		}
	}
	return nil
}
