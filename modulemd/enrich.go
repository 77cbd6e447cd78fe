package modulemd

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
)

// PlatformModule is the name of the base module whose stream sets the version
// prefix and the dist tag marking.
const PlatformModule = "platform"

// maxResolveWorkers bounds the concurrent RefResolver calls of one Enrich.
const maxResolveWorkers = 8

// RefResolver turns a git ref (branch, tag or commit) of a repository into a
// full commit hash. Implementations live at the I/O edge (the scm package);
// they must be safe for concurrent use.
type RefResolver interface {
	ResolveRef(ctx context.Context, repository, ref string) (string, error)
}

// ResolvedModule is what is known about a buildrequired module build, the
// information MBS's resolver stores in xmd.mbs.buildrequires.
type ResolvedModule struct {
	Stream  string
	Version uint64
	Context string
	// Ref is the module's own xmd.mbs.commit.
	Ref     string
	KojiTag string
	// FilteredRPMs lists N-E:V-R of the module's filtered packages.
	FilteredRPMs []string
}

// EnrichOptions is what Enrich needs from outside the modulemd document.
type EnrichOptions struct {
	// Name is the module name, normally the repository name. It is used
	// when the document has none; a document name that differs is an
	// error (MBS rejects it unless name override is allowed).
	Name string
	// Branch is the branch the module was built from. It is used as the
	// stream when the document has none; a document stream that differs
	// is an error.
	Branch string
	// ModuleCommit is the full commit hash of the modulemd file; it goes
	// to xmd.mbs.commit.
	ModuleCommit string
	// CommitTime is the committer time of ModuleCommit. When the document
	// has no version, the version is CommitTime in UTC as YYYYMMDDHHMMSS,
	// prefixed with the platform stream's version as MBS's
	// get_prefixed_version does (f32 -> 32..., el8.2.0 -> 80200...; no
	// prefix when the platform stream has no digits or the result would
	// overflow uint64). A version present in the document is kept as is.
	CommitTime time.Time
	// ScmURL is the module's source URL (repository?#commit); it goes to
	// xmd.mbs.scmurl.
	ScmURL string
	// Platform is the platform stream (e.g. "f39", "el9") added to the
	// buildrequires and requires of a module that buildrequires no
	// platform. Empty means such a module stays platform-less: no version
	// prefix, no dist tag marking.
	Platform string
	// DefaultRepository is the base URL of component repositories: a
	// component without repository gets DefaultRepository + "/" + its
	// package name (MBS: rpms_default_repository + name). Required when a
	// component has no repository.
	DefaultRepository string
	// DefaultRef is the ref of a component without ref. Empty means the
	// module's stream (its branch): rida builds components from the branch
	// named like the module stream, where MBS (2020) used "master".
	DefaultRef string
	// BuildRequires optionally describes the resolved buildrequired
	// modules by name (MBS's xmd.mbs.buildrequires, transitive entries
	// included). A buildrequired module missing here is recorded with its
	// stream only. An entry whose stream differs from the dependency's is
	// an error.
	BuildRequires map[string]ResolvedModule
	// Resolver resolves component refs to commit hashes. Required unless
	// every component is already resolved in xmd.mbs.rpms.
	Resolver RefResolver
	// Overridden names the RPM components (keys of components.rpms) that
	// are built from a source RPM given with the build (MBS's srpms of a
	// scratch build) instead of their repository: their ref is not
	// resolved and xmd.mbs.rpms.<key>.ref is null, as MBS records them.
	Overridden map[string]bool
}

