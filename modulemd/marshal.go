package modulemd

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Marshal returns s as a stream v2 YAML document:
//
//	document: modulemd
//	version: 2
//	data:
//	  ...
//
// Keys are written in libmodulemd's order, map keys sorted, so the output is
// deterministic. Empty fields are left out. Marshal does not validate s; it
// fails only when Xmd or Artifacts.RPMMap holds a value it cannot write
// (anything but nil, strings, booleans, numbers, slices and string-keyed
// maps of those).
func (s *Stream) Marshal() ([]byte, error) {
	doc, err := s.documentNode()
	if err != nil {
		return nil, err
	}
	return encode(doc)
}

// MarshalIndex returns the streams as a multi-document YAML stream, each
// document framed by "---" and "...", as in a repository's modules.yaml.
func MarshalIndex(streams []*Stream) ([]byte, error) {
	var buf bytes.Buffer
	for i, s := range streams {
		b, err := s.Marshal()
		if err != nil {
			return nil, fmt.Errorf("modulemd: stream %d (%s:%s): %w", i, s.Name, s.Stream, err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
		buf.WriteString("...\n")
	}
	return buf.Bytes(), nil
}

func encode(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("modulemd: encoding YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("modulemd: encoding YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// mapNode builds a mapping node in insertion order.
type mapNode struct{ n *yaml.Node }

func newMap() mapNode { return mapNode{&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}} }

func (m mapNode) add(key string, v *yaml.Node) {
	m.n.Content = append(m.n.Content, strNode(key), v)
}

func (m mapNode) str(key, v string) {
	if v != "" {
		m.add(key, strNode(v))
	}
}

func (m mapNode) list(key string, v []string) {
	if len(v) > 0 {
		m.add(key, listNode(v))
	}
}

func (m mapNode) boolean(key string, v bool) {
	if v {
		m.add(key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
	}
}

func (m mapNode) rpms(key string, v []string) {
	if len(v) > 0 {
		r := newMap()
		r.list("rpms", v)
		m.add(key, r.n)
	}
}

func (m mapNode) empty() bool { return len(m.n.Content) == 0 }

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func intNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: s}
}

func listNode(v []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, s := range v {
		n.Content = append(n.Content, strNode(s))
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (s *Stream) documentNode() (*yaml.Node, error) {
	data, err := s.dataNode()
	if err != nil {
		return nil, err
	}
	root := newMap()
	root.add("document", strNode(docModulemd))
	root.add("version", intNode("2"))
	root.add("data", data)
	return &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root.n}}, nil
}

func (s *Stream) dataNode() (*yaml.Node, error) {
	d := newMap()
	d.str("name", s.Name)
	d.str("stream", s.Stream)
	if s.Version != 0 {
		d.add("version", intNode(strconv.FormatUint(s.Version, 10)))
	}
	d.str("context", s.Context)
	d.boolean("static_context", s.StaticContext)
	d.str("arch", s.Arch)
	d.str("summary", s.Summary)
	d.str("description", s.Description)
	if len(s.ServiceLevels) > 0 {
		sl := newMap()
		for _, k := range sortedKeys(s.ServiceLevels) {
			e := newMap()
			e.str("eol", s.ServiceLevels[k].EOL)
			sl.add(k, e.n)
		}
		d.add("servicelevels", sl.n)
	}
	lic := newMap()
	lic.list("module", s.License.Module)
	lic.list("content", s.License.Content)
	if !lic.empty() {
		d.add("license", lic.n)
	}
	if len(s.Xmd) > 0 {
		x, err := anyNode(s.Xmd, "xmd")
		if err != nil {
			return nil, err
		}
		d.add("xmd", x)
	}
	if len(s.Dependencies) > 0 {
		deps := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, dep := range s.Dependencies {
			e := newMap()
			if dep.BuildRequires != nil {
				e.add("buildrequires", streamsNode(dep.BuildRequires))
			}
			if dep.Requires != nil {
				e.add("requires", streamsNode(dep.Requires))
			}
			if e.empty() {
				e.n.Style = yaml.FlowStyle
			}
			deps.Content = append(deps.Content, e.n)
		}
		d.add("dependencies", deps)
	}
	if r := s.References; r != nil {
		e := newMap()
		e.str("community", r.Community)
		e.str("documentation", r.Documentation)
		e.str("tracker", r.Tracker)
		if !e.empty() {
			d.add("references", e.n)
		}
	}
	if len(s.Profiles) > 0 {
		ps := newMap()
		for _, k := range sortedKeys(s.Profiles) {
			p := s.Profiles[k]
			e := newMap()
			e.str("description", p.Description)
			e.list("rpms", p.RPMs)
			e.boolean("default", p.Default)
			if e.empty() {
				e.n.Style = yaml.FlowStyle
			}
			ps.add(k, e.n)
		}
		d.add("profiles", ps.n)
	}
	d.rpms("api", s.API)
	d.rpms("filter", s.Filter)
	d.rpms("demodularized", s.Demodularized)
	if b := s.BuildOpts; b != nil {
		e := newMap()
		r := newMap()
		r.str("macros", b.Macros)
		r.list("whitelist", b.Whitelist)
		if !r.empty() {
			e.add("rpms", r.n)
		}
		if len(b.Arches) > 0 {
			a := listNode(b.Arches)
			a.Style = yaml.FlowStyle
			e.add("arches", a)
		}
		if !e.empty() {
			d.add("buildopts", e.n)
		}
	}
	comps := newMap()
	if len(s.Components.RPMs) > 0 {
		rpms := newMap()
		for _, k := range sortedKeys(s.Components.RPMs) {
			rpms.add(k, componentNode(s.Components.RPMs[k]))
		}
		comps.add("rpms", rpms.n)
	}
	if len(s.Components.Modules) > 0 {
		mods := newMap()
		for _, k := range sortedKeys(s.Components.Modules) {
			m := s.Components.Modules[k]
			e := newMap()
			e.str("rationale", m.Rationale)
			e.str("repository", m.Repository)
			e.str("ref", m.Ref)
			if m.BuildOrder != 0 {
				e.add("buildorder", intNode(strconv.FormatInt(m.BuildOrder, 10)))
			}
			if e.empty() {
				e.n.Style = yaml.FlowStyle
			}
			mods.add(k, e.n)
		}
		comps.add("modules", mods.n)
	}
	if !comps.empty() {
		d.add("components", comps.n)
	}
	arts := newMap()
	arts.list("rpms", s.Artifacts.RPMs)
	if len(s.Artifacts.RPMMap) > 0 {
		x, err := anyNode(s.Artifacts.RPMMap, "artifacts.rpm-map")
		if err != nil {
			return nil, err
		}
		arts.add("rpm-map", x)
	}
	if !arts.empty() {
		d.add("artifacts", arts.n)
	}
	return d.n, nil
}

func streamsNode(m map[string][]string) *yaml.Node {
	e := newMap()
	for _, k := range sortedKeys(m) {
		l := listNode(m[k])
		l.Style = yaml.FlowStyle
		e.add(k, l)
	}
	if e.empty() {
		e.n.Style = yaml.FlowStyle
	}
	return e.n
}

func componentNode(c *Component) *yaml.Node {
	e := newMap()
	e.str("name", c.Name)
	e.str("rationale", c.Rationale)
	e.str("repository", c.Repository)
	e.str("cache", c.Cache)
	e.str("ref", c.Ref)
	e.boolean("buildroot", c.Buildroot)
	e.boolean("srpm-buildroot", c.SRPMBuildroot)
	if c.BuildOrder != 0 {
		e.add("buildorder", intNode(strconv.FormatInt(c.BuildOrder, 10)))
	}
	e.list("buildafter", c.BuildAfter)
	e.boolean("buildonly", c.BuildOnly)
	if len(c.Arches) > 0 {
		a := listNode(c.Arches)
		a.Style = yaml.FlowStyle
		e.add("arches", a)
	}
	if len(c.Multilib) > 0 {
		a := listNode(c.Multilib)
		a.Style = yaml.FlowStyle
		e.add("multilib", a)
	}
	if e.empty() {
		e.n.Style = yaml.FlowStyle
	}
	return e.n
}

// formatFloat writes f so that reading it back yields a float again.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	case math.IsNaN(f):
		return ".nan"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// anyNode converts a free-form value (xmd, rpm-map) to a YAML node.
func anyNode(v any, path string) (*yaml.Node, error) {
	switch t := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	case string:
		return strNode(t), nil
	case bool:
		// libmodulemd reads only TRUE and FALSE as xmd booleans.
		v := "FALSE"
		if t {
			v = "TRUE"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: v}, nil
	case float64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: formatFloat(t)}, nil
	case float32:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: formatFloat(float64(t))}, nil
	case map[string]any:
		m := newMap()
		for _, k := range sortedKeys(t) {
			n, err := anyNode(t[k], join(path, k))
			if err != nil {
				return nil, err
			}
			m.add(k, n)
		}
		return m.n, nil
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i, x := range t {
			c, err := anyNode(x, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		return n, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return intNode(strconv.FormatInt(rv.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return intNode(strconv.FormatUint(rv.Uint(), 10)), nil
	case reflect.String:
		return strNode(rv.String()), nil
	case reflect.Bool:
		return anyNode(rv.Bool(), path)
	case reflect.Slice, reflect.Array:
		items := make([]any, rv.Len())
		for i := range items {
			items[i] = rv.Index(i).Interface()
		}
		return anyNode(items, path)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		m := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			m[iter.Key().String()] = iter.Value().Interface()
		}
		return anyNode(m, path)
	case reflect.Pointer:
		if rv.IsNil() {
			return anyNode(nil, path)
		}
		return anyNode(rv.Elem().Interface(), path)
	}
	return nil, fmt.Errorf("modulemd: %s: cannot write a value of type %T", path, v)
}
