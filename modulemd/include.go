package modulemd

import (
	"cmp"
	"fmt"
	"slices"
)

// Include merges the RPM components of the modules s includes
// (components.modules, given here by key, already read from their
// repositories) into s.Components.RPMs, so that Batches gives MBS's batches:
// components and included modules are ordered by buildorder, rpm components
// before modules of the same buildorder; an included module's components
// follow in batches of their own, in the included module's buildorder, and
// the batch numbering continues after them. To keep that order with plain
// buildorders, every component's buildorder is renumbered to its batch's
// position.
//
// An included component keeps its repository and ref; a component without
// a ref builds the included module's stream (or, when it has none, the ref
// the including module names it at). The inclusion is recorded in
// xmd.rida.included ({key: {repository, ref}}), and components.modules is
// emptied: the components now stand in components.rpms.
//
// Errors name the field: a key with no module given, a component in both
// modules (MBS refuses the same), or buildafter, which cannot be combined
// with included modules.
func Include(s *Stream, included map[string]*Stream) error {
	mods := s.Components.Modules
	if len(mods) == 0 {
		return nil
	}
	if s.Components.RPMs == nil {
		s.Components.RPMs = map[string]*Component{}
	}
	type item struct {
		bo     int64
		key    string
		module bool
	}
	var items []item
	for key, c := range s.Components.RPMs {
		if len(c.BuildAfter) > 0 {
			return fmt.Errorf("modulemd: include: components.rpms.%s.buildafter: buildafter cannot be combined with included modules (components.modules)", key)
		}
		items = append(items, item{c.BuildOrder, key, false})
	}
	for key, m := range mods {
		if m == nil {
			return fmt.Errorf("modulemd: include: components.modules.%s is null", key)
		}
		if included[key] == nil {
			return fmt.Errorf("modulemd: include: components.modules.%s: the included module was not given", key)
		}
		items = append(items, item{m.BuildOrder, key, true})
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := cmp.Compare(a.bo, b.bo); c != 0 {
			return c
		}
		if a.module != b.module {
			if a.module {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.key, b.key)
	})

	merged := map[string]*Component{}
	record := map[string]any{}
	var group int64
	first, prevModule := true, false
	var prevBO int64
	for _, it := range items {
		if !it.module {
			if first || prevModule || it.bo != prevBO {
				group++
			}
			c := s.Components.RPMs[it.key]
			c.BuildOrder = group
			merged[it.key] = c
			first, prevModule, prevBO = false, false, it.bo
			continue
		}
		inc, mc := included[it.key], mods[it.key]
		keys := sortedKeys(inc.Components.RPMs)
		slices.SortStableFunc(keys, func(a, b string) int {
			return cmp.Compare(inc.Components.RPMs[a].BuildOrder, inc.Components.RPMs[b].BuildOrder)
		})
		incFirst := true
		var incPrev int64
		for _, k := range keys {
			ic := inc.Components.RPMs[k]
			if len(ic.BuildAfter) > 0 {
				return fmt.Errorf("modulemd: include: components.modules.%s: its component %s uses buildafter, which cannot be combined with inclusion", it.key, k)
			}
			if _, dup := s.Components.RPMs[k]; dup {
				return fmt.Errorf("modulemd: include: components.modules.%s: component %q is in both modules", it.key, k)
			}
			if _, dup := merged[k]; dup {
				return fmt.Errorf("modulemd: include: components.modules.%s: component %q is also in another included module", it.key, k)
			}
			if incFirst || ic.BuildOrder != incPrev {
				group++
			}
			c := *ic
			c.Key, c.BuildOrder = k, group
			c.Ref = cmp.Or(c.Ref, inc.Stream, mc.Ref)
			merged[k] = &c
			incFirst, incPrev = false, ic.BuildOrder
		}
		record[it.key] = map[string]any{"repository": mc.Repository, "ref": mc.Ref}
		first, prevModule = false, true
	}
	s.Components.RPMs = merged
	s.Components.Modules = nil
	if s.Xmd == nil {
		s.Xmd = map[string]any{}
	}
	rida, _ := s.Xmd["rida"].(map[string]any)
	if rida == nil {
		rida = map[string]any{}
		s.Xmd["rida"] = rida
	}
	rida["included"] = record
	return nil
}
