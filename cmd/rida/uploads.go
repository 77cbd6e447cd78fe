package main

import (
	"context"
	"path/filepath"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/runner"
)

// uploadsDir is where the API stores the SRPMs a scratch build is
// submitted with (one directory per submission) and where the local
// backend reads them: <data_dir>/uploads.
func uploadsDir(cfg *config) string { return filepath.Join(cfg.DataDir, "uploads") }

// srpmMode is how the API takes a scratch build's srpms: Koji upload
// paths with the Koji backend, SRPM files sent to rida with the local one.
func srpmMode(cfg *config) api.SRPMMode {
	if cfg.Backend.Kind == "koji" {
		return api.SRPMsKoji
	}
	return api.SRPMsUploaded
}

// moduleFiles lets the API read a module repository's modulemd at a
// commit (api.ModulemdReader) through the runner's reader, to check a
// submission's srpms against its components.
type moduleFiles struct{ m runner.SCMModules }

var _ api.ModulemdReader = moduleFiles{}

// ReadModulemd reads name's modulemd in repoURL at commit.
func (f moduleFiles) ReadModulemd(ctx context.Context, repoURL, name, commit string) ([]byte, error) {
	src, err := f.m.ReadModule(ctx, repoURL, name, "", commit)
	return src.Modulemd, err
}
