package koji

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/runner"
)

// Caller is what the backend needs from a hub client; *Client implements it.
type Caller interface {
	Call(ctx context.Context, method string, args ...any) (Value, error)
	CallOnce(ctx context.Context, method string, args ...any) (Value, error)
	MultiCall(ctx context.Context, calls []MultiCallEntry) ([]MultiCallResult, error)
}

var _ Caller = (*Client)(nil)

// BackendOptions configures NewBackend.
type BackendOptions struct {
	// Client talks to the hub; it must be logged in (build, tagging and
	// tag edits need a session). Required. A *Client gives each module
	// build a subsession of its own (see Client.Subsession), opened at the
	// build's first call and closed when the build ends; another Caller is
	// shared by all builds.
	Client Caller
	// TopURL is the hub's file root (Koji's "topurl", e.g.
	// "https://kojipkgs.example.com"); it only makes component log paths.
	// Optional.
	TopURL string
	// Arches are the architectures the module's tags build for (as MBS's
	// BASE_MODULE_ARCHES: they win). Empty: the base module tag's arches,
	// as MBS takes the buildrequired base module's Koji tag's, and
	// ["x86_64"] (MBS's conf.arches) if that tag has none. A modulemd's
	// buildopts.arches narrows them to the arches in both (MBS since
	// v3.1); a buildopts arch outside them is logged and dropped, and
	// none in common fails Prepare naming both sets.
	Arches []string
	// BaseModuleTag is the tag of the base module (e.g. "module-el9-build"):
	// the build tag inherits from it and copies its "build" and
	// "srpm-build" groups. Required.
	BaseModuleTag string
	// Priority is the relative priority passed to build (Koji adds it to
	// its default, 20; higher means later). Default 0: the hub's default.
	Priority int
	// AllowedSCM lists URL prefixes a component repository must start
	// with; a component outside them fails without being submitted. Empty
	// allows any repository.
	AllowedSCM []string
	// Owner is the Koji user that owns the package list entries. Required.
	Owner string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// PollMin and PollMax bound the task poll interval: it starts at
	// PollMin, grows by half after each poll that saw no change, and is
	// reset when something changed. Defaults 2s and 30s.
	PollMin, PollMax time.Duration
	// Intents records submissions for crash safety. Default: a new
	// MemoryIntentStore (no crash safety).
	Intents IntentStore
	// TagPermission is the Koji permission the module's tags require for
	// changes to them (MBS's koji_tag_permission), looked up by name with
	// getAllPerms and set when a tag is created or differs. Default
	// "admin", as in MBS.
	TagPermission string
	// RepoTimeout bounds the wait for a build tag's repo after a batch
	// (repo.request, or newRepo on hubs before 1.35): when no repo came
	// within it, the batch fails with an error naming the tag and the
	// repo request (or newRepo task), which the runner records as an
	// infrastructure error. While waiting, the backend logs a warning every
	// 10 minutes (every quarter of RepoTimeout if that is shorter).
	// Default 2h.
	RepoTimeout time.Duration
	// UploadChunk is the upload chunk size in bytes. Default 1 MiB (the
	// Python client's).
	UploadChunk int
	// Test holds knobs for tests.
	Test BackendTestOptions
}

