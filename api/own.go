package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rida-build/rida/state"
)

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "page" && k != "per_page" {
			s.fail(w, r, errorf(http.StatusBadRequest, "An invalid parameter was submitted: %q (deliveries take page and per_page)", k))
			return
		}
	}
	page, perPage, err := paging(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ds, total, err := s.opts.Store.Deliveries(r.Context(), (page-1)*perPage, perPage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ds == nil {
		ds = []state.Delivery{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": ds, "meta": s.pageMeta(r, page, perPage, total)})
}

// deliveryBuilds returns the module builds made for d's build requests.
func (s *Server) deliveryBuilds(ctx context.Context, d *state.Delivery) ([]state.ModuleBuild, error) {
	if d.Disposition == nil || len(d.Disposition.Requests) == 0 {
		return nil, nil
	}
	var out []state.ModuleBuild
	for _, rq := range d.Disposition.Requests {
		bs, err := s.opts.Store.RequestModuleBuilds(ctx, rq.RequestID)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	// Newest first, as the list endpoints.
	slices.SortFunc(out, func(a, b state.ModuleBuild) int { return cmp.Compare(b.ID, a.ID) })
	return out, nil
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) {
	d, found, ok := s.deliveryFromPath(w, r)
	if !ok {
		return
	}
	var builds []map[string]any
	for i := range found {
		builds = append(builds, buildJSON(&found[i], DetailDefault, "1"))
	}
	writeJSON(w, http.StatusOK, map[string]any{"delivery": d, "builds": builds})
}

func (s *Server) getRequest(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rq, err := s.opts.Store.Request(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	found, err := s.opts.Store.RequestModuleBuilds(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var build any
	if len(found) > 0 {
		build = buildJSON(&found[0], DetailDefault, "1")
	}
	writeJSON(w, http.StatusOK, map[string]any{"request": rq, "build": build})
}

func (s *Server) componentModules(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	for k := range q {
		if k != "branch" {
			s.fail(w, r, errorf(http.StatusBadRequest, "An invalid parameter was submitted: %q (only branch is allowed)", k))
			return
		}
	}
	var items []state.ComponentModule
	if branch := q.Get("branch"); branch != "" {
		ms, err := s.opts.Store.ModulesForComponent(r.Context(), name, branch)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, m := range ms {
			items = append(items, state.ComponentModule{Ref: branch, Module: m.Module, Stream: m.Stream, ModuleRepo: m.ModuleRepo})
		}
	} else {
		var err error
		if items, err = s.opts.Store.ComponentModules(r.Context(), name); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if items == nil {
		items = []state.ComponentModule{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"component": name, "branch": nilIfEmpty(q.Get("branch")), "items": items})
}

// rerunTarget reads a rerun/rebuild body: exactly one of {"delivery": N},
// {"build": N} or {"module": "name:stream"} (with an optional "commit"), and
// returns the build requests to queue again.
func (s *Server) rerunTarget(ctx context.Context, body map[string]json.RawMessage, who, verb string) ([]state.BuildRequest, error) {
	delivery, err := uintField(body, "delivery")
	if err != nil {
		return nil, err
	}
	build, err := uintField(body, "build")
	if err != nil {
		return nil, err
	}
	module, err := stringField(body, "module")
	if err != nil {
		return nil, err
	}
	commit, err := stringField(body, "commit")
	if err != nil {
		return nil, err
	}
	given := 0
	for _, set := range []bool{delivery != 0, build != 0, module != ""} {
		if set {
			given++
		}
	}
	if given != 1 {
		return nil, errorf(http.StatusBadRequest, `give exactly one of "delivery", "build" or "module"`)
	}
	if commit != "" && module == "" {
		return nil, errorf(http.StatusBadRequest, `"commit" only goes with "module"`)
	}
	again := func(rq *state.BuildRequest, why string) state.BuildRequest {
		return state.BuildRequest{
			Module: rq.Module, Stream: rq.Stream, Kind: rq.Kind, ModuleRepo: rq.ModuleRepo, ModuleCommit: rq.ModuleCommit,
			ComponentCommits: rq.ComponentCommits, DeliveryIDs: rq.DeliveryIDs, ContentKeys: rq.ContentKeys,
			Reasons: []string{why},
		}
	}
	switch {
	case delivery != 0:
		d, err := s.opts.Store.Delivery(ctx, delivery)
		if err != nil {
			return nil, err
		}
		if d.Disposition == nil {
			return nil, errorf(http.StatusConflict, "delivery %d is not planned yet; its builds are still to come", delivery)
		}
		if len(d.Disposition.Requests) == 0 {
			return nil, errorf(http.StatusBadRequest, "delivery %d asked for no build: %s", delivery, d.Disposition.Reason)
		}
		var out []state.BuildRequest
		for _, sum := range d.Disposition.Requests {
			rq, err := s.opts.Store.Request(ctx, sum.RequestID)
			if err != nil {
				return nil, err
			}
			out = append(out, again(rq, fmt.Sprintf("%s of delivery %d by %s", verb, delivery, who)))
		}
		return out, nil
	case build != 0:
		mb, err := s.opts.Store.GetModuleBuild(ctx, build)
		if err != nil {
			return nil, err
		}
		var rq *state.BuildRequest
		if mb.RequestID != 0 {
			if rq, err = s.opts.Store.Request(ctx, mb.RequestID); err != nil && !isNotFound(err) {
				return nil, err
			}
		}
		if rq == nil {
			rq = &state.BuildRequest{Module: mb.Name, Stream: mb.Stream, Kind: state.RequestModule, ModuleRepo: mb.ModuleRepo}
		}
		out := again(rq, fmt.Sprintf("%s of build %d by %s", verb, build, who))
		out.ModuleCommit = cmp.Or(mb.ModuleCommit, out.ModuleCommit)
		out.ModuleRepo = cmp.Or(mb.ModuleRepo, out.ModuleRepo)
		return []state.BuildRequest{out}, nil
	}
	name, stream, ok := strings.Cut(module, ":")
	if !ok || name == "" || stream == "" {
		return nil, errorf(http.StatusBadRequest, `"module" must be "name:stream", got %q`, module)
	}
	_, repo, err := s.opts.Store.ModuleComponents(ctx, name, stream)
	if err != nil {
		return nil, err
	}
	if repo == "" {
		last, err := s.opts.Store.StreamBuilds(ctx, name, stream)
		if err != nil {
			return nil, err
		}
		last = slices.DeleteFunc(last, func(mb state.ModuleBuild) bool { return mb.ModuleRepo == "" })
		if len(last) == 0 {
			return nil, errorf(http.StatusNotFound, "module stream %s is not known: it is not indexed and was never built", module)
		}
		repo = last[0].ModuleRepo
	}
	return []state.BuildRequest{{
		Module: name, Stream: stream, Kind: state.RequestModule, ModuleRepo: repo, ModuleCommit: commit,
		Reasons: []string{fmt.Sprintf("%s of %s by %s", verb, module, who)},
	}}, nil
}

func (s *Server) rerun(w http.ResponseWriter, r *http.Request) { s.requeue(w, r, "rerun", "") }
func (s *Server) rebuild(w http.ResponseWriter, r *http.Request) {
	s.requeue(w, r, "forced rebuild", "all")
}

// requeue implements POST /api/v1/rerun and /api/v1/rebuild.
func (s *Server) requeue(w http.ResponseWriter, r *http.Request, verb, strategy string) {
	who, err := s.who(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.opts.Queue == nil {
		s.fail(w, r, errorf(http.StatusNotImplemented, "queueing builds is not available on this server"))
		return
	}
	body, err := decodeBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	allowed := []string{"delivery", "build", "module", "commit"}
	if strategy == "" {
		allowed = append(allowed, "rebuild_strategy")
	}
	if err := unknownKeys(body, allowed...); err != nil {
		s.fail(w, r, err)
		return
	}
	if strategy == "" {
		if strategy, err = stringField(body, "rebuild_strategy"); err != nil {
			s.fail(w, r, err)
			return
		}
		if strategy != "" && !slices.Contains(rebuildStrategyNames, strategy) {
			s.fail(w, r, errorf(http.StatusBadRequest, "The rebuild method of %q is not allowed. Choose from: %s", strategy, strings.Join(rebuildStrategyNames, ", ")))
			return
		}
	}
	reqs, err := s.rerunTarget(r.Context(), body, who, verb)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var out []state.EnqueueSummary
	for _, rq := range reqs {
		res, err := s.opts.Queue.EnqueueWithOptions(r.Context(), rq, state.RequestOptions{RebuildStrategy: strategy, Owner: who})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out = append(out, state.EnqueueSummary{RequestID: res.Request.ID, Key: res.Request.Key, Action: res.Action})
		audit(r, "request", fmt.Sprintf("%d %s (%s)", res.Request.ID, res.Request.Key, res.Action))
	}
	if raw, ok := body["build"]; ok {
		audit(r, "build", string(raw))
	}
	if raw, ok := body["delivery"]; ok {
		audit(r, "delivery", string(raw))
	}
	s.enqueued()
	writeJSON(w, http.StatusAccepted, map[string]any{"requests": out, "rebuild_strategy": nilIfEmpty(strategy)})
}

func (s *Server) listPaused(w http.ResponseWriter, r *http.Request) {
	ps, err := s.opts.Store.Paused(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ps == nil {
		ps = []state.Pause{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": ps})
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request)  { s.setPaused(w, r, true) }
func (s *Server) resume(w http.ResponseWriter, r *http.Request) { s.setPaused(w, r, false) }

// setPaused implements POST /api/v1/pause and /resume: body
// {"module": "name:stream"} or {"all": true}.
func (s *Server) setPaused(w http.ResponseWriter, r *http.Request, paused bool) {
	who, err := s.who(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.opts.Queue == nil {
		s.fail(w, r, errorf(http.StatusNotImplemented, "pausing is not available on this server"))
		return
	}
	body, err := decodeBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := unknownKeys(body, "module", "all"); err != nil {
		s.fail(w, r, err)
		return
	}
	module, err := stringField(body, "module")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	all := string(body["all"]) == "true"
	if raw, ok := body["all"]; ok && string(raw) != "true" && string(raw) != "false" {
		s.fail(w, r, errorf(http.StatusBadRequest, `"all" must be true or false`))
		return
	}
	key := module
	switch {
	case all && module != "":
		s.fail(w, r, errorf(http.StatusBadRequest, `give either "module" or "all", not both`))
		return
	case all:
		key = state.PauseAll
	case module == "":
		s.fail(w, r, errorf(http.StatusBadRequest, `give "module": "name:stream" or "all": true`))
		return
	case !strings.Contains(module, ":"):
		s.fail(w, r, errorf(http.StatusBadRequest, `"module" must be "name:stream", got %q`, module))
		return
	}
	audit(r, "module", key)
	if err := s.opts.Queue.SetPaused(r.Context(), key, paused, who); err != nil {
		s.fail(w, r, err)
		return
	}
	if !paused {
		s.enqueued() // what waited may start now
	}
	ps, err := s.opts.Store.Paused(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ps == nil {
		ps = []state.Pause{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": key, "paused": paused, "items": ps})
}

// events serves the event log: JSON pages (?since=N&limit=M), or a
// Server-Sent Events stream when the client accepts text/event-stream. Each
// SSE message carries "id: <seq>", so a reconnecting client resumes with
// Last-Event-ID.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since uint64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.fail(w, r, errorf(http.StatusBadRequest, "since must be a non-negative integer, got %q", v))
			return
		}
		since = n
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			s.fail(w, r, errorf(http.StatusBadRequest, "limit must be an integer from 1 to 10000, got %q", v))
			return
		}
		limit = n
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		evs, err := s.opts.Store.EventsSince(r.Context(), since, limit)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		next := since
		if len(evs) > 0 {
			next = evs[len(evs)-1].Seq
		}
		if evs == nil {
			evs = []state.Event{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": evs, "next": next})
		return
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.fail(w, r, errorf(http.StatusBadRequest, "Last-Event-ID must be an event sequence number, got %q", v))
			return
		}
		since = n
	}
	if _, ok := w.(http.Flusher); !ok {
		s.fail(w, r, errorf(http.StatusNotImplemented, "this connection cannot stream events"))
		return
	}
	// The stream outlives the server's read and write timeouts while the
	// client reads; a comment line every sseKeepAlive makes a vanished
	// client fail a write, freeing its slot (LimitStreams).
	sw := streaming(w, r)
	sw.Header().Set("Content-Type", "text/event-stream")
	sw.Header().Set("Cache-Control", "no-cache")
	sw.Header().Set("X-Accel-Buffering", "no")
	sw.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(sw, "retry: %d\n\n", s.opts.EventPoll.Milliseconds()*2); err != nil {
		return
	}
	sw.Flush()
	tick := time.NewTicker(s.opts.EventPoll)
	defer tick.Stop()
	lastWrite := time.Now()
	for {
		evs, err := s.opts.Store.EventsSince(r.Context(), since, 1000)
		if err != nil {
			if r.Context().Err() == nil {
				s.opts.Logger.Error("api: event stream", "err", err)
				fmt.Fprintf(sw, "event: error\ndata: {\"message\": \"the store failed; see rida's log\"}\n\n")
				sw.Flush()
			}
			return
		}
		for _, ev := range evs {
			data, _ := json.Marshal(ev)
			data = secondsOnly(data)
			if _, err := fmt.Fprintf(sw, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Kind, data); err != nil {
				return // the client is gone or stopped reading
			}
			since = ev.Seq
		}
		if len(evs) > 0 {
			sw.Flush()
			lastWrite = time.Now()
		}
		if len(evs) == 1000 {
			continue // more waiting
		}
		if time.Since(lastWrite) >= sseKeepAlive {
			if _, err := fmt.Fprint(sw, ": keep-alive\n\n"); err != nil {
				return
			}
			sw.Flush()
			lastWrite = time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// sseKeepAlive is how often an idle event stream writes a comment line.
const sseKeepAlive = 15 * time.Second

// markReady implements POST /api/v1/builds/{id}/ready: an external test
// (gating) accepted a done build, which becomes ready. Only done builds can;
// anything else is 409 with the build's state.
func (s *Server) markReady(w http.ResponseWriter, r *http.Request) {
	if _, err := s.who(r); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.opts.Readier == nil {
		s.fail(w, r, errorf(http.StatusNotImplemented, "marking builds ready is not available on this server"))
		return
	}
	mb, err := s.opts.Store.GetModuleBuild(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if mb.State != state.ModuleStateDone {
		s.fail(w, r, errorf(http.StatusConflict, "build %d is %s; only a done build can become ready", id, mb.State))
		return
	}
	if mb.Scratch {
		s.fail(w, r, errorf(http.StatusConflict, "build %d is a scratch build, which stays done (MBS): it never becomes ready", id))
		return
	}
	mb, err = s.opts.Readier.MarkReady(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, BuildJSON(mb, true, "1"))
}

// snapshotter is the store capability GET /api/v1/backup prefers
// (*state.Store implements it): the copy is taken into a file first, so
// the client's pace holds no store transaction.
type snapshotter interface {
	Snapshot(ctx context.Context) (*state.Snapshot, error)
}

// backup implements GET /api/v1/backup: a consistent copy of the store,
// taken while rida runs (bbolt's hot backup into a snapshot file, then
// streamed with its Content-Length). It needs a token: the store holds
// delivery payloads and build history. The download may take longer than
// the server's write timeout as long as the client keeps reading.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	who, err := s.who(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if sn, ok := s.opts.Store.(snapshotter); ok {
		snap, err := sn.Snapshot(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		defer snap.Close()
		sw := streaming(w, r)
		sw.Header().Set("Content-Type", "application/octet-stream")
		sw.Header().Set("Content-Disposition", `attachment; filename="rida.db"`)
		sw.Header().Set("Content-Length", strconv.FormatInt(snap.Size(), 10))
		n, err := io.Copy(sw, snap)
		if err != nil {
			// The status line is gone; the client sees a short body.
			s.opts.Logger.Error("api: backup failed", "by", who, "bytes", n, "size", snap.Size(), "err", err)
			return
		}
		s.opts.Logger.Info("api: backup written", "by", who, "bytes", n)
		return
	}
	b, ok := s.opts.Store.(backuper)
	if !ok {
		s.fail(w, r, errorf(http.StatusNotImplemented, "backups are not available on this server"))
		return
	}
	sw := streaming(w, r)
	sw.Header().Set("Content-Type", "application/octet-stream")
	sw.Header().Set("Content-Disposition", `attachment; filename="rida.db"`)
	n, err := b.WriteBackup(r.Context(), sw)
	if err != nil {
		// The status line is gone; the truncated body fails to open.
		s.opts.Logger.Error("api: backup failed", "by", who, "bytes", n, "err", err)
		return
	}
	s.opts.Logger.Info("api: backup written", "by", who, "bytes", n)
}

// deliveryFromPath loads the delivery named by the request's {id} and the
// module builds made for its requests; on a bad id or a store error it has
// already answered and returns false.
func (s *Server) deliveryFromPath(w http.ResponseWriter, r *http.Request) (*state.Delivery, []state.ModuleBuild, bool) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	d, err := s.opts.Store.Delivery(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	builds, err := s.deliveryBuilds(r.Context(), d)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	return d, builds, true
}
