package modulemd

// Stream is one module stream in modulemd stream v2 form: the data section of
// a `document: modulemd, version: 2` document. Every reader in this package
// produces a Stream, whatever the source format (stream v1 and packager v2/v3
// documents are converted).
//
// The zero value is an empty stream. A Stream is not safe for concurrent
// mutation; concurrent reads are fine.
type Stream struct {
	// Name is the module name. Optional in source files (it comes from the
	// repository name); Enrich fills it.
	Name string
	// Stream is the stream name. Optional in source files (it comes from
	// the branch); Enrich fills it. A YAML integer such as `stream: 8` is
	// read as the string "8".
	Stream string
	// Version is the module version; 0 means unset (the build system fills
	// it in, see Enrich).
	Version uint64
	// Context is the module context; empty means unset.
	Context string
	// StaticContext reports that Context was chosen by the packager and
	// must not be recomputed.
	StaticContext bool
	// Arch is the module architecture, filled in at compose time.
	Arch string
	// Summary and Description are mandatory (see Validate).
	Summary     string
	Description string
	// ServiceLevels maps a service level name to its end of life.
	ServiceLevels map[string]ServiceLevel
	// License holds the module's license and the licenses of its content.
	License License
	// Xmd is free-form extensible metadata, kept as read: mappings are
	// map[string]any (keys are always strings), sequences []any, scalars
	// string, int, uint64, float64, bool or nil. MBS keeps its state under
	// Xmd["mbs"] (see Enrich).
	Xmd map[string]any
	// Dependencies lists the build/run dependency combinations.
	Dependencies []Dependencies
	// References holds the module's URLs; nil when absent.
	References *References
	// Profiles maps a profile name to its packages.
	Profiles map[string]*Profile
	// API, Filter and Demodularized are the api.rpms, filter.rpms and
	// demodularized.rpms lists.
	API           []string
	Filter        []string
	Demodularized []string
	// BuildOpts holds build options; nil when absent.
	BuildOpts *BuildOpts
	// Components holds the RPM and module components.
	Components Components
	// Artifacts holds the build output.
	Artifacts Artifacts
}

// ServiceLevel is one entry of servicelevels.
type ServiceLevel struct {
	// EOL is the end-of-life date, YYYY-MM-DD, or empty.
	EOL string
}

// License is the license section of a stream.
type License struct {
	// Module lists the licenses of the module metadata itself (mandatory).
	Module []string
	// Content lists the licenses of the packaged content.
	Content []string
}

// Dependencies is one entry of the dependencies list: the module streams
// needed at build time and at run time. Each value is a list of streams; an
// empty list means every stream, a stream prefixed with "-" excludes it.
type Dependencies struct {
	BuildRequires map[string][]string
	Requires      map[string][]string
}

// References holds the URLs of a stream.
type References struct {
	Community     string
	Documentation string
	Tracker       string
}

// Profile is a named set of binary packages.
type Profile struct {
	Description string
	RPMs        []string
	// Default marks the profile as a default one; only packager v3
	// documents set it (libmodulemd tolerates it in stream v2 too).
	Default bool
}

// BuildOpts holds the buildopts section.
type BuildOpts struct {
	// Macros is appended to the buildroot's RPM macros.
	Macros string
	// Whitelist lists the package build names allowed; empty means the
	// component names.
	Whitelist []string
	// Arches restricts the architectures the module is built for; empty
	// means all.
	Arches []string
}

// Components holds the components of a stream, by key.
type Components struct {
	RPMs    map[string]*Component
	Modules map[string]*ModuleComponent
}

// Component is one entry of components.rpms. Its key in the map is the
// component key, used by buildafter and batches.
type Component struct {
	// Key is the component's key in components.rpms. The readers set it;
	// code building a Stream by hand should set it too (PackageName uses
	// it). Marshal always writes the map key, never this field.
	Key string
	// Name overrides the package name; see PackageName.
	Name       string
	Rationale  string
	Repository string
	Cache      string
	// Ref is a branch, tag or commit; empty means the build system picks
	// (see EnrichOptions.DefaultRef).
	Ref string
	// BuildOrder groups components into batches; 0 is the default.
	BuildOrder int64
	// BuildAfter lists component keys this component builds after.
	BuildAfter    []string
	BuildOnly     bool
	Buildroot     bool
	SRPMBuildroot bool
	// Arches restricts the component to these architectures; empty means
	// all of the module's.
	Arches   []string
	Multilib []string
}

// PackageName returns the package name of the component: the name override
// if set, else the component key.
func (c *Component) PackageName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.Key
}

// ModuleComponent is one entry of components.modules (an included module).
type ModuleComponent struct {
	Rationale  string
	Repository string
	Ref        string
	BuildOrder int64
}

// Artifacts holds the artifacts section of a stream.
type Artifacts struct {
	// RPMs lists NEVRAs, name-epoch:version-release.arch.
	RPMs []string
	// RPMMap is the rpm-map section, kept as read (same value types as
	// Stream.Xmd).
	RPMMap map[string]any
}
