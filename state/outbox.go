package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The status outbox holds the commit statuses rida owes the forges, one
// entry per (forge, repo, sha, context): the forge keeps only the last status
// per such key, and so does the outbox (last write wins). Entries are written
// by the Options.StatusesFor hook in the same transaction as the state change
// that causes them (Enqueue, PutModuleBuild, UpdateComponentBuild), so a
// status is never lost between "the build failed" and "tell the forge", and a
// status is never owed for a change that did not commit. A worker (package
// statuses) posts due entries and records each outcome with RecordPost.
//
// Layout: bucket status_outbox maps OutboxKey → OutboxEntry (JSON); bucket
// status_outbox_due holds one key per entry that is not Done:
// NextAttempt unix-nanoseconds (8 bytes BE) | OutboxKey → nil, so due entries
// are read in time order without scanning the whole outbox.

// StatusEventKind says which state change a StatusEvent describes.
type StatusEventKind string

const (
	// StatusEventEnqueued: Enqueue created a build request or merged one
	// into the pending request (Request is the request as stored now).
	StatusEventEnqueued StatusEventKind = "request-enqueued"
	// StatusEventBuildState: PutModuleBuild stored a module build (Before
	// is nil for a new build). Called on every put, whether or not the state
	// changed.
	StatusEventBuildState StatusEventKind = "build-state"
	// StatusEventBatchProgress: UpdateComponentBuild changed one component
	// of a module build (Before and After differ in that component).
	StatusEventBatchProgress StatusEventKind = "component-batch-progress"
)

// StatusEvent is what the Options.StatusesFor hook sees: one state change,
// inside its transaction. The pointers are the store's own copies: the hook
// must not modify them or keep them after it returns.
type StatusEvent struct {
	Kind StatusEventKind
	// Request is the build request concerned: the enqueued request, or the
	// one the module build serves (nil when the build has no RequestID or
	// the request is gone).
	Request *BuildRequest
	// Before and After are the module build before and after the change;
	// both nil for StatusEventEnqueued, Before nil for a new build.
	Before, After *ModuleBuild
	// Deliveries are Request's deliveries (Request.DeliveryIDs order),
	// read in the same transaction; deliveries that no longer exist are
	// left out.
	Deliveries []Delivery
	// Siblings are the other module builds of After's request (a packager
	// v3 module or stream expansion gives one build per context), read in
	// the same transaction; filled only when After reached a terminal
	// state, so a request's final status can speak for all of its builds.
	Siblings []ModuleBuild
}

// StatusUpdate is one commit status the hook wants on the forge. State is
// one of the forge package's states ("pending", "running", "success",
// "failure", "error", "canceled"); the store does not interpret it.
type StatusUpdate struct {
	Forge       string `json:"forge"`
	Repo        string `json:"repo"`
	SHA         string `json:"sha"`
	Context     string `json:"context"`
	State       string `json:"state"`
	Description string `json:"description,omitempty"`
	TargetURL   string `json:"target_url,omitempty"`
}

// Key returns the outbox key of u.
func (u StatusUpdate) Key() string { return OutboxKey(u.Forge, u.Repo, u.SHA, u.Context) }

// OutboxKey returns the outbox key of a status: forge, repo, sha and context
// joined by NUL.
func OutboxKey(forge, repo, sha, context string) string {
	return forge + "\x00" + repo + "\x00" + sha + "\x00" + context
}

// PostedStatus is what a post sent to the forge.
type PostedStatus struct {
	State       string    `json:"state"`
	Description string    `json:"description,omitempty"`
	TargetURL   string    `json:"target_url,omitempty"`
	At          time.Time `json:"at"`
}