// BackendTestOptions are test-only knobs.
type BackendTestOptions struct {
	// RPMBuild is the rpmbuild binary. Default "rpmbuild".
	RPMBuild string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Backend builds module components in Koji, following MBS's
// KojiModuleBuilder: per module build a destination tag
// "module-N-S-V-C", a build tag "<tag>-build" inheriting from the base
// module's tag and from every module dependency's tag (runner.Build.Deps),
// a build target, then one Koji build task per component,
// tagging and a build-tag repo regeneration after every batch.
//
// It implements runner.Backend and is safe for concurrent use by several
// module builds. When BackendOptions.Client is a *Client, each module build
// talks to the hub in a Koji subsession of its own (see buildSession), so
// that a slow call of one build does not hold up the others.
type Backend struct {
	*core
	// c is what this value calls the hub with: BackendOptions.Client, or,
	// in the value forBuild returns, the module build's own session.
	c Caller
}

// core is what every module build's Backend value shares.
type core struct {
	opts BackendOptions
	log  *slog.Logger
	now  func() time.Time

	polls atomic.Int64
	est   estimates

	mu     sync.Mutex
	newAPI *bool                 // hub ≥ 1.35 (repo.request)
	permID int                   // TagPermission's id, 0 until looked up
	builds map[int64]*buildState // by Build.ID
}

// DefaultRepoTimeout is BackendOptions.RepoTimeout's default.
const DefaultRepoTimeout = 2 * time.Hour

// repoWarnEvery is how often a long repo wait is logged at WARN.
const repoWarnEvery = 10 * time.Minute

// NewBackend validates opts and returns a Backend. It makes no call.
func NewBackend(opts BackendOptions) (*Backend, error) {
	switch {
	case opts.Client == nil:
		return nil, fmt.Errorf("koji: new backend: BackendOptions.Client: %w", ErrOptionRequired)
	case opts.BaseModuleTag == "":
		return nil, fmt.Errorf("koji: new backend: BackendOptions.BaseModuleTag: %w", ErrOptionRequired)
	case opts.Owner == "":
		return nil, fmt.Errorf("koji: new backend: BackendOptions.Owner: %w", ErrOptionRequired)
	}
	opts.PollMin = cmp.Or(opts.PollMin, 2*time.Second)
	opts.PollMax = cmp.Or(opts.PollMax, 30*time.Second)
	if opts.PollMin < 0 || opts.PollMax < opts.PollMin {
		return nil, fmt.Errorf("koji: new backend: BackendOptions.PollMin (%s) must be positive and at most PollMax (%s)", opts.PollMin, opts.PollMax)
	}
	if opts.Intents == nil {
		opts.Intents = &MemoryIntentStore{}
	}
	opts.UploadChunk = cmp.Or(opts.UploadChunk, 1<<20)
	opts.RepoTimeout = cmp.Or(opts.RepoTimeout, DefaultRepoTimeout)
	if opts.RepoTimeout < 0 {
		return nil, fmt.Errorf("koji: new backend: BackendOptions.RepoTimeout (%s) must be positive", opts.RepoTimeout)
	}
	opts.TagPermission = cmp.Or(opts.TagPermission, "admin")
	opts.Test.RPMBuild = cmp.Or(opts.Test.RPMBuild, "rpmbuild")
	if opts.Test.Now == nil {
		opts.Test.Now = time.Now
	}
	opts.TopURL = strings.TrimRight(opts.TopURL, "/")
	return &Backend{c: opts.Client, core: &core{
		opts: opts, log: cmp.Or(opts.Logger, slog.Default()), now: opts.Test.Now,
		builds: map[int64]*buildState{},
	}}, nil
}

// Polls returns how many task polls (one multiCall each) the backend made.
func (be *Backend) Polls() int64 { return be.polls.Load() }

// buildState is what the backend knows about one module build.
type buildState struct {
	tag, buildTag, target string
	session               *buildSession // nil: the build uses BackendOptions.Client
	mu                    sync.Mutex
	aux                   map[int]bool            // open tagBuild/newRepo tasks
	macros                *macrosSRPM             // generated while Prepare talks to the hub
	reused                map[string]*reusedBuild // by component key, until its batch tags it
}

// macrosSRPM is a module-build-macros SRPM being generated in the
// background.
type macrosSRPM struct {
	done    chan struct{}
	path    string
	cleanup func()
	err     error
}

// TargetName returns the build target of a module build: the module tag,
// or, when the tag plus "-build" exceeds 56 characters, "module-" and the
// first 16 hex digits of sha1("N.S.V.C") (MBS's generate_koji_tag with
// max_length 56).
func TargetName(name, stream string, version uint64, context string) string {
	tag := modulemd.KojiTag(name, stream, version, context)
	if len(tag)+len("-build") > maxTargetLength {
		sum := sha1.Sum([]byte(name + "." + stream + "." + strconv.FormatUint(version, 10) + "." + context))
		return "module-" + hex.EncodeToString(sum[:])[:16]
	}
	return tag
}

func (be *Backend) state(b *runner.Build) *buildState {
	be.mu.Lock()
	defer be.mu.Unlock()
	st, ok := be.builds[b.ID]
	if !ok {
		tag, target := modulemd.KojiTag(b.Name, b.Stream, b.Version, b.Context), TargetName(b.Name, b.Stream, b.Version, b.Context)
		if b.Scratch {
			// MBS: scrmod-N-S-V-C+<id>, so a scratch build's tags never
			// take the name a regular build of the same NSVC would.
			tag = modulemd.ScratchKojiTag(b.Name, b.Stream, b.Version, b.Context, uint64(b.ID), modulemd.MaxKojiTagLength)
			target = modulemd.ScratchKojiTag(b.Name, b.Stream, b.Version, b.Context, uint64(b.ID), maxTargetLength)
		}
		st = &buildState{tag: tag, buildTag: tag + "-build", target: target, aux: map[int]bool{}}
		if m, ok := be.opts.Client.(*Client); ok {
			st.session = &buildSession{master: m, nsvc: b.NSVC(), log: be.log}
		}
		be.builds[b.ID] = st
	}
	return st
}

// maxTargetLength is MBS's max_length for target names.
const maxTargetLength = 56

// hubHasRepoRequests reports whether the hub is 1.35 or later.
func (be *Backend) hubHasRepoRequests(ctx context.Context) (bool, error) {
	be.mu.Lock()
	if be.newAPI != nil {
		defer be.mu.Unlock()
		return *be.newAPI, nil
	}
	be.mu.Unlock()
	var v string
	if err := callInto(ctx, be.c, &v, "getKojiVersion"); err != nil {
		return false, err
	}
	ok := versionAtLeast(v, 1, 35)
	be.mu.Lock()
	be.newAPI = &ok
	be.mu.Unlock()
	be.log.Info("koji: hub version", "version", v, "repo_requests", ok)
	return ok, nil
}

func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}

