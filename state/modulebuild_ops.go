package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// UpdateComponentBuild replaces the component with c.Key in module build id,
// in one transaction, leaving every other field as stored (so a concurrent
// RequestCancel is not overwritten). *NotFoundError if the build or the
// component does not exist.
func (s *Store) UpdateComponentBuild(ctx context.Context, id uint64, c ComponentBuild) error {
	err := s.update(ctx, "UpdateComponentBuild", func(tx *bolt.Tx) error {
		mb, err := getModuleBuild(tx, id)
		if err != nil {
			return err
		}
		for i := range mb.Components {
			if mb.Components[i].Key == c.Key {
				var before *ModuleBuild
				if s.opts.StatusesFor != nil {
					b := *mb
					b.Components = slices.Clone(mb.Components)
					before = &b
				}
				refs := buildRefs(mb)
				mb.Components[i] = c
				mb.UpdatedAt = s.now().UTC()
				if err := setBuildRefs(tx, id, refs, buildRefs(mb)); err != nil {
					return err
				}
				if err := s.appendEvent(tx, EventComponentBuildState, "modulebuild/"+strconv.FormatUint(id, 10), map[string]any{
					"component": c.Key, "state": c.State, "reason": c.Reason, "nvr": c.NVR,
				}); err != nil {
					return err
				}
				if err := putJSON(tx.Bucket(bucketModuleBuilds), u64(id), mb); err != nil {
					return err
				}
				return s.emitStatuses(tx, StatusEvent{Kind: StatusEventBatchProgress, Before: before, After: mb})
			}
		}
		return &NotFoundError{Kind: "component build", Key: strconv.FormatUint(id, 10) + "/" + c.Key}
	})
	return wrap("UpdateComponentBuild", err)
}

// ModuleBuilds returns the module builds for which match returns true (all
// when match is nil), newest first. It scans every build: fine for the
// thousands of builds one rida holds; an index comes when it is not.
func (s *Store) ModuleBuilds(ctx context.Context, match func(*ModuleBuild) bool) ([]ModuleBuild, error) {
	var out []ModuleBuild
	err := s.view(ctx, "ModuleBuilds", func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketModuleBuilds).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var mb ModuleBuild
			if err := json.Unmarshal(v, &mb); err != nil {
				return fmt.Errorf("decode module build %x: %w", k, err)
			}
			if match == nil || match(&mb) {
				out = append(out, mb)
			}
		}
		return nil
	})
	return out, wrap("ModuleBuilds", err)
}

// RequestCancel records that who asked to stop module build id, the first
// phase of a cancel (the runner then stops the backend's work). It returns
// the build as stored. A build already in a terminal state is left alone and
// a *ValidationError says so.
func (s *Store) RequestCancel(ctx context.Context, id uint64, who string) (*ModuleBuild, error) {
	var out *ModuleBuild
	err := s.update(ctx, "RequestCancel", func(tx *bolt.Tx) error {
		mb, err := getModuleBuild(tx, id)
		if err != nil {
			return err
		}
		if mb.State.Terminal() {
			return &ValidationError{Op: "RequestCancel", Field: "state",
				Reason: fmt.Sprintf("build %d is %s; only builds in init, wait or build can be cancelled", id, mb.State)}
		}
		if mb.CancelRequestedBy == "" {
			mb.CancelRequestedBy = who
			mb.UpdatedAt = s.now().UTC()
			if err := s.appendEvent(tx, EventModuleBuildCancel, "modulebuild/"+strconv.FormatUint(id, 10), map[string]any{"by": who}); err != nil {
				return err
			}
			if err := putJSON(tx.Bucket(bucketModuleBuilds), u64(id), mb); err != nil {
				return err
			}
		}
		out = mb
		return nil
	})
	return out, wrap("RequestCancel", err)
}

// RequeueRunning puts the running request of key back in the queue, for a
// runner that restarted before the request's build got past wait. If the key
// already has a pending request, the running one's reasons, deliveries and
// component commits are merged into it and the running one is finished as
// canceled with a reason naming the pending one.
func (s *Store) RequeueRunning(ctx context.Context, key string) (*BuildRequest, error) {
	var out *BuildRequest
	err := s.update(ctx, "RequeueRunning", func(tx *bolt.Tx) error {
		var err error
		out, err = s.requeueRunning(tx, key)
		return err
	})
	return out, wrap("RequeueRunning", err)
}

// requeueRunning is RequeueRunning inside tx.
func (s *Store) requeueRunning(tx *bolt.Tx, key string) (*BuildRequest, error) {
	entry, err := getQueueEntry(tx, key)
	if err != nil {
		return nil, err
	}
	if entry.Running == 0 {
		return nil, &NotFoundError{Kind: "running request", Key: key}
	}
	r, err := getRequest(tx, entry.Running)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	if entry.Pending == 0 {
		r.State, r.StartedAt, r.UpdatedAt = RequestPending, time.Time{}, now
		if err := putJSON(tx.Bucket(bucketRequests), u64(r.ID), r); err != nil {
			return nil, err
		}
		if err := tx.Bucket(bucketQueuePending).Put(pendingKey(r.Kind, r.ID), []byte(key)); err != nil {
			return nil, err
		}
		entry.Running, entry.Pending = 0, r.ID
		if err := putQueueEntry(tx, key, entry); err != nil {
			return nil, err
		}
		return r, s.appendEvent(tx, EventRequestRequeued, requestSubject(r.ID), map[string]any{"key": key})
	}
	merged, err := s.enqueue(tx, BuildRequest{
		Module: r.Module, Stream: r.Stream, Kind: r.Kind, Reasons: r.Reasons, DeliveryIDs: r.DeliveryIDs,
		ContentKeys: r.ContentKeys, ComponentCommits: r.ComponentCommits, ModuleRepo: r.ModuleRepo, CascadeFrom: r.CascadeFrom,
	})
	if err != nil {
		return nil, err
	}
	r.State, r.Result, r.FinishedAt, r.UpdatedAt = RequestFinished, ResultCanceled, now, now
	r.ResultReason = fmt.Sprintf("requeued into request %d after a restart", merged.Request.ID)
	if err := putJSON(tx.Bucket(bucketRequests), u64(r.ID), r); err != nil {
		return nil, err
	}
	if err := s.moveQueuedBuilds(tx, r.ID, merged.Request.ID); err != nil {
		return nil, err
	}
	entry, err = getQueueEntry(tx, key)
	if err != nil {
		return nil, err
	}
	entry.Running = 0
	return merged.Request, putQueueEntry(tx, key, entry)
}
