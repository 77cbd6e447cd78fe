package state

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout version this build writes into the meta bucket.
// Open refuses a file with a larger version (*SchemaVersionError).
const SchemaVersion uint64 = 1

// Bucket names. All live at the top level of the bbolt file.
var (
	bucketMeta            = []byte("meta")                // "schema" -> uint64 BE
	bucketDeliveries      = []byte("deliveries")          // id BE -> Delivery
	bucketPlanJobs        = []byte("plan_jobs")           // id BE -> PlanJob
	bucketPlanAvailable   = []byte("plan_available")      // id BE -> nil (FIFO of available jobs)
	bucketPlanLeased      = []byte("plan_leased")         // expiry ns BE | id BE -> nil
	bucketRequests        = []byte("requests")            // id BE -> BuildRequest
	bucketQueue           = []byte("queue")               // "module:stream" -> queueEntry
	bucketQueuePending    = []byte("queue_pending")       // priority byte | id BE -> "module:stream"
	bucketRequestsContent = []byte("requests_by_content") // contentKey \x00 id BE -> nil
	bucketIndexModules    = []byte("index_modules")       // module \x00 stream -> indexRecord
	bucketIndexComponents = []byte("index_components")    // component \x00 ref \x00 module \x00 stream -> module repo
	bucketEvents          = []byte("events")              // seq BE -> Event
	bucketModuleBuilds    = []byte("module_builds")       // id BE -> ModuleBuild
	bucketComponentBuilds = []byte("component_builds")    // reserved for the runner
	bucketStatusOutbox    = []byte("status_outbox")       // OutboxKey -> OutboxEntry (outbox.go)

	keySchema = []byte("schema")
)

func allBuckets() [][]byte {
	return [][]byte{
		bucketMeta, bucketDeliveries, bucketPlanJobs, bucketPlanAvailable, bucketPlanLeased,
		bucketRequests, bucketQueue, bucketQueuePending, bucketRequestsContent,
		bucketIndexModules, bucketIndexComponents, bucketEvents,
		bucketModuleBuilds, bucketComponentBuilds, bucketStatusOutbox, bucketStatusOutboxDue,
		bucketIndexDependents, bucketBuildsByStream,
		bucketBuildsByRequest, bucketBuildsByState, bucketBuildsByIdentity, bucketStreamMaxVersion,
		bucketTreesKept, bucketEventsBySubject, bucketBuildRefs, bucketDeletedTrees, bucketUploads,
	}
}

// Options configures Open. The zero value is usable; each field documents its
// default.
type Options struct {
	// Now is the clock used for every timestamp and lease decision.
	// Default time.Now.
	Now func() time.Time

	// Logger receives debug and warning records. Default: discard.
	Logger *slog.Logger

	// LockTimeout bounds how long Open waits for the file lock held by
	// another process. Default 1s; Open then fails instead of hanging.
	LockTimeout time.Duration

	// MaxBatchDelay is how long RecordDelivery waits for other concurrent
	// calls to join its transaction (bbolt DB.MaxBatchDelay). Larger values
	// share more fsyncs under load but add latency when idle. Default 1ms.
	MaxBatchDelay time.Duration

	// MaxBatchSize caps how many RecordDelivery calls share one transaction
	// (bbolt DB.MaxBatchSize). Default 256.
	MaxBatchSize int

	// MaxPlanAttempts is how many times a plan job may be leased. When a
	// job's lease expires for the MaxPlanAttempts-th time,
	// RescueExpiredLeases completes it with a "planning abandoned"
	// disposition instead of making it available again, so one poisonous
	// delivery cannot crash planners forever. Default 5.
	MaxPlanAttempts int

	// PruneBuildsBatch bounds the module builds one retention write
	// transaction deletes (Prune). Default 256.
	PruneBuildsBatch int

	// StatusesFor, when set, says which commit statuses a state change
	// owes the forges. The store calls it inside the transaction of
	// Enqueue (request created or merged), PutModuleBuild and
	// UpdateComponentBuild and writes what it returns into the status
	// outbox in that same transaction (see outbox.go). It must be pure and
	// fast: no I/O, no store calls. Default nil: no outbox entries are
	// written (package statuses provides one: (*statuses.Mapper).StatusesFor).
	StatusesFor func(StatusEvent) []StatusUpdate

	// CascadeFor, when set, says which build requests a module build's
	// becoming ready queues (the rebuilds of the streams that buildrequire
	// it) and, as a note, why it queues none or fewer. The store calls it
	// inside the transaction that moves the build to ready and enqueues
	// what it returns in that same transaction, so a crash can neither
	// lose the cascade nor queue it twice. It must be pure and fast: it
	// may call only the lookups CascadeEvent gives. Default nil: nothing
	// cascades (package runner provides one: runner.Cascader).
	CascadeFor func(CascadeEvent) ([]BuildRequest, string)

	// NoSync skips fsync at commit (bbolt's DB.NoSync): a crash may lose
	// the last transactions. Only for seeding benchmark stores and bulk
	// imports; never for rida serve.
	NoSync bool

	// OnStatusQueued, when set, is called after a transaction that made an
	// outbox entry due has committed (outside the transaction), to wake
	// the status worker. It must not block. Default nil.
	OnStatusQueued func()
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	o.LockTimeout = cmp.Or(o.LockTimeout, time.Second)
	o.MaxBatchDelay = cmp.Or(o.MaxBatchDelay, time.Millisecond)
	o.MaxBatchSize = cmp.Or(o.MaxBatchSize, 256)
	o.MaxPlanAttempts = cmp.Or(o.MaxPlanAttempts, 5)
	o.PruneBuildsBatch = cmp.Or(o.PruneBuildsBatch, 256)
	return o
}

