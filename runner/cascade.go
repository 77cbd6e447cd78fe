package runner

import (
	"fmt"
	"strings"

	"github.com/rida-build/rida/modgraph"
	"github.com/rida-build/rida/state"
)

// DefaultCascadeDepth bounds how far a cascade reaches by default: EL8's
// deepest buildrequires chain is far shorter.
const DefaultCascadeDepth = 8

// Cascader decides the rebuilds a module build's becoming ready queues,
// Freshmaker's way: every module stream that buildrequires the stream,
// directly or transitively, in dependency order. Its For method is
// installed as state.Options.CascadeFor and runs inside the transaction
// that makes the build ready.
type Cascader struct {
	// Enabled turns cascades on (config build.cascade, default true).
	Enabled bool
	// MaxDepth bounds the dependency chain followed (config
	// build.cascade_depth); 0 means DefaultCascadeDepth.
	MaxDepth int
}

// For returns the cascade of ev.Build, one request per dependent stream in
// build order, each naming its cause and carrying the deliveries of the
// request that started the chain (so its commit statuses land on the
// pushed commits). A build that was itself queued by a cascade queues
// nothing: the first build of the chain queued every stream downstream.
// A cycle queues nothing and says so in the note.
func (c Cascader) For(ev state.CascadeEvent) ([]state.BuildRequest, string) {
	if !c.Enabled || ev.Build == nil || ev.Build.Scratch {
		return nil, "" // a scratch build is never cascaded from
	}
	if ev.Request != nil && ev.Request.CascadeFrom != 0 {
		return nil, ""
	}
	root := modgraph.StreamRef{Name: ev.Build.Name, Stream: ev.Build.Stream}
	depth := c.MaxDepth
	if depth <= 0 {
		depth = DefaultCascadeDepth
	}
	plan, err := modgraph.PlanCascade(root, ev.Dependents, depth)
	if err != nil {
		return nil, "cascade refused: " + err.Error()
	}
	var (
		out   []state.BuildRequest
		notes []string
	)
	for _, step := range plan.Steps {
		repo := ev.ModuleRepo(step.Stream)
		if repo == "" {
			notes = append(notes, step.Stream.String()+" skipped: its module repository is not indexed")
			continue
		}
		after := make([]string, len(step.After))
		for i, a := range step.After {
			after[i] = a.String()
		}
		reason := fmt.Sprintf("%s build %d became ready (cascade: %s buildrequires %s)", root, ev.Build.ID, step.Stream, strings.Join(after, ", "))
		r := state.BuildRequest{
			Module: step.Stream.Name, Stream: step.Stream.Stream, Kind: state.RequestCascade,
			ModuleRepo: repo, CascadeFrom: ev.Build.ID, Reasons: []string{reason},
		}
		if ev.Request != nil {
			r.DeliveryIDs = ev.Request.DeliveryIDs
		}
		out = append(out, r)
	}
	if len(plan.Beyond) > 0 {
		var names []string
		for _, b := range plan.Beyond {
			names = append(names, b.String())
		}
		notes = append(notes, fmt.Sprintf("depth limit %d: not queued: %s", depth, strings.Join(names, ", ")))
	}
	return out, strings.Join(notes, "; ")
}