// OutboxEntry is the status owed for one (forge, repo, sha, context) and
// what became of the posts so far.
type OutboxEntry struct {
	Forge       string `json:"forge"`
	Repo        string `json:"repo"`
	SHA         string `json:"sha"`
	Context     string `json:"context"`
	State       string `json:"state"`
	Description string `json:"description,omitempty"`
	TargetURL   string `json:"target_url,omitempty"`
	// Version increases by one each time State, Description or TargetURL
	// change. RecordPost compares it to the version that was posted, so a
	// post that raced with a newer update never marks the newer one sent.
	Version   uint64    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the content last changed (the watchdog measures
	// how long a status has been pending from it).
	UpdatedAt time.Time `json:"updated_at"`
	// Attempts counts failed posts since the last successful one.
	Attempts int `json:"attempts"`
	// NextAttempt is when the entry is due (meaningful while !Done).
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// LastPosted is what the forge was last sent successfully, nil if
	// nothing yet.
	LastPosted *PostedStatus `json:"last_posted,omitempty"`
	// LastError is the last failed post's error ("" after a success).
	LastError string `json:"last_error,omitempty"`
	// Done: nothing to post (the forge shows the current content, or the
	// forge refused it for good: see Failed).
	Done bool `json:"done"`
	// Failed: the forge refused the current content permanently (bad
	// token, unknown repository or commit, ...); LastError says why. It is
	// not retried until the content changes.
	Failed bool `json:"failed,omitempty"`
}

// Key returns the entry's outbox key.
func (e *OutboxEntry) Key() string { return OutboxKey(e.Forge, e.Repo, e.SHA, e.Context) }

// Update returns the entry's current content as a StatusUpdate.
func (e *OutboxEntry) Update() StatusUpdate {
	return StatusUpdate{Forge: e.Forge, Repo: e.Repo, SHA: e.SHA, Context: e.Context, State: e.State, Description: e.Description, TargetURL: e.TargetURL}
}

// postedEquals reports whether the forge already shows the entry's content.
// The target URL alone does not count: a status whose state and
// description the forge shows is not posted again just to move its link
// (from the delivery's page to the build's, as a queued build gets its
// record), so every state change is one post.
func (e *OutboxEntry) postedEquals() bool {
	p := e.LastPosted
	return p != nil && p.State == e.State && p.Description == e.Description
}

// PostResult is the outcome of one post, for RecordPost.
type PostResult struct {
	// Version is the entry version that was posted.
	Version uint64
	// Posted is what was sent and when.
	Posted PostedStatus
	// Err is the error, "" on success.
	Err string
	// Retry (with Err) asks to try again at NextAttempt; without Retry the
	// error is permanent.
	Retry       bool
	NextAttempt time.Time
}

// Event kinds of the outbox.
const (
	// EventStatusPosted: a commit status was posted (Subject "status/<forge>/<repo>@<sha7>").
	EventStatusPosted = "status.posted"
	// EventStatusFailed: posting a commit status failed (retry or not, in Data).
	EventStatusFailed = "status.failed"
	// EventStatusExpired: the watchdog replaced a status left pending too long.
	EventStatusExpired = "status.expired"
)

var bucketStatusOutboxDue = []byte("status_outbox_due") // next attempt ns BE | outbox key -> nil

func validateStatusUpdate(op string, u *StatusUpdate) error {
	for _, f := range []struct{ name, v string }{
		{"Forge", u.Forge}, {"Repo", u.Repo}, {"SHA", u.SHA}, {"Context", u.Context}, {"State", u.State},
	} {
		if f.v == "" {
			return &ValidationError{Op: op, Field: "StatusUpdate." + f.name, Reason: "is required"}
		}
		if strings.ContainsRune(f.v, 0) {
			return &ValidationError{Op: op, Field: "StatusUpdate." + f.name, Reason: "must not contain NUL"}
		}
	}
	return nil
}

func dueKey(at time.Time, key string) []byte {
	ns := at.UnixNano()
	if ns < 0 || at.IsZero() {
		ns = 0
	}
	return append(u64(uint64(ns)), key...)
}

func getOutboxEntry(tx *bolt.Tx, key string) (*OutboxEntry, error) {
	var e OutboxEntry
	ok, err := getJSON(tx.Bucket(bucketStatusOutbox), []byte(key), &e)
	if err != nil || !ok {
		return nil, err
	}
	return &e, nil
}

// putOutboxEntry stores e and moves its due-index key from old (the entry as
// it was, nil if new) to its current NextAttempt.
func putOutboxEntry(tx *bolt.Tx, old, e *OutboxEntry) error {
	due := tx.Bucket(bucketStatusOutboxDue)
	key := e.Key()
	if old != nil && !old.Done {
		if err := due.Delete(dueKey(old.NextAttempt, key)); err != nil {
			return err
		}
	}
	if !e.Done {
		if err := due.Put(dueKey(e.NextAttempt, key), nil); err != nil {
			return err
		}
	}
	return putJSON(tx.Bucket(bucketStatusOutbox), []byte(key), e)
}

// upsertStatus applies u with last-write-wins and reports whether the entry
// became due. Same content as stored: nothing changes. New content equal to
// what the forge was last sent: stored, and Done without a post.
func (s *Store) upsertStatus(tx *bolt.Tx, u StatusUpdate) (*OutboxEntry, bool, error) {
	return s.upsertStatusForce(tx, u, false)
}

// upsertStatusForce is upsertStatus; with force the entry is posted again
// even when the forge was already sent the same content (a redelivery's
// re-report, the one deliberate repeat).
func (s *Store) upsertStatusForce(tx *bolt.Tx, u StatusUpdate, force bool) (*OutboxEntry, bool, error) {
	now := s.now().UTC()
	old, err := getOutboxEntry(tx, u.Key())
	if err != nil {
		return nil, false, err
	}
	var e OutboxEntry
	if old != nil {
		if !force && old.State == u.State && old.Description == u.Description && old.TargetURL == u.TargetURL {
			return old, false, nil
		}
		e = *old
	} else {
		e = OutboxEntry{Forge: u.Forge, Repo: u.Repo, SHA: u.SHA, Context: u.Context, CreatedAt: now}
	}
	e.State, e.Description, e.TargetURL = u.State, u.Description, u.TargetURL
	e.Version++
	e.UpdatedAt = now
	e.Failed = false
	switch {
	case force:
		e.Done, e.NextAttempt, e.Attempts = false, now, 0
	case e.postedEquals():
		e.Done = true
	case old != nil && !old.Done && old.NextAttempt.After(now):
		// Backing off after failures: keep the delay, post the new content then.
		e.Done = false
	default:
		e.Done, e.NextAttempt = false, now
		if old != nil && old.Failed {
			e.Attempts = 0
		}
	}
	if err := putOutboxEntry(tx, old, &e); err != nil {
		return nil, false, err
	}
	return &e, !e.Done, nil
}

// emitStatuses runs the StatusesFor hook for ev inside tx and upserts what it
// returns. Invalid updates are logged and skipped: a reporting mistake must
// not undo the state change. When something became due, OnStatusQueued runs
// after the commit.
func (s *Store) emitStatuses(tx *bolt.Tx, ev StatusEvent) error {
	if s.opts.StatusesFor == nil {
		return nil
	}
	if ev.Request == nil && ev.After != nil && ev.After.RequestID != 0 {
		r, err := getRequest(tx, ev.After.RequestID)
		if err == nil {
			ev.Request = r
		} else if !isNotFound(err) {
			return err
		}
	}
	if ev.After != nil && ev.After.RequestID != 0 && ev.After.State.Terminal() {
		for _, id := range idsWithPrefix(tx.Bucket(bucketBuildsByRequest), u64(ev.After.RequestID)) {
			if id == ev.After.ID {
				continue
			}
			o, err := getModuleBuild(tx, id)
			if err != nil {
				return err
			}
			ev.Siblings = append(ev.Siblings, *o)
		}
	}
	if ev.Request != nil {
		for _, id := range ev.Request.DeliveryIDs {
			d, err := getDelivery(tx, id)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			ev.Deliveries = append(ev.Deliveries, *d)
		}
	}
	queued := false
	for _, u := range s.opts.StatusesFor(ev) {
		if err := validateStatusUpdate("StatusesFor", &u); err != nil {
			s.log.Warn("state: status update skipped", slog.String("event", string(ev.Kind)), slog.Any("err", err))
			continue
		}
		_, due, err := s.upsertStatus(tx, u)
		if err != nil {
			return fmt.Errorf("status outbox: %w", err)
		}
		queued = queued || due
	}
	if queued && s.opts.OnStatusQueued != nil {
		tx.OnCommit(s.opts.OnStatusQueued)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

// UpsertStatus puts u into the outbox outside any other change (last write
// wins; content equal to what the forge was last sent is not posted again)
// and returns the entry as stored. The status hook does the same inside the
// transactions of Enqueue, PutModuleBuild and UpdateComponentBuild; this is
// for re-posting (redelivery of a built commit) and tests.
func (s *Store) UpsertStatus(ctx context.Context, u StatusUpdate) (*OutboxEntry, error) {
	if err := validateStatusUpdate("UpsertStatus", &u); err != nil {
		return nil, err
	}
	var out *OutboxEntry
	err := s.update(ctx, "UpsertStatus", func(tx *bolt.Tx) error {
		e, due, err := s.upsertStatus(tx, u)
		out = e
		if err == nil && due && s.opts.OnStatusQueued != nil {
			tx.OnCommit(s.opts.OnStatusQueued)
		}
		return err
	})
	return out, wrap("UpsertStatus", err)
}

// OutboxEntry returns the entry for key (see OutboxKey); *NotFoundError if
// none.
func (s *Store) OutboxEntry(ctx context.Context, key string) (*OutboxEntry, error) {
	var out *OutboxEntry
	err := s.view(ctx, "OutboxEntry", func(tx *bolt.Tx) error {
		e, err := getOutboxEntry(tx, key)
		if err == nil && e == nil {
			err = &NotFoundError{Kind: "status outbox entry", Key: strings.ReplaceAll(key, "\x00", " ")}
		}
		out = e
		return err
	})
	return out, wrap("OutboxEntry", err)
}

// OutboxEntries returns every outbox entry for which match returns true (all
// when match is nil), in key order. It scans the whole outbox.
func (s *Store) OutboxEntries(ctx context.Context, match func(*OutboxEntry) bool) ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := s.view(ctx, "OutboxEntries", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStatusOutbox).ForEach(func(k, v []byte) error {
			var e OutboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode outbox entry %q: %w", k, err)
			}
			if match == nil || match(&e) {
				out = append(out, e)
			}
			return nil
		})
	})
	return out, wrap("OutboxEntries", err)
}

