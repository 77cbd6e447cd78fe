package api

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strconv"

	"github.com/rida-build/rida/modgraph"
	"github.com/rida-build/rida/state"
)

// Graph is what the module graph endpoint and the build page read.
// *state.Store implements it.
type Graph interface {
	// Dependents returns the indexed streams that buildrequire
	// module:stream directly.
	Dependents(ctx context.Context, module, stream string) ([]modgraph.StreamRef, error)
	// StreamBuildRequires returns what the indexed modulemd of
	// module:stream buildrequires (nil when not indexed).
	StreamBuildRequires(ctx context.Context, module, stream string) ([]modgraph.Requirement, error)
	// StreamBuilds returns the builds of module:stream, newest first.
	StreamBuilds(ctx context.Context, module, stream string, states ...state.ModuleState) ([]state.ModuleBuild, error)
}

// Bounds of the transitive dependents walk.
const (
	defaultDependentsDepth = 10
	maxDependentsDepth     = 100
)

// defaultMaxDependents is Options.MaxDependents's default.
const defaultMaxDependents = 1000

// dependentView is one stream in the dependents answer.
type dependentView struct {
	Module string `json:"module"`
	Stream string `json:"stream"`
	// Direct: it buildrequires the stream itself (Depth 1).
	Direct bool `json:"direct"`
	// Depth is the length of the shortest buildrequires chain to the stream.
	Depth int `json:"depth"`
	// Via lists the streams one level closer it buildrequires (for depth
	// 1: the stream itself).
	Via []string `json:"via"`
}

func (s *Server) graph() (Graph, error) {
	if s.opts.Graph == nil {
		return nil, errorf(http.StatusNotImplemented, "the module graph is not available on this server")
	}
	return s.opts.Graph, nil
}

// walkDependents returns the streams that buildrequire root directly and,
// with transitive, through other streams, breadth first, to maxDepth and at
// most maxItems streams (truncated says a bound cut the walk short).
// Each level reads the dependents index once per stream: no full scan.
// The root itself is never listed (a stream that buildrequires its own
// stream bootstraps from its previous build).
func walkDependents(ctx context.Context, g Graph, root modgraph.StreamRef, transitive bool, maxDepth, maxItems int) (items []dependentView, truncated bool, err error) {
	// A transitive walk reads one level beyond maxDepth, only to tell
	// whether the bound left streams out.
	levels := 1
	if transitive {
		levels = maxDepth + 1
	}
	index := map[modgraph.StreamRef]int{root: -1} // position in items; -1 for root
	level := []modgraph.StreamRef{root}
	for depth := 1; depth <= levels && len(level) > 0; depth++ {
		var next []modgraph.StreamRef
		for _, cur := range level {
			ds, err := g.Dependents(ctx, cur.Name, cur.Stream)
			if err != nil {
				return nil, false, err
			}
			for _, d := range ds {
				if i, seen := index[d]; seen {
					if i >= 0 && items[i].Depth == depth && !slices.Contains(items[i].Via, cur.String()) {
						items[i].Via = append(items[i].Via, cur.String())
					}
					continue
				}
				if depth > maxDepth || len(items) >= maxItems {
					truncated = true
					continue
				}
				index[d] = len(items)
				items = append(items, dependentView{Module: d.Name, Stream: d.Stream, Direct: depth == 1, Depth: depth, Via: []string{cur.String()}})
				next = append(next, d)
			}
		}
		level = next
	}
	slices.SortStableFunc(items, func(a, b dependentView) int {
		return cmp.Or(cmp.Compare(a.Depth, b.Depth), cmp.Compare(a.Module, b.Module), cmp.Compare(a.Stream, b.Stream))
	})
	for i := range items {
		slices.Sort(items[i].Via)
	}
	return items, truncated, nil
}

