// Package api serves rida's HTTP API: the MBS-compatible REST API under
// /module-build-service/<1|2>/ (MBS's JSON field names, filters, paging and
// error shape) and rida's own endpoints under /api/v1/, plus /healthz.
package api

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
)

// Store is what the API reads.
type Store interface {
	GetModuleBuild(ctx context.Context, id uint64) (*state.ModuleBuild, error)
	ModuleBuilds(ctx context.Context, match func(*state.ModuleBuild) bool) ([]state.ModuleBuild, error)
	Delivery(ctx context.Context, id uint64) (*state.Delivery, error)
}

// Canceler cancels module builds (the runner).
type Canceler interface {
	Cancel(ctx context.Context, id uint64, who string) error
}

// Options configures a Server.
type Options struct {
	Store Store
	// Canceler handles PATCH {"state": "failed"}; without it PATCH is 501.
	Canceler Canceler
	// Tokens are the bearer tokens accepted for write calls, name → token;
	// the name is recorded as who did it. Without tokens, writes are 401.
	Tokens map[string]string
	Logger *slog.Logger
}

// Server is the API's http.Handler.
type Server struct {
	opts Options
	mux  *http.ServeMux
}

// New returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("api: Options.Store is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	for _, v := range []string{"1", "2"} {
		base := "/module-build-service/" + v + "/"
		s.mux.HandleFunc("GET "+base+"module-builds/", s.listBuilds)
		s.mux.HandleFunc("GET "+base+"module-builds/{id}", s.getBuild)
		s.mux.HandleFunc("PATCH "+base+"module-builds/{id}", s.patchBuild)
		s.mux.HandleFunc("GET "+base+"about/", s.about)
		s.mux.HandleFunc("GET "+base+"rebuild-strategies/", s.rebuildStrategies)
	}
	s.mux.HandleFunc("GET /module-build-service/{v}/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "The requested API version is not available")
	})
	s.mux.HandleFunc("GET /api/v1/deliveries/{id}", s.getDelivery)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	}
	s.mux.ServeHTTP(w, r)
}

// writeError writes MBS's error shape: {"status", "error", "message"}.
func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"status": status, "error": http.StatusText(status), "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// storeError maps a store error to an HTTP answer.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, state.ErrNotFound) {
		writeError(w, http.StatusNotFound, "No such "+strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/")+" found.")
		return
	}
	s.opts.Logger.Error("api: store", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "the store failed; see rida's log")
}

func pathID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("id %q is not a positive integer", r.PathValue("id")))
		return 0, false
	}
	return id, true
}

func (s *Server) getBuild(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	mb, err := s.opts.Store.GetModuleBuild(r.Context(), id)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	verbose := r.URL.Query().Get("verbose") == "true" || r.URL.Query().Get("verbose") == "1"
	writeJSON(w, http.StatusOK, BuildJSON(mb, verbose, apiVersion(r)))
}

func apiVersion(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/module-build-service/2/") {
		return "2"
	}
	return "1"
}

