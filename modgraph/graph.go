// Package modgraph is the module dependency graph: which module streams
// build on which, which build of a buildrequired stream a build is built
// against, whether the graph has a cycle, and in which order a rebuild
// cascades to the streams that depend on a stream.
//
// Like modulemd it is pure: it does no I/O. Callers hand it requirements
// read from modulemd documents and lookups into their own store (the state
// package keeps the stream → dependents index); it hands back decisions.
package modgraph

import (
	"slices"
	"strings"

	"github.com/rida-build/rida/modulemd"
)

// StreamRef names one module stream.
type StreamRef struct {
	Name   string
	Stream string
}

// String returns "name:stream".
func (s StreamRef) String() string { return s.Name + ":" + s.Stream }

// Requirement is one buildrequired (or required) module with the streams a
// modulemd names for it: a list of streams, an empty list for every stream,
// or exclusions ("-el8") for every stream but those.
type Requirement struct {
	Name    string   `json:"name"`
	Streams []string `json:"streams"`
}

// Matches reports whether stream satisfies r's stream list, with
// libmodulemd's rules: an empty list matches every stream; a list of
// exclusions matches every stream it does not exclude; otherwise the stream
// must be listed.
func (r Requirement) Matches(stream string) bool {
	if len(r.Streams) == 0 {
		return true
	}
	positive := false
	for _, s := range r.Streams {
		if ex, ok := strings.CutPrefix(s, "-"); ok {
			if ex == stream {
				return false
			}
			continue
		}
		positive = true
		if s == stream {
			return true
		}
	}
	return !positive
}

// BuildRequirements returns the modules s buildrequires other than the base
// module (platform), one Requirement per module with the streams of every
// dependency entry united, sorted by name. An entry that names every
// stream (an empty list) makes the union every stream.
func BuildRequirements(s *modulemd.Stream) []Requirement {
	return requirements(s, func(d modulemd.Dependencies) map[string][]string { return d.BuildRequires })
}

// RuntimeRequirements is BuildRequirements for the runtime requires.
func RuntimeRequirements(s *modulemd.Stream) []Requirement {
	return requirements(s, func(d modulemd.Dependencies) map[string][]string { return d.Requires })
}

func requirements(s *modulemd.Stream, pick func(modulemd.Dependencies) map[string][]string) []Requirement {
	byName := map[string]*Requirement{}
	all := map[string]bool{}
	for _, d := range s.Dependencies {
		for name, streams := range pick(d) {
			if name == modulemd.PlatformModule {
				continue
			}
			r := byName[name]
			if r == nil {
				r = &Requirement{Name: name}
				byName[name] = r
			}
			if len(streams) == 0 {
				all[name] = true
			}
			for _, st := range streams {
				if !slices.Contains(r.Streams, st) {
					r.Streams = append(r.Streams, st)
				}
			}
		}
	}
	out := make([]Requirement, 0, len(byName))
	for name, r := range byName {
		if all[name] {
			r.Streams = nil
		}
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Requirement) int { return strings.Compare(a.Name, b.Name) })
	return out
}
