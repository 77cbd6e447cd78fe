package modgraph

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// CycleError is a cycle in the module graph: each stream buildrequires the
// next, and the last buildrequires the first. A module that buildrequires
// its own stream (bootstrapping from its previous build) is not a cycle.
type CycleError struct {
	Cycle []StreamRef
}

// Error names the cycle: "module dependency cycle: a:1 → b:1 → a:1".
func (e *CycleError) Error() string {
	parts := make([]string, 0, len(e.Cycle)+1)
	for _, s := range e.Cycle {
		parts = append(parts, s.String())
	}
	if len(e.Cycle) > 0 {
		parts = append(parts, e.Cycle[0].String())
	}
	return "module dependency cycle: " + strings.Join(parts, " → ") + " (buildrequires)"
}

// EdgesFunc returns the streams one stream is linked to: its dependents for
// PlanCascade, its buildrequired streams for FindCycle.
type EdgesFunc func(StreamRef) ([]StreamRef, error)

// FindCycle follows buildrequires from start and returns the first cycle
// through start it finds, as a *CycleError, or nil. Self edges are ignored.
func FindCycle(start StreamRef, buildRequires EdgesFunc) error {
	seen := map[StreamRef]bool{}
	var path []StreamRef
	var visit func(s StreamRef) ([]StreamRef, error)
	visit = func(s StreamRef) ([]StreamRef, error) {
		seen[s] = true
		path = append(path, s)
		defer func() { path = path[:len(path)-1] }()
		next, err := buildRequires(s)
		if err != nil {
			return nil, err
		}
		for _, n := range sortedRefs(next) {
			switch {
			case n == s:
				continue
			case n == start:
				return slices.Clone(path), nil
			case seen[n]:
				continue
			}
			if c, err := visit(n); c != nil || err != nil {
				return c, err
			}
		}
		return nil, nil
	}
	c, err := visit(start)
	if err != nil {
		return err
	}
	if c != nil {
		return &CycleError{Cycle: c}
	}
	return nil
}

// CascadeStep is one stream a cascade rebuilds.
type CascadeStep struct {
	Stream StreamRef
	// Depth is the length of the shortest dependency chain from the root.
	Depth int
	// After lists the streams of the cascade (the root included) this one
	// buildrequires: it must build after them.
	After []StreamRef
}

// Cascade is the plan of rebuilds that follows a new build of Root.
type Cascade struct {
	Root StreamRef
	// Steps lists every stream that buildrequires Root, directly or
	// transitively within MaxDepth, each after every stream it
	// buildrequires among them (a topological order; ties by depth, then
	// name).
	Steps []CascadeStep
	// Beyond lists dependents left out because they are deeper than
	// MaxDepth.
	Beyond []StreamRef
}

// PlanCascade computes the cascade of rebuilds after root got a new build.
// dependents returns the streams that buildrequire a stream directly.
// maxDepth bounds the chain length (0: no bound). A cycle among the
// dependents, or back to root, is a *CycleError naming it: nothing of such a
// cascade may be queued, as no order builds it.
func PlanCascade(root StreamRef, dependents EdgesFunc, maxDepth int) (*Cascade, error) {
	depth := map[StreamRef]int{root: 0}
	// requires[x] = the members x buildrequires (edges found while
	// expanding every member, so the order is right even at the bound).
	requires := map[StreamRef][]StreamRef{}
	var beyond []StreamRef
	queue := []StreamRef{root}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		ds, err := dependents(cur)
		if err != nil {
			return nil, err
		}
		for _, d := range sortedRefs(ds) {
			if d == cur {
				continue
			}
			if _, in := depth[d]; !in {
				if maxDepth > 0 && depth[cur]+1 > maxDepth {
					if !slices.Contains(beyond, d) {
						beyond = append(beyond, d)
					}
					continue
				}
				depth[d] = depth[cur] + 1
				queue = append(queue, d)
			}
			if !slices.Contains(requires[d], cur) {
				requires[d] = append(requires[d], cur)
			}
		}
	}
	// Kahn's algorithm over the members; root has no requirements in the
	// set unless a cycle leads back to it.
	indeg := map[StreamRef]int{}
	dependentsOf := map[StreamRef][]StreamRef{}
	for s, reqs := range requires {
		indeg[s] = len(reqs)
		for _, r := range reqs {
			dependentsOf[r] = append(dependentsOf[r], s)
		}
	}
	out := &Cascade{Root: root, Beyond: sortedRefs(beyond)}
	var readyq []StreamRef
	for s := range depth {
		if indeg[s] == 0 {
			readyq = append(readyq, s)
		}
	}
	done := 0
	for len(readyq) > 0 {
		slices.SortFunc(readyq, func(a, b StreamRef) int {
			return cmp.Or(cmp.Compare(depth[a], depth[b]), compareRefs(a, b))
		})
		cur := readyq[0]
		readyq = readyq[1:]
		done++
		if cur != root {
			out.Steps = append(out.Steps, CascadeStep{Stream: cur, Depth: depth[cur], After: sortedRefs(requires[cur])})
		}
		for _, d := range dependentsOf[cur] {
			indeg[d]--
			if indeg[d] == 0 {
				readyq = append(readyq, d)
			}
		}
	}
	if done < len(depth) {
		blocked := func(s StreamRef) bool { return indeg[s] > 0 }
		start := root
		if !blocked(root) {
			for _, s := range sortedRefs(mapKeys(depth)) {
				if blocked(s) {
					start = s
					break
				}
			}
		}
		return nil, &CycleError{Cycle: cycleAmong(start, requires, blocked)}
	}
	return out, nil
}

// cycleAmong walks requirements from start through streams that are still
// blocked until one repeats, and returns that loop in buildrequires order.
func cycleAmong(start StreamRef, requires map[StreamRef][]StreamRef, blocked func(StreamRef) bool) []StreamRef {
	pos := map[StreamRef]int{}
	var path []StreamRef
	cur := start
	for {
		if i, ok := pos[cur]; ok {
			return path[i:]
		}
		pos[cur] = len(path)
		path = append(path, cur)
		next, found := StreamRef{}, false
		// A blocked stream always has a blocked requirement: the one Kahn's
		// algorithm could not release it for.
		for _, r := range sortedRefs(requires[cur]) {
			if blocked(r) {
				next, found = r, true
				break
			}
		}
		if !found {
			return path
		}
		cur = next
	}
}

func mapKeys(m map[StreamRef]int) []StreamRef {
	out := make([]StreamRef, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func compareRefs(a, b StreamRef) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Stream, b.Stream))
}

func sortedRefs(in []StreamRef) []StreamRef {
	out := slices.Clone(in)
	slices.SortFunc(out, compareRefs)
	return slices.Compact(out)
}

// String describes the cascade for people: "upper:1 (after lower:1)".
func (s CascadeStep) String() string {
	after := make([]string, len(s.After))
	for i, a := range s.After {
		after[i] = a.String()
	}
	return fmt.Sprintf("%s (after %s)", s.Stream, strings.Join(after, ", "))
}
