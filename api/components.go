package api

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/rida-build/rida/state"
)

// component is one component build with its module build, for listing.
type component struct {
	id    uint64
	build *state.ModuleBuild
	c     state.ComponentBuild
}

func (s *Server) componentJSON(cb component, verbose bool, version string) map[string]any {
	c := cb.c
	st, name := kojiState(c.State)
	out := map[string]any{
		"id": cb.id, "package": c.Package, "format": "rpms", "task_id": taskIDJSON(c.TaskID),
		"state": st, "state_name": name, "state_reason": nilIfEmpty(c.Reason),
		"module_build": cb.build.ID, "nvr": nilIfEmpty(c.NVR),
		// rida's own additions.
		"rida_state": c.State, "ref": nilIfEmpty(c.Ref), "commit": nilIfEmpty(c.Commit),
		"repository": nilIfEmpty(c.Repository), "reused_from": nilIfZero(c.ReusedFrom),
		"time_started": zulu(c.Started), "time_finished": zulu(c.Finished),
	}
	if s.opts.KojiWebURL != "" {
		out["task_url"] = nilIfEmpty(s.kojiTaskURL(c.TaskID))
	}
	if verbose {
		out["batch"] = c.Batch
		out["state_url"] = fmt.Sprintf("/module-build-service/%s/component-builds/%d", version, cb.id)
		// rida keeps start and finish times, not every transition; the
		// trace is made from them (newest first, as MBS).
		trace := []map[string]any{}
		if !c.Started.IsZero() {
			trace = append(trace, map[string]any{"time": zulu(c.Started), "state": 0, "state_name": "BUILDING", "reason": nil})
		}
		if !c.Finished.IsZero() {
			trace = append(trace, map[string]any{"time": zulu(c.Finished), "state": st, "state_name": name, "reason": nilIfEmpty(c.Reason)})
		}
		slices.Reverse(trace)
		out["state_trace"] = trace
		out["rpms"] = c.RPMs
		if c.LogPath != "" {
			out["log_url"] = fmt.Sprintf("/builds/%d/logs/%s", cb.build.ID, url.PathEscape(c.Package))
		}
	}
	return out
}

// componentStates accepts a Koji state name or number, or a rida component
// state name, and returns the rida states it stands for.
func componentStates(v string) ([]string, bool) {
	switch strings.ToUpper(v) {
	case "0", "BUILDING":
		return []string{"building"}, true
	case "1", "COMPLETE":
		return []string{"complete", "reused"}, true
	case "3", "FAILED":
		return []string{"failed"}, true
	case "4", "CANCELED":
		return []string{"canceled"}, true
	case "2", "DELETED":
		return nil, true
	}
	switch v {
	case "queued", "building", "complete", "failed", "canceled", "reused":
		return []string{v}, true
	}
	return nil, false
}

var componentColumns = map[string]func(component) string{
	"package":      func(c component) string { return c.c.Package },
	"format":       func(component) string { return "rpms" },
	"nvr":          func(c component) string { return c.c.NVR },
	"ref":          func(c component) string { return c.c.Ref },
	"batch":        func(c component) string { return strconv.Itoa(c.c.Batch) },
	"module_id":    func(c component) string { return strconv.FormatUint(c.build.ID, 10) },
	"state_reason": func(c component) string { return c.c.Reason },
	"scmurl": func(c component) string {
		if c.c.Repository == "" {
			return ""
		}
		return c.c.Repository + "?#" + c.c.Commit
	},
}

func (s *Server) listComponents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("id") {
		s.fail(w, r, errorf(http.StatusBadRequest, "Please use /component-builds/<id> to look up a single component build by id"))
		return
	}
	if q.Has("module_build") {
		q.Set("module_id", q.Get("module_build"))
		q.Del("module_build")
	}
	control := []string{"state", "page", "per_page", "verbose", "order_by", "order_desc_by"}
	for k := range q {
		if _, ok := componentColumns[k]; !ok && !slices.Contains(control, k) {
			s.fail(w, r, errorf(http.StatusBadRequest, "An invalid filter was submitted: %q", k))
			return
		}
	}
	var states []string
	for _, v := range q["state"] {
		st, ok := componentStates(v)
		if !ok {
			s.fail(w, r, errorf(http.StatusBadRequest, "An invalid state was supplied: %q (want a Koji build state name or number, or queued, building, complete, failed, canceled, reused)", v))
			return
		}
		states = append(states, st...)
	}
	asc, desc := q["order_by"], q["order_desc_by"]
	if len(asc) > 0 && len(desc) > 0 {
		s.fail(w, r, errorf(http.StatusBadRequest, "You may not specify both order_by and order_desc_by"))
		return
	}
	keys, sign := desc, -1
	if len(asc) > 0 {
		keys, sign = asc, 1
	}
	for _, k := range keys {
		if _, ok := componentColumns[k]; !ok && k != "id" {
			s.fail(w, r, errorf(http.StatusBadRequest, "An invalid ordering key of %q was supplied", k))
			return
		}
	}
	page, perPage, err := paging(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var moduleID uint64
	if v := q.Get("module_id"); v != "" {
		if moduleID, err = strconv.ParseUint(v, 10, 64); err != nil {
			s.fail(w, r, errorf(http.StatusBadRequest, "module_build must be a module build id, got %q", v))
			return
		}
	}
	builds, err := s.opts.Store.ModuleBuilds(r.Context(), func(mb *state.ModuleBuild) bool {
		return moduleID == 0 || mb.ID == moduleID
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var comps []component
	for bi := range builds {
		for i, c := range builds[bi].Components {
			cb := component{id: ComponentID(builds[bi].ID, i), build: &builds[bi], c: c}
			if len(q["state"]) > 0 && !slices.Contains(states, c.State) {
				continue
			}
			ok := true
			for col, get := range componentColumns {
				if q.Has(col) && get(cb) != q.Get(col) {
					ok = false
				}
			}
			if ok {
				comps = append(comps, cb)
			}
		}
	}
	slices.SortStableFunc(comps, func(a, b component) int {
		for _, k := range keys {
			var n int
			if k == "id" {
				n = cmp.Compare(a.id, b.id)
			} else if k == "batch" {
				n = cmp.Compare(a.c.Batch, b.c.Batch)
			} else {
				n = strings.Compare(componentColumns[k](a), componentColumns[k](b))
			}
			if n != 0 {
				return sign * n
			}
		}
		return sign * cmp.Compare(a.id, b.id)
	})
	start, end := pageBounds(page, perPage, len(comps))
	items := []map[string]any{}
	for _, c := range comps[start:end] {
		items = append(items, s.componentJSON(c, truthy(q.Get("verbose")), apiVersion(r)))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "meta": s.pageMeta(r, page, perPage, len(comps))})
}

func (s *Server) getComponent(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	buildID, i, ok := splitComponentID(id)
	notFound := errorf(http.StatusNotFound, "No such component build found: %d", id)
	if !ok {
		s.fail(w, r, notFound)
		return
	}
	mb, err := s.opts.Store.GetModuleBuild(r.Context(), buildID)
	if err != nil {
		if isNotFound(err) {
			err = notFound
		}
		s.fail(w, r, err)
		return
	}
	if i < 0 || i >= len(mb.Components) {
		s.fail(w, r, notFound)
		return
	}
	writeJSON(w, http.StatusOK, s.componentJSON(component{id: id, build: mb, c: mb.Components[i]}, truthy(r.URL.Query().Get("verbose")), apiVersion(r)))
}
