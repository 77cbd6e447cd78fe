package modulemd

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// FirstComponentBatch is the number of the first batch holding components.
// Batch 1 is reserved for the generated module-build-macros package, as in
// MBS.
const FirstComponentBatch = 2

// Batch is a set of components that can build in parallel once every earlier
// batch is done.
type Batch struct {
	// Number is the batch number, FirstComponentBatch for the first one,
	// increasing by one without gaps.
	Number int
	// Components lists the component keys (components.rpms keys), sorted.
	Components []string
}

// Batches groups the RPM components of s into build batches.
//
// With buildorder (or no ordering at all) it follows MBS's
// record_component_builds: components are sorted by buildorder (stably, and
// by key within equal values) and a new batch starts whenever the value
// changes, so gaps between values create no empty batches. With buildafter
// it returns the layers of a topological sort (Kahn's algorithm): a
// component is in the first batch after every batch holding one of its
// buildafter entries.
//
// Batches fails when buildorder and buildafter are mixed, when a buildafter
// entry is not a component or names the component itself, when buildafter
// has a cycle (the error shows the cycle), and when s includes modules
// (components.modules), which rida does not build. A stream without RPM
// components has no batches.
func Batches(s *Stream) ([]Batch, error) {
	if len(s.Components.Modules) > 0 {
		return nil, fmt.Errorf("modulemd: batches: included modules (components.modules: %s) are not supported",
			strings.Join(sortedKeys(s.Components.Modules), ", "))
	}
	rpms := s.Components.RPMs
	keys := sortedKeys(rpms)
	var withOrder, withAfter bool
	for _, k := range keys {
		c := rpms[k]
		if c == nil {
			return nil, fmt.Errorf("modulemd: batches: components.rpms.%s is null", k)
		}
		withOrder = withOrder || c.BuildOrder != 0
		withAfter = withAfter || len(c.BuildAfter) > 0
	}
	switch {
	case len(keys) == 0:
		return nil, nil
	case withOrder && withAfter:
		return nil, errors.New("modulemd: batches: components.rpms: cannot mix buildorder and buildafter in one stream")
	case withAfter:
		return afterBatches(rpms, keys)
	}
	slices.SortStableFunc(keys, func(a, b string) int {
		oa, ob := rpms[a].BuildOrder, rpms[b].BuildOrder
		switch {
		case oa < ob:
			return -1
		case oa > ob:
			return 1
		}
		return 0
	})
	var out []Batch
	for i, k := range keys {
		if i == 0 || rpms[k].BuildOrder != rpms[keys[i-1]].BuildOrder {
			out = append(out, Batch{Number: FirstComponentBatch + len(out)})
		}
		b := &out[len(out)-1]
		b.Components = append(b.Components, k)
	}
	return out, nil
}

// afterBatches layers a buildafter graph with Kahn's algorithm.
func afterBatches(rpms map[string]*Component, keys []string) ([]Batch, error) {
	pending := make(map[string]int, len(keys))         // unmet dependencies
	dependents := make(map[string][]string, len(keys)) // dep -> components after it
	for _, k := range keys {
		deps := slices.Clone(rpms[k].BuildAfter)
		slices.Sort(deps)
		deps = slices.Compact(deps)
		for _, d := range deps {
			if d == k {
				return nil, fmt.Errorf("modulemd: batches: components.rpms.%s.buildafter: %q refers to the component itself", k, d)
			}
			if _, ok := rpms[d]; !ok {
				return nil, fmt.Errorf("modulemd: batches: components.rpms.%s.buildafter: %q is not a component", k, d)
			}
			dependents[d] = append(dependents[d], k)
		}
		pending[k] = len(deps)
	}
	var layer []string
	for _, k := range keys {
		if pending[k] == 0 {
			layer = append(layer, k)
		}
	}
	var out []Batch
	done := 0
	for len(layer) > 0 {
		out = append(out, Batch{Number: FirstComponentBatch + len(out), Components: layer})
		done += len(layer)
		var next []string
		for _, k := range layer {
			for _, d := range dependents[k] {
				pending[d]--
				if pending[d] == 0 {
					next = append(next, d)
				}
			}
		}
		slices.Sort(next)
		layer = next
	}
	if done != len(keys) {
		cycles := buildAfterCycles(rpms)
		if len(cycles) == 0 { // cannot happen: leftovers imply a cycle
			return nil, errors.New("modulemd: batches: components.rpms: buildafter has a cycle")
		}
		return nil, fmt.Errorf("modulemd: batches: components.rpms.%s.buildafter: buildafter cycle: %s",
			cycles[0][0], strings.Join(cycles[0], " -> "))
	}
	return out, nil
}