// Enrich fills in what the build system owns, in place, as MBS does between
// submission and the first batch:
//
//   - Name and Stream from opts (see EnrichOptions.Name and Branch);
//   - Dependencies: platform added from opts.Platform when missing;
//   - Version from opts.CommitTime when unset (see EnrichOptions.CommitTime);
//   - each RPM component's Repository and Ref defaults, and its ref resolved
//     to a full commit hash with opts.Resolver;
//   - Xmd["mbs"] (see below);
//   - Context, unless one is already set (static_context, a packager v3
//     configuration, or a packager's choice): MBS's formula,
//     sha1("<build>:<runtime>")[:8], where build is the SHA-1 of the
//     Python-json.dumps'd sorted {name: stream} of xmd.mbs.buildrequires and
//     runtime the SHA-1 of the sorted {name: sorted(streams)} of the
//     requires of every dependency entry.
//
// Xmd["mbs"] keys rida fills: "mse" (TRUE, as MBS marks every expanded
// stream), "commit", "scmurl" (when given), "buildrequires" ({name: {stream,
// version, context, ref, koji_tag, filtered_rpms}}, fields beyond stream only
// when opts.BuildRequires knows them), "requires" ({name: {stream}} for
// single-stream runtime requires), "rpms" ({key: {ref: <commit>}}), and
// "static_context" (TRUE when the context was kept). Other xmd keys are left
// alone. A component already present in xmd.mbs.rpms is not resolved again,
// so enriching twice keeps the first resolution.
//
// Enrich does not expand streams (MSE): every buildrequired module must name
// exactly one stream and there may be at most one dependency entry; call
// Expand first to get such streams. It does
// not handle included modules (components.modules are left untouched).
//
// Errors name the field or component at fault; a resolution failure names
// the component, repository and ref and wraps the resolver's error. On error
// s may be partly enriched.
func Enrich(ctx context.Context, s *Stream, opts EnrichOptions) error {
	if err := enrichNameStream(s, opts); err != nil {
		return err
	}
	br, err := enrichDependencies(s, opts)
	if err != nil {
		return err
	}
	if s.Version == 0 {
		if opts.CommitTime.IsZero() {
			return errors.New("modulemd: enrich: version: the document has none and CommitTime is unset")
		}
		v, err := strconv.ParseUint(opts.CommitTime.UTC().Format("20060102150405"), 10, 64)
		if err != nil {
			return fmt.Errorf("modulemd: enrich: version from CommitTime %v: %w", opts.CommitTime, err)
		}
		s.Version = PrefixedVersion(v, br[PlatformModule])
	}

	if s.Xmd == nil {
		s.Xmd = map[string]any{}
	}
	mbs, _ := s.Xmd["mbs"].(map[string]any)
	if mbs == nil {
		if _, exists := s.Xmd["mbs"]; exists {
			return errors.New("modulemd: enrich: xmd.mbs is not a mapping")
		}
		mbs = map[string]any{}
		s.Xmd["mbs"] = mbs
	}
	mbs["mse"] = true
	if opts.ModuleCommit != "" {
		mbs["commit"] = opts.ModuleCommit
	}
	if opts.ScmURL != "" {
		mbs["scmurl"] = opts.ScmURL
	}
	xbr := map[string]any{}
	for name, rm := range opts.BuildRequires {
		if st, ok := br[name]; ok && rm.Stream != st {
			return fmt.Errorf("modulemd: enrich: BuildRequires[%q]: resolved stream %q differs from the buildrequired stream %q", name, rm.Stream, st)
		}
		xbr[name] = resolvedModuleXmd(rm)
	}
	for name, st := range br {
		if _, ok := xbr[name]; !ok {
			xbr[name] = resolvedModuleXmd(ResolvedModule{Stream: st})
		}
	}
	mbs["buildrequires"] = xbr
	xrq := map[string]any{}
	for _, d := range s.Dependencies {
		for name, streams := range d.Requires {
			if len(streams) == 1 && !strings.HasPrefix(streams[0], "-") {
				xrq[name] = map[string]any{"stream": streams[0]}
			}
		}
	}
	mbs["requires"] = xrq

	if err := enrichComponents(ctx, s, opts, mbs); err != nil {
		return err
	}

	if s.Context != "" {
		mbs["static_context"] = true
	} else {
		brStreams := make(map[string]string, len(xbr))
		for name, v := range xbr {
			brStreams[name] = v.(map[string]any)["stream"].(string)
		}
		s.Context = ComputeContext(brStreams, runtimeStreams(s.Dependencies))
	}
	return nil
}

