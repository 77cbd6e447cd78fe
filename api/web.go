package api

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rida-build/rida/state"
)

//go:embed templates/*.html
var templateFS embed.FS

// webPages holds the parsed page templates: each page is "layout" plus its
// own "content" block.
type webPages struct {
	pages map[string]*template.Template
}

func newWebPages() (*webPages, error) {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"short": func(s string) string {
			if len(s) > 12 {
				return s[:12]
			}
			return s
		},
		"nsvc":       func(mb state.ModuleBuild) string { return nsvcOf(&mb) },
		"pathesc":    url.PathEscape,
		"buildstate": func(mb state.ModuleBuild) string { return buildStateName(&mb) },
		"class":      stateClass,
		"long":       func(s string) bool { return brief(s) != strings.TrimSpace(s) },
		"brief":      brief,
	}
	w := &webPages{pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := filepath.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("api: parse template %s: %w", n, err)
		}
		w.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return w, nil
}

// render executes page into a buffer first, so a template error becomes a
// clean 500 instead of half a page.
func (wp *webPages) render(w http.ResponseWriter, status int, page string, data any) error {
	t, ok := wp.pages[page]
	if !ok {
		return fmt.Errorf("api: no page template %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", data); err != nil {
		return fmt.Errorf("api: render %s: %w", page, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
	return nil
}

func (wp *webPages) renderError(w http.ResponseWriter, status int, msg string) {
	data := map[string]any{"Title": http.StatusText(status), "Status": status, "Message": msg}
	if err := wp.render(w, status, "error", data); err != nil {
		http.Error(w, msg, status)
	}
}

func nsvcOf(mb *state.ModuleBuild) string {
	return fmt.Sprintf("%s:%s:%d:%s", mb.Name, mb.Stream, mb.Version, cmp.Or(mb.Context, "00000000"))
}

func (s *Server) page(w http.ResponseWriter, r *http.Request, name string, data map[string]any) {
	if err := s.web.render(w, http.StatusOK, name, data); err != nil {
		s.fail(w, r, err)
	}
}

// buildRow is one line of the /builds list.
type buildRow struct {
	state.ModuleBuild
	Shown  string // the state as shown (cancelled for a cancelled failure)
	Brief  string // the reason, redacted, first line, truncated
	Failed bool
}

func (s *Server) pageBuilds(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, perPage, err := paging(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !q.Has("per_page") {
		perPage = 50
	}
	var bq state.BuildQuery
	if v := q.Get("state"); v != "" {
		st, ok := parseState(v)
		if !ok {
			s.fail(w, r, errorf(http.StatusBadRequest, "An invalid state was supplied: %q", v))
			return
		}
		bq.States = []state.ModuleState{st}
	}
	// One page through the store's indexes, whatever the history holds.
	bq.Offset, bq.Limit = (page-1)*perPage, perPage
	builds, total, err := s.opts.Store.ListModuleBuilds(r.Context(), bq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	counts, err := s.opts.Store.BuildCountsByState(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	all := 0
	for _, n := range counts {
		all += n
	}
	running := counts[state.ModuleStateInit]+counts[state.ModuleStateWait]+counts[state.ModuleStateBuild] > 0
	paused, err := s.opts.Store.Paused(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	queued, err := s.queuedRequests(r.Context(), paused)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rows := make([]buildRow, 0, len(builds))
	for _, mb := range builds {
		rows = append(rows, buildRow{ModuleBuild: mb, Shown: buildStateName(&mb), Brief: brief(s.redact(mb.StateReason)), Failed: mb.State == state.ModuleStateFailed})
	}
	for i := range queued {
		rq := *queued[i].BuildRequest
		rq.Reasons = slices.Clone(rq.Reasons)
		for j := range rq.Reasons {
			rq.Reasons[j] = brief(s.redact(rq.Reasons[j]))
		}
		queued[i].BuildRequest = &rq
	}
	refresh := 0
	if running || len(queued) > 0 {
		refresh = 10
	}
	s.page(w, r, "builds", map[string]any{
		"Title": "Module builds", "Builds": rows, "Total": total, "All": all, "Page": page,
		"Prev": page - 1, "Next": nextPage(page, perPage, total), "State": q.Get("state"), "Paused": paused,
		"Queued": queued, "Refresh": refresh,
	})
}

func nextPage(page, perPage, total int) int {
	if page*perPage < total {
		return page + 1
	}
	return 0
}

type batchView struct {
	Number     int
	Components []componentView
}

type componentView struct {
	state.ComponentBuild
	ID      uint64
	Shown   string // the state as shown ("skipped" once the build ended)
	LogURL  string
	TaskURL string // the Koji web page of its task (Options.KojiWebURL)
	Elapsed string
}

// redactBuild removes server paths from every text of mb a page shows (mb
// is the page's own copy).
func (s *Server) redactBuild(mb *state.ModuleBuild) {
	mb.StateReason = s.redact(mb.StateReason)
	mb.CancelRequestedBy = s.redact(mb.CancelRequestedBy)
	mb.Transitions = slices.Clone(mb.Transitions)
	for i := range mb.Transitions {
		mb.Transitions[i].Reason = s.redact(mb.Transitions[i].Reason)
	}
	mb.Components = slices.Clone(mb.Components)
	for i := range mb.Components {
		mb.Components[i].Reason = s.redact(mb.Components[i].Reason)
	}
}

// logURL is the page of component key's log in build id.
func logURL(id uint64, key string) string {
	return fmt.Sprintf("/builds/%d/logs/%s", id, url.PathEscape(key))
}

func (s *Server) pageBuild(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.buildFromPath(w, r)
	if !ok {
		return
	}
	s.redactBuild(mb)
	var batches []batchView
	for i, c := range mb.Components {
		if len(batches) == 0 || batches[len(batches)-1].Number != c.Batch {
			batches = append(batches, batchView{Number: c.Batch})
		}
		cv := componentView{ComponentBuild: c, ID: ComponentID(mb.ID, i), Shown: componentStateName(mb, &c)}
		switch {
		case c.LogPath != "":
			cv.LogURL = logURL(mb.ID, cmp.Or(c.Key, c.Package))
		case c.ReusedFrom != 0:
			cv.LogURL = logURL(c.ReusedFrom, cmp.Or(c.Key, c.Package))
		}
		if !c.Started.IsZero() && !c.Finished.IsZero() {
			cv.Elapsed = roundDuration(c.Finished.Sub(c.Started))
		}
		cv.TaskURL = s.kojiTaskURL(c.TaskID)
		batches[len(batches)-1].Components = append(batches[len(batches)-1].Components, cv)
	}
	graph, err := s.buildGraph(r.Context(), mb)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pushes, req, err := s.buildPushes(r.Context(), mb)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var reasons []string
	if req != nil {
		for _, rs := range req.Reasons {
			reasons = append(reasons, s.redact(rs))
		}
	}
	kojiTag, kojiTagURL := s.kojiTagLink(mb)
	s.page(w, r, "build", map[string]any{
		"Title": fmt.Sprintf("Build %d: %s", mb.ID, nsvcOf(mb)), "Build": mb, "Batches": batches, "Graph": graph,
		"KojiTag": kojiTag, "KojiTagURL": kojiTagURL,
		"Gantt": makeGantt(mb, s.opts.Now()), "Final": mb.State.Terminal(), "Refresh": refreshSeconds(mb),
		"Shown": buildStateName(mb), "Pushes": pushes, "Reasons": reasons, "Downloads": s.hasRepo(mb),
		"FinalModulemd": (mb.State == state.ModuleStateDone || mb.State == state.ModuleStateReady) && mb.Modulemd != "",
	})
}

// underDataDir resolves p and checks that it lies inside Options.DataDir.
func (s *Server) underDataDir(p string) (string, error) {
	if s.opts.DataDir == "" {
		return "", errors.New("no data dir configured")
	}
	root, err := filepath.EvalSymlinks(s.opts.DataDir)
	if err != nil {
		return "", err
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%s is outside the data dir", p)
	}
	return real, nil
}

func (s *Server) pageDeliveries(w http.ResponseWriter, r *http.Request) {
	page, perPage, err := paging(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !r.URL.Query().Has("per_page") {
		perPage = 50
	}
	ds, total, err := s.opts.Store.Deliveries(r.Context(), (page-1)*perPage, perPage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.page(w, r, "deliveries", map[string]any{
		"Title": "Deliveries", "Deliveries": ds, "Total": total, "Page": page,
		"Prev": page - 1, "Next": nextPage(page, perPage, total),
	})
}

func (s *Server) pageDelivery(w http.ResponseWriter, r *http.Request) {
	d, builds, ok := s.deliveryFromPath(w, r)
	if !ok {
		return
	}
	type reqView struct {
		state.EnqueueSummary
		Request *state.BuildRequest
	}
	var reqs []reqView
	if d.Disposition != nil {
		for _, sum := range d.Disposition.Requests {
			rq, err := s.opts.Store.Request(r.Context(), sum.RequestID)
			if err != nil && !isNotFound(err) {
				s.fail(w, r, err)
				return
			}
			reqs = append(reqs, reqView{EnqueueSummary: sum, Request: rq})
		}
	}
	s.page(w, r, "delivery", map[string]any{
		"Title": "Delivery " + strconv.FormatUint(d.ID, 10), "D": d, "Requests": reqs, "Builds": builds,
	})
}

// roundDuration shows a duration to a precision that fits it: whole seconds
// from 10 s up, tenths of a second below, milliseconds under one second
// (local builds of small packages take a fraction of a second).
func roundDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

// refreshSeconds is how often a build page reloads itself: every 5 s while
// the build can still change, never once it is final.
func refreshSeconds(mb *state.ModuleBuild) int {
	if mb.State.Terminal() {
		return 0
	}
	return 5
}