// DueStatuses returns up to limit entries that are not Done and whose
// NextAttempt is at or before now, earliest first (ties in key order).
// limit <= 0 means 100. It is DueStatusesBy with no per-forge budget.
func (s *Store) DueStatuses(ctx context.Context, now time.Time, limit int) ([]OutboxEntry, error) {
	return s.DueStatusesBy(ctx, now, limit, nil)
}

// DueStatusesBy is DueStatuses with a per-forge budget, so that one forge's
// backlog cannot hide another forge's due entries: budget(forge) is the most
// entries of that forge to return (0 or less leaves the forge out, e.g.
// while it rate-limits rida); nil means no per-forge bound. The scan walks
// the due index past the entries it leaves out reading keys only (an
// entry's key starts with its forge), so a skipped backlog costs no
// decoding. budget is called at most once per forge, inside the read
// transaction: it must not call the store.
func (s *Store) DueStatusesBy(ctx context.Context, now time.Time, limit int, budget func(forge string) int) ([]OutboxEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []OutboxEntry
	left := map[string]int{}
	err := s.view(ctx, "DueStatuses", func(tx *bolt.Tx) error {
		end := dueKey(now, "")
		c := tx.Bucket(bucketStatusOutboxDue).Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit && bytes.Compare(k[:8], end) <= 0; k, _ = c.Next() {
			if budget != nil {
				f, _, _ := bytes.Cut(k[8:], []byte{0})
				n, seen := left[string(f)]
				if !seen {
					n = budget(string(f))
				}
				if n <= 0 {
					left[string(f)] = 0
					continue
				}
				left[string(f)] = n - 1
			}
			e, err := getOutboxEntry(tx, string(k[8:]))
			if err != nil {
				return err
			}
			if e == nil {
				return fmt.Errorf("due index names missing outbox entry %q", k[8:])
			}
			out = append(out, *e)
		}
		return nil
	})
	return out, wrap("DueStatuses", err)
}