func resolvedModuleXmd(rm ResolvedModule) map[string]any {
	m := map[string]any{"stream": rm.Stream, "filtered_rpms": []any{}}
	if rm.Version != 0 {
		m["version"] = strconv.FormatUint(rm.Version, 10)
	}
	if rm.Context != "" {
		m["context"] = rm.Context
	}
	if rm.Ref != "" {
		m["ref"] = rm.Ref
	}
	if rm.KojiTag != "" {
		m["koji_tag"] = rm.KojiTag
	}
	if len(rm.FilteredRPMs) > 0 {
		l := make([]any, len(rm.FilteredRPMs))
		for i, r := range rm.FilteredRPMs {
			l[i] = r
		}
		m["filtered_rpms"] = l
	}
	return m
}

func enrichNameStream(s *Stream, opts EnrichOptions) error {
	switch {
	case s.Name == "" && opts.Name == "":
		return errors.New("modulemd: enrich: name: the document has none and EnrichOptions.Name is empty")
	case s.Name == "":
		s.Name = opts.Name
	case opts.Name != "" && s.Name != opts.Name:
		return fmt.Errorf("modulemd: enrich: name: the document says %q, the repository %q", s.Name, opts.Name)
	}
	switch {
	case s.Stream == "" && opts.Branch == "":
		return errors.New("modulemd: enrich: stream: the document has none and EnrichOptions.Branch is empty")
	case s.Stream == "":
		s.Stream = opts.Branch
	case opts.Branch != "" && s.Stream != opts.Branch:
		return fmt.Errorf("modulemd: enrich: stream: the document says %q, the branch is %q", s.Stream, opts.Branch)
	}
	return nil
}

// enrichDependencies adds the default platform when needed and returns the
// buildrequired {module: stream}.
func enrichDependencies(s *Stream, opts EnrichOptions) (map[string]string, error) {
	if len(s.Dependencies) > 1 {
		return nil, fmt.Errorf("modulemd: enrich: dependencies: %d entries; stream expansion is not supported, list one", len(s.Dependencies))
	}
	if len(s.Dependencies) == 0 && opts.Platform != "" {
		s.Dependencies = []Dependencies{{}}
	}
	br := map[string]string{}
	if len(s.Dependencies) == 0 {
		return br, nil
	}
	d := &s.Dependencies[0]
	for _, name := range sortedKeys(d.BuildRequires) {
		streams := d.BuildRequires[name]
		if len(streams) != 1 || strings.HasPrefix(streams[0], "-") || streams[0] == "" {
			return nil, fmt.Errorf("modulemd: enrich: dependencies[0].buildrequires.%s: %v: stream expansion is not supported, name exactly one stream", name, streams)
		}
		br[name] = streams[0]
	}
	if _, ok := br[PlatformModule]; !ok && opts.Platform != "" {
		if d.BuildRequires == nil {
			d.BuildRequires = map[string][]string{}
		}
		d.BuildRequires[PlatformModule] = []string{opts.Platform}
		br[PlatformModule] = opts.Platform
		if _, ok := d.Requires[PlatformModule]; !ok {
			if d.Requires == nil {
				d.Requires = map[string][]string{}
			}
			d.Requires[PlatformModule] = []string{opts.Platform}
		}
	}
	return br, nil
}

