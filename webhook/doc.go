// Package webhook receives push webhooks from GitHub (and GitHub Enterprise),
// Gitea, Forgejo and GitLab, and records them in rida's state store.
//
// # Receiver contract
//
// The Receiver checks every request in a fixed order and stops at the first
// failure, answering JSON {"status", "error", "message"} where message names
// the header or field at fault:
//
//  1. method is POST (405 with Allow: POST)
//  2. the path's forge is enabled (404)
//  3. the event header is present (400)
//  4. the delivery id header is present (400; GitLab: generated if absent)
//  5. the signature/token header is present and non-empty (401)
//  6. Content-Type is application/json (415; form-encoded hooks are refused
//     because Gitea/Forgejo sign the JSON but send the form)
//  7. the body fits MaxBody (413)
//  8. HMAC-SHA256 of the raw body (GitLab: the token) matches one of the
//     forge's secrets, compared in constant time (401)
//  9. the body is JSON (400)
//
// Then GitHub's ping gets 200 {"pong": true}, other non-push events 202
// {"ignored": "event <name>"}, and a push is normalised (ParsePush) and
// recorded through DeliveryRecorder; 202 {"delivery": <id>} is sent only after
// that commit returns, and a failed commit gives 503 so the forge shows a
// failure an operator can redeliver.
//
// Header names per forge:
//
//	forge    event            delivery                                 signature
//	github   X-GitHub-Event   X-GitHub-Delivery                        X-Hub-Signature-256 ("sha256=" + hex)
//	gitea    X-Gitea-Event    X-Gitea-Delivery                         X-Gitea-Signature (hex)
//	forgejo  X-Forgejo-Event  X-Forgejo-Delivery                       X-Forgejo-Signature (hex)
//	         (each falls back to the X-Gitea-* header)
//	gitlab   X-Gitlab-Event   X-Gitlab-Event-UUID, X-Gitlab-Webhook-UUID X-Gitlab-Token (the secret itself)
//
// Secrets and signatures are never logged. Delivery ids are stored for
// support only: redeliveries are matched on content (state.ContentKey).
//
// # Planner contract
//
// The Planner leases each recorded delivery's plan job, fetches the
// repository's bare mirror and diffs the pushed range itself (the payload's
// file lists are never used), then completes the job with build requests or
// a disposition saying why there are none. In order:
//
//   - before == after: "test delivery" (Gitea's test sends that);
//   - after all zeros: "deletion" (a module branch also leaves the index);
//   - refs/tags/*: "tag push"; other non-branch refs: "not a branch";
//   - a repository the Classifier does not know: "repository not configured";
//   - a branch outside TrackedBranches: "branch not tracked";
//   - a redelivery (same state.ContentKey) whose requests are pending or
//     running: "redelivery: already queued as request N"; all succeeded:
//     "redelivery: already built by request N"; some failed, errored or
//     were canceled: planned again, keeping only those streams;
//   - the pushed commit gone from the remote: "commit not in repository".
//
// Before all zeros (a new branch) or a before missing from the mirror counts
// as "every path changed"; otherwise before..after is a plain tree diff, which
// is also what a force push changed on the ref.
//
// A module repository push refreshes the index entry of module:branch from
// the modulemd at the branch head (its components, those of the modules it
// includes, read through the mirrors, and what it buildrequires), then asks
// for module:branch at that head when the modulemd file changed ("no
// relevant paths" otherwise). A component is indexed under its repository's
// full name (every 2 to 6 segment suffix of its repository URL's path, the
// URL being its own repository or ComponentBaseURL/<package>) and its
// package name. A component repository push that changed anything outside
// IgnorePaths (an empty commit counts: %autorelease) asks for every indexed
// stream that includes the repository's full name (the push's, exactly) at
// that branch, at the module branch's head. A
// "[skip rebuild]" in the pushed head commit's message (read from the
// mirror) opts out. Fetch and store failures leave the job leased; it is
// planned again when its lease expires.
package webhook