func (o Options) validate() error {
	switch {
	case o.LockTimeout < 0:
		return &ValidationError{Op: "Open", Field: "Options.LockTimeout", Reason: "must not be negative"}
	case o.MaxBatchDelay < 0:
		return &ValidationError{Op: "Open", Field: "Options.MaxBatchDelay", Reason: "must not be negative"}
	case o.MaxBatchSize < 0:
		return &ValidationError{Op: "Open", Field: "Options.MaxBatchSize", Reason: "must not be negative"}
	case o.MaxPlanAttempts < 0:
		return &ValidationError{Op: "Open", Field: "Options.MaxPlanAttempts", Reason: "must not be negative"}
	case o.PruneBuildsBatch < 0:
		return &ValidationError{Op: "Open", Field: "Options.PruneBuildsBatch", Reason: "must not be negative"}
	}
	return nil
}

// Store is rida's persistent state in one bbolt file. Its methods are safe for
// concurrent use by many goroutines of one process; the file is locked against
// other processes. Every exported method runs in exactly one bbolt
// transaction, so what it changes and the event describing the change commit
// together or not at all.
type Store struct {
	db   *bolt.DB
	path string
	now  func() time.Time
	log  *slog.Logger
	opts Options

	// recording counts RecordDelivery calls in flight (solo vs batch).
	recording atomic.Int64

	// recordTxHook, when set by tests, sees the bbolt transaction ID of every
	// RecordDelivery run, to count how many calls shared a transaction.
	recordTxHook func(txID int)
}

// Open opens (creating if needed) the state file at path. A new file gets
// every bucket and the current SchemaVersion; an existing file must carry a
// schema version this build understands, otherwise Open returns a
// *SchemaVersionError (errors.Is(err, ErrSchemaTooNew) for a newer file) and
// leaves the file alone.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	db.NoSync = opts.NoSync
	db.MaxBatchDelay = opts.MaxBatchDelay
	db.MaxBatchSize = opts.MaxBatchSize
	s := &Store{db: db, path: path, now: opts.Now, log: opts.Logger, opts: opts}

	// Read the version first without writing: a newer file must not be
	// touched, not even by CreateBucketIfNotExists.
	var found uint64
	if err := db.View(func(tx *bolt.Tx) error {
		found = schemaVersion(tx)
		return nil
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("state: open %s: read schema: %w", path, err)
	}
	if found > SchemaVersion {
		_ = db.Close()
		return nil, &SchemaVersionError{Path: path, Found: found, Supported: SchemaVersion}
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets() {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if found == 0 {
			if err := tx.Bucket(bucketMeta).Put(keySchema, u64(SchemaVersion)); err != nil {
				return err
			}
		}
		if err := fillBuildsByStream(tx); err != nil {
			return err
		}
		if err := fillBuildIndexes(tx); err != nil {
			return err
		}
		if err := fillTreesKept(tx); err != nil {
			return err
		}
		if err := fillBuildRefs(tx); err != nil {
			return err
		}
		if err := fillEventsBySubject(tx); err != nil {
			return err
		}
		if err := fillUploads(tx); err != nil {
			return err
		}
		return fillCounters(tx)
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("state: open %s: init: %w", path, err)
	}
	s.log.Debug("state opened", slog.String("path", path), slog.Uint64("schema", SchemaVersion), slog.Uint64("found_schema", found))
	return s, nil
}

// schemaVersion returns the file's schema version, 0 for a new file.
func schemaVersion(tx *bolt.Tx) uint64 {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0
	}
	v := b.Get(keySchema)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// Close closes the file. Calls already running finish first; later calls fail.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("state: close %s: %w", s.path, err)
	}
	return nil
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// update runs fn in one read-write transaction after checking ctx.
// bbolt transactions cannot be interrupted, so ctx only stops work that has
// not started.
func (s *Store) update(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("state: %s: %w", op, err)
	}
	return s.db.Update(fn)
}

// view runs fn in one read-only transaction after checking ctx.
func (s *Store) view(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("state: %s: %w", op, err)
	}
	return s.db.View(fn)
}

// u64 encodes v as an 8-byte big-endian key, so byte order is numeric order.
func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, data)
}

// getJSON decodes the value at key into v; it reports false if there is none.
func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decode record %q: %w", key, err)
	}
	return true, nil
}

// wrap adds the operation to err unless it is one of ours already.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var (
		ve *ValidationError
		nf *NotFoundError
	)
	if errors.As(err, &ve) || errors.As(err, &nf) || errors.Is(err, ErrNoJob) || errors.Is(err, ErrLeaseLost) {
		return err
	}
	return fmt.Errorf("state: %s: %w", op, err)
}
