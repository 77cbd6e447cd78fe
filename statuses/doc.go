// Package statuses reports module builds to the forges as commit statuses,
// through the durable outbox in package state.
//
// Two halves:
//
//   - Mapper is pure. Its StatusesFor method is installed as
//     state.Options.StatusesFor; the store calls it inside the transaction of
//     every queue and build state change and writes the statuses it returns
//     into the outbox in that same transaction, keyed by (forge, repo, sha,
//     context), last write wins. Pending is owed from the moment a request
//     is queued, for every commit that asked for it (module and component
//     pushes alike), so nothing that will later get a final status shows
//     nothing in the meantime.
//
//   - Worker posts due outbox entries with the forge reporters (package
//     forge): per forge a token bucket (RatePerForge), a pause for the whole
//     forge when it answers with a rate limit (Retry-After, else
//     X-RateLimit-Reset, else at least a minute with exponential backoff:
//     forge.RetryDelay), per-entry backoff for other retryable errors, and no
//     retries for permanent ones (recorded on the entry with the forge's
//     message). An update whose content equals what the forge was last sent
//     is not posted again. A watchdog turns statuses left pending past
//     PendingDeadline into error with an explanation.
//
// Every post's outcome is recorded on its entry (LastPosted, LastError,
// Attempts) and in the event log (status.posted, status.failed).
package statuses
