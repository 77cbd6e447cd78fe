package modulemd

import (
	"fmt"
	"maps"
	"slices"

	"gopkg.in/yaml.v3"
)

// DefaultPackagerLicense is the module license a packager v3 document gets
// when it lists none (libmodulemd's MMD_PACKAGER_DEFAULT_MODULE_LICENSE).
const DefaultPackagerLicense = "MIT"

// maxBuildConfigContext is the longest context a packager v3 configuration
// may have (libmodulemd's MMD_MAXCONTEXTLEN).
const maxBuildConfigContext = 10

// buildConfig is one entry of a packager v3 document's configurations.
type buildConfig struct {
	context       string
	platform      string
	buildRequires map[string]string
	requires      map[string]string
	buildOpts     *BuildOpts
}

// packagerV3 reads the data section of a packager v3 document and converts it
// to one stream per configuration.
func (w *walker) packagerV3(data *yaml.Node) ([]*Stream, error) {
	tmpl := &Stream{}
	var configs []buildConfig
	var configsNode *yaml.Node
	err := w.mapping(data, "", func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "name":
			tmpl.Name, err = w.str(v, key)
		case "stream":
			tmpl.Stream, err = w.str(v, key)
		case "summary":
			tmpl.Summary, err = w.str(v, key)
		case "description":
			tmpl.Description, err = w.str(v, key)
		case "license":
			tmpl.License.Module, err = w.list(v, key, false)
		case "xmd":
			tmpl.Xmd, err = w.freeFormMap(v, key)
		case "configurations":
			configsNode = v
			configs, err = w.buildConfigs(v, key)
		case "references":
			tmpl.References, err = w.references(v, key)
		case "profiles":
			tmpl.Profiles, err = w.profiles(v, key)
		case "api":
			tmpl.API, err = w.rpmsList(v, key)
		case "filter":
			tmpl.Filter, err = w.rpmsList(v, key)
		case "demodularized":
			tmpl.Demodularized, err = w.rpmsList(v, key)
		case "components":
			err = w.components(v, key, &tmpl.Components)
		default:
			err = w.unknown(k, key)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(configs) == 0 {
		n := configsNode
		if n == nil {
			n = data
		}
		return nil, w.errf(n, "configurations", "at least one build configuration is required")
	}
	if len(tmpl.License.Module) == 0 {
		tmpl.License.Module = []string{DefaultPackagerLicense}
	}
	for _, p := range tmpl.Profiles {
		p.Default = false
	}
	out := make([]*Stream, 0, len(configs))
	for _, bc := range configs {
		s := tmpl.Clone()
		s.Context = bc.context
		br := map[string][]string{"platform": {bc.platform}}
		for m, st := range bc.buildRequires {
			br[m] = []string{st}
		}
		rq := map[string][]string{"platform": {bc.platform}}
		for m, st := range bc.requires {
			rq[m] = []string{st}
		}
		s.Dependencies = []Dependencies{{BuildRequires: br, Requires: rq}}
		s.BuildOpts = bc.buildOpts.clone()
		out = append(out, s)
	}
	return out, nil
}

func (w *walker) buildConfigs(n *yaml.Node, path string) ([]buildConfig, error) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, w.errf(n, path, "expected a list")
	}
	var out []buildConfig
	seen := map[string]bool{}
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		var bc buildConfig
		err := w.mapping(item, p, func(key string, k, v *yaml.Node) error {
			var err error
			switch key {
			case "context":
				bc.context, err = w.str(v, join(p, key))
			case "platform":
				bc.platform, err = w.str(v, join(p, key))
			case "buildrequires":
				bc.buildRequires, err = w.singleStreams(v, join(p, key))
			case "requires":
				bc.requires, err = w.singleStreams(v, join(p, key))
			case "buildopts":
				bc.buildOpts, err = w.buildOpts(v, join(p, key))
			default:
				err = w.unknown(k, join(p, key))
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		switch {
		case bc.context == "":
			return nil, w.errf(item, join(p, "context"), "missing or empty")
		case len(bc.context) > maxBuildConfigContext:
			return nil, w.errf(item, join(p, "context"), "%q is longer than %d characters", bc.context, maxBuildConfigContext)
		case !isAlnum(bc.context):
			return nil, w.errf(item, join(p, "context"), "%q may only contain [a-zA-Z0-9]", bc.context)
		case seen[bc.context]:
			return nil, w.errf(item, join(p, "context"), "duplicate context %q", bc.context)
		case bc.platform == "":
			return nil, w.errf(item, join(p, "platform"), "missing or empty")
		}
		seen[bc.context] = true
		out = append(out, bc)
	}
	return out, nil
}

// singleStreams reads {module: stream} or {module: [stream]}: packager v3
// configurations pin every dependency to one stream.
func (w *walker) singleStreams(n *yaml.Node, path string) (map[string]string, error) {
	var out map[string]string
	err := w.mapping(n, path, func(mod string, _, v *yaml.Node) error {
		p := join(path, mod)
		var st string
		if v.Kind == yaml.SequenceNode {
			l, err := w.list(v, p, false)
			if err != nil {
				return err
			}
			if len(l) != 1 {
				return w.errf(v, p, "must specify a single stream, found %d", len(l))
			}
			st = l[0]
		} else {
			var err error
			if st, err = w.str(v, p); err != nil {
				return err
			}
			if st == "" {
				return w.errf(v, p, "must specify a single stream")
			}
		}
		if out == nil {
			out = map[string]string{}
		}
		out[mod] = st
		return nil
	})
	return out, err
}

func isAlnum(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// Clone returns a deep copy of s: no map, slice or pointer is shared.
func (s *Stream) Clone() *Stream {
	if s == nil {
		return nil
	}
	c := *s
	if s.ServiceLevels != nil {
		c.ServiceLevels = maps.Clone(s.ServiceLevels)
	}
	c.License = License{Module: slices.Clone(s.License.Module), Content: slices.Clone(s.License.Content)}
	c.Xmd = cloneMap(s.Xmd)
	if s.Dependencies != nil {
		c.Dependencies = make([]Dependencies, len(s.Dependencies))
		for i, d := range s.Dependencies {
			c.Dependencies[i] = Dependencies{BuildRequires: cloneStreams(d.BuildRequires), Requires: cloneStreams(d.Requires)}
		}
	}
	if s.References != nil {
		r := *s.References
		c.References = &r
	}
	if s.Profiles != nil {
		c.Profiles = make(map[string]*Profile, len(s.Profiles))
		for k, p := range s.Profiles {
			np := *p
			np.RPMs = slices.Clone(p.RPMs)
			c.Profiles[k] = &np
		}
	}
	c.API = slices.Clone(s.API)
	c.Filter = slices.Clone(s.Filter)
	c.Demodularized = slices.Clone(s.Demodularized)
	c.BuildOpts = s.BuildOpts.clone()
	if s.Components.RPMs != nil {
		c.Components.RPMs = make(map[string]*Component, len(s.Components.RPMs))
		for k, comp := range s.Components.RPMs {
			nc := *comp
			nc.BuildAfter = slices.Clone(comp.BuildAfter)
			nc.Arches = slices.Clone(comp.Arches)
			nc.Multilib = slices.Clone(comp.Multilib)
			c.Components.RPMs[k] = &nc
		}
	}
	if s.Components.Modules != nil {
		c.Components.Modules = make(map[string]*ModuleComponent, len(s.Components.Modules))
		for k, m := range s.Components.Modules {
			nm := *m
			c.Components.Modules[k] = &nm
		}
	}
	c.Artifacts = Artifacts{RPMs: slices.Clone(s.Artifacts.RPMs), RPMMap: cloneMap(s.Artifacts.RPMMap)}
	return &c
}

func (b *BuildOpts) clone() *BuildOpts {
	if b == nil {
		return nil
	}
	c := *b
	c.Whitelist = slices.Clone(b.Whitelist)
	c.Arches = slices.Clone(b.Arches)
	return &c
}

func cloneStreams(m map[string][]string) map[string][]string {
	if m == nil {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		if v == nil {
			v = []string{}
		}
		out[k] = append(make([]string, 0, len(v)), v...)
	}
	return out
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return cloneAny(m).(map[string]any)
}

func cloneAny(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = cloneAny(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = cloneAny(x)
		}
		return out
	case []string:
		return slices.Clone(t)
	case map[string]string:
		return maps.Clone(t)
	}
	return v
}