func callInto(ctx context.Context, c Caller, target any, method string, args ...any) error {
	v, err := c.Call(ctx, method, args...)
	if err != nil {
		return err
	}
	if err := v.Decode(target); err != nil {
		return fmt.Errorf("koji: %s: %w", method, err)
	}
	return nil
}

// multi runs calls in one multiCall and fails on the first fault.
func (be *Backend) multi(ctx context.Context, calls []MultiCallEntry) ([]MultiCallResult, error) {
	res, err := be.c.MultiCall(ctx, calls)
	if err != nil {
		return nil, err
	}
	for i, r := range res {
		if r.Fault != nil {
			return nil, fmt.Errorf("koji: %s: %w", calls[i].Method, r.Fault)
		}
	}
	return res, nil
}

// multiOnce is multi without retries of the request (for build
// submissions, which must not be repeated blindly). One call goes out
// alone, not in a multiCall.
func (be *Backend) multiOnce(ctx context.Context, calls []MultiCallEntry) ([]MultiCallResult, error) {
	if len(calls) == 1 {
		v, err := be.c.CallOnce(ctx, calls[0].Method, calls[0].Args...)
		if err != nil {
			var f *Fault
			if errors.As(err, &f) {
				return []MultiCallResult{{Fault: f}}, nil
			}
			return nil, err
		}
		return []MultiCallResult{{Value: v}}, nil
	}
	v, err := be.c.CallOnce(ctx, "multiCall", multiCallParams(calls))
	if err != nil {
		return nil, err
	}
	return multiCallResults(calls, v)
}

// tagExtra returns the extra of the module's tags: MBS's
// koji_tag_extra_opts, with xmd.mbs_options.repo_include_all applied.
func tagExtra(b *runner.Build) map[string]any {
	extra := map[string]any{
		"mock.package_manager":     "dnf",
		"repo_include_all":         true,
		"mock.new_chroot":          0,
		"mock.yum.module_hotfixes": 1,
	}
	if b.Modulemd != nil {
		if o, ok := b.Modulemd.Xmd["mbs_options"].(map[string]any); ok {
			if v, ok := o["repo_include_all"].(bool); ok {
				extra["repo_include_all"] = v
			}
		}
	}
	return extra
}

