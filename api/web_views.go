package api

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rida-build/rida/state"
)

// briefWidth is how many characters of a reason the lists show; the build
// page shows all of it.
const briefWidth = 120

// brief is the first line of s, at most briefWidth characters, "…" marking
// a cut.
func brief(s string) string {
	line, _, more := strings.Cut(strings.TrimSpace(s), "\n")
	r := []rune(line)
	switch {
	case len(r) > briefWidth:
		return strings.TrimSpace(string(r[:briefWidth-1])) + "…"
	case more:
		return line + " …"
	}
	return line
}

// absPath matches an absolute file path in free text (not one inside a
// URL: it must start the text or follow a space, quote, bracket or "=").
var absPath = regexp.MustCompile(`(^|[\s"'(\[=])(/[^\s"')\]]+)`)

// redact removes server paths from text shown on public pages: a path
// under the data directory becomes relative to it (builds/…/logs/x.log),
// any other absolute path of two or more segments keeps only its last
// element ("…/rpmbuild").
func (s *Server) redact(text string) string {
	if !strings.Contains(text, "/") {
		return text
	}
	var roots []string
	if s.opts.DataDir != "" {
		if abs, err := filepath.Abs(s.opts.DataDir); err == nil {
			roots = append(roots, abs)
			if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
				roots = append(roots, real)
			}
		}
	}
	return absPath.ReplaceAllStringFunc(text, func(m string) string {
		sub := absPath.FindStringSubmatch(m)
		lead, p := sub[1], sub[2]
		for _, root := range roots {
			if rel, ok := strings.CutPrefix(p, root+"/"); ok {
				return lead + rel
			}
		}
		if strings.Count(strings.TrimSuffix(p, "/"), "/") < 2 {
			return m
		}
		return lead + "…/" + filepath.Base(p)
	})
}

// buildStateName is how the pages show a build's state: "cancelled" for a
// build that failed because someone cancelled it (or a newer request
// superseded it), else the MBS state name.
func buildStateName(mb *state.ModuleBuild) string {
	if mb.State == state.ModuleStateFailed && (mb.FailureKind == state.FailureCanceled || mb.CancelRequestedBy != "") {
		return "cancelled"
	}
	return mb.State.String()
}

// componentStateName is how the pages show a component's state: a
// component still "queued" when its build has ended was never built.
func componentStateName(mb *state.ModuleBuild, c *state.ComponentBuild) string {
	if mb.State.Terminal() && (c.State == "queued" || c.State == "") {
		return "skipped"
	}
	return cmp.Or(c.State, "queued")
}

// stateClass turns a shown state into a CSS class suffix.
func stateClass(s string) string { return strings.ReplaceAll(s, " ", "-") }

// queuedRequest is a build request waiting in the queue, for /builds.
type queuedRequest struct {
	*state.BuildRequest
	Paused   bool
	PausedBy string
}

