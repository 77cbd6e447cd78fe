package runner

import (
	"context"
	"strings"

	"github.com/rida-build/rida/scm"
)

// SCMModules reads modulemd files from module repositories through scm's
// bare mirrors. It implements ModuleReader.
type SCMModules struct {
	Mirrors *scm.Mirrors
	// File is the modulemd file name; "{name}" is replaced by the module
	// name. Default "{name}.yaml".
	File string
	// MaxSize caps the file's size. Default 8 MiB (modulemd.MaxDocumentSize).
	MaxSize int64
}

// ReadModule fetches repoURL's mirror and reads the modulemd at commit (the
// head of branch when commit is empty). A missing branch, commit or file is
// reported wrapping scm.ErrNotFound.
func (s SCMModules) ReadModule(ctx context.Context, repoURL, name, branch, commit string) (ModuleSource, error) {
	repo, err := s.Mirrors.Fetch(ctx, repoURL)
	if err != nil {
		return ModuleSource{}, err
	}
	ref := commit
	if ref == "" {
		ref = branch
	}
	c, err := repo.Commit(ref)
	if err != nil {
		return ModuleSource{}, err
	}
	file := s.File
	if file == "" {
		file = "{name}.yaml"
	}
	limit := s.MaxSize
	if limit == 0 {
		limit = 8 << 20
	}
	data, err := repo.ReadFile(c.Hash, strings.ReplaceAll(file, "{name}", name), limit)
	if err != nil {
		return ModuleSource{}, err
	}
	return ModuleSource{
		Name: name, Branch: branch, Commit: c.Hash, CommitTime: c.Time,
		ScmURL: repo.URL + "?#" + c.Hash, Modulemd: data,
	}, nil
}