// tagArches returns the arches string of the module's tags: Arches, else
// the base module tag's, else x86_64, narrowed by buildopts.arches.
func (be *Backend) tagArches(ctx context.Context, b *runner.Build) (string, error) {
	arches := be.opts.Arches
	if len(arches) == 0 {
		var t *tagInfo
		if err := callInto(ctx, be.c, &t, "getTag", be.opts.BaseModuleTag); err != nil {
			return "", fmt.Errorf("arches: %w", err)
		}
		if t == nil {
			return "", fmt.Errorf("arches: base module tag %s does not exist (backend.koji.base_module_tag)", be.opts.BaseModuleTag)
		}
		if t.Arches != nil {
			arches = strings.Fields(*t.Arches)
		}
		if len(arches) == 0 {
			arches = []string{"x86_64"}
		}
	}
	if b.Modulemd != nil && b.Modulemd.BuildOpts != nil && len(b.Modulemd.BuildOpts.Arches) > 0 {
		want := b.Modulemd.BuildOpts.Arches
		var narrowed []string
		for _, a := range arches {
			if slices.Contains(want, a) {
				narrowed = append(narrowed, a)
			}
		}
		if len(narrowed) == 0 {
			return "", fmt.Errorf("buildopts.arches (%s) has none of the module's arches (%s)", strings.Join(want, ", "), strings.Join(arches, ", "))
		}
		for _, a := range want {
			if !slices.Contains(arches, a) {
				be.log.Warn("koji: buildopts.arches names an arch the module does not build for; dropped", "nsvc", b.NSVC(), "arch", a, "arches", strings.Join(arches, " "))
			}
		}
		arches = narrowed
	}
	return strings.Join(arches, " "), nil
}

