package modgraph

import "cmp"

// Candidate is one module build that could satisfy a buildrequirement.
type Candidate struct {
	// ID is rida's build id; among builds of one version the higher id
	// (the later build) wins.
	ID      uint64
	Name    string
	Stream  string
	Version uint64
	Context string
	// Platform is the platform stream the candidate was built for; empty
	// when it buildrequired none.
	Platform string
}

// Choose picks the build to build against from the ready builds of one
// stream, MBS's way: the newest (highest version; for one version the
// latest build) whose platform is the dependent's. An empty platform on
// either side matches any. ok is false when no candidate qualifies.
func Choose(ready []Candidate, platform string) (best Candidate, ok bool) {
	for _, c := range ready {
		if platform != "" && c.Platform != "" && c.Platform != platform {
			continue
		}
		if !ok || cmp.Or(cmp.Compare(c.Version, best.Version), cmp.Compare(c.ID, best.ID)) > 0 {
			best, ok = c, true
		}
	}
	return best, ok
}
