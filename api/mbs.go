package api

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
)

// componentIDBase makes component build ids stable: the component at index
// i (0-based, in the build's component list) of module build b has id
// b*componentIDBase + i + 1. A module build has fewer components than that.
const componentIDBase = 10000

// ComponentID returns the MBS component build id of the i-th component of
// module build buildID.
func ComponentID(buildID uint64, i int) uint64 { return buildID*componentIDBase + uint64(i) + 1 }

// splitComponentID is ComponentID's inverse.
func splitComponentID(id uint64) (buildID uint64, i int, ok bool) {
	if id%componentIDBase == 0 {
		return 0, 0, false
	}
	return id / componentIDBase, int(id%componentIDBase) - 1, true
}

// Detail selects how much of a module build the JSON shows, as MBS's
// ?short=true, default and ?verbose=true.
type Detail int

const (
	DetailShort Detail = iota
	DetailDefault
	DetailVerbose
)

func detailOf(q url.Values) Detail {
	switch {
	case truthy(q.Get("verbose")):
		return DetailVerbose
	case truthy(q.Get("short")):
		return DetailShort
	}
	return DetailDefault
}

func truthy(v string) bool { return v == "true" || v == "1" || v == "True" }

// zulu formats a time as MBS does.
func zulu(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// completedAt is when the build first reached a terminal state (zero if it
// has not).
func completedAt(mb *state.ModuleBuild) time.Time {
	for _, t := range mb.Transitions {
		if t.State.Terminal() {
			return t.Time
		}
	}
	if mb.State.Terminal() {
		return mb.UpdatedAt
	}
	return time.Time{}
}

// kojiState maps rida's component state onto Koji's BUILD_STATES number and
// name, as MBS reports them (nil: not submitted yet).
func kojiState(s string) (any, any) {
	switch s {
	case "building":
		return 0, "BUILDING"
	case "complete", "reused":
		return 1, "COMPLETE"
	case "failed":
		return 3, "FAILED"
	case "canceled":
		return 4, "CANCELED"
	}
	return nil, nil
}

// BuildJSON renders a module build with MBS's field names; verbose selects
// MBS's ?verbose=true form.
func BuildJSON(mb *state.ModuleBuild, verbose bool, version string) map[string]any {
	d := DetailDefault
	if verbose {
		d = DetailVerbose
	}
	return buildJSON(mb, d, version)
}

func buildJSON(mb *state.ModuleBuild, d Detail, version string) map[string]any {
	out := map[string]any{
		"id": mb.ID, "name": mb.Name, "stream": mb.Stream, "version": strconv.FormatUint(mb.Version, 10),
		"context": cmp.Or(mb.Context, "00000000"), "state": int(mb.State), "state_name": mb.State.String(),
		"scratch": mb.Scratch,
	}
	if d == DetailShort {
		return out
	}
	rpms := map[string]any{}
	compIDs := []uint64{}
	for i, c := range mb.Components {
		compIDs = append(compIDs, ComponentID(mb.ID, i))
		st, _ := kojiState(c.State)
		rpms[c.Package] = map[string]any{"task_id": taskIDJSON(c.TaskID), "state": st, "state_reason": nilIfEmpty(c.Reason), "nvr": nilIfEmpty(c.NVR), "batch": c.Batch}
	}
	out["state_reason"] = nilIfEmpty(mb.StateReason)
	out["owner"] = cmp.Or(mb.Owner, "rida")
	out["scmurl"] = scmURL(mb)
	out["koji_tag"] = kojiTag(mb)
	out["rebuild_strategy"] = cmp.Or(mb.RebuildStrategy, "changed-and-after")
	out["time_submitted"] = zulu(mb.CreatedAt)
	out["time_modified"] = zulu(mb.UpdatedAt)
	out["time_completed"] = zulu(completedAt(mb))
	out["component_builds"] = compIDs
	out["tasks"] = map[string]any{"rpms": rpms}
	out["siblings"] = []uint64{}
	out["srpms"] = append([]string{}, mb.SRPMs...) // MBS's list, [] when none
	out["buildrequires"] = buildRequiresJSON(mb)
	if d == DetailVerbose {
		trace := []map[string]any{}
		for _, t := range mb.Transitions {
			trace = append(trace, map[string]any{"time": zulu(t.Time), "state": int(t.State), "state_name": t.State.String(), "reason": nilIfEmpty(t.Reason)})
		}
		slices.Reverse(trace) // MBS lists the newest first
		out["state_trace"] = trace
		out["modulemd"] = mb.Modulemd
		out["state_url"] = fmt.Sprintf("/module-build-service/%s/module-builds/%d", version, mb.ID)
		out["base_module_buildrequires"] = []any{}
		out["build_context"] = nil
		out["runtime_context"] = nil
		out["reused_module_id"] = nil
		out["stream_version"] = nil
		out["virtual_streams"] = []string{}
		out["arches"] = []string{}
		// rida's own additions.
		out["result_dir"] = mb.ResultDir
		out["location"] = mb.Location
		out["components"] = mb.Components
		out["module_commit"] = nilIfEmpty(mb.ModuleCommit)
		out["dist_tag"] = nilIfEmpty(mb.DistTag)
		out["cancel_requested_by"] = nilIfEmpty(mb.CancelRequestedBy)
		out["request_id"] = mb.RequestID
	}
	return out
}

// kojiTaskURL is the Koji web page of task id (Options.KojiWebURL), ""
// without a task id or without KojiWebURL.
func (s *Server) kojiTaskURL(id int64) string {
	if id <= 0 || s.opts.KojiWebURL == "" {
		return ""
	}
	return s.opts.KojiWebURL + "/taskinfo?taskID=" + strconv.FormatInt(id, 10)
}

// kojiTagLink returns the module tag rida's Koji backend made for mb
// (module-N-S-V-C) and its Koji web page (Options.KojiWebURL; Koji's
// taginfo takes a tag's name or id as tagID), or "" twice before the build
// got to Koji (state build: Prepare makes the tags) or without
// KojiWebURL.
func (s *Server) kojiTagLink(mb *state.ModuleBuild) (tag, link string) {
	if s.opts.KojiWebURL == "" || mb.Version == 0 || mb.Context == "" {
		return "", ""
	}
	reached := mb.State == state.ModuleStateBuild || mb.State == state.ModuleStateDone || mb.State == state.ModuleStateReady
	for _, t := range mb.Transitions {
		reached = reached || t.State == state.ModuleStateBuild
	}
	if !reached {
		return "", ""
	}
	tag = moduleKojiTag(mb)
	return tag, s.opts.KojiWebURL + "/taginfo?tagID=" + url.QueryEscape(tag)
}

// build is buildJSON with the Koji web links when Options.KojiWebURL is
// set: tasks.rpms.<c>.task_url and koji_tag_url.
func (s *Server) build(mb *state.ModuleBuild, d Detail, version string) map[string]any {
	out := buildJSON(mb, d, version)
	if s.opts.KojiWebURL == "" || d == DetailShort {
		return out
	}
	rpms, _ := out["tasks"].(map[string]any)["rpms"].(map[string]any)
	for _, c := range mb.Components {
		if t, ok := rpms[c.Package].(map[string]any); ok {
			t["task_url"] = nilIfEmpty(s.kojiTaskURL(c.TaskID))
		}
	}
	_, link := s.kojiTagLink(mb)
	out["koji_tag_url"] = nilIfEmpty(link)
	return out
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// taskIDJSON is a component's task_id: the backend's task id (Koji's build
// task), null when it has none.
func taskIDJSON(id int64) any {
	if id <= 0 {
		return nil
	}
	return id
}

func scmURL(mb *state.ModuleBuild) any {
	if mb.ModuleRepo == "" {
		return nil
	}
	return mb.ModuleRepo + "?#" + mb.ModuleCommit
}

func kojiTag(mb *state.ModuleBuild) any {
	if mb.Version == 0 || mb.Context == "" {
		return nil
	}
	return moduleKojiTag(mb)
}

// moduleKojiTag is the Koji tag of mb (MBS: scrmod-N-S-V-C+<id> for a
// scratch build), the one the Koji backend creates.
func moduleKojiTag(mb *state.ModuleBuild) string {
	if mb.Scratch {
		return modulemd.ScratchKojiTag(mb.Name, mb.Stream, mb.Version, mb.Context, mb.ID, modulemd.MaxKojiTagLength)
	}
	return modulemd.KojiTag(mb.Name, mb.Stream, mb.Version, mb.Context)
}

func apiVersion(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/module-build-service/2/") {
		return "2"
	}
	return "1"
}

func (s *Server) getBuild(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.buildFromPath(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.build(mb, detailOf(r.URL.Query()), apiVersion(r)))
}

// buildColumns are the module build columns the list endpoint matches
// exactly and may order by, as MBS does.
var buildColumns = map[string]func(*state.ModuleBuild) string{
	"name":             func(mb *state.ModuleBuild) string { return mb.Name },
	"stream":           func(mb *state.ModuleBuild) string { return mb.Stream },
	"version":          func(mb *state.ModuleBuild) string { return strconv.FormatUint(mb.Version, 10) },
	"context":          func(mb *state.ModuleBuild) string { return mb.Context },
	"owner":            func(mb *state.ModuleBuild) string { return cmp.Or(mb.Owner, "rida") },
	"rebuild_strategy": func(mb *state.ModuleBuild) string { return cmp.Or(mb.RebuildStrategy, "changed-and-after") },
	"state_reason":     func(mb *state.ModuleBuild) string { return mb.StateReason },
	"scmurl":           func(mb *state.ModuleBuild) string { s, _ := scmURL(mb).(string); return s },
	"koji_tag":         func(mb *state.ModuleBuild) string { s, _ := kojiTag(mb).(string); return s },
}

// buildTimes are the date-range filters: <prefix>_before / <prefix>_after.
var buildTimes = map[string]func(*state.ModuleBuild) time.Time{
	"submitted": func(mb *state.ModuleBuild) time.Time { return mb.CreatedAt },
	"modified":  func(mb *state.ModuleBuild) time.Time { return mb.UpdatedAt },
	"completed": completedAt,
}

// buildOrder compares builds by an order_by key.
var buildOrder = map[string]func(a, b *state.ModuleBuild) int{
	"id":             func(a, b *state.ModuleBuild) int { return cmp.Compare(a.ID, b.ID) },
	"version":        func(a, b *state.ModuleBuild) int { return cmp.Compare(a.Version, b.Version) },
	"state":          func(a, b *state.ModuleBuild) int { return cmp.Compare(a.State, b.State) },
	"time_submitted": func(a, b *state.ModuleBuild) int { return a.CreatedAt.Compare(b.CreatedAt) },
	"time_modified":  func(a, b *state.ModuleBuild) int { return a.UpdatedAt.Compare(b.UpdatedAt) },
	"time_completed": func(a, b *state.ModuleBuild) int { return completedAt(a).Compare(completedAt(b)) },
}

func init() {
	for col, get := range buildColumns {
		if _, ok := buildOrder[col]; !ok && col != "version" {
			buildOrder[col] = func(a, b *state.ModuleBuild) int { return strings.Compare(get(a), get(b)) }
		}
	}
}

// parseZulu parses MBS's date filters: an ISO 8601 UTC timestamp
// (2006-01-02T15:04:05Z, with or without Z or seconds) or a date.
func parseZulu(name, v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04Z", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errorf(http.StatusBadRequest, "An invalid Zulu ISO 8601 timestamp was provided for the %q parameter: %q", name, v)
}

// MaxPerPage caps per_page: a larger value is answered with MaxPerPage
// items (meta.per_page says so), so one request cannot ask for the whole
// store.
const MaxPerPage = 100

// paging reads page and per_page (defaults 1 and 10; per_page at most
// MaxPerPage).
func paging(q url.Values) (page, perPage int, err error) {
	page, perPage = 1, 10
	for _, p := range []struct {
		name string
		dst  *int
	}{{"page", &page}, {"per_page", &perPage}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return 0, 0, errorf(http.StatusBadRequest, "%s must be a positive integer, got %q", p.name, v)
			}
			*p.dst = n
		}
	}
	return page, min(perPage, MaxPerPage), nil
}

