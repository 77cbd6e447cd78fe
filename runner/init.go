package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/rida-build/rida/modgraph"
	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/urlpolicy"
)

// ModuleSource is a module's modulemd file as found in its repository at one
// commit.
type ModuleSource struct {
	// Name is the module name (the repository's name); Branch is the branch
	// the commit was taken from, which becomes the stream.
	Name   string
	Branch string
	// Commit is the module repository's full commit hash; CommitTime its
	// committer time, which becomes the version.
	Commit     string
	CommitTime time.Time
	// ScmURL is "<repository URL>?#<commit>", as MBS records it.
	ScmURL string
	// Modulemd holds the file's bytes.
	Modulemd []byte
	// Uploaded marks a modulemd submitted with a scratch build instead of
	// read from a repository: Name and Branch are the submission's module
	// name and stream and override the document's, Commit and ScmURL are
	// empty, CommitTime is when it was submitted, and the document may not
	// carry xmd.mbs.
	Uploaded bool
}

// InitOptions configures Init.
type InitOptions struct {
	// Resolver resolves component refs to commits. Required.
	Resolver modulemd.RefResolver
	// DefaultRepository is prepended to a component's package name when it
	// names no repository, like MBS's rpms_default_repository.
	DefaultRepository string
	// Platform is the platform stream used when the module buildrequires
	// none (and for the version prefix). Default "el9".
	Platform string
	// Marking is the dist tag marking. Default: each build's own platform
	// stream (el8 and el9 builds of one module get .module+el8... and
	// .module+el9...), else Platform.
	Marking string
	// ID is the build id, the <index> of the dist tag.
	ID int64
	// Modules reads the modulemd of included modules (components.modules).
	// Without it a module that includes others fails with a reason saying
	// so. An included module without a repository is looked for beside the
	// including one (.../modules/<key>); without a ref, at the including
	// module's branch.
	Modules ModuleReader
	// Graph, when set, resolves the module's buildrequired module streams
	// (other than platform) to ready builds (see Build.Deps), expands
	// empty stream lists and exclusions over the streams with ready
	// builds, and refuses a module whose buildrequires form a cycle.
	// Without it (build-local) buildrequired modules are recorded by
	// stream only and nothing is added to the buildroot.
	Graph GraphStore
	// RequestID is the build request being initialised: its own queue
	// slot is not waited for.
	RequestID uint64
	// BuildRequireOverrides and RequireOverrides pin dependency streams
	// (MBS's buildrequire_overrides / require_overrides, {module:
	// [streams]}) before stream expansion and resolution.
	BuildRequireOverrides, RequireOverrides map[string][]string
	// ComponentURLs, when set, limits the URLs a modulemd names itself
	// (components.rpms.<c>.repository and .cache,
	// components.modules.<m>.repository, also inside included modules).
	// Default nil: any (rida build-local).
	ComponentURLs *ComponentURLs
	// SRPMs maps a package name to the source RPM its component is built
	// from instead of its repository (a scratch build's srpms): the
	// component's ref is not resolved (xmd.mbs.rpms.<key>.ref is null) and
	// it gets Component.SRPM. An SRPM whose package is no component of a
	// stream fails init, naming it.
	SRPMs map[string]string
}

// ComponentURLs is what a modulemd may say about where its components come
// from, as MBS's RPMS_ALLOW_REPOSITORY and RPMS_ALLOW_CACHE: by default
// (the zero value) neither a repository nor a cache of its own. A module
// that names one anyway fails at init, naming the field: the packager's
// failure.
type ComponentURLs struct {
	// AllowRepository lets components (and included modules) name their
	// own repository.
	AllowRepository bool
	// AllowCache lets components name their own lookaside cache.
	AllowCache bool
	// Policy is what an allowed repository or cache URL must pass; nil:
	// any URL.
	Policy *urlpolicy.Policy
}

