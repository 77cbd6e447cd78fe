// Package state is rida's persistent state: one bbolt file holding webhook
// deliveries and their plan jobs, the build queue, module builds, the
// component→module index, the status outbox and an append-only event log.
//
// # Transactions
//
// Every exported method of *Store runs in exactly one bbolt transaction and
// calls unexported helpers that take the *bbolt.Tx, so compound changes
// ("record a delivery and enqueue its plan job", "complete a plan job and
// enqueue its build requests") commit atomically, together with the events
// that describe them. RecordDelivery uses bbolt's DB.Batch so concurrent
// webhook requests share one fsync; its transaction function may therefore
// run more than once and is written to be idempotent.
//
// # Queue rules
//
// Build requests are keyed "module:stream". Per key there is at most one
// running and one pending request; Enqueue merges into the pending one. The
// rule is enforced inside the enqueue transaction, never by callers.
//
// # Layout
//
// Ordered buckets use 8-byte big-endian sequence keys; values are JSON. The
// meta bucket records SchemaVersion; Open refuses newer files.
//
// # Caveats
//
// bbolt allows one writing process per file and one write transaction at a
// time; reads run concurrently. Open waits at most Options.LockTimeout for
// another process's lock. Contexts are checked before a transaction starts;
// a started transaction runs to completion.
package state
