package runner

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
)

// lastGood returns the newest successful build of name:stream with context
// that has components to reuse from, or nil, walking the per-stream index
// newest first.
func (r *Runner) lastGood(ctx context.Context, name, stream, context string) (*state.ModuleBuild, error) {
	usable := func(o *state.ModuleBuild) bool {
		return o.Name == name && o.Stream == stream && o.Context == context && !o.Scratch &&
			(o.State == state.ModuleStateDone || o.State == state.ModuleStateReady) && len(o.Components) > 0
	}
	last, err := r.opts.Store.LatestStreamBuild(ctx, name, stream, usable, state.ModuleStateDone, state.ModuleStateReady)
	if err != nil {
		return nil, &InfraError{Op: "look up the last successful build", Err: err}
	}
	return last, nil
}

// planReuse marks the components of b that can be taken from last, MBS's
// way (scheduler/reuse.py):
//
//   - strategy all reuses nothing;
//   - a component is reusable when its commit, repository and batch are
//     unchanged and last built it;
//   - for changed-and-after, also: last was itself built with all or
//     changed-and-after, buildopts.rpms.macros are unchanged, and every
//     earlier batch (batch 1, module-build-macros, aside) holds exactly the
//     same components at the same commits, so a component added to or
//     removed from an earlier batch invalidates what comes after it.
func planReuse(b *Build, last *state.ModuleBuild, strategy string) {
	if last == nil || strategy == StrategyAll {
		return
	}
	if strategy == StrategyChangedAndAfter {
		if last.RebuildStrategy == StrategyOnlyChanged {
			return // its components may themselves be stale
		}
		if macros(b.Modulemd) != recordedMacros(last) {
			return
		}
	}
	prev := map[string]state.ComponentBuild{}
	prevBatches := map[int][]string{}
	for _, c := range last.Components {
		prev[c.Key] = c
		prevBatches[c.Batch] = append(prevBatches[c.Batch], batchEntry(c.Package, c.Repository, c.Commit))
	}
	earlierChanged := false
	for _, batch := range b.Batches {
		if batch.Number == 1 {
			continue // module-build-macros carries this build's dist tag
		}
		var cur []string
		for _, c := range batch.Components {
			cur = append(cur, batchEntry(c.Package, c.Repository, c.Commit))
		}
		slices.Sort(cur)
		old := prevBatches[batch.Number]
		slices.Sort(old)
		batchChanged := !slices.Equal(cur, old)
		for _, c := range batch.Components {
			p, ok := prev[c.Key]
			// A component built from an SRPM is never reused (its commit
			// is empty, and so never equal to a recorded one).
			unchanged := ok && c.SRPM == "" && p.Commit == c.Commit && p.Batch == c.Batch && p.Repository == c.Repository &&
				(p.State == string(ComponentComplete) || p.State == string(ComponentReused)) && len(p.RPMs) > 0
			if !unchanged || (strategy == StrategyChangedAndAfter && earlierChanged) {
				continue
			}
			from := int64(last.ID)
			if p.ReusedFrom != 0 {
				from = int64(p.ReusedFrom)
			}
			c.State, c.ReusedFrom, c.ReusedLocation = ComponentReused, from, cmp.Or(last.ResultDir, last.Location)
			c.NVR, c.RPMs, c.TaskID = p.NVR, slices.Clone(p.RPMs), p.TaskID
			c.Reason = fmt.Sprintf("reused from build %d (%s)", from, p.NVR)
		}
		earlierChanged = earlierChanged || batchChanged
	}
}

func batchEntry(pkg, repo, commit string) string {
	return strings.Join([]string{pkg, repo, commit}, "\x00")
}

// macros returns a stream's buildopts.rpms.macros.
func macros(s *modulemd.Stream) string {
	if s == nil || s.BuildOpts == nil {
		return ""
	}
	return s.BuildOpts.Macros
}

// recordedMacros returns the buildopts.rpms.macros of a recorded build, or
// a value no stream has when its modulemd cannot be read (no reuse then).
func recordedMacros(mb *state.ModuleBuild) string {
	streams, err := modulemd.Parse([]byte(mb.Modulemd))
	if err != nil || len(streams) != 1 {
		return "\x00unreadable"
	}
	return macros(streams[0])
}