// zulu formats a time as MBS does.
func zulu(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// BuildJSON renders a module build with MBS's field names.
func BuildJSON(mb *state.ModuleBuild, verbose bool, version string) map[string]any {
	tasks := map[string]any{}
	var compIDs []int
	for i, c := range mb.Components {
		compIDs = append(compIDs, i+1)
		tasks[c.Package] = map[string]any{"task_id": nil, "state": c.State, "state_reason": c.Reason, "nvr": nilIfEmpty(c.NVR), "batch": c.Batch}
	}
	var completed time.Time
	if mb.State.Terminal() {
		completed = mb.UpdatedAt
	}
	out := map[string]any{
		"id": mb.ID, "name": mb.Name, "stream": mb.Stream, "version": strconv.FormatUint(mb.Version, 10),
		"context": cmp.Or(mb.Context, "00000000"), "state": int(mb.State), "state_name": mb.State.String(),
		"state_reason": nilIfEmpty(mb.StateReason), "scratch": false, "owner": cmp.Or(mb.Owner, "rida"),
		"scmurl": scmURL(mb), "koji_tag": kojiTag(mb), "rebuild_strategy": cmp.Or(mb.RebuildStrategy, "changed-and-after"),
		"time_submitted": zulu(mb.CreatedAt), "time_modified": zulu(mb.UpdatedAt), "time_completed": zulu(completed),
		"component_builds": compIDs, "tasks": map[string]any{"rpms": tasks}, "siblings": []int{}, "srpms": []string{},
	}
	if verbose {
		var trace []map[string]any
		for _, t := range mb.Transitions {
			trace = append(trace, map[string]any{"time": zulu(t.Time), "state": int(t.State), "state_name": t.State.String(), "reason": nilIfEmpty(t.Reason)})
		}
		slices.Reverse(trace) // MBS lists the newest first
		out["state_trace"] = trace
		out["modulemd"] = mb.Modulemd
		out["state_url"] = fmt.Sprintf("/module-build-service/%s/module-builds/%d", version, mb.ID)
		out["result_dir"] = mb.ResultDir
		out["location"] = mb.Location
		out["components"] = mb.Components
	}
	return out
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
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
	return modulemd.KojiTag(mb.Name, mb.Stream, mb.Version, mb.Context)
}

// listFilters are the module build columns the list endpoint matches
// exactly, as MBS does.
var listFilters = []string{"name", "stream", "version", "context", "owner", "rebuild_strategy", "state_reason"}

func (s *Server) listBuilds(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("id") {
		writeError(w, http.StatusBadRequest, "Please use /module-builds/<id> to look up a single build by id")
		return
	}
	for k := range q {
		if !slices.Contains(listFilters, k) && !slices.Contains([]string{"state", "page", "per_page", "verbose", "short", "nsvc", "order_by", "order_desc_by"}, k) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("An invalid filter was submitted: %q", k))
			return
		}
	}
	var states []state.ModuleState
	for _, v := range q["state"] {
		st, ok := parseState(v)
		if !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("An invalid state was supplied: %q", v))
			return
		}
		states = append(states, st)
	}
	page, perPage := 1, 10
	for name, dst := range map[string]*int{"page": &page, "per_page": &perPage} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("%s must be a positive integer, got %q", name, v))
				return
			}
			*dst = n
		}
	}
	nsvc := strings.Split(q.Get("nsvc"), ":")
	builds, err := s.opts.Store.ModuleBuilds(r.Context(), func(mb *state.ModuleBuild) bool {
		if len(states) > 0 && !slices.Contains(states, mb.State) {
			return false
		}
		fields := map[string]string{"name": mb.Name, "stream": mb.Stream, "version": strconv.FormatUint(mb.Version, 10),
			"context": mb.Context, "owner": cmp.Or(mb.Owner, "rida"), "rebuild_strategy": mb.RebuildStrategy, "state_reason": mb.StateReason}
		for _, f := range listFilters {
			if v := q.Get(f); v != "" && fields[f] != v {
				return false
			}
		}
		if q.Get("nsvc") != "" {
			for i, part := range []string{mb.Name, mb.Stream, strconv.FormatUint(mb.Version, 10), mb.Context} {
				if i < len(nsvc) && nsvc[i] != part {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	total := len(builds)
	pages := max(1, (total+perPage-1)/perPage)
	start := min((page-1)*perPage, total)
	end := min(start+perPage, total)
	verbose := q.Get("verbose") == "true" || q.Get("verbose") == "1"
	items := []map[string]any{}
	for i := range builds[start:end] {
		items = append(items, BuildJSON(&builds[start+i], verbose, apiVersion(r)))
	}
	pageURL := func(p int) any {
		if p < 1 || p > pages {
			return nil
		}
		u := *r.URL
		qq := u.Query()
		qq.Set("page", strconv.Itoa(p))
		qq.Set("per_page", strconv.Itoa(perPage))
		u.RawQuery = qq.Encode()
		return (&url.URL{Path: u.Path, RawQuery: u.RawQuery}).String()
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "meta": map[string]any{
		"page": page, "pages": pages, "per_page": perPage, "total": total,
		"prev": pageURL(page - 1), "next": pageURL(page + 1), "first": pageURL(1), "last": pageURL(pages),
	}})
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

// who authenticates a write call and returns the token's name.
func (s *Server) who(w http.ResponseWriter, r *http.Request) (string, bool) {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		writeError(w, http.StatusUnauthorized, "this call needs an Authorization: Bearer <token> header")
		return "", false
	}
	for name, want := range s.opts.Tokens {
		if want != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1 {
			return name, true
		}
	}
	writeError(w, http.StatusUnauthorized, "the bearer token is not one of the configured api tokens")
	return "", false
}

func (s *Server) patchBuild(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	who, ok := s.who(w, r)
	if !ok {
		return
	}
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "the body must be JSON: "+err.Error())
		return
	}
	stateVal := fmt.Sprint(body["state"])
	if len(body) != 1 || (stateVal != "failed" && stateVal != "4") {
		writeError(w, http.StatusBadRequest, `the only change allowed is {"state": "failed"} (cancel)`)
		return
	}
	if s.opts.Canceler == nil {
		writeError(w, http.StatusNotImplemented, "cancel is not available on this server")
		return
	}
	if err := s.opts.Canceler.Cancel(r.Context(), id, who); err != nil {
		var ve *state.ValidationError
		switch {
		case errors.Is(err, state.ErrNotFound):
			writeError(w, http.StatusNotFound, fmt.Sprintf("No such module build found: %d", id))
		case errors.As(err, &ve):
			writeError(w, http.StatusBadRequest, ve.Reason)
		default:
			s.storeError(w, r, err)
		}
		return
	}
	mb, err := s.opts.Store.GetModuleBuild(r.Context(), id)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, BuildJSON(mb, true, apiVersion(r)))
}

func (s *Server) about(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": "rida", "api_version": 2, "auth_method": "bearer"})
}

func (s *Server) rebuildStrategies(w http.ResponseWriter, r *http.Request) {
	desc := map[string]string{
		"all":               "All components will be rebuilt",
		"changed-and-after": "All components that have changed and those in subsequent batches will be rebuilt",
		"only-changed":      "All changed components will be rebuilt",
	}
	var items []map[string]any
	for _, n := range []string{"all", "changed-and-after", "only-changed"} {
		items = append(items, map[string]any{"name": n, "description": desc[n], "allowed": true, "default": n == "changed-and-after"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	d, err := s.opts.Store.Delivery(r.Context(), id)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	// The builds made for its requests, so a caller can follow them.
	var builds []map[string]any
	if d.Disposition != nil {
		var reqIDs []uint64
		for _, rq := range d.Disposition.Requests {
			reqIDs = append(reqIDs, rq.RequestID)
		}
		found, err := s.opts.Store.ModuleBuilds(r.Context(), func(mb *state.ModuleBuild) bool { return slices.Contains(reqIDs, mb.RequestID) })
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		for i := range found {
			builds = append(builds, BuildJSON(&found[i], false, "1"))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"delivery": d, "builds": builds})
}