// pageMeta is MBS's paging "meta" object; its links are absolute and keep
// the other query parameters.
func (s *Server) pageMeta(r *http.Request, page, perPage, total int) map[string]any {
	pages := max(1, (total+perPage-1)/perPage)
	base := strings.TrimRight(s.opts.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	link := func(p int) any {
		if p < 1 || p > pages {
			return nil
		}
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		return base + r.URL.Path + "?" + q.Encode()
	}
	return map[string]any{
		"page": page, "pages": pages, "per_page": perPage, "total": total,
		"prev": link(page - 1), "next": link(page + 1), "first": link(1), "last": link(pages),
	}
}

func pageBounds(page, perPage, total int) (start, end int) {
	start = min((page-1)*perPage, total)
	return start, min(start+perPage, total)
}

// buildFilter turns the list query into a match function.
func buildFilter(q url.Values) (func(*state.ModuleBuild) bool, error) {
	if q.Has("id") {
		return nil, errorf(http.StatusBadRequest, "Please use /module-builds/<id> to look up a single build by id")
	}
	control := []string{"state", "page", "per_page", "verbose", "short", "nsvc", "order_by", "order_desc_by"}
	type timeFilter struct {
		get    func(*state.ModuleBuild) time.Time
		before bool
		at     time.Time
	}
	var times []timeFilter
	for k := range q {
		if _, ok := buildColumns[k]; ok || slices.Contains(control, k) {
			continue
		}
		prefix, side, ok := strings.Cut(k, "_")
		get, known := buildTimes[prefix]
		if !ok || !known || (side != "before" && side != "after") {
			return nil, errorf(http.StatusBadRequest, "An invalid filter was submitted: %q", k)
		}
		at, err := parseZulu(k, q.Get(k))
		if err != nil {
			return nil, err
		}
		times = append(times, timeFilter{get: get, before: side == "before", at: at})
	}
	var states []state.ModuleState
	for _, v := range q["state"] {
		st, ok := parseState(v)
		if !ok {
			return nil, errorf(http.StatusBadRequest, "An invalid state was supplied: %q", v)
		}
		states = append(states, st)
	}
	var nsvc []string
	if v := q.Get("nsvc"); v != "" {
		nsvc = strings.Split(v, ":")
		if len(nsvc) > 4 {
			return nil, errorf(http.StatusBadRequest, "nsvc must be N[:S[:V[:C]]], got %q", v)
		}
	}
	return func(mb *state.ModuleBuild) bool {
		if len(states) > 0 && !slices.Contains(states, mb.State) {
			return false
		}
		for col, get := range buildColumns {
			if v := q.Get(col); q.Has(col) && get(mb) != v {
				return false
			}
		}
		for i, part := range []string{mb.Name, mb.Stream, strconv.FormatUint(mb.Version, 10), mb.Context} {
			if i < len(nsvc) && nsvc[i] != part {
				return false
			}
		}
		for _, tf := range times {
			t := tf.get(mb)
			if t.IsZero() || (tf.before && !t.Before(tf.at)) || (!tf.before && !t.After(tf.at)) {
				return false
			}
		}
		return true
	}, nil
}

// buildSorter reads order_by / order_desc_by (repeatable, not both).
// Default: id descending.
func buildSorter(q url.Values) (func(a, b state.ModuleBuild) int, error) {
	asc, desc := q["order_by"], q["order_desc_by"]
	if len(asc) > 0 && len(desc) > 0 {
		return nil, errorf(http.StatusBadRequest, "You may not specify both order_by and order_desc_by")
	}
	keys, sign := desc, -1
	if len(asc) > 0 {
		keys, sign = asc, 1
	}
	if len(keys) == 0 {
		keys = []string{"id"}
	}
	var cmps []func(a, b *state.ModuleBuild) int
	for _, k := range keys {
		c, ok := buildOrder[k]
		if !ok {
			names := make([]string, 0, len(buildOrder))
			for n := range buildOrder {
				names = append(names, n)
			}
			slices.Sort(names)
			return nil, errorf(http.StatusBadRequest, "An invalid ordering key of %q was supplied; valid keys: %s", k, strings.Join(names, ", "))
		}
		cmps = append(cmps, c)
	}
	return func(a, b state.ModuleBuild) int {
		for _, c := range cmps {
			if n := c(&a, &b); n != 0 {
				return sign * n
			}
		}
		return sign * cmp.Compare(a.ID, b.ID)
	}, nil
}

func (s *Server) listBuilds(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	match, err := buildFilter(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sorter, err := buildSorter(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, perPage, err := paging(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if lister, ok := s.opts.Store.(BuildLister); ok {
		if bq, ok := indexedQuery(q); ok {
			// The common lists (newest first, by name/stream/state) page
			// through the store's indexes: their cost does not grow with
			// history.
			bq.Offset, bq.Limit = (page-1)*perPage, perPage
			builds, total, err := lister.ListModuleBuilds(r.Context(), bq)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			detail := detailOf(q)
			items := []map[string]any{}
			for i := range builds {
				items = append(items, s.build(&builds[i], detail, apiVersion(r)))
			}
			writeJSON(w, http.StatusOK, map[string]any{"items": items, "meta": s.pageMeta(r, page, perPage, total)})
			return
		}
	}
	builds, err := s.opts.Store.ModuleBuilds(r.Context(), match)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	slices.SortStableFunc(builds, sorter)
	start, end := pageBounds(page, perPage, len(builds))
	detail := detailOf(q)
	items := []map[string]any{}
	for i := start; i < end; i++ {
		items = append(items, s.build(&builds[i], detail, apiVersion(r)))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "meta": s.pageMeta(r, page, perPage, len(builds))})
}

func parseState(v string) (state.ModuleState, bool) {
	if n, err := strconv.Atoi(v); err == nil {
		st := state.ModuleState(n)
		return st, st.Valid()
	}
	for st := state.ModuleStateInit; st <= state.ModuleStateGarbage; st++ {
		if st.String() == v {
			return st, true
		}
	}
	return 0, false
}

func (s *Server) patchBuild(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	who, err := s.identify(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := decodeBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := unknownKeys(body, "state"); err != nil {
		s.fail(w, r, err)
		return
	}
	st := strings.Trim(string(body["state"]), `"`)
	if st != "failed" && st != "4" {
		s.fail(w, r, errorf(http.StatusBadRequest, `The only allowed change is {"state": "failed"} (cancel); got state %s`, cmp.Or(string(body["state"]), "(missing)")))
		return
	}
	if s.opts.Canceler == nil {
		s.fail(w, r, errorf(http.StatusNotImplemented, "cancel is not available on this server"))
		return
	}
	if err := s.mayCancel(r.Context(), who, id); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.opts.Canceler.Cancel(r.Context(), id, who.name); err != nil {
		s.fail(w, r, err)
		return
	}
	mb, err := s.opts.Store.GetModuleBuild(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.build(mb, DetailVerbose, apiVersion(r)))
}

func (s *Server) about(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": s.opts.Version, "api_version": 2, "auth_method": s.authMethod(), "name": "rida"})
}

func (s *Server) rebuildStrategies(w http.ResponseWriter, r *http.Request) {
	desc := map[string]string{
		"all":               "All components will be rebuilt",
		"changed-and-after": "All components that have changed and those in subsequent batches will be rebuilt",
		"only-changed":      "All changed components will be rebuilt",
	}
	var items []map[string]any
	for _, n := range rebuildStrategyNames {
		items = append(items, map[string]any{"name": n, "description": desc[n], "allowed": true, "default": n == "changed-and-after"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

var rebuildStrategyNames = []string{"all", "changed-and-after", "only-changed"}

// hostArch is the RPM name of this machine's architecture, the arch of a
// local build's final modulemd.
func hostArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	}
	return runtime.GOARCH
}

func (s *Server) finalModulemd(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.buildFromPath(w, r)
	if !ok {
		return
	}
	if mb.State != state.ModuleStateDone && mb.State != state.ModuleStateReady {
		s.fail(w, r, errorf(http.StatusBadRequest, "The final modulemd of module build %d is not available: its state is %s, not done or ready", mb.ID, mb.State))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{hostArch(): mb.Modulemd})
}

// xmdBuildRequiresFields are the fields MBS's resolver writes for every
// entry of xmd.mbs.buildrequires (filtered_rpms added at init); each is
// present in the API answer, null when unknown (filtered_rpms: []).
var xmdBuildRequiresFields = []string{"stream", "version", "context", "ref", "koji_tag", "filtered_rpms"}

// buildRequiresJSON is MBS's "buildrequires" of a module build: the
// build's xmd.mbs.buildrequires, {name: {stream, version, context, ref,
// koji_tag, filtered_rpms}} (version a string, as MBS), platform included.
// When the modulemd has none (or is not readable), the build's recorded
// BuildRequires (and its platform stream) stand in, without ref and
// filtered_rpms.
func buildRequiresJSON(mb *state.ModuleBuild) map[string]any {
	if xbr := xmdBuildRequires(mb.Modulemd); len(xbr) > 0 {
		out := make(map[string]any, len(xbr))
		for name, v := range xbr {
			entry := map[string]any{}
			if m, ok := v.(map[string]any); ok {
				for k, fv := range m {
					entry[k] = fv
				}
			}
			for _, k := range xmdBuildRequiresFields {
				if _, ok := entry[k]; !ok {
					entry[k] = nil
				}
			}
			// YAML may give numbers (an unquoted version or context):
			// MBS's values are strings.
			for _, k := range []string{"stream", "version", "context", "ref", "koji_tag"} {
				switch x := entry[k].(type) {
				case nil, string:
				default:
					entry[k] = fmt.Sprint(x)
				}
			}
			if entry["filtered_rpms"] == nil {
				entry["filtered_rpms"] = []any{}
			}
			out[name] = entry
		}
		return out
	}
	out := map[string]any{}
	if mb.Platform != "" {
		out[modulemd.PlatformModule] = map[string]any{
			"stream": mb.Platform, "version": nil, "context": nil, "ref": nil, "koji_tag": nil, "filtered_rpms": []any{},
		}
	}
	for _, ba := range mb.BuildRequires {
		var tag any
		if ba.Version != 0 && ba.Context != "" {
			tag = modulemd.KojiTag(ba.Name, ba.Stream, ba.Version, ba.Context)
		}
		var version any
		if ba.Version != 0 {
			version = strconv.FormatUint(ba.Version, 10)
		}
		out[ba.Name] = map[string]any{
			"stream": ba.Stream, "version": version, "context": nilIfEmpty(ba.Context), "ref": nil,
			"koji_tag": tag, "filtered_rpms": []any{},
		}
	}
	return out
}

// xmdBuildRequires reads data.xmd.mbs.buildrequires from a modulemd YAML
// document without validating the rest (nil when absent or unreadable).
func xmdBuildRequires(doc string) map[string]any {
	if !strings.Contains(doc, "buildrequires") {
		return nil
	}
	dec := yaml.NewDecoder(strings.NewReader(doc))
	for {
		var d struct {
			Data struct {
				Xmd struct {
					MBS struct {
						BuildRequires map[string]any `yaml:"buildrequires"`
					} `yaml:"mbs"`
				} `yaml:"xmd"`
			} `yaml:"data"`
		}
		err := dec.Decode(&d)
		if err != nil {
			return nil // io.EOF: no document has them; anything else: unreadable
		}
		if br := d.Data.Xmd.MBS.BuildRequires; len(br) > 0 {
			return br
		}
	}
}

// BuildLister is the optional store capability listBuilds uses for lists the
// store's indexes can answer (*state.Store implements it).
type BuildLister interface {
	ListModuleBuilds(ctx context.Context, q state.BuildQuery) ([]state.ModuleBuild, int, error)
}

// indexedQuery maps a list query the store's indexes can answer (only
// name, stream and state filters, default order) to a BuildQuery; ok is
// false for any other filter or ordering, which the full listing handles.
func indexedQuery(q url.Values) (state.BuildQuery, bool) {
	var bq state.BuildQuery
	for k, vs := range q {
		switch k {
		case "page", "per_page", "verbose", "short":
		case "name", "stream":
			if len(vs) != 1 || vs[0] == "" {
				return bq, false
			}
		case "state":
			for _, v := range vs {
				st, ok := parseState(v)
				if !ok {
					return bq, false
				}
				bq.States = append(bq.States, st)
			}
		default:
			return bq, false
		}
	}
	bq.Name, bq.Stream = q.Get("name"), q.Get("stream")
	if bq.Stream != "" && bq.Name == "" {
		return bq, false
	}
	return bq, true
}
