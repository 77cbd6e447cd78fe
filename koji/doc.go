// Package koji drives a Koji hub: a small XML-RPC client in Koji's dialect
// (sessions in the Koji-Session-* headers with a strictly increasing
// callnum, <nil/> for None, keyword arguments, multiCall, typed faults,
// retries of transport errors and HTTP 5xx only) and a runner.Backend that
// builds a module's components in Koji the way MBS's KojiModuleBuilder does.
//
// # Client
//
// NewClient returns a Client; Login or SSLLogin opens a session. Call sends
// one method call, MultiCall several in one request. A hub fault comes back
// as a *Fault (see the fault code constants); everything else as a
// *CallError. The XML-RPC codec is github.com/kolo/xmlrpc (EncodeMethodCall,
// Response.Unmarshal, Response.Err) behind koji/internal/wire, which
// rewrites kolo's <value/> for nil into Koji's <nil/> and reads Python's
// empty <string></string> as ""; kolo's net/rpc Client is not used (it
// flattens faults into strings and cannot send Koji's session headers), so
// sessions, callnums and retries are this package's.
//
// Subsession opens a Koji subsession: a session of its own (own callnum,
// own lock) for the same user, tied to the master session. A session the
// hub refuses (expired, closed) is opened again the way it was opened and
// the refused call sent again, once.
//
// # Backend
//
// NewBackend returns a Backend for one hub. Per module build, Prepare makes
// the tags module-N-S-V-C and module-N-S-V-C-build (arches and MBS's tag
// extra), their package lists, the build tag's "build" and "srpm-build"
// groups (copied from the base module tag), the build tag's inheritance from
// the base module tag, and the build target. BuildBatch submits one Koji
// build task per component, watches all of a batch's tasks in one
// multiCall per poll, tags the results and waits for the build tag's repo.
// Each module build calls the hub through a subsession of its own, opened
// at its first call and closed (logoutChild) when it ends, so that one
// build's slow call does not hold up the others.
// Submissions go through an IntentStore so that a restarted process
// re-attaches to its tasks instead of submitting them again. Backend is a
// runner.Reuser: Reuse checks that a reused component's earlier Koji build
// is COMPLETE and the component's batch tags it into the module's tags with
// the batch's own builds, as MBS does; nothing is rebuilt.
//
// Credentials (passwords, session keys) are never logged.
package koji
