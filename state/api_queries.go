package state

// Queries and controls used by the API (package api) and the runner's API
// hooks (runner.WithAPIControls). Their buckets are created on first write,
// so a file written by an older rida opens unchanged; reads treat a missing
// bucket as empty.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketPaused      = []byte("api_paused")       // queue key or "*" -> Pause
	bucketRequestOpts = []byte("api_request_opts") // request id BE -> RequestOptions
)

// PauseAll is the key SetPaused takes to pause every module stream.
const PauseAll = "*"

// Event kinds written by this file.
const (
	// EventQueuePaused: a module stream (or everything, "*") was paused.
	EventQueuePaused = "queue.paused"
	// EventQueueResumed: a pause was lifted.
	EventQueueResumed = "queue.resumed"
)

// Pause records that the runner must not start new builds of Key (a
// "module:stream" queue key, or PauseAll). Running builds are not stopped.
type Pause struct {
	Key string    `json:"key"`
	By  string    `json:"by"`
	At  time.Time `json:"at"`
}

// RequestOptions are per-request settings given through the API that the
// BuildRequest record has no field for. The runner applies them when it
// creates the request's module build (runner.WithAPIControls).
type RequestOptions struct {
	// RebuildStrategy overrides the configured strategy ("all" forces a full
	// rebuild). Empty: the default.
	RebuildStrategy string `json:"rebuild_strategy,omitempty"`
	// Owner is recorded as the build's owner. Empty: the runner's default.
	Owner string `json:"owner,omitempty"`
	// Scratch, ReuseFrom, BuildRequireOverrides and RequireOverrides are
	// MBS's submit options (POST module-builds; see submit.go).
	Scratch               bool                `json:"scratch,omitempty"`
	ReuseFrom             uint64              `json:"reuse_from,omitempty"`
	BuildRequireOverrides map[string][]string `json:"buildrequire_overrides,omitempty"`
	RequireOverrides      map[string][]string `json:"require_overrides,omitempty"`
	// Modulemd, SubmittedAt and SRPMs are what a scratch build was
	// submitted with instead of (or besides) the module repository:
	// the modulemd YAML, when it was submitted, and the source RPMs
	// that replace components (see submit.go).
	Modulemd    string    `json:"modulemd,omitempty"`
	SubmittedAt time.Time `json:"submitted_at,omitzero"`
	SRPMs       []SRPM    `json:"srpms,omitempty"`
}

func (o RequestOptions) empty() bool {
	return o.RebuildStrategy == "" && o.Owner == "" && !o.Scratch && o.ReuseFrom == 0 &&
		len(o.BuildRequireOverrides) == 0 && len(o.RequireOverrides) == 0 && !o.HasUploads()
}

// QueueStats summarises the build queue.
type QueueStats struct {
	// Pending counts pending requests (at most one per module stream).
	Pending int
	// Running counts running requests.
	Running int
	// OldestPending is when the oldest pending request was created; zero
	// when nothing is pending.
	OldestPending time.Time
}

// ComponentModule is one module stream that includes a component with Ref.
type ComponentModule struct {
	Ref        string `json:"ref"`
	Module     string `json:"module"`
	Stream     string `json:"stream"`
	ModuleRepo string `json:"module_repo"`
}