// check refuses the component URLs of s that cu does not allow; where
// prefixes the field names (for included modules).
func (cu *ComponentURLs) check(s *modulemd.Stream, where string) error {
	if cu == nil {
		return nil
	}
	field := func(kind, key, f, v string, allowed bool, what string) error {
		if v == "" {
			return nil
		}
		name := where + "components." + kind + "." + key + "." + f
		if !allowed {
			return fmt.Errorf("%s: a %s of its own is not allowed on this server (custom component %ss are refused)", name, what, what)
		}
		if _, err := cu.Policy.Check(v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	for _, key := range slices.Sorted(maps.Keys(s.Components.RPMs)) {
		c := s.Components.RPMs[key]
		if c == nil {
			continue
		}
		if err := field("rpms", key, "repository", c.Repository, cu.AllowRepository, "repository"); err != nil {
			return err
		}
		if err := field("rpms", key, "cache", c.Cache, cu.AllowCache, "cache"); err != nil {
			return err
		}
	}
	for _, key := range slices.Sorted(maps.Keys(s.Components.Modules)) {
		if m := s.Components.Modules[key]; m != nil {
			if err := field("modules", key, "repository", m.Repository, cu.AllowRepository, "repository"); err != nil {
				return err
			}
		}
	}
	return nil
}

// InvalidModuleError means the module cannot be built as submitted: its
// modulemd does not parse or validate, or a component ref does not exist.
// It is a build failure, not an infrastructure error.
type InvalidModuleError struct {
	Module string
	Err    error
}

// Error implements error.
func (e *InvalidModuleError) Error() string { return e.Module + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *InvalidModuleError) Unwrap() error { return e.Err }

// errRefNotFound stands in for Init's notFound argument when the caller has
// no sentinel, so every resolution error counts as infrastructure trouble.
var errRefNotFound = errors.New("ref not found")

// Init is the init phase of a module build: parse the modulemd, validate it,
// enrich it (stream from the branch, version from the commit time, context,
// component refs resolved to commits) and plan its batches. A packager v3
// file gives one Build per configuration. notFound is the sentinel the
// resolver wraps for a missing ref (scm.ErrNotFound); such an error, like a
// parse or validation error, is returned as an *InvalidModuleError, and any
// other resolution error as an *InfraError.
func Init(ctx context.Context, src ModuleSource, notFound error, opts InitOptions) ([]*Build, error) {
	if opts.Resolver == nil {
		return nil, errors.New("runner: init: InitOptions.Resolver is required")
	}
	if opts.Platform == "" {
		opts.Platform = "el9"
	}
	if notFound == nil {
		notFound = errRefNotFound
	}
	label := src.Name + ":" + src.Branch
	streams, err := modulemd.Parse(src.Modulemd)
	if err != nil {
		return nil, &InvalidModuleError{Module: label, Err: err}
	}
	var res *resolver
	if opts.Graph != nil {
		res = &resolver{store: opts.Graph, self: modgraph.StreamRef{Name: src.Name, Stream: src.Branch}, request: opts.RequestID}
	}
	var builds []*Build
	for _, parsed := range streams {
		if src.Uploaded {
			if _, ok := parsed.Xmd["mbs"]; ok {
				return nil, &InvalidModuleError{Module: label, Err: errors.New(`The "mbs" xmd field is reserved for MBS`)}
			}
			// MBS: the submission's name and stream win over the document's.
			parsed.Name, parsed.Stream = src.Name, src.Branch
		}
		if err := parsed.Validate(); err != nil {
			return nil, &InvalidModuleError{Module: label, Err: err}
		}
		if err := applyOverrides(parsed, opts.BuildRequireOverrides, opts.RequireOverrides); err != nil {
			return nil, &InvalidModuleError{Module: label, Err: err}
		}
		// Before anything is fetched: the modulemd is the packager's.
		if err := opts.ComponentURLs.check(parsed, ""); err != nil {
			return nil, &InvalidModuleError{Module: label, Err: err}
		}
		if err := includeModules(ctx, parsed, src, opts.Modules, opts.ComponentURLs); err != nil {
			// A repository out of reach is infrastructure trouble; a
			// missing module, ref or file, a URL the policy refuses, or a
			// bad modulemd, is the module's own.
			var re *readIncludedError
			if errors.As(err, &re) && !errors.Is(err, notFound) && !errors.Is(err, urlpolicy.ErrDenied) {
				return nil, &InfraError{Op: "init " + label, Err: err}
			}
			return nil, &InvalidModuleError{Module: label, Err: err}
		}
		// Module stream expansion: one build per buildrequired stream
		// combination, as MBS does.
		var expandOpts modulemd.ExpandOptions
		if res != nil {
			if err := res.checkCycle(ctx, parsed); err != nil {
				return nil, err
			}
			if expandOpts.Available, err = res.available(ctx, parsed, opts.Platform); err != nil {
				return nil, err
			}
		}
		used := map[string]bool{}
		overridden := applySRPMs(parsed, opts.SRPMs, used)
		if err := unusedSRPMs(opts.SRPMs, used); err != nil {
			return nil, &InvalidModuleError{Module: label, Err: err}
		}
		expanded, err := modulemd.ExpandWith(parsed, expandOpts)
		if err != nil {
			return nil, &InvalidModuleError{Module: label, Err: err}
		}
		for _, s := range expanded {
			var (
				deps []ModuleDep
				brs  map[string]modulemd.ResolvedModule
			)
			if res != nil {
				if deps, brs, err = res.resolve(ctx, s, cmp.Or(platformStream(s), opts.Platform)); err != nil {
					return nil, err
				}
			}
			err := modulemd.Enrich(ctx, s, modulemd.EnrichOptions{
				Name: src.Name, Branch: src.Branch, ModuleCommit: src.Commit, CommitTime: src.CommitTime,
				ScmURL: src.ScmURL, Platform: opts.Platform, DefaultRepository: opts.DefaultRepository,
				Resolver: opts.Resolver, BuildRequires: brs, Overridden: overridden,
			})
			if err != nil {
				// Only a ref that could not be resolved for another reason
				// than not existing (a repository out of reach) is
				// infrastructure trouble; everything else is the module's.
				var re *modulemd.ResolveError
				if errors.As(err, &re) && !errors.Is(err, notFound) && !errors.Is(err, urlpolicy.ErrDenied) {
					return nil, &InfraError{Op: "init " + label, Err: err}
				}
				return nil, &InvalidModuleError{Module: label, Err: err}
			}
			marking := opts.Marking
			if marking == "" {
				marking = cmp.Or(platformStream(s), opts.Platform)
			}
			b, err := Plan(s, PlanOptions{ID: opts.ID, Marking: marking, SRPMs: opts.SRPMs})
			if err != nil {
				return nil, &InvalidModuleError{Module: label, Err: err}
			}
			b.Deps = deps
			builds = append(builds, b)
		}
	}
	if len(builds) == 0 {
		return nil, &InvalidModuleError{Module: label, Err: fmt.Errorf("modulemd holds no module stream")}
	}
	return builds, nil
}

// DefaultComponentBase guesses where component repositories live from the
// module repository's URL, following dist-git's layout of modules/<name>
// beside rpms/<name>: ".../modules/foo" gives ".../rpms".
func DefaultComponentBase(moduleRepo string) string {
	u, err := url.Parse(moduleRepo)
	if err != nil || u.Path == "" {
		return ""
	}
	u.Path = path.Join(path.Dir(path.Dir(strings.TrimRight(u.Path, "/"))), "rpms")
	return u.String()
}

// platformStream returns the platform stream s buildrequires, if it names
// exactly one.
func platformStream(s *modulemd.Stream) string {
	if len(s.Dependencies) != 1 {
		return ""
	}
	if st := s.Dependencies[0].BuildRequires[modulemd.PlatformModule]; len(st) == 1 {
		return st[0]
	}
	return ""
}

// includeModules reads every module s includes and merges their components
// into s (modulemd.Include).
func includeModules(ctx context.Context, s *modulemd.Stream, src ModuleSource, reader ModuleReader, cu *ComponentURLs) error {
	if len(s.Components.Modules) == 0 {
		return nil
	}
	if reader == nil {
		return errors.New("components.modules: included modules need a module reader, which this caller has not given")
	}
	repoURL, _, _ := strings.Cut(src.ScmURL, "?#")
	included := map[string]*modulemd.Stream{}
	for key, mc := range s.Components.Modules {
		if mc == nil {
			continue // Include reports it
		}
		repo := mc.Repository
		if repo == "" && repoURL == "" {
			return fmt.Errorf("components.modules.%s: names no repository, and a submitted modulemd has no module repository to find it beside", key)
		}
		if repo == "" {
			repo = strings.TrimSuffix(repoURL, "/"+path.Base(repoURL)) + "/" + key
		}
		ref := cmp.Or(mc.Ref, src.Branch)
		inc, err := reader.ReadModule(ctx, repo, key, ref, "")
		if err != nil {
			return &readIncludedError{fmt.Errorf("components.modules.%s: reading %s at %s: %w", key, repo, ref, err)}
		}
		streams, err := modulemd.Parse(inc.Modulemd)
		if err != nil {
			return fmt.Errorf("components.modules.%s: %w", key, err)
		}
		if len(streams) != 1 {
			return fmt.Errorf("components.modules.%s: the included modulemd holds %d streams, want 1", key, len(streams))
		}
		if err := cu.check(streams[0], "components.modules."+key+": "); err != nil {
			return err
		}
		if streams[0].Stream == "" {
			streams[0].Stream = ref
		}
		if mc.Repository == "" {
			mc.Repository = repo
		}
		if mc.Ref == "" {
			mc.Ref = ref
		}
		included[key] = streams[0]
	}
	return modulemd.Include(s, included)
}

// readIncludedError marks a failure to read an included module's modulemd.
type readIncludedError struct{ err error }

func (e *readIncludedError) Error() string { return e.err.Error() }
func (e *readIncludedError) Unwrap() error { return e.err }