// sameArches reports whether two arches strings hold the same set.
func sameArches(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// whitelist returns the packages of the tags' package lists:
// buildopts.rpms.whitelist, else every component's package name, plus
// module-build-macros.
func whitelist(b *runner.Build) []string {
	set := map[string]bool{runner.MacrosComponent: true}
	if b.Modulemd != nil && b.Modulemd.BuildOpts != nil && len(b.Modulemd.BuildOpts.Whitelist) > 0 {
		for _, p := range b.Modulemd.BuildOpts.Whitelist {
			set[p] = true
		}
	} else {
		for _, batch := range b.Batches {
			for _, c := range batch.Components {
				set[cmp.Or(c.Package, c.Key)] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

type tagInfo struct {
	ID     int            `json:"id"`
	Name   string         `json:"name"`
	PermID *int           `json:"perm_id"`
	Arches *string        `json:"arches"`
	Extra  map[string]any `json:"extra"`
	Locked bool           `json:"locked"`
}

// Prepare creates (or brings up to date) the module's Koji tags, package
// lists, groups, inheritance and build target. It is idempotent. Its calls
// are the first of the module build's own session (see buildSession),
// which it closes when it fails (the runner then ends the build).
func (be *Backend) Prepare(ctx context.Context, b *runner.Build) (err error) {
	st := be.state(b)
	defer func() {
		if err != nil {
			be.endSession(ctx, st)
		}
	}()
	be = be.forBuild(st)
	be.startMacros(ctx, b, st)
	if _, err := be.hubHasRepoRequests(ctx); err != nil {
		return err
	}
	arches, err := be.tagArches(ctx, b)
	if err != nil {
		return fmt.Errorf("koji: prepare %s: %w", b.NSVC(), err)
	}
	extra := tagExtra(b)
	perm, err := be.tagPermID(ctx)
	if err != nil {
		return fmt.Errorf("koji: prepare %s: %w", b.NSVC(), err)
	}
	var tagIDs [2]int
	for i, name := range []string{st.tag, st.buildTag} {
		id, err := be.ensureTag(ctx, name, arches, extra, perm)
		if err != nil {
			return err
		}
		tagIDs[i] = id
	}
	// Package lists: packageListAdd is a no-op for an unchanged entry.
	var calls []MultiCallEntry
	for _, tag := range []string{st.tag, st.buildTag} {
		for _, p := range whitelist(b) {
			calls = append(calls, MultiCallEntry{Method: "packageListAdd", Args: []any{tag, p, KW{"owner": be.opts.Owner}}})
		}
	}
	if _, err := be.multi(ctx, calls); err != nil {
		return fmt.Errorf("koji: prepare %s: package list: %w", b.NSVC(), err)
	}
	if err := be.ensureGroups(ctx, st); err != nil {
		return fmt.Errorf("koji: prepare %s: groups: %w", b.NSVC(), err)
	}
	if err := be.ensureInheritance(ctx, st, tagIDs[1], be.inheritParents(b)); err != nil {
		return fmt.Errorf("koji: prepare %s: inheritance: %w", b.NSVC(), err)
	}
	if err := be.ensureTarget(ctx, st); err != nil {
		return fmt.Errorf("koji: prepare %s: %w", b.NSVC(), err)
	}
	be.log.Info("koji: prepared", "nsvc", b.NSVC(), "tag", st.tag, "target", st.target)
	return nil
}

// tagPermID looks up TagPermission's id once (getAllPerms, as MBS does).
func (be *Backend) tagPermID(ctx context.Context) (int, error) {
	be.mu.Lock()
	id := be.permID
	be.mu.Unlock()
	if id != 0 {
		return id, nil
	}
	var perms []struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	if err := callInto(ctx, be.c, &perms, "getAllPerms"); err != nil {
		return 0, fmt.Errorf("tag permission: %w", err)
	}
	for _, p := range perms {
		if p.Name == be.opts.TagPermission {
			be.mu.Lock()
			be.permID = p.ID
			be.mu.Unlock()
			return p.ID, nil
		}
	}
	return 0, fmt.Errorf("tag permission: the hub has no permission %q (backend.koji.tag_permission)", be.opts.TagPermission)
}

func (be *Backend) ensureTag(ctx context.Context, name, arches string, extra map[string]any, perm int) (int, error) {
	var t *tagInfo
	if err := callInto(ctx, be.c, &t, "getTag", name); err != nil {
		return 0, err
	}
	if t == nil {
		var id int
		if err := callInto(ctx, be.c, &id, "createTag", name, KW{"arches": arches, "perm": perm, "extra": extra}); err != nil {
			return 0, err
		}
		return id, nil
	}
	if t.Locked {
		return 0, fmt.Errorf("koji: tag %s is locked", name)
	}
	changed := false
	edit := KW{"extra": extra}
	if t.Arches == nil || !sameArches(*t.Arches, arches) {
		// As MBS: arches only when the set changed.
		changed, edit["arches"] = true, arches
	}
	for k, v := range extra {
		if fmt.Sprint(t.Extra[k]) != fmt.Sprint(v) {
			changed = true
		}
	}
	if t.PermID == nil || *t.PermID != perm {
		changed, edit["perm"] = true, perm
	}
	if changed {
		if _, err := be.c.Call(ctx, "editTag2", name, edit); err != nil {
			return 0, err
		}
	}
	return t.ID, nil
}

type tagGroup struct {
	Name        string `json:"name"`
	PackageList []struct {
		Package string `json:"package"`
	} `json:"packagelist"`
}

// ensureGroups gives the build tag the "build" and "srpm-build" groups with
// the base module tag's packages.
func (be *Backend) ensureGroups(ctx context.Context, st *buildState) error {
	res, err := be.multi(ctx, []MultiCallEntry{
		{Method: "getTagGroups", Args: []any{be.opts.BaseModuleTag, KW{"inherit": true}}},
		{Method: "getTagGroups", Args: []any{st.buildTag, KW{"inherit": false}}},
	})
	if err != nil {
		return err
	}
	var base, have []tagGroup
	if err := res[0].Value.Decode(&base); err != nil {
		return err
	}
	if err := res[1].Value.Decode(&have); err != nil {
		return err
	}
	pkgs := func(gs []tagGroup, name string) ([]string, bool) {
		for _, g := range gs {
			if g.Name == name {
				var out []string
				for _, p := range g.PackageList {
					out = append(out, p.Package)
				}
				return out, true
			}
		}
		return nil, false
	}
	var calls []MultiCallEntry
	for _, group := range []string{"build", "srpm-build"} {
		want, _ := pkgs(base, group)
		got, exists := pkgs(have, group)
		if !exists {
			calls = append(calls, MultiCallEntry{Method: "groupListAdd", Args: []any{st.buildTag, group}})
		}
		for _, p := range want {
			if !slices.Contains(got, p) {
				calls = append(calls, MultiCallEntry{Method: "groupPackageListAdd", Args: []any{st.buildTag, group, p}})
			}
		}
	}
	_, err = be.multi(ctx, calls)
	return err
}

type inheritLink struct {
	ParentID     int    `json:"parent_id"`
	Priority     int    `json:"priority"`
	MaxDepth     *int   `json:"maxdepth"`
	Intransitive bool   `json:"intransitive"`
	NoConfig     bool   `json:"noconfig"`
	PkgFilter    string `json:"pkg_filter"`
}

// inheritParent is one tag the build tag must inherit from, with what it
// is for error messages.
type inheritParent struct {
	tag  string
	what string // "base module tag" or "dependency N:S:V:C"
}

// inheritParents returns the tags the build tag inherits from, in the order
// their priorities are given: the base module tag first, then every module
// dependency's tag (b.Deps, sorted by name, stream, version, context), each
// tag once. A dependency without a KojiTag (built elsewhere) gets the tag
// the backend names a module's tag by, from its NSVC.
func (be *Backend) inheritParents(b *runner.Build) []inheritParent {
	out := []inheritParent{{tag: be.opts.BaseModuleTag, what: "base module tag"}}
	seen := map[string]bool{be.opts.BaseModuleTag: true}
	deps := slices.Clone(b.Deps)
	slices.SortStableFunc(deps, func(x, y runner.ModuleDep) int {
		return cmp.Or(cmp.Compare(x.Name, y.Name), cmp.Compare(x.Stream, y.Stream),
			cmp.Compare(x.Version, y.Version), cmp.Compare(x.Context, y.Context))
	})
	for _, d := range deps {
		tag := cmp.Or(d.KojiTag, modulemd.KojiTag(d.Name, d.Stream, d.Version, d.Context))
		if seen[tag] {
			continue
		}
		seen[tag] = true
		out = append(out, inheritParent{tag: tag,
			what: "dependency " + modulemd.NSVC(d.Name, d.Stream, d.Version, d.Context)})
	}
	return out
}

// ensureInheritance makes the build tag inherit from every parent, as
// MBS's buildroot_add_repos (_koji_add_many_tag_inheritance): the build
// tag's inheritance sorted by priority, getTag of each parent (strict), then
// one setInheritanceData with the existing links plus one for each parent
// not yet there, at priorities from (last priority + 10), or 0, in steps of
// 10. Nothing is written when every parent is already there, so a resumed
// build's Prepare changes nothing.
func (be *Backend) ensureInheritance(ctx context.Context, st *buildState, buildTagID int, parents []inheritParent) error {
	var links []inheritLink
	if err := callInto(ctx, be.c, &links, "getInheritanceData", st.buildTag); err != nil {
		return err
	}
	slices.SortStableFunc(links, func(x, y inheritLink) int { return cmp.Compare(x.Priority, y.Priority) })
	prio := 0
	have := map[int]bool{}
	for _, l := range links {
		have[l.ParentID] = true
	}
	if len(links) > 0 {
		prio = links[len(links)-1].Priority + 10
	}
	data := make([]any, 0, len(links)+len(parents))
	for _, l := range links {
		data = append(data, l)
	}
	added := 0
	for _, p := range parents {
		var t tagInfo
		if err := callInto(ctx, be.c, &t, "getTag", p.tag, KW{"strict": true}); err != nil {
			return fmt.Errorf("%s: tag %s: %w", p.what, p.tag, err)
		}
		if have[t.ID] {
			continue
		}
		have[t.ID] = true
		data = append(data, map[string]any{
			"parent_id": t.ID, "priority": prio, "maxdepth": nil,
			"intransitive": false, "noconfig": false, "pkg_filter": "",
		})
		prio += 10
		added++
	}
	if added == 0 {
		return nil
	}
	_, err := be.c.Call(ctx, "setInheritanceData", buildTagID, data)
	return err
}

func (be *Backend) ensureTarget(ctx context.Context, st *buildState) error {
	var t *struct {
		BuildTagName string `json:"build_tag_name"`
		DestTagName  string `json:"dest_tag_name"`
	}
	if err := callInto(ctx, be.c, &t, "getBuildTarget", st.target); err != nil {
		return err
	}
	if t == nil {
		_, err := be.c.Call(ctx, "createBuildTarget", st.target, st.buildTag, st.tag)
		return err
	}
	if t.BuildTagName != st.buildTag || t.DestTagName != st.tag {
		return fmt.Errorf("koji: target %s exists with build tag %s and destination tag %s, want %s and %s",
			st.target, t.BuildTagName, t.DestTagName, st.buildTag, st.tag)
	}
	return nil
}

// Finish returns the module tag as the build's location and the final
// modulemd with artifacts.rpms set to the NEVRAs of the completed
// components (module-build-macros excluded).
func (be *Backend) Finish(ctx context.Context, b *runner.Build) (*runner.Result, error) {
	st := be.state(b)
	st.dropMacros()
	// The build is over: its session is not needed any more.
	defer be.endSession(ctx, st)
	if b.Modulemd == nil {
		return nil, fmt.Errorf("koji: finish %s: build has no modulemd", b.NSVC())
	}
	set := map[string]bool{}
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			if c.Key == runner.MacrosComponent || (c.State != runner.ComponentComplete && c.State != runner.ComponentReused) {
				continue
			}
			for _, n := range c.RPMs {
				set[n] = true
			}
		}
	}
	nevras := make([]string, 0, len(set))
	for n := range set {
		nevras = append(nevras, n)
	}
	sort.Strings(nevras)
	s := b.Modulemd.Clone()
	s.Artifacts.RPMs = nevras
	out, err := s.Marshal()
	if err != nil {
		return nil, fmt.Errorf("koji: finish %s: %w", b.NSVC(), err)
	}
	be.log.Info("koji: build finished", "nsvc", b.NSVC(), "tag", st.tag, "rpms", len(nevras))
	return &runner.Result{Modulemd: out, Location: st.tag}, nil
}

// Cancel cancels every open Koji task of the build: component builds
// (from the intent store) and the backend's own tagging and repo tasks.
// It calls the hub with BackendOptions.Client's session, not the build's,
// so that a call the build still has in flight does not hold it up, and
// closes the build's session.
func (be *Backend) Cancel(ctx context.Context, b *runner.Build) error {
	st := be.state(b)
	defer be.endSession(ctx, st)
	intents, err := be.opts.Intents.Tasks(ctx, b.ID)
	if err != nil {
		return fmt.Errorf("koji: cancel %s: %w", b.NSVC(), err)
	}
	var ids []int
	for _, in := range intents {
		if in.TaskID != 0 {
			ids = append(ids, in.TaskID)
		}
	}
	st.mu.Lock()
	for id := range st.aux {
		ids = append(ids, id)
	}
	st.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	infos, err := be.taskInfos(ctx, ids)
	if err != nil {
		return fmt.Errorf("koji: cancel %s: %w", b.NSVC(), err)
	}
	var calls []MultiCallEntry
	for _, id := range ids {
		if in, ok := infos[id]; ok && !in.done() {
			calls = append(calls, MultiCallEntry{Method: "cancelTask", Args: []any{id}})
		}
	}
	if _, err := be.multi(ctx, calls); err != nil {
		return fmt.Errorf("koji: cancel %s: %w", b.NSVC(), err)
	}
	be.log.Info("koji: canceled tasks", "nsvc", b.NSVC(), "tasks", len(calls))
	return nil
}

// Koji task states.
const (
	taskFree     = 0
	taskOpen     = 1
	taskClosed   = 2
	taskCanceled = 3
	taskAssigned = 4
	taskFailed   = 5
)

var taskStateNames = map[int]string{taskFree: "FREE", taskOpen: "OPEN", taskClosed: "CLOSED",
	taskCanceled: "CANCELED", taskAssigned: "ASSIGNED", taskFailed: "FAILED"}

type taskInfo struct {
	ID           int      `json:"id"`
	State        int      `json:"state"`
	Method       string   `json:"method"`
	CreateTS     *float64 `json:"create_ts"`
	CompletionTS *float64 `json:"completion_ts"`
}

func (t taskInfo) done() bool {
	return t.State == taskClosed || t.State == taskCanceled || t.State == taskFailed
}

// took is how long the hub took from creating the task to closing it (by
// the hub's own clock), -1 if unknown.
func (t taskInfo) took() time.Duration {
	if t.CreateTS == nil || t.CompletionTS == nil || *t.CompletionTS < *t.CreateTS {
		return -1
	}
	return time.Duration((*t.CompletionTS - *t.CreateTS) * float64(time.Second))
}

// taskInfoCalls returns one getTaskInfo entry per id.
func taskInfoCalls(ids []int) []MultiCallEntry {
	calls := make([]MultiCallEntry, len(ids))
	for i, id := range ids {
		calls[i] = MultiCallEntry{Method: "getTaskInfo", Args: []any{id}}
	}
	return calls
}

// decodeTaskInfos reads the answers to taskInfoCalls(ids).
func decodeTaskInfos(ids []int, res []MultiCallResult) (map[int]taskInfo, error) {
	out := make(map[int]taskInfo, len(ids))
	for i, id := range ids {
		if res[i].Fault != nil {
			return nil, fmt.Errorf("koji: getTaskInfo %d: %w", id, res[i].Fault)
		}
		var t *taskInfo
		if err := res[i].Value.Decode(&t); err != nil {
			return nil, err
		}
		if t == nil {
			return nil, fmt.Errorf("koji: task %d does not exist", id)
		}
		out[id] = *t
	}
	return out, nil
}

// taskInfos fetches the state of tasks in one multiCall.
func (be *Backend) taskInfos(ctx context.Context, ids []int) (map[int]taskInfo, error) {
	res, err := be.multi(ctx, taskInfoCalls(ids))
	if err != nil {
		return nil, err
	}
	be.polls.Add(1)
	return decodeTaskInfos(ids, res)
}

// Kinds of hub work whose durations the backend learns (estimates).
const (
	kindBuild = iota
	kindTag
	kindRepo
	numKinds
)

// estimates remembers how long the hub last took for each kind of work, so
// that a poll can be made when the work is expected to be done instead of
// only on the backoff schedule.
type estimates struct {
	mu    sync.Mutex
	d     [numKinds]time.Duration
	known [numKinds]bool
}

func (e *estimates) observe(kind int, d time.Duration) {
	if d < 0 {
		return
	}
	e.mu.Lock()
	e.d[kind], e.known[kind] = d, true
	e.mu.Unlock()
}

// due returns when work of kind started at since is expected to be done,
// or the zero time without an estimate.
func (e *estimates) due(kind int, since time.Time) time.Time {
	if since.IsZero() {
		return time.Time{}
	}
	e.mu.Lock()
	d, ok := e.d[kind], e.known[kind]
	e.mu.Unlock()
	if !ok {
		return time.Time{}
	}
	return since.Add(d)
}

// earliest returns the earlier of two due times (zero: unknown).
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// poller spaces polls: PollMin at first, growing by half while nothing
// changes, reset by a change, never above PollMax. A poll is moved earlier
// to the time the awaited work is expected to be done (learned from the
// hub's timestamps of earlier work), once per expected time: an estimate
// only ever adds a poll, it never delays one.
type poller struct {
	min, max, cur time.Duration
	now           func() time.Time
	last          time.Time // when the last poll was made
}

// wait sleeps until the next poll. due is the expected completion of the
// earliest awaited work (zero: unknown).
func (p *poller) wait(ctx context.Context, changed bool, due time.Time) error {
	switch {
	case changed || p.cur == 0:
		p.cur = p.min
	default:
		p.cur = min(p.cur+p.cur/2, p.max)
	}
	d := p.cur
	now := p.now()
	if !due.IsZero() && (p.last.IsZero() || due.After(p.last)) {
		d = min(d, max(due.Sub(now), 0))
	}
	defer func() { p.last = p.now() }()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (be *Backend) newPoller() *poller {
	return &poller{min: be.opts.PollMin, max: be.opts.PollMax, now: time.Now}
}

// taskFailure returns the *TaskError of an auxiliary task (tagBuild,
// newRepo) that ended without success.
func (be *Backend) taskFailure(ctx context.Context, in taskInfo) error {
	reason := ""
	if in.State == taskFailed {
		if _, err := be.c.Call(ctx, "getTaskResult", in.ID); err != nil {
			var f *Fault
			if errors.As(err, &f) {
				reason = f.String
			}
		}
	}
	return &TaskError{TaskID: in.ID, Method: in.Method, State: taskStateNames[in.State], Reason: reason}
}