// moduleDependents answers GET /api/v1/modules/{name}/{stream}/dependents.
func (s *Server) moduleDependents(w http.ResponseWriter, r *http.Request) {
	g, err := s.graph()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	root := modgraph.StreamRef{Name: r.PathValue("name"), Stream: r.PathValue("stream")}
	q := r.URL.Query()
	for k := range q {
		if k != "transitive" && k != "max_depth" {
			s.fail(w, r, errorf(http.StatusBadRequest, "An invalid parameter was submitted: %q (dependents take transitive and max_depth)", k))
			return
		}
	}
	transitive := false
	switch v := q.Get("transitive"); v {
	case "", "false", "0", "False":
	case "true", "1", "True":
		transitive = true
	default:
		s.fail(w, r, errorf(http.StatusBadRequest, "transitive must be true or false, got %q", v))
		return
	}
	maxDepth := defaultDependentsDepth
	if v := q.Get("max_depth"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDependentsDepth {
			s.fail(w, r, errorf(http.StatusBadRequest, "max_depth must be an integer from 1 to %d, got %q", maxDependentsDepth, v))
			return
		}
		maxDepth = n
	}
	items, truncated, err := walkDependents(r.Context(), g, root, transitive, maxDepth, s.opts.MaxDependents)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	reqs, err := g.StreamBuildRequires(r.Context(), root.Name, root.Stream)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if items == nil {
		items = []dependentView{}
	}
	if reqs == nil {
		reqs = []modgraph.Requirement{}
	}
	for i := range reqs {
		if reqs[i].Streams == nil {
			reqs[i].Streams = []string{}
		}
	}
	out := map[string]any{
		"module": root.Name, "stream": root.Stream, "buildrequires": reqs,
		"transitive": transitive, "items": items, "truncated": truncated,
	}
	if transitive {
		out["max_depth"] = maxDepth
	}
	writeJSON(w, http.StatusOK, out)
}

// buildGraphView is what the build page shows of the module graph.
type buildGraphView struct {
	// CascadeFrom is the build whose becoming ready queued this build's
	// request (nil: none or gone), CascadeFromID its id.
	CascadeFrom   *state.ModuleBuild
	CascadeFromID uint64
	// Queued lists the requests this build's becoming ready queued.
	Queued []queuedView
}

type queuedView struct {
	RequestID uint64
	Key       string
	State     string
	// BuildID is the request's module build (0: not created yet or not
	// found).
	BuildID uint64
}

// maxQueuedShown bounds the lookups the build page makes for a cascade.
const maxQueuedShown = 50

// buildGraph reads what the build page shows about cascades: the build that
// queued mb's request and the builds of the requests mb's becoming ready
// queued (found among their streams' builds, never by a full scan).
func (s *Server) buildGraph(ctx context.Context, mb *state.ModuleBuild) (*buildGraphView, error) {
	v := &buildGraphView{}
	if mb.RequestID != 0 {
		rq, err := s.opts.Store.Request(ctx, mb.RequestID)
		switch {
		case err == nil && rq.CascadeFrom != 0:
			v.CascadeFromID = rq.CascadeFrom
			from, err := s.opts.Store.GetModuleBuild(ctx, rq.CascadeFrom)
			if err != nil && !isNotFound(err) {
				return nil, err
			}
			v.CascadeFrom = from
		case err != nil && !isNotFound(err):
			return nil, err
		}
	}
	if mb.Cascade == nil {
		return v, nil
	}
	for i, id := range mb.Cascade.Requests {
		qv := queuedView{RequestID: id}
		if i >= maxQueuedShown {
			v.Queued = append(v.Queued, qv)
			continue
		}
		rq, err := s.opts.Store.Request(ctx, id)
		if err != nil {
			if isNotFound(err) {
				v.Queued = append(v.Queued, qv)
				continue
			}
			return nil, err
		}
		qv.Key, qv.State = rq.Key, string(rq.State)
		if s.opts.Graph != nil {
			builds, err := s.opts.Graph.StreamBuilds(ctx, rq.Module, rq.Stream)
			if err != nil {
				return nil, err
			}
			for _, b := range builds {
				if b.RequestID == id {
					qv.BuildID = b.ID
					break
				}
			}
		}
		v.Queued = append(v.Queued, qv)
	}
	return v, nil
}