// NextStatusDue returns the earliest NextAttempt of the entries that are not
// Done; ok is false when nothing is owed.
func (s *Store) NextStatusDue(ctx context.Context) (at time.Time, ok bool, err error) {
	err = s.view(ctx, "NextStatusDue", func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketStatusOutboxDue).Cursor().First()
		if k != nil {
			at, ok = time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))).UTC(), true
		}
		return nil
	})
	return at, ok, wrap("NextStatusDue", err)
}

// RecordPost records the outcome of posting version res.Version of the entry
// at key, with an event (status.posted or status.failed), and returns the
// entry as stored:
//   - success: LastPosted is set and the entry is Done unless its content
//     changed meanwhile (then the newer content stays due: last write wins,
//     and a stale state is never taken for the current one);
//   - retryable error: Attempts+1, due again at res.NextAttempt;
//   - permanent error: Done and Failed with LastError, unless newer content
//     arrived meanwhile (that is still posted).
//
// *NotFoundError if there is no entry at key.
func (s *Store) RecordPost(ctx context.Context, key string, res PostResult) (*OutboxEntry, error) {
	var out *OutboxEntry
	err := s.update(ctx, "RecordPost", func(tx *bolt.Tx) error {
		old, err := getOutboxEntry(tx, key)
		if err != nil {
			return err
		}
		if old == nil {
			return &NotFoundError{Kind: "status outbox entry", Key: strings.ReplaceAll(key, "\x00", " ")}
		}
		e := *old
		now := s.now().UTC()
		posted := res.Posted
		if posted.At.IsZero() {
			posted.At = now
		}
		stale := e.Version != res.Version
		data := map[string]any{
			"context": e.Context, "state": posted.State, "description": posted.Description,
			"version": res.Version, "current_version": e.Version,
		}
		kind := EventStatusPosted
		if res.Err == "" {
			p := posted
			e.LastPosted, e.LastError, e.Attempts, e.Failed = &p, "", 0, false
			e.Done = e.postedEquals()
			if !e.Done && (old.Done || e.NextAttempt.After(now)) {
				e.NextAttempt = now
			}
		} else {
			kind = EventStatusFailed
			e.LastError = res.Err
			e.Attempts++
			data["error"], data["retry"] = res.Err, res.Retry
			switch {
			case old.Done:
				// Newer content equal to what the forge already showed
				// arrived meanwhile: nothing is owed.
			case res.Retry:
				e.NextAttempt = res.NextAttempt
			case !stale:
				e.Done, e.Failed = true, true
			default:
				// The failed post was of older content; post the newer one.
				e.NextAttempt = now
			}
			if res.Retry {
				data["next_attempt"] = res.NextAttempt
			}
		}
		if err := putOutboxEntry(tx, old, &e); err != nil {
			return err
		}
		out = &e
		return s.appendEvent(tx, kind, statusSubject(&e), data)
	})
	return out, wrap("RecordPost", err)
}

