package runner

import (
	"errors"
	"fmt"

	"github.com/rida-build/rida/modulemd"
)

// PlanOptions configures Plan.
type PlanOptions struct {
	// ID is the build's id, the <index> of the dist tag.
	ID int64
	// Marking is the dist tag marking: the base module's
	// xmd.mbs.disttag_marking, else its stream (e.g. "el9").
	Marking string
	// SRPMs maps a package name to the source RPM its components are
	// built from instead of their repository (Component.SRPM); such a
	// component needs no resolved commit.
	SRPMs map[string]string
}

// Plan turns an enriched, valid stream into a Build: its NSVC, its dist tag
// and its batches, with module-build-macros alone in batch 1 and each
// component's resolved commit taken from xmd.mbs.rpms.<key>.ref (where
// modulemd.Enrich records it).
func Plan(s *modulemd.Stream, opts PlanOptions) (*Build, error) {
	if s.Name == "" || s.Stream == "" || s.Version == 0 || s.Context == "" {
		return nil, fmt.Errorf("runner: plan: stream is not enriched (NSVC %q)", modulemd.NSVC(s.Name, s.Stream, s.Version, s.Context))
	}
	if opts.Marking == "" {
		return nil, errors.New("runner: plan: PlanOptions.Marking is required")
	}
	batches, err := modulemd.Batches(s)
	if err != nil {
		return nil, fmt.Errorf("runner: plan %s: %w", s.Name, err)
	}
	b := &Build{
		ID: opts.ID, Name: s.Name, Stream: s.Stream, Version: s.Version, Context: s.Context,
		DistTag:  modulemd.DistTag(s.Name, s.Stream, s.Version, s.Context, opts.Marking, opts.ID),
		Marking:  opts.Marking,
		Modulemd: s,
	}
	b.Batches = append(b.Batches, &Batch{Number: 1, Components: []*Component{{
		Key: MacrosComponent, Package: MacrosComponent, Batch: 1, State: ComponentQueued,
	}}})
	for _, mb := range batches {
		batch := &Batch{Number: mb.Number}
		for _, key := range mb.Components {
			c := s.Components.RPMs[key]
			if c == nil {
				return nil, fmt.Errorf("runner: plan %s: batch %d names unknown component %q", s.Name, mb.Number, key)
			}
			commit, srpm := resolvedRef(s, key), opts.SRPMs[c.PackageName()]
			if commit == "" && srpm == "" {
				return nil, fmt.Errorf("runner: plan %s: components.rpms.%s: ref %q was not resolved to a commit", s.Name, key, c.Ref)
			}
			if srpm != "" {
				commit = ""
			}
			batch.Components = append(batch.Components, &Component{
				Key: key, Package: c.PackageName(), Repository: c.Repository, Cache: c.Cache,
				Ref: c.Ref, Commit: commit, SRPM: srpm, Batch: mb.Number, State: ComponentQueued,
			})
		}
		b.Batches = append(b.Batches, batch)
	}
	return b, nil
}

// resolvedRef reads xmd.mbs.rpms.<key>.ref.
func resolvedRef(s *modulemd.Stream, key string) string {
	mbs, _ := s.Xmd["mbs"].(map[string]any)
	rpms, _ := mbs["rpms"].(map[string]any)
	c, _ := rpms[key].(map[string]any)
	ref, _ := c["ref"].(string)
	return ref
}
