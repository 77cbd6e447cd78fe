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
	"os"
	"path/filepath"
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
		"nsvc":    func(mb state.ModuleBuild) string { return nsvcOf(&mb) },
		"pathesc": url.PathEscape,
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
	var match func(*state.ModuleBuild) bool
	if v := q.Get("state"); v != "" {
		st, ok := parseState(v)
		if !ok {
			s.fail(w, r, errorf(http.StatusBadRequest, "An invalid state was supplied: %q", v))
			return
		}
		match = func(mb *state.ModuleBuild) bool { return mb.State == st }
	}
	builds, err := s.opts.Store.ModuleBuilds(r.Context(), match)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	start, end := pageBounds(page, perPage, len(builds))
	paused, err := s.opts.Store.Paused(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.page(w, r, "builds", map[string]any{
		"Title": "Module builds", "Builds": builds[start:end], "Total": len(builds), "Page": page,
		"Prev": page - 1, "Next": nextPage(page, perPage, len(builds)), "State": q.Get("state"), "Paused": paused,
	})
}

func nextPage(page, perPage, total int) int {
	if page*perPage < total {
		return page + 1
	}
	return 0
}

// ganttBar is one component's bar in the build page's timeline.
type ganttBar struct {
	Label, State, Title string
	X, Y, W             float64
}

// gantt lays out component build times (Started → Finished, or → now while
// building) as bars on a shared time axis.
type gantt struct {
	Bars          []ganttBar
	Width, Height float64
	LabelW        float64
	Span          string
	Ticks         []ganttTick
}

type ganttTick struct {
	X     float64
	Label string
}

func makeGantt(mb *state.ModuleBuild, now time.Time) *gantt {
	const width, labelW, rowH = 900.0, 190.0, 22.0
	var t0, t1 time.Time
	for _, c := range mb.Components {
		if c.Started.IsZero() {
			continue
		}
		end := c.Finished
		if end.IsZero() {
			end = now
		}
		if t0.IsZero() || c.Started.Before(t0) {
			t0 = c.Started
		}
		if end.After(t1) {
			t1 = end
		}
	}
	if t0.IsZero() {
		return nil
	}
	span := t1.Sub(t0)
	if span <= 0 {
		span = time.Second
	}
	scale := (width - labelW - 10) / span.Seconds()
	g := &gantt{Width: width, LabelW: labelW, Span: roundDuration(span)}
	row := 0
	for _, c := range mb.Components {
		if c.Started.IsZero() {
			continue
		}
		end := c.Finished
		if end.IsZero() {
			end = now
		}
		x := labelW + c.Started.Sub(t0).Seconds()*scale
		w := max(2, end.Sub(c.Started).Seconds()*scale)
		g.Bars = append(g.Bars, ganttBar{
			Label: fmt.Sprintf("%d · %s", c.Batch, c.Package), State: c.State,
			Title: fmt.Sprintf("%s (batch %d): %s, %s", c.Package, c.Batch, c.State, roundDuration(end.Sub(c.Started))),
			X:     x, Y: 20 + float64(row)*rowH, W: w,
		})
		row++
	}
	for i := 0; i <= 4; i++ {
		g.Ticks = append(g.Ticks, ganttTick{
			X:     labelW + float64(i)*(width-labelW-10)/4,
			Label: "+" + roundDuration(time.Duration(float64(span)*float64(i)/4)),
		})
	}
	g.Height = 30 + float64(row)*rowH
	return g
}

type batchView struct {
	Number     int
	Components []componentView
}

type componentView struct {
	state.ComponentBuild
	ID      uint64
	LogURL  string
	Elapsed string
}

func (s *Server) pageBuild(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.buildFromPath(w, r)
	if !ok {
		return
	}
	var batches []batchView
	for i, c := range mb.Components {
		if len(batches) == 0 || batches[len(batches)-1].Number != c.Batch {
			batches = append(batches, batchView{Number: c.Batch})
		}
		cv := componentView{ComponentBuild: c, ID: ComponentID(mb.ID, i)}
		if c.LogPath != "" {
			cv.LogURL = fmt.Sprintf("/builds/%d/logs/%s", mb.ID, url.PathEscape(cmp.Or(c.Key, c.Package)))
		}
		if !c.Started.IsZero() && !c.Finished.IsZero() {
			cv.Elapsed = roundDuration(c.Finished.Sub(c.Started))
		}
		batches[len(batches)-1].Components = append(batches[len(batches)-1].Components, cv)
	}
	graph, err := s.buildGraph(r.Context(), mb)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.page(w, r, "build", map[string]any{
		"Title": fmt.Sprintf("Build %d: %s", mb.ID, nsvcOf(mb)), "Build": mb, "Batches": batches, "Graph": graph,
		"Gantt": makeGantt(mb, s.opts.Now()), "Final": mb.State.Terminal(), "Refresh": refreshSeconds(mb),
	})
}

// pageLog serves a component's log: a local file only when it lies inside
// Options.DataDir (after resolving symlinks), a remote log (Koji task
// directory) by redirect. Never an arbitrary path.
func (s *Server) pageLog(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.buildFromPath(w, r)
	if !ok {
		return
	}
	id := mb.ID
	name := r.PathValue("component")
	var comp *state.ComponentBuild
	for i := range mb.Components {
		if mb.Components[i].Key == name || (comp == nil && mb.Components[i].Package == name) {
			comp = &mb.Components[i]
		}
	}
	if comp == nil {
		s.fail(w, r, errorf(http.StatusNotFound, "build %d has no component %q", id, name))
		return
	}
	if comp.LogPath == "" {
		s.fail(w, r, errorf(http.StatusNotFound, "component %q of build %d has no log yet", name, id))
		return
	}
	if u, err := url.Parse(comp.LogPath); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		http.Redirect(w, r, comp.LogPath, http.StatusFound)
		return
	}
	path, err := s.underDataDir(comp.LogPath)
	if err != nil {
		s.opts.Logger.Warn("api: refused log path", "build", id, "component", name, "err", err)
		s.fail(w, r, errorf(http.StatusNotFound, "the log of component %q of build %d is not available here", name, id))
		return
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = errorf(http.StatusNotFound, "the log of component %q of build %d is gone", name, id)
		}
		s.fail(w, r, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		s.fail(w, r, errorf(http.StatusNotFound, "the log of component %q of build %d is not a file", name, id))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", st.ModTime(), f)
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