func statusSubject(e *OutboxEntry) string {
	return "status/" + e.Forge + "/" + e.Repo + "@" + e.SHA
}

// ExpireStatuses is the outbox watchdog: for every entry whose content has
// not changed since before (UpdatedAt < before), it asks expire for a
// replacement and upserts it (with a status.expired event). expire runs
// inside the transaction and must be fast and pure; it returns false to
// leave the entry alone. It returns how many entries were replaced.
func (s *Store) ExpireStatuses(ctx context.Context, before time.Time, expire func(OutboxEntry) (StatusUpdate, bool)) (int, error) {
	n := 0
	err := s.update(ctx, "ExpireStatuses", func(tx *bolt.Tx) error {
		n = 0
		var stale []OutboxEntry
		err := tx.Bucket(bucketStatusOutbox).ForEach(func(k, v []byte) error {
			var e OutboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode outbox entry %q: %w", k, err)
			}
			if e.UpdatedAt.Before(before) {
				stale = append(stale, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		queued := false
		for _, e := range stale {
			u, ok := expire(e)
			if !ok {
				continue
			}
			u.Forge, u.Repo, u.SHA, u.Context = e.Forge, e.Repo, e.SHA, e.Context
			if err := validateStatusUpdate("ExpireStatuses", &u); err != nil {
				return err
			}
			_, due, err := s.upsertStatus(tx, u)
			if err != nil {
				return err
			}
			queued = queued || due
			n++
			if err := s.appendEvent(tx, EventStatusExpired, statusSubject(&e), map[string]any{
				"context": e.Context, "from": e.State, "to": u.State, "description": u.Description, "since": e.UpdatedAt,
			}); err != nil {
				return err
			}
		}
		if queued && s.opts.OnStatusQueued != nil {
			tx.OnCommit(s.opts.OnStatusQueued)
		}
		return nil
	})
	return n, wrap("ExpireStatuses", err)
}

// checkOutbox: every entry that is not Done has exactly its due-index key,
// and every due-index key names such an entry.
func checkOutbox(tx *bolt.Tx, add addFunc) {
	want := map[string]bool{}
	_ = tx.Bucket(bucketStatusOutbox).ForEach(func(k, v []byte) error {
		var e OutboxEntry
		if err := json.Unmarshal(v, &e); err != nil {
			add("outbox entry %q: %v", k, err)
			return nil
		}
		if e.Key() != string(k) {
			add("outbox entry %q: stored under the wrong key", k)
		}
		if !e.Done {
			want[string(dueKey(e.NextAttempt, e.Key()))] = true
		}
		return nil
	})
	var extra []string
	_ = tx.Bucket(bucketStatusOutboxDue).ForEach(func(k, _ []byte) error {
		if want[string(k)] {
			delete(want, string(k))
		} else {
			extra = append(extra, string(k))
		}
		return nil
	})
	for _, k := range slices.Sorted(maps.Keys(want)) {
		add("outbox entry %q is due but missing from the due index", k[8:])
	}
	for _, k := range extra {
		if len(k) < 8 {
			add("outbox due index: short key %x", k)
			continue
		}
		add("outbox due index names %q, which is done or missing", k[8:])
	}
}