// Deliveries returns up to limit deliveries, newest first, skipping the
// newest offset ones, and the total number of deliveries. limit <= 0 means
// 20.
func (s *Store) Deliveries(ctx context.Context, offset, limit int) ([]Delivery, int, error) {
	if limit <= 0 {
		limit = 20
	}
	var (
		out   []Delivery
		total int
	)
	err := s.view(ctx, "Deliveries", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		total = int(count(tx, keyDeliveryCount))
		c := b.Cursor()
		i := 0
		for k, _ := c.Last(); k != nil && len(out) < limit; k, _ = c.Prev() {
			if i++; i <= offset {
				continue
			}
			var d Delivery
			if _, err := getJSON(b, k, &d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, total, wrap("Deliveries", err)
}

// ComponentModules returns every module stream whose modulemd includes
// component, with any ref, sorted by ref, module, stream.
func (s *Store) ComponentModules(ctx context.Context, component string) ([]ComponentModule, error) {
	if err := validateIndexArgs("ComponentModules", [2]string{"component", component}); err != nil {
		return nil, err
	}
	var out []ComponentModule
	err := s.view(ctx, "ComponentModules", func(tx *bolt.Tx) error {
		prefix := []byte(component + "\x00")
		c := tx.Bucket(bucketIndexComponents).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			parts := strings.SplitN(string(k[len(prefix):]), "\x00", 3)
			if len(parts) != 3 {
				return fmt.Errorf("malformed component index key %q", k)
			}
			out = append(out, ComponentModule{Ref: parts[0], Module: parts[1], Stream: parts[2], ModuleRepo: string(v)})
		}
		return nil
	})
	return out, wrap("ComponentModules", err)
}

// EnqueueWithOptions is Enqueue plus RequestOptions for the resulting
// request, in one transaction. When req merges into a pending request, opts
// apply to that request (non-empty fields replace earlier ones).
func (s *Store) EnqueueWithOptions(ctx context.Context, req BuildRequest, opts RequestOptions) (EnqueueResult, error) {
	if err := validateRequest("EnqueueWithOptions", &req); err != nil {
		return EnqueueResult{}, err
	}
	var res EnqueueResult
	err := s.update(ctx, "EnqueueWithOptions", func(tx *bolt.Tx) error {
		var err error
		if res, err = s.enqueue(tx, req); err != nil {
			return err
		}
		if opts.empty() {
			return nil
		}
		b, err := tx.CreateBucketIfNotExists(bucketRequestOpts)
		if err != nil {
			return err
		}
		var cur RequestOptions
		if _, err := getJSON(b, u64(res.Request.ID), &cur); err != nil {
			return err
		}
		if opts.RebuildStrategy != "" {
			cur.RebuildStrategy = opts.RebuildStrategy
		}
		if opts.Owner != "" {
			cur.Owner = opts.Owner
		}
		return putJSON(b, u64(res.Request.ID), cur)
	})
	if err != nil {
		return EnqueueResult{}, wrap("EnqueueWithOptions", err)
	}
	return res, nil
}

// RequestOptionsFor returns the options recorded for request id (the zero
// value if none).
func (s *Store) RequestOptionsFor(ctx context.Context, id uint64) (RequestOptions, error) {
	var out RequestOptions
	err := s.view(ctx, "RequestOptionsFor", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRequestOpts)
		if b == nil {
			return nil
		}
		_, err := getJSON(b, u64(id), &out)
		return err
	})
	return out, wrap("RequestOptionsFor", err)
}

// SetPaused pauses (paused=true) or resumes key, a "module:stream" queue key
// or PauseAll, on behalf of who, and records an event. Pausing twice keeps
// the first record; resuming a key that is not paused is a no-op.
func (s *Store) SetPaused(ctx context.Context, key string, paused bool, who string) error {
	if key == "" || strings.ContainsRune(key, 0) || (key != PauseAll && !strings.Contains(key, ":")) {
		return &ValidationError{Op: "SetPaused", Field: "key", Reason: fmt.Sprintf("must be \"module:stream\" or %q, got %q", PauseAll, key)}
	}
	err := s.update(ctx, "SetPaused", func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketPaused)
		if err != nil {
			return err
		}
		exists := b.Get([]byte(key)) != nil
		switch {
		case paused && !exists:
			if err := putJSON(b, []byte(key), Pause{Key: key, By: who, At: s.now().UTC()}); err != nil {
				return err
			}
			return s.appendEvent(tx, EventQueuePaused, "queue/"+key, map[string]any{"by": who})
		case !paused && exists:
			if err := b.Delete([]byte(key)); err != nil {
				return err
			}
			return s.appendEvent(tx, EventQueueResumed, "queue/"+key, map[string]any{"by": who})
		}
		return nil
	})
	return wrap("SetPaused", err)
}

// Paused lists the paused keys, sorted ("*" first when everything is).
func (s *Store) Paused(ctx context.Context) ([]Pause, error) {
	var out []Pause
	err := s.view(ctx, "Paused", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPaused)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			var p Pause
			if _, err := getJSON(b, k, &p); err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	return out, wrap("Paused", err)
}

// QueueStats counts pending and running requests and finds the oldest
// pending one, for metrics.
func (s *Store) QueueStats(ctx context.Context) (QueueStats, error) {
	var out QueueStats
	err := s.view(ctx, "QueueStats", func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketQueuePending).ForEach(func(k, _ []byte) error {
			out.Pending++
			r, err := getRequest(tx, binary.BigEndian.Uint64(k[1:]))
			if err != nil {
				return err
			}
			if out.OldestPending.IsZero() || r.CreatedAt.Before(out.OldestPending) {
				out.OldestPending = r.CreatedAt
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketQueue).ForEach(func(k, _ []byte) error {
			e, err := getQueueEntry(tx, string(k))
			if err != nil {
				return err
			}
			if e.Running != 0 {
				out.Running++
			}
			return nil
		})
	})
	return out, wrap("QueueStats", err)
}

// Readable reports whether the store answers a read transaction (for
// /readyz).
func (s *Store) Readable(ctx context.Context) error {
	return wrap("Readable", s.view(ctx, "Readable", func(tx *bolt.Tx) error {
		if schemaVersion(tx) == 0 {
			return fmt.Errorf("schema version missing")
		}
		return nil
	}))
}
