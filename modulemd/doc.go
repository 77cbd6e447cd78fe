// Package modulemd reads, checks, enriches and writes modulemd documents, the
// YAML files that describe a module build.
//
// The package is pure: it does no file, network or process I/O. Callers hand
// it bytes and get bytes back; the one outside capability it needs (turning a
// git ref into a commit hash) is injected through the RefResolver interface.
//
// # Reading
//
// Parse reads a module's source file, the single document a packager commits
// next to the module: a stream v2 document (document: modulemd, version: 2),
// a packager v2 document (document: modulemd-packager, version: 2) or a
// packager v3 document (document: modulemd-packager, version: 3). A packager
// v3 document becomes one stream per build configuration, as libmodulemd's
// modulemd_packager_v3_convert_to_index does.
//
// ParseIndex reads a multi-document file the way `modulemd-validator` does
// without --type: stream v1 and v2 documents are read (v1 is converted to
// v2), defaults, obsoletes and translations documents are checked minimally
// and dropped, packager documents are rejected.
//
// Both are strict: an unknown key is an error naming its path. Both refuse
// input larger than MaxDocumentSize, input that is not UTF-8, YAML aliases
// (so alias bombs cannot expand), duplicate mapping keys and component keys
// that could not be used as a path segment or package name.
//
// Neither validates the semantic rules; call (*Stream).Validate for that.
//
// # Checking
//
// (*Stream).Validate applies libmodulemd's stream rules plus the checks a
// build runner needs that libmodulemd lacks (buildafter self-references and
// cycles). The conformance test runs the real modulemd-validator over the
// libmodulemd test corpus and asserts both reach the same verdict, except for
// the documented differences.
//
// # Building
//
// Batches groups components into build batches as MBS does; Enrich fills in
// what a build system owns (name, stream, version, context, refs, xmd.mbs);
// NSVC, ModularityLabel, DistTag and KojiTag compute the names derived from
// them.
package modulemd