func enrichComponents(ctx context.Context, s *Stream, opts EnrichOptions, mbs map[string]any) error {
	xrpms, _ := mbs["rpms"].(map[string]any)
	if xrpms == nil {
		if _, exists := mbs["rpms"]; exists {
			return errors.New("modulemd: enrich: xmd.mbs.rpms is not a mapping")
		}
		xrpms = map[string]any{}
		mbs["rpms"] = xrpms
	}
	type job struct {
		key, repo, ref string
		commit         string
		err            error
	}
	var jobs []*job
	for _, key := range sortedKeys(s.Components.RPMs) {
		c := s.Components.RPMs[key]
		if c == nil {
			return fmt.Errorf("modulemd: enrich: components.rpms.%s is null", key)
		}
		if c.Key == "" {
			c.Key = key
		}
		if opts.Overridden[key] {
			// Built from an SRPM: nothing to resolve; the repository is
			// only shown.
			if c.Repository == "" && opts.DefaultRepository != "" {
				c.Repository = strings.TrimSuffix(opts.DefaultRepository, "/") + "/" + c.PackageName()
			}
			xrpms[key] = map[string]any{"ref": nil}
			continue
		}
		if c.Repository == "" {
			if opts.DefaultRepository == "" {
				return fmt.Errorf("modulemd: enrich: components.rpms.%s: no repository and no DefaultRepository", key)
			}
			c.Repository = strings.TrimSuffix(opts.DefaultRepository, "/") + "/" + c.PackageName()
		}
		if c.Ref == "" {
			c.Ref = opts.DefaultRef
			if c.Ref == "" {
				c.Ref = s.Stream
			}
		}
		if e, ok := xrpms[key].(map[string]any); ok {
			if ref, ok := e["ref"].(string); ok && ref != "" {
				continue
			}
		}
		jobs = append(jobs, &job{key: key, repo: c.Repository, ref: c.Ref})
	}
	if len(jobs) == 0 {
		return nil
	}
	if opts.Resolver == nil {
		return fmt.Errorf("modulemd: enrich: components.rpms.%s: ref %q needs resolving and Resolver is nil", jobs[0].key, jobs[0].ref)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxResolveWorkers)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := ctx.Err(); err != nil {
				j.err = err
				return
			}
			j.commit, j.err = opts.Resolver.ResolveRef(ctx, j.repo, j.ref)
			if j.err == nil && !isFullHash(j.commit) {
				j.err = fmt.Errorf("resolver returned %q, not a full commit hash", j.commit)
			}
		}()
	}
	wg.Wait()
	var errs []error
	for _, j := range jobs {
		if j.err != nil {
			errs = append(errs, &ResolveError{Component: j.key, Repository: j.repo, Ref: j.ref, Err: j.err})
			continue
		}
		xrpms[j.key] = map[string]any{"ref": j.commit}
	}
	if len(errs) == 0 {
		return nil
	}
	return &ResolveErrors{Errs: errs}
}

// maxErrorsShown bounds how many component errors a ResolveErrors message
// spells out; a modulemd with thousands of bad components must not make a
// reason of hundreds of kilobytes.
const maxErrorsShown = 3

// ResolveErrors is every component whose ref could not be resolved. Its
// message names the first few and counts the rest; Unwrap gives them all.
type ResolveErrors struct {
	Errs []error
}

