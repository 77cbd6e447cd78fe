package local

import (
	"context"
	"os"
	"path/filepath"
	"slices"

	"github.com/rida-build/rida/runner"
)

// AdoptBatch takes over the components of batch that completed before rida
// was killed (a resumed build): their RPMs, still in each component's work
// directory, are published again (copied into the repository, recorded in
// the rpm database, repodata regenerated), exactly as at the end of the
// batch that built them, so nothing that completed is built twice. A
// component whose files are gone, or differ from what it recorded, is
// returned as lost and built again. Publishing is idempotent, so adopting a
// batch that was already published is harmless.
func (b *Backend) AdoptBatch(ctx context.Context, build *runner.Build, batch *runner.Batch, done []*runner.Component) ([]string, error) {
	st, err := b.state(build)
	if err != nil {
		return nil, err
	}
	var (
		lost     []string
		outcomes []outcome
	)
	for _, c := range done {
		files, ok := adoptedFiles(filepath.Join(st.work, c.Key, "rpmbuild"), c.RPMs)
		if !ok {
			lost = append(lost, c.Key)
			continue
		}
		if c.Key == runner.MacrosComponent {
			if err := b.installMacros(build, st); err != nil {
				lost = append(lost, c.Key)
				continue
			}
		}
		outcomes = append(outcomes, outcome{key: c.Key, state: runner.ComponentComplete, files: files})
	}
	if len(outcomes) > 0 {
		if err := b.publish(ctx, st, batch.Number, b.now(), outcomes); err != nil {
			return nil, err
		}
	}
	b.log.Info("local: completed components taken over", "nsvc", build.NSVC(), "batch", batch.Number, "kept", len(outcomes), "lost", len(lost))
	return lost, nil
}

// adoptedFiles finds the files of nevras in an earlier rpmbuild's output
// tree top. ok is false unless every package is there as a regular file
// and the tree holds nothing else (a half-written rebuild).
func adoptedFiles(top string, nevras []string) ([]string, bool) {
	if len(nevras) == 0 {
		return nil, false
	}
	found, err := findRPMs(top)
	if err != nil || len(found) != len(nevras) {
		return nil, false
	}
	names := make([]string, len(found))
	for i, f := range found {
		fi, err := os.Lstat(f)
		if err != nil || !fi.Mode().IsRegular() {
			return nil, false
		}
		names[i] = filepath.Base(f)
	}
	for _, n := range nevras {
		if !slices.Contains(names, rpmFileName(n)) {
			return nil, false
		}
	}
	return found, true
}
