package modulemd

import (
	"fmt"
	"slices"
	"strings"
)

// Expand is module stream expansion (MBS's MSE) for streams whose
// buildrequires name their streams: every dependency entry, and within it
// every combination of one stream per buildrequired module, becomes a stream
// of its own with exactly one dependency entry naming one stream per
// buildrequired module. A runtime requirement whose stream list equals the
// buildrequirement's is pinned to the stream built against, as MBS does;
// other requirements are kept. A stream that needs no expansion is returned
// as it is (a one-element slice holding s itself); expanded streams are
// copies, in a stable order (dependency entry, then buildrequires streams in
// the order listed), without duplicates.
//
// Expanding an empty stream list ("every active stream") or an exclusion
// ("-f27") needs the list of available streams, which a module's own
// repository does not give: Expand refuses it with an error naming the
// field; ExpandWith takes the list from its options.
func Expand(s *Stream) ([]*Stream, error) { return ExpandWith(s, ExpandOptions{}) }

// ExpandOptions is what ExpandWith needs from outside the document.
type ExpandOptions struct {
	// Available lists, per module name, the streams that can be built
	// against (rida: the streams with a ready build). An empty
	// buildrequires list expands to all of them, a list of exclusions to
	// those not excluded, as MBS's MSE does. A module missing here cannot
	// be expanded that way: an error names the field.
	Available map[string][]string
}

// ExpandWith is Expand with the available streams of the buildrequired
// modules, for empty stream lists and exclusions. Expanding to no stream
// at all is an error naming the field and the streams that were available.
func ExpandWith(s *Stream, opts ExpandOptions) ([]*Stream, error) {
	if !needsExpansion(s) {
		return []*Stream{s}, nil
	}
	var out []*Stream
	seen := map[string]bool{}
	for i, dep := range s.Dependencies {
		names := sortedKeys(dep.BuildRequires)
		chosen := map[string][]string{}
		for _, name := range names {
			streams := dep.BuildRequires[name]
			path := fmt.Sprintf("dependencies[%d].buildrequires.%s", i, name)
			explicit, excluded := []string{}, []string{}
			for _, st := range streams {
				if ex, ok := strings.CutPrefix(st, "-"); ok {
					excluded = append(excluded, ex)
				} else if st != "" {
					explicit = append(explicit, st)
				}
			}
			if len(explicit) > 0 {
				chosen[name] = explicit
				continue
			}
			avail, known := opts.Available[name]
			if !known {
				if len(streams) == 0 {
					return nil, fmt.Errorf("modulemd: expand: %s: an empty list means every active stream, which rida cannot know; name the streams", path)
				}
				return nil, fmt.Errorf("modulemd: expand: %s: %q: exclusions need the list of available streams, which rida cannot know; name the streams", path, "-"+excluded[0])
			}
			for _, st := range avail {
				if !slices.Contains(excluded, st) {
					chosen[name] = append(chosen[name], st)
				}
			}
			if len(chosen[name]) == 0 {
				return nil, fmt.Errorf("modulemd: expand: %s: %q matches none of the available streams of %s (%s): build one of its streams first", path, streams, name, strings.Join(avail, ", "))
			}
		}
		combos := [][]string{nil}
		for _, name := range names {
			var next [][]string
			for _, c := range combos {
				for _, st := range chosen[name] {
					next = append(next, append(slices.Clone(c), st))
				}
			}
			combos = next
		}
		for _, combo := range combos {
			br := map[string][]string{}
			var key strings.Builder
			for j, name := range names {
				br[name] = []string{combo[j]}
				fmt.Fprintf(&key, "%s:%s;", name, combo[j])
			}
			if seen[key.String()] {
				continue
			}
			seen[key.String()] = true
			req := map[string][]string{}
			for name, streams := range dep.Requires {
				if b, ok := dep.BuildRequires[name]; ok && slices.Equal(b, streams) && len(chosen[name]) > 0 {
					req[name] = []string{br[name][0]}
				} else {
					req[name] = slices.Clone(streams)
				}
			}
			c := s.Clone()
			c.Dependencies = []Dependencies{{BuildRequires: br, Requires: req}}
			out = append(out, c)
		}
	}
	return out, nil
}

func needsExpansion(s *Stream) bool {
	if len(s.Dependencies) > 1 {
		return true
	}
	for _, d := range s.Dependencies {
		for _, streams := range d.BuildRequires {
			if len(streams) != 1 || strings.HasPrefix(streams[0], "-") || streams[0] == "" {
				return true
			}
		}
	}
	return false
}
