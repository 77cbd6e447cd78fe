package state

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RequestKind says what triggered a build request; it sets its priority.
type RequestKind string

const (
	// RequestModule: the module's own modulemd changed. Started before any
	// component-triggered request.
	RequestModule RequestKind = "module"
	// RequestComponent: a component included by the module changed.
	RequestComponent RequestKind = "component"
	// RequestCascade: a module stream it buildrequires got a new build
	// (CascadeFrom names it). Started after pushes, in the order queued,
	// which is the cascade's build order.
	RequestCascade RequestKind = "cascade"
)

func (k RequestKind) priority() byte {
	switch k {
	case RequestModule:
		return 0
	case RequestComponent:
		return 1
	}
	return 2
}

// RequestState is where a build request is in the queue.
type RequestState string

const (
	// RequestPending: queued. At most one per key; new requests for the key
	// merge into it. StartNext moves it to RequestRunning.
	RequestPending RequestState = "pending"
	// RequestRunning: the runner is building it. At most one per key.
	// FinishRequest moves it to RequestFinished.
	RequestRunning RequestState = "running"
	// RequestFinished: done; Result says how. Kept for redelivery decisions.
	RequestFinished RequestState = "finished"
)

// RequestResult is the outcome of a finished request.
type RequestResult string

const (
	ResultSucceeded RequestResult = "succeeded" // the module build reached done/ready
	ResultFailed    RequestResult = "failed"    // a component failed to build
	ResultErrored   RequestResult = "errored"   // infrastructure trouble, not the content's fault
	ResultCanceled  RequestResult = "canceled"  // canceled or superseded
)

func (r RequestResult) valid() bool {
	switch r {
	case ResultSucceeded, ResultFailed, ResultErrored, ResultCanceled:
		return true
	}
	return false
}

// ComponentCommit names the component commit that triggered a rebuild.
type ComponentCommit struct {
	Name   string `json:"name"`
	Ref    string `json:"ref"`
	Commit string `json:"commit"`
}

