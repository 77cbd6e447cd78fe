package state

import "context"

// LastBuiltCommit returns the module commit of the newest successful (done
// or ready) build of module:stream, or "" when there is none. The planner
// diffs a force push from it: what matters is what changed since the last
// build, not since the commit the force push replaced. It reads the
// per-stream index.
func (s *Store) LastBuiltCommit(ctx context.Context, module, stream string) (string, error) {
	builds, err := s.StreamBuilds(ctx, module, stream, ModuleStateDone, ModuleStateReady)
	if err != nil {
		return "", err
	}
	for _, mb := range builds {
		if mb.ModuleCommit != "" {
			return mb.ModuleCommit, nil
		}
	}
	return "", nil
}