// Error lists the first errors and "and N more".
func (e *ResolveErrors) Error() string {
	var b strings.Builder
	for i, err := range e.Errs {
		if i == maxErrorsShown {
			fmt.Fprintf(&b, "\nand %d more components whose refs could not be resolved", len(e.Errs)-maxErrorsShown)
			break
		}
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns every error, for errors.Is and errors.As.
func (e *ResolveErrors) Unwrap() []error { return e.Errs }

// isFullHash reports whether s is a full SHA-1 or SHA-256 hex object name.
func isFullHash(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// runtimeStreams returns the union of runtime streams per module over every
// dependency entry, sorted.
func runtimeStreams(deps []Dependencies) map[string][]string {
	out := map[string][]string{}
	for _, d := range deps {
		for name, streams := range d.Requires {
			out[name] = append(out[name], streams...)
		}
	}
	for name, streams := range out {
		slices.Sort(streams)
		out[name] = slices.Compact(streams)
	}
	return out
}

// StreamVersion returns the numeric version MBS reads from a base module
// stream (ModuleBuild.get_stream_version with right_pad=False): the digits
// and dots from the first digit on, up to the first other character, each
// dot-separated part zero-padded to two digits, e.g. "f32" -> 32,
// "el8.2.0" -> 80200, "fl7.0.1-beta" -> 70001. ok is false when the stream
// has no digits or the number does not fit in uint64.
func StreamVersion(stream string) (v uint64, ok bool) {
	var ver strings.Builder
	for _, r := range stream {
		switch {
		case r >= '0' && r <= '9':
			ver.WriteRune(r)
		case ver.Len() == 0:
			// Not started yet.
		case r == '.':
			ver.WriteRune(r)
		default:
			goto done
		}
	}
done:
	if ver.Len() == 0 {
		return 0, false
	}
	var digits strings.Builder
	for _, part := range strings.Split(strings.TrimRight(ver.String(), "."), ".") {
		if len(part) < 2 {
			digits.WriteString(strings.Repeat("0", 2-len(part)))
		}
		digits.WriteString(part)
	}
	v, err := strconv.ParseUint(digits.String(), 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// PrefixedVersion prepends the version of the platform stream to version, as
// MBS's get_prefixed_version: PrefixedVersion(20200518173809, "f32") is
// 3220200518173809. version is returned unchanged when platformStream is
// empty or has no digits, or when the result would overflow uint64.
func PrefixedVersion(version uint64, platformStream string) uint64 {
	sv, ok := StreamVersion(platformStream)
	if !ok {
		return version
	}
	vs := strconv.FormatUint(version, 10)
	hi, lo := bits.Mul64(sv, pow10(len(vs)))
	if hi != 0 || pow10(len(vs)) == 0 {
		return version
	}
	sum, carry := bits.Add64(lo, version, 0)
	if carry != 0 {
		return version
	}
	return sum
}

// pow10 returns 10^n, or 0 when it overflows uint64.
func pow10(n int) uint64 {
	p := uint64(1)
	for range n {
		hi, lo := bits.Mul64(p, 10)
		if hi != 0 {
			return 0
		}
		p = lo
	}
	return p
}

// ComputeContext returns MBS's dynamic context for the given build
// requirements ({module: stream}, MBS: xmd.mbs.buildrequires) and runtime
// requirements ({module: streams}): the first 8 hex digits of
// sha1(build_context + ":" + runtime_context), where each part is the SHA-1
// hex digest of Python's json.dumps of the key-sorted mapping (runtime
// stream lists sorted too).
func ComputeContext(buildRequires map[string]string, requires map[string][]string) string {
	build, runtime := contextParts(buildRequires, requires)
	sum := sha1.Sum([]byte(build + ":" + runtime))
	return hex.EncodeToString(sum[:])[:8]
}

// contextParts returns MBS's build_context and runtime_context digests.
func contextParts(buildRequires map[string]string, requires map[string][]string) (build, runtime string) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range sortedKeys(buildRequires) {
		if i > 0 {
			b.WriteString(", ")
		}
		pyJSONString(&b, k)
		b.WriteString(": ")
		pyJSONString(&b, buildRequires[k])
	}
	b.WriteByte('}')
	bs := sha1.Sum([]byte(b.String()))

	var r strings.Builder
	r.WriteByte('{')
	for i, k := range sortedKeys(requires) {
		if i > 0 {
			r.WriteString(", ")
		}
		pyJSONString(&r, k)
		r.WriteString(": [")
		streams := slices.Clone(requires[k])
		slices.Sort(streams)
		for j, st := range streams {
			if j > 0 {
				r.WriteString(", ")
			}
			pyJSONString(&r, st)
		}
		r.WriteByte(']')
	}
	r.WriteByte('}')
	rs := sha1.Sum([]byte(r.String()))
	return hex.EncodeToString(bs[:]), hex.EncodeToString(rs[:])
}

// pyJSONString writes s as Python's json.dumps does with its defaults
// (ensure_ascii=True): everything outside printable ASCII is \uXXXX-escaped
// (lowercase hex, UTF-16 surrogate pairs beyond the BMP).
func pyJSONString(b *strings.Builder, s string) {
	const hexdigits = "0123456789abcdef"
	u4 := func(c rune) {
		b.WriteString(`\u`)
		b.WriteByte(hexdigits[c>>12&0xf])
		b.WriteByte(hexdigits[c>>8&0xf])
		b.WriteByte(hexdigits[c>>4&0xf])
		b.WriteByte(hexdigits[c&0xf])
	}
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			u4(r1)
			u4(r2)
		default:
			u4(r)
		}
	}
	b.WriteByte('"')
}

// ResolveError says that a component's ref could not be resolved to a
// commit. Err is the resolver's error: the caller decides from it whether
// the ref does not exist (the module is wrong) or the repository could not
// be reached (infrastructure trouble).
type ResolveError struct {
	Component  string
	Repository string
	Ref        string
	Err        error
}

// Error names the component, ref and repository.
func (e *ResolveError) Error() string {
	return fmt.Sprintf("modulemd: enrich: components.rpms.%s: resolving ref %q of %s: %v", e.Component, e.Ref, e.Repository, e.Err)
}

// Unwrap returns the resolver's error.
func (e *ResolveError) Unwrap() error { return e.Err }
