package main

import (
	"fmt"
	"log/slog"

	"github.com/rida-build/rida/forge"
	"github.com/rida-build/rida/statuses"
)

// statusReporters builds one commit status reporter per forge that has a
// token. Forges without one get no statuses (the webhook still works).
func (c *config) statusReporters(getenv func(string) string) (map[string]statuses.Poster, error) {
	out := map[string]statuses.Poster{}
	for i, f := range c.Forges {
		if f.TokenEnv == "" && f.TokenFile == "" {
			continue
		}
		tok, err := lookupSecret(getenv, f.TokenEnv, f.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("forges[%d] (%s): token_file: %w", i, f.Kind, err)
		}
		if tok == "" {
			return nil, fmt.Errorf("forges[%d] (%s): no status token in %s; remove token_env/token_file to post no statuses", i, f.Kind, where(f.TokenEnv, f.TokenFile))
		}
		kind := forge.Kind(f.Kind)
		if kind == forge.KindGitHub && f.APIURL != "" {
			kind = forge.KindGHE
		}
		rep, err := forge.New(forge.Options{Kind: kind, BaseURL: f.APIURL, Token: tok})
		if err != nil {
			return nil, fmt.Errorf("forges[%d] (%s): %w", i, f.Kind, err)
		}
		out[f.Kind] = rep
	}
	return out, nil
}

// newStatusWorker returns the mapper to install in the store and the worker,
// or nils when no forge has a status token.
func newStatusWorker(c *config, reporters map[string]statuses.Poster, logger *slog.Logger) (*statuses.Mapper, error) {
	if len(reporters) == 0 {
		return nil, nil
	}
	kinds := make([]string, 0, len(reporters))
	for k := range reporters {
		kinds = append(kinds, k)
	}
	return statuses.NewMapper(statuses.MapperOptions{ContextTemplate: c.Statuses.Context, PublicURL: c.PublicURL, Forges: kinds})
}
