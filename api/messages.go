package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rida-build/rida/state"
)

// buildMessages implements MBS's GET module-builds/{id}/messages: the
// build's log of what happened to it, oldest first and paged, made from the
// store's event log (state changes, component changes, cancel requests,
// errors, its tree's removal), read through the store's events-by-subject
// index.
func (s *Server) buildMessages(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.buildFromPath(w, r)
	if !ok {
		return
	}
	page, perPage, err := paging(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	subject := "modulebuild/" + strconv.FormatUint(mb.ID, 10)
	// A store with the events-by-subject index reads only the build's
	// events; any other scans the log.
	read := func(after uint64) ([]state.Event, error) { return s.opts.Store.EventsSince(r.Context(), after, 1000) }
	if bs, ok := s.opts.Store.(interface {
		SubjectEvents(ctx context.Context, subject string, after uint64, limit int) ([]state.Event, error)
	}); ok {
		read = func(after uint64) ([]state.Event, error) { return bs.SubjectEvents(r.Context(), subject, after, 1000) }
	}
	var msgs []map[string]any
	for after := uint64(0); ; {
		events, err := read(after)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, e := range events {
			if e.Subject == subject {
				if text := eventMessage(e); text != "" {
					msgs = append(msgs, map[string]any{"id": e.Seq, "message": text, "time_created": zulu(e.Time), "log_level": "info"})
				}
			}
			after = e.Seq
		}
		if len(events) < 1000 {
			break
		}
	}
	start := min((page-1)*perPage, len(msgs))
	end := min(start+perPage, len(msgs))
	items := msgs[start:end]
	if items == nil {
		items = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "meta": s.pageMeta(r, page, perPage, len(msgs))})
}

// eventMessage turns a build's event into a sentence for people.
func eventMessage(e state.Event) string {
	var d map[string]any
	_ = json.Unmarshal(e.Data, &d)
	str := func(k string) string {
		if v, ok := d[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	switch e.Kind {
	case state.EventModuleBuildState:
		msg := fmt.Sprintf("state %s → %s", str("from"), str("to"))
		if r := str("reason"); r != "" {
			msg += ": " + r
		}
		return msg
	case state.EventComponentBuildState:
		msg := fmt.Sprintf("component %s: %s", str("component"), str("state"))
		if n := str("nvr"); n != "" {
			msg += " (" + n + ")"
		}
		if r := str("reason"); r != "" {
			msg += ": " + r
		}
		return msg
	case state.EventModuleBuildCancel:
		return "cancel requested: " + str("by")
	case state.EventModuleBuildTreePruned:
		return "build tree (logs, packages) removed by retention"
	case state.EventModuleBuildErrors:
		errs, _ := d["errors"].([]any)
		lines := make([]string, 0, len(errs))
		for _, e := range errs {
			lines = append(lines, fmt.Sprint(e))
		}
		return fmt.Sprintf("%d errors:\n%s", len(errs), strings.Join(lines, "\n"))
	}
	return ""
}
