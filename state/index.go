package state

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/rida-build/rida/modgraph"
)

// IndexedComponent is one component a module stream includes, with the ref
// its modulemd names (a branch, usually equal to the stream's branch).
type IndexedComponent struct {
	Name string `json:"name"`
	Ref  string `json:"ref"`
}

// ModuleStream is one module stream that includes a component.
type ModuleStream struct {
	Module     string `json:"module"`
	Stream     string `json:"stream"`
	ModuleRepo string `json:"module_repo"`
}

// indexRecord is the primary record of one module stream's components.
type indexRecord struct {
	ModuleRepo string             `json:"module_repo"`
	Components []IndexedComponent `json:"components"`
	// BuildRequires is what the stream's modulemd buildrequires, platform
	// left out; mirrored into the dependents index.
	BuildRequires []modgraph.Requirement `json:"buildrequires,omitempty"`
}

func moduleIndexKey(module, stream string) []byte {
	return []byte(module + "\x00" + stream)
}

func componentIndexKey(c IndexedComponent, module, stream string) []byte {
	return []byte(c.Name + "\x00" + c.Ref + "\x00" + module + "\x00" + stream)
}

func validateIndexArgs(op string, fields ...[2]string) error {
	for _, f := range fields {
		if f[1] == "" {
			return &ValidationError{Op: op, Field: f[0], Reason: "is required"}
		}
		if strings.ContainsRune(f[1], 0) {
			return &ValidationError{Op: op, Field: f[0], Reason: "must not contain NUL"}
		}
	}
	return nil
}

// SetModuleComponents replaces the component→module index entries of
// module:stream with comps (duplicates ignored). An empty comps removes the
// stream from the index. Lookups see the old or the new set, never a mix.
func (s *Store) SetModuleComponents(ctx context.Context, module, stream, moduleRepo string, comps []IndexedComponent) error {
	if err := validateIndexArgs("SetModuleComponents", [2]string{"module", module}, [2]string{"stream", stream}); err != nil {
		return err
	}
	for i, c := range comps {
		if err := validateIndexArgs("SetModuleComponents",
			[2]string{fmt.Sprintf("comps[%d].Name", i), c.Name}, [2]string{fmt.Sprintf("comps[%d].Ref", i), c.Ref}); err != nil {
			return err
		}
	}
	return wrap("SetModuleComponents", s.update(ctx, "SetModuleComponents", func(tx *bolt.Tx) error {
		return s.setModuleComponents(tx, module, stream, moduleRepo, comps, nil)
	}))
}

// IndexedStream is what the index keeps of one module stream.
type IndexedStream struct {
	Module     string
	Stream     string
	ModuleRepo string
	// Components are the RPM components it builds, its included modules'
	// components among them.
	Components []IndexedComponent
	// BuildRequires is what its modulemd buildrequires, platform left out.
	BuildRequires []modgraph.Requirement
}

// SetModuleStream is SetModuleComponents that also records what the
// stream buildrequires, in the same transaction, in the index of
// dependents (buildrequired module → streams that buildrequire it) that
// cascades and `rida which-modules` read. A stream with no components and
// no buildrequires is removed from both indexes.
func (s *Store) SetModuleStream(ctx context.Context, is IndexedStream) error {
	if err := validateIndexArgs("SetModuleStream", [2]string{"module", is.Module}, [2]string{"stream", is.Stream}); err != nil {
		return err
	}
	for i, c := range is.Components {
		if err := validateIndexArgs("SetModuleStream",
			[2]string{fmt.Sprintf("Components[%d].Name", i), c.Name}, [2]string{fmt.Sprintf("Components[%d].Ref", i), c.Ref}); err != nil {
			return err
		}
	}
	for i, r := range is.BuildRequires {
		if err := validateIndexArgs("SetModuleStream", [2]string{fmt.Sprintf("BuildRequires[%d].Name", i), r.Name}); err != nil {
			return err
		}
	}
	return wrap("SetModuleStream", s.update(ctx, "SetModuleStream", func(tx *bolt.Tx) error {
		return s.setModuleComponents(tx, is.Module, is.Stream, is.ModuleRepo, is.Components, is.BuildRequires)
	}))
}

func (s *Store) setModuleComponents(tx *bolt.Tx, module, stream, moduleRepo string, comps []IndexedComponent, reqs []modgraph.Requirement) error {
	mb, cb := tx.Bucket(bucketIndexModules), tx.Bucket(bucketIndexComponents)
	mk := moduleIndexKey(module, stream)
	var old indexRecord
	if _, err := getJSON(mb, mk, &old); err != nil {
		return err
	}
	for _, c := range old.Components {
		if err := cb.Delete(componentIndexKey(c, module, stream)); err != nil {
			return err
		}
	}
	uniq := slices.Clone(comps)
	slices.SortFunc(uniq, func(a, b IndexedComponent) int {
		return cmpStrings(a.Name+"\x00"+a.Ref, b.Name+"\x00"+b.Ref)
	})
	uniq = slices.Compact(uniq)
	if err := setStreamBuildRequires(tx, module, stream, old.BuildRequires, reqs); err != nil {
		return err
	}
	if len(uniq) == 0 && len(reqs) == 0 {
		if err := mb.Delete(mk); err != nil {
			return err
		}
	} else {
		if err := putJSON(mb, mk, indexRecord{ModuleRepo: moduleRepo, Components: uniq, BuildRequires: reqs}); err != nil {
			return err
		}
		for _, c := range uniq {
			if err := cb.Put(componentIndexKey(c, module, stream), []byte(moduleRepo)); err != nil {
				return err
			}
		}
	}
	return s.appendEvent(tx, EventIndexUpdated, "module/"+RequestKey(module, stream), map[string]any{
		"module_repo": moduleRepo, "components": len(uniq), "previous": len(old.Components),
	})
}

func cmpStrings(a, b string) int { return strings.Compare(a, b) }

// ModulesForComponent returns the module streams whose modulemd includes
// component with exactly ref, sorted by module then stream. It is one prefix
// scan of the secondary index (no record decoding).
func (s *Store) ModulesForComponent(ctx context.Context, component, ref string) ([]ModuleStream, error) {
	if err := validateIndexArgs("ModulesForComponent", [2]string{"component", component}, [2]string{"ref", ref}); err != nil {
		return nil, err
	}
	var out []ModuleStream
	err := s.view(ctx, "ModulesForComponent", func(tx *bolt.Tx) error {
		prefix := []byte(component + "\x00" + ref + "\x00")
		c := tx.Bucket(bucketIndexComponents).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			module, stream, ok := strings.Cut(string(k[len(prefix):]), "\x00")
			if !ok {
				return fmt.Errorf("malformed component index key %q", k)
			}
			out = append(out, ModuleStream{Module: module, Stream: stream, ModuleRepo: string(v)})
		}
		return nil
	})
	return out, wrap("ModulesForComponent", err)
}

// ModuleComponents returns the indexed components of module:stream and its
// module repo (nil, "" if the stream is not indexed).
func (s *Store) ModuleComponents(ctx context.Context, module, stream string) ([]IndexedComponent, string, error) {
	var rec indexRecord
	err := s.view(ctx, "ModuleComponents", func(tx *bolt.Tx) error {
		_, err := getJSON(tx.Bucket(bucketIndexModules), moduleIndexKey(module, stream), &rec)
		return err
	})
	return rec.Components, rec.ModuleRepo, wrap("ModuleComponents", err)
}
