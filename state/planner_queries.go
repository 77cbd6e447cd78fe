package state

import "context"

// LastBuiltCommit returns the module commit of the newest successful (done
// or ready) build of module:stream, or "" when there is none. The planner
// diffs a force push from it: what matters is what changed since the last
// build, not since the commit the force push replaced.
func (s *Store) LastBuiltCommit(ctx context.Context, module, stream string) (string, error) {
	builds, err := s.ModuleBuilds(ctx, func(mb *ModuleBuild) bool {
		return mb.Name == module && mb.Stream == stream && mb.ModuleCommit != "" &&
			(mb.State == ModuleStateDone || mb.State == ModuleStateReady)
	})
	if err != nil || len(builds) == 0 {
		return "", err
	}
	return builds[0].ModuleCommit, nil
}