// queuedRequests lists the pending and running build requests that have no
// module build record yet, from the store's queue (one entry per stream
// with work).
func (s *Server) queuedRequests(ctx context.Context, paused []state.Pause) ([]queuedRequest, error) {
	active, err := s.opts.Store.ActiveRequests(ctx)
	if err != nil {
		return nil, err
	}
	var out []queuedRequest
	for i := range active {
		rq := &active[i]
		// A request shows as its build once it has one (a submission
		// gets its init record at once, a push when it starts).
		bs, err := s.opts.Store.RequestModuleBuilds(ctx, rq.ID)
		if err != nil {
			return nil, err
		}
		if len(bs) > 0 {
			continue
		}
		q := queuedRequest{BuildRequest: rq}
		for _, p := range paused {
			if p.Key == rq.Key || p.Key == state.PauseAll {
				q.Paused, q.PausedBy = true, p.By
			}
		}
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b queuedRequest) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// pushView is the push (delivery) that caused a build, for its page.
type pushView struct {
	state.Delivery
	Message   string
	CommitURL string
}

// buildPushes returns the deliveries of the build's request, newest last.
func (s *Server) buildPushes(ctx context.Context, mb *state.ModuleBuild) ([]pushView, *state.BuildRequest, error) {
	if mb.RequestID == 0 {
		return nil, nil, nil
	}
	rq, err := s.opts.Store.Request(ctx, mb.RequestID)
	if isNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var out []pushView
	for _, id := range rq.DeliveryIDs {
		d, err := s.opts.Store.Delivery(ctx, id)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		pv := pushView{Delivery: *d, CommitURL: commitURL(d)}
		for _, c := range d.Commits {
			if c.ID == d.After {
				pv.Message, _, _ = strings.Cut(c.Message, "\n")
			}
		}
		if pv.Message == "" && len(d.Commits) > 0 {
			pv.Message, _, _ = strings.Cut(d.Commits[len(d.Commits)-1].Message, "\n")
		}
		out = append(out, pv)
	}
	return out, rq, nil
}

// commitURL is the forge's web page of the pushed commit, made from the
// repository's http(s) clone URL ("" when it is not one).
func commitURL(d *state.Delivery) string {
	u, err := url.Parse(d.CloneURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || d.After == "" || u.User != nil {
		return ""
	}
	base := strings.TrimSuffix(strings.TrimSuffix(d.CloneURL, "/"), ".git")
	if d.Forge == "gitlab" {
		return base + "/-/commit/" + d.After
	}
	return base + "/commit/" + d.After
}

// ganttBar is one component's row in the build page's timeline.
type ganttBar struct {
	Label, State, Title string
	X, Y, W             float64
	// Reused rows have no bar: a marker at their batch's start and the
	// build they were reused from.
	Reused     bool
	ReusedFrom uint64
}

// ganttGap is the time between two batches (the repository is
// regenerated there).
type ganttGap struct {
	X, W  float64
	Title string
}

// gantt lays out component build times (Started → Finished, or → now while
// building) on a shared time axis with rounded ticks.
type gantt struct {
	Bars          []ganttBar
	Gaps          []ganttGap
	Width, Height float64
	LabelW        float64
	Span          string
	Ticks         []ganttTick
}

type ganttTick struct {
	X      float64
	Label  string
	Anchor string
}

// tickSteps are the tick intervals the Gantt chooses from.
var tickSteps = []time.Duration{
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// tickStep picks the smallest step giving at most 6 intervals over span.
func tickStep(span time.Duration) time.Duration {
	for _, st := range tickSteps {
		if span <= 6*st {
			return st
		}
	}
	return time.Duration(math.Ceil(float64(span)/float64(6*24*time.Hour))) * 24 * time.Hour
}

// tickLabel writes a tick's offset compactly: 0, +30s, +1m30s, +2h.
func tickLabel(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	if d < time.Second {
		return fmt.Sprintf("+%dms", d.Milliseconds())
	}
	d = d.Round(time.Second)
	out := "+"
	if h := d / time.Hour; h > 0 {
		out += fmt.Sprintf("%dh", h)
	}
	if m := d % time.Hour / time.Minute; m > 0 {
		out += fmt.Sprintf("%dm", m)
	}
	if sec := d % time.Minute / time.Second; sec > 0 {
		out += fmt.Sprintf("%ds", sec)
	}
	return out
}

func makeGantt(mb *state.ModuleBuild, now time.Time) *gantt {
	const width, labelW, rowH, right = 900.0, 190.0, 22.0, 14.0
	end := func(c *state.ComponentBuild) time.Time {
		if c.Finished.IsZero() {
			return now
		}
		return c.Finished
	}
	var t0, t1 time.Time
	type span struct{ start, end time.Time }
	batches := map[int]*span{}
	var order []int
	anyReused := false
	for i := range mb.Components {
		c := &mb.Components[i]
		if c.State == "reused" {
			anyReused = true
		}
		if c.Started.IsZero() {
			continue
		}
		e := end(c)
		if t0.IsZero() || c.Started.Before(t0) {
			t0 = c.Started
		}
		if e.After(t1) {
			t1 = e
		}
		b := batches[c.Batch]
		if b == nil {
			b = &span{c.Started, e}
			batches[c.Batch] = b
			order = append(order, c.Batch)
		}
		if c.Started.Before(b.start) {
			b.start = c.Started
		}
		if e.After(b.end) {
			b.end = e
		}
	}
	if t0.IsZero() && !anyReused {
		return nil
	}
	total := t1.Sub(t0)
	if total <= 0 {
		total = time.Second
	}
	step := tickStep(total)
	axis := time.Duration(math.Ceil(float64(total)/float64(step))) * step
	plotW := width - labelW - right
	scale := plotW / axis.Seconds()
	xAt := func(t time.Time) float64 { return labelW + t.Sub(t0).Seconds()*scale }
	g := &gantt{Width: width, LabelW: labelW, Span: roundDuration(t1.Sub(t0))}
	for n := time.Duration(0); n <= axis; n += step {
		tk := ganttTick{X: labelW + n.Seconds()*scale, Label: tickLabel(n), Anchor: "middle"}
		switch {
		case n == 0:
			tk.Anchor = "start"
		case n+step > axis:
			tk.Anchor = "end"
		}
		g.Ticks = append(g.Ticks, tk)
	}
	slices.Sort(order)
	for i := 1; i < len(order); i++ {
		prev, next := batches[order[i-1]], batches[order[i]]
		if gap := next.start.Sub(prev.end); gap > 0 {
			g.Gaps = append(g.Gaps, ganttGap{X: xAt(prev.end), W: max(1, gap.Seconds()*scale),
				Title: fmt.Sprintf("between batch %d and batch %d (repository regenerated): %s", order[i-1], order[i], roundDuration(gap))})
		}
	}
	row := 0
	for i := range mb.Components {
		c := &mb.Components[i]
		y := 24 + float64(row)*rowH
		switch {
		case c.State == "reused":
			x := labelW
			if b := batches[c.Batch]; b != nil {
				x = xAt(b.start)
			} else {
				// Its batch built nothing: after the previous batch that did.
				for _, n := range order {
					if n < c.Batch {
						x = xAt(batches[n].end)
					}
				}
			}
			g.Bars = append(g.Bars, ganttBar{
				Label: fmt.Sprintf("%d · %s", c.Batch, c.Package), State: "reused", Reused: true, ReusedFrom: c.ReusedFrom,
				Title: fmt.Sprintf("%s (batch %d): reused from build %d, not rebuilt", c.Package, c.Batch, c.ReusedFrom),
				X:     min(x, width-right-110), Y: y, W: 8,
			})
		case !c.Started.IsZero():
			e := end(c)
			g.Bars = append(g.Bars, ganttBar{
				Label: fmt.Sprintf("%d · %s", c.Batch, c.Package), State: c.State,
				Title: fmt.Sprintf("%s (batch %d): %s, %s, from %s to %s", c.Package, c.Batch, c.State, roundDuration(e.Sub(c.Started)),
					tickLabel(c.Started.Sub(t0).Round(time.Second)), tickLabel(e.Sub(t0).Round(time.Second))),
				X: xAt(c.Started), Y: y, W: max(2, e.Sub(c.Started).Seconds()*scale),
			})
		default:
			continue
		}
		row++
	}
	g.Height = 32 + float64(row)*rowH
	return g
}
