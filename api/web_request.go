package api

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"

	"github.com/rida-build/rida/state"
)

// requestBadge is how a build request's state is shown: queued, running,
// or once finished its result; and the badge's CSS class.
func requestBadge(rq *state.BuildRequest) (shown, class string) {
	switch rq.State {
	case state.RequestPending:
		return "queued", "queued"
	case state.RequestRunning:
		return "running", "build"
	}
	switch rq.Result {
	case state.ResultSucceeded:
		return "succeeded", "done"
	case state.ResultCanceled:
		return "cancelled", "cancelled"
	case state.ResultFailed, state.ResultErrored:
		return string(rq.Result), "failed"
	}
	return cmp.Or(string(rq.Result), string(rq.State)), "queued"
}

// pageRequest is /requests/{id}: one build request (what asked for a build
// of a module stream), its deliveries, the build whose becoming ready
// cascaded it, and the module builds it made.
func (s *Server) pageRequest(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stored, err := s.opts.Store.Request(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rq := *stored
	rq.ResultReason = s.redact(rq.ResultReason)
	rq.Reasons = slices.Clone(rq.Reasons)
	for i := range rq.Reasons {
		rq.Reasons[i] = s.redact(rq.Reasons[i])
	}
	builds, err := s.opts.Store.RequestModuleBuilds(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rows := make([]buildRow, 0, len(builds))
	for _, mb := range builds {
		rows = append(rows, buildRow{ModuleBuild: mb, Shown: buildStateName(&mb), Brief: brief(s.redact(mb.StateReason)), Failed: mb.State == state.ModuleStateFailed})
	}
	var cascade *state.ModuleBuild
	if rq.CascadeFrom != 0 {
		if cascade, err = s.opts.Store.GetModuleBuild(r.Context(), rq.CascadeFrom); err != nil && !isNotFound(err) {
			s.fail(w, r, err)
			return
		}
	}
	shown, class := requestBadge(&rq)
	s.page(w, r, "request", map[string]any{
		"Title": fmt.Sprintf("Request %d: %s", rq.ID, rq.Key), "R": &rq, "Shown": shown, "Class": class,
		"Builds": rows, "Cascade": cascade, "Refresh": map[bool]int{true: 10}[rq.State != state.RequestFinished],
	})
}