// BuildRequest asks for one build of a module stream. In the queue it is
// identified by Key ("module:stream"). Fields marked "assigned" are ignored on
// input to Enqueue.
type BuildRequest struct {
	ID     uint64       `json:"id"`  // assigned
	Key    string       `json:"key"` // assigned: Module + ":" + Stream
	Module string       `json:"module"`
	Stream string       `json:"stream"`
	Kind   RequestKind  `json:"kind"`
	State  RequestState `json:"state"` // assigned
	// Result and ResultReason are set by FinishRequest.
	Result       RequestResult `json:"result,omitempty"`
	ResultReason string        `json:"result_reason,omitempty"`
	// Reasons say why the build was asked for, one per merged request
	// (deduplicated, in arrival order).
	Reasons []string `json:"reasons,omitempty"`
	// DeliveryIDs and ContentKeys name the deliveries that asked for it.
	DeliveryIDs []uint64 `json:"delivery_ids,omitempty"`
	ContentKeys []string `json:"content_keys,omitempty"`
	// ModuleCommit is the module repo commit to build; on merge the newer
	// request's value wins when set.
	ModuleCommit string `json:"module_commit,omitempty"`
	// ModuleRepo is the module repository's clone URL; on merge the newer
	// request's value wins when set.
	ModuleRepo string `json:"module_repo,omitempty"`
	// ComponentCommits are the component commits that triggered it; on merge
	// they are united by component name, the newer commit winning.
	ComponentCommits []ComponentCommit `json:"component_commits,omitempty"`
	// CascadeFrom is the module build whose becoming ready queued this
	// request (0 for a push or an API call); it is kept when a push merges
	// in. A build of a cascaded request does not cascade again: the first
	// build's cascade already queued every stream downstream.
	CascadeFrom uint64 `json:"cascade_from,omitempty"`
	// Merges counts requests merged into this one after it was created.
	Merges     int       `json:"merges"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// RequestKey returns the queue key of a module stream.
func RequestKey(module, stream string) string { return module + ":" + stream }

// queueEntry is the per-key slot record: at most one running and one pending.
type queueEntry struct {
	Running uint64 `json:"running,omitempty"`
	Pending uint64 `json:"pending,omitempty"`
}

// EnqueueAction says what Enqueue did.
type EnqueueAction string

const (
	EnqueueCreated EnqueueAction = "created" // a new pending request
	EnqueueMerged  EnqueueAction = "merged"  // merged into the key's pending request
)

// EnqueueResult is Enqueue's answer: the pending request as stored now.
type EnqueueResult struct {
	Action  EnqueueAction
	Request *BuildRequest
}

// EnqueueSummary is the short form of an EnqueueResult kept in a delivery's
// Disposition.
type EnqueueSummary struct {
	RequestID uint64        `json:"request_id"`
	Key       string        `json:"key"`
	Action    EnqueueAction `json:"action"`
}

func (r EnqueueResult) summary() EnqueueSummary {
	return EnqueueSummary{RequestID: r.Request.ID, Key: r.Request.Key, Action: r.Action}
}

func validateRequest(op string, r *BuildRequest) error {
	switch {
	case r.Module == "":
		return &ValidationError{Op: op, Field: "BuildRequest.Module", Reason: "is required"}
	case r.Stream == "":
		return &ValidationError{Op: op, Field: "BuildRequest.Stream", Reason: "is required"}
	case strings.ContainsAny(r.Module, ":\x00"):
		return &ValidationError{Op: op, Field: "BuildRequest.Module", Reason: "must not contain ':' or NUL"}
	case strings.ContainsRune(r.Stream, 0):
		return &ValidationError{Op: op, Field: "BuildRequest.Stream", Reason: "must not contain NUL"}
	case r.Kind != RequestModule && r.Kind != RequestComponent && r.Kind != RequestCascade:
		return &ValidationError{Op: op, Field: "BuildRequest.Kind", Reason: fmt.Sprintf("must be %q, %q or %q, got %q", RequestModule, RequestComponent, RequestCascade, r.Kind)}
	}
	return nil
}

// Enqueue adds a build request for req.Module:req.Stream, keeping at most one
// running and one pending request per key, checked inside the transaction:
// if the key has a pending request, req merges into it (reasons, delivery ids
// and content keys united; ModuleCommit replaced by req's when set; component
// commits united by name, req's winning; kind raised to "module" if either
// is); otherwise a new pending request is created.
func (s *Store) Enqueue(ctx context.Context, req BuildRequest) (EnqueueResult, error) {
	if err := validateRequest("Enqueue", &req); err != nil {
		return EnqueueResult{}, err
	}
	var res EnqueueResult
	err := s.update(ctx, "Enqueue", func(tx *bolt.Tx) error {
		var err error
		res, err = s.enqueue(tx, req)
		return err
	})
	if err != nil {
		return EnqueueResult{}, wrap("Enqueue", err)
	}
	return res, nil
}

func pendingKey(kind RequestKind, id uint64) []byte {
	k := make([]byte, 9)
	k[0] = kind.priority()
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

func contentIndexKey(ck string, id uint64) []byte {
	return append(append([]byte(ck), 0), u64(id)...)
}

func requestSubject(id uint64) string { return "request/" + strconv.FormatUint(id, 10) }

func getRequest(tx *bolt.Tx, id uint64) (*BuildRequest, error) {
	var r BuildRequest
	ok, err := getJSON(tx.Bucket(bucketRequests), u64(id), &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &NotFoundError{Kind: "build request", Key: strconv.FormatUint(id, 10)}
	}
	return &r, nil
}

func getQueueEntry(tx *bolt.Tx, key string) (queueEntry, error) {
	var e queueEntry
	_, err := getJSON(tx.Bucket(bucketQueue), []byte(key), &e)
	return e, err
}

func putQueueEntry(tx *bolt.Tx, key string, e queueEntry) error {
	if e.Running == 0 && e.Pending == 0 {
		return tx.Bucket(bucketQueue).Delete([]byte(key))
	}
	return putJSON(tx.Bucket(bucketQueue), []byte(key), e)
}

func appendNew[T comparable](dst []T, src ...T) []T {
	for _, v := range src {
		if !slices.Contains(dst, v) {
			dst = append(dst, v)
		}
	}
	return dst
}

func (s *Store) enqueue(tx *bolt.Tx, in BuildRequest) (EnqueueResult, error) {
	return s.enqueueTx(tx, in, false)
}

// enqueueTx is enqueue; submit is true for EnqueueWithBuild, which updates
// the pending request's queued build records itself.
func (s *Store) enqueueTx(tx *bolt.Tx, in BuildRequest, submit bool) (EnqueueResult, error) {
	now := s.now().UTC()
	key := RequestKey(in.Module, in.Stream)
	entry, err := getQueueEntry(tx, key)
	if err != nil {
		return EnqueueResult{}, err
	}
	rb := tx.Bucket(bucketRequests)
	if entry.Pending != 0 {
		r, err := getRequest(tx, entry.Pending)
		if err != nil {
			return EnqueueResult{}, err
		}
		oldPrio := pendingKey(r.Kind, r.ID)
		r.Reasons = appendNew(r.Reasons, in.Reasons...)
		r.DeliveryIDs = appendNew(r.DeliveryIDs, in.DeliveryIDs...)
		newCKs := slices.DeleteFunc(slices.Clone(in.ContentKeys), func(ck string) bool { return slices.Contains(r.ContentKeys, ck) })
		r.ContentKeys = appendNew(r.ContentKeys, newCKs...)
		if in.ModuleCommit != "" {
			r.ModuleCommit = in.ModuleCommit
		}
		if in.ModuleRepo != "" {
			r.ModuleRepo = in.ModuleRepo
		}
		for _, cc := range in.ComponentCommits {
			if i := slices.IndexFunc(r.ComponentCommits, func(o ComponentCommit) bool { return o.Name == cc.Name }); i >= 0 {
				r.ComponentCommits[i] = cc
			} else {
				r.ComponentCommits = append(r.ComponentCommits, cc)
			}
		}
		if in.Kind.priority() < r.Kind.priority() {
			r.Kind = in.Kind
		}
		if r.CascadeFrom == 0 {
			r.CascadeFrom = in.CascadeFrom
		}
		r.Merges++
		r.UpdatedAt = now
		if err := putJSON(rb, u64(r.ID), r); err != nil {
			return EnqueueResult{}, err
		}
		if newPrio := pendingKey(r.Kind, r.ID); string(newPrio) != string(oldPrio) {
			qp := tx.Bucket(bucketQueuePending)
			if err := qp.Delete(oldPrio); err != nil {
				return EnqueueResult{}, err
			}
			if err := qp.Put(newPrio, []byte(key)); err != nil {
				return EnqueueResult{}, err
			}
		}
		for _, ck := range newCKs {
			if err := tx.Bucket(bucketRequestsContent).Put(contentIndexKey(ck, r.ID), nil); err != nil {
				return EnqueueResult{}, err
			}
		}
		if !submit {
			if err := s.queuedBuildsMerged(tx, r); err != nil {
				return EnqueueResult{}, err
			}
		}
		if err := s.appendEvent(tx, EventRequestMerged, requestSubject(r.ID), map[string]any{
			"key": key, "reasons": in.Reasons, "delivery_ids": in.DeliveryIDs, "module_commit": r.ModuleCommit,
		}); err != nil {
			return EnqueueResult{}, err
		}
		if err := s.emitStatuses(tx, StatusEvent{Kind: StatusEventEnqueued, Request: r}); err != nil {
			return EnqueueResult{}, err
		}
		return EnqueueResult{Action: EnqueueMerged, Request: r}, nil
	}

	id, err := rb.NextSequence()
	if err != nil {
		return EnqueueResult{}, err
	}
	r := &BuildRequest{
		ID: id, Key: key, Module: in.Module, Stream: in.Stream, Kind: in.Kind, State: RequestPending,
		Reasons: appendNew(nil, in.Reasons...), DeliveryIDs: appendNew(nil, in.DeliveryIDs...),
		ContentKeys: appendNew(nil, in.ContentKeys...), ModuleCommit: in.ModuleCommit, ModuleRepo: in.ModuleRepo,
		CascadeFrom: in.CascadeFrom, CreatedAt: now, UpdatedAt: now,
	}
	for _, cc := range in.ComponentCommits {
		if i := slices.IndexFunc(r.ComponentCommits, func(o ComponentCommit) bool { return o.Name == cc.Name }); i >= 0 {
			r.ComponentCommits[i] = cc
		} else {
			r.ComponentCommits = append(r.ComponentCommits, cc)
		}
	}
	if err := putJSON(rb, u64(id), r); err != nil {
		return EnqueueResult{}, err
	}
	entry.Pending = id
	if err := putQueueEntry(tx, key, entry); err != nil {
		return EnqueueResult{}, err
	}
	if err := tx.Bucket(bucketQueuePending).Put(pendingKey(r.Kind, id), []byte(key)); err != nil {
		return EnqueueResult{}, err
	}
	for _, ck := range r.ContentKeys {
		if err := tx.Bucket(bucketRequestsContent).Put(contentIndexKey(ck, id), nil); err != nil {
			return EnqueueResult{}, err
		}
	}
	if err := s.appendEvent(tx, EventRequestCreated, requestSubject(id), map[string]any{
		"key": key, "kind": r.Kind, "reasons": r.Reasons, "delivery_ids": r.DeliveryIDs, "module_commit": r.ModuleCommit,
	}); err != nil {
		return EnqueueResult{}, err
	}
	if err := s.emitStatuses(tx, StatusEvent{Kind: StatusEventEnqueued, Request: r}); err != nil {
		return EnqueueResult{}, err
	}
	return EnqueueResult{Action: EnqueueCreated, Request: r}, nil
}

// StartNext moves the highest-priority startable pending request to running
// and returns it: "module" requests before "component" ones, oldest first
// within a kind, skipping keys that already have a running request and keys
// that are paused (SetPaused; nothing starts while PauseAll is set). It
// returns ErrNoJob when nothing may start. Capacity limits are the caller's
// business: call StartNext only when a slot is free.
func (s *Store) StartNext(ctx context.Context) (*BuildRequest, error) {
	var out *BuildRequest
	err := s.update(ctx, "StartNext", func(tx *bolt.Tx) error {
		paused := tx.Bucket(bucketPaused) // created by the first SetPaused
		c := tx.Bucket(bucketQueuePending).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			key := string(v)
			if paused != nil && (paused.Get([]byte(PauseAll)) != nil || paused.Get([]byte(key)) != nil) {
				continue
			}
			entry, err := getQueueEntry(tx, key)
			if err != nil {
				return err
			}
			if entry.Running != 0 {
				continue
			}
			r, err := getRequest(tx, binary.BigEndian.Uint64(k[1:]))
			if err != nil {
				return err
			}
			now := s.now().UTC()
			r.State, r.StartedAt, r.UpdatedAt = RequestRunning, now, now
			if err := putJSON(tx.Bucket(bucketRequests), u64(r.ID), r); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
			entry.Running, entry.Pending = r.ID, 0
			if err := putQueueEntry(tx, key, entry); err != nil {
				return err
			}
			// The request's build record is made in this same
			// transaction (a submission made it already), so no crash
			// leaves a running request without a build.
			if len(idsWithPrefix(tx.Bucket(bucketBuildsByRequest), u64(r.ID))) == 0 {
				var o RequestOptions
				if b := tx.Bucket(bucketRequestOpts); b != nil {
					if _, err := getJSON(b, u64(r.ID), &o); err != nil {
						return err
					}
				}
				if _, err := s.putModuleBuild(tx, ModuleBuild{
					Name: r.Module, Stream: r.Stream, RequestID: r.ID, State: ModuleStateInit,
					StateReason: strings.Join(r.Reasons, "; "), ModuleRepo: r.ModuleRepo,
					RebuildStrategy: o.RebuildStrategy, Owner: cmp.Or(o.Owner, "webhook"), Scratch: o.Scratch,
				}); err != nil {
					return err
				}
			}
			out = r
			return s.appendEvent(tx, EventRequestStarted, requestSubject(r.ID), map[string]any{"key": key, "kind": r.Kind})
		}
		return ErrNoJob
	})
	if err != nil {
		return nil, wrap("StartNext", err)
	}
	s.log.Debug("build request started", slog.Uint64("request", out.ID), slog.String("key", out.Key))
	return out, nil
}

// FinishRequest ends the running request of key with result and a reason for
// people, and returns it. *NotFoundError if key has no running request. The
// key's pending request, if any, becomes startable.
func (s *Store) FinishRequest(ctx context.Context, key string, result RequestResult, reason string) (*BuildRequest, error) {
	if !result.valid() {
		return nil, &ValidationError{Op: "FinishRequest", Field: "result", Reason: fmt.Sprintf("unknown result %q", result)}
	}
	var out *BuildRequest
	err := s.update(ctx, "FinishRequest", func(tx *bolt.Tx) error {
		var err error
		out, err = s.finishRequest(tx, key, result, reason)
		return err
	})
	if err != nil {
		return nil, wrap("FinishRequest", err)
	}
	return out, nil
}

// Request returns the build request with the given ID (*NotFoundError if none).
func (s *Store) Request(ctx context.Context, id uint64) (*BuildRequest, error) {
	var out *BuildRequest
	err := s.view(ctx, "Request", func(tx *bolt.Tx) error {
		var err error
		out, err = getRequest(tx, id)
		return err
	})
	return out, wrap("Request", err)
}

// QueueSlot returns the running and pending request of key (nil when absent).
func (s *Store) QueueSlot(ctx context.Context, key string) (running, pending *BuildRequest, err error) {
	err = s.view(ctx, "QueueSlot", func(tx *bolt.Tx) error {
		e, err := getQueueEntry(tx, key)
		if err != nil {
			return err
		}
		if e.Running != 0 {
			if running, err = getRequest(tx, e.Running); err != nil {
				return err
			}
		}
		if e.Pending != 0 {
			if pending, err = getRequest(tx, e.Pending); err != nil {
				return err
			}
		}
		return nil
	})
	return running, pending, wrap("QueueSlot", err)
}

// RequestsForContentKey returns every build request (any state) that a
// delivery with content key ck asked for or merged into, oldest first.
func (s *Store) RequestsForContentKey(ctx context.Context, ck string) ([]BuildRequest, error) {
	var out []BuildRequest
	err := s.view(ctx, "RequestsForContentKey", func(tx *bolt.Tx) error {
		var err error
		out, err = requestsForContentKey(tx, ck)
		return err
	})
	return out, wrap("RequestsForContentKey", err)
}

func requestsForContentKey(tx *bolt.Tx, ck string) ([]BuildRequest, error) {
	var out []BuildRequest
	prefix := append([]byte(ck), 0)
	c := tx.Bucket(bucketRequestsContent).Cursor()
	for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = c.Next() {
		r, err := getRequest(tx, binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

// RedeliveryAction tells the planner what to do with a delivery whose content
// key was seen before.
type RedeliveryAction string

const (
	// RedeliveryPlan: no build request was ever made for this content; plan
	// it as a new delivery.
	RedeliveryPlan RedeliveryAction = "plan"
	// RedeliveryInProgress: a request for it is pending or running; make
	// nothing new (re-post pending statuses).
	RedeliveryInProgress RedeliveryAction = "in-progress"
	// RedeliveryReport: every request for it succeeded; re-post their
	// statuses (Store.ReReport), build nothing.
	RedeliveryReport RedeliveryAction = "report"
	// RedeliveryRebuild: some request failed, errored or was canceled;
	// enqueue new requests for those keys (Requests lists them).
	RedeliveryRebuild RedeliveryAction = "rebuild"
)

// Redelivery is RedeliveryDecision's answer. Requests holds, per queue key,
// the newest request for the content key that the action applies to.
type Redelivery struct {
	Action   RedeliveryAction
	Requests []BuildRequest
}

// RedeliveryDecision implements "redelivery = make sure this head is built and
// reported" for a delivery with content key ck. Per queue key only the newest
// request made for ck counts (a failed build that was rebuilt successfully is
// "succeeded"). Precedence: any pending/running → InProgress; else any not
// succeeded → Rebuild (those); else Report; no requests at all → Plan.
func (s *Store) RedeliveryDecision(ctx context.Context, ck string) (Redelivery, error) {
	var out Redelivery
	err := s.view(ctx, "RedeliveryDecision", func(tx *bolt.Tx) error {
		reqs, err := requestsForContentKey(tx, ck)
		if err != nil {
			return err
		}
		latest := map[string]BuildRequest{}
		var keys []string
		for _, r := range reqs { // ascending ID: later wins
			if _, ok := latest[r.Key]; !ok {
				keys = append(keys, r.Key)
			}
			latest[r.Key] = r
		}
		var active, failed, ok []BuildRequest
		for _, k := range keys {
			r := latest[k]
			switch {
			case r.State != RequestFinished:
				active = append(active, r)
			case r.Result != ResultSucceeded:
				failed = append(failed, r)
			default:
				ok = append(ok, r)
			}
		}
		switch {
		case len(keys) == 0:
			out = Redelivery{Action: RedeliveryPlan}
		case len(active) > 0:
			out = Redelivery{Action: RedeliveryInProgress, Requests: active}
		case len(failed) > 0:
			out = Redelivery{Action: RedeliveryRebuild, Requests: failed}
		default:
			out = Redelivery{Action: RedeliveryReport, Requests: ok}
		}
		return nil
	})
	return out, wrap("RedeliveryDecision", err)
}

// finishRequest is FinishRequest inside tx.
func (s *Store) finishRequest(tx *bolt.Tx, key string, result RequestResult, reason string) (*BuildRequest, error) {
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
	r.State, r.Result, r.ResultReason, r.FinishedAt, r.UpdatedAt = RequestFinished, result, reason, now, now
	if err := putJSON(tx.Bucket(bucketRequests), u64(r.ID), r); err != nil {
		return nil, err
	}
	entry.Running = 0
	if err := putQueueEntry(tx, key, entry); err != nil {
		return nil, err
	}
	return r, s.appendEvent(tx, EventRequestFinished, requestSubject(r.ID), map[string]any{"key": key, "result": result, "reason": reason})
}
