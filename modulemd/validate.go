package modulemd

import (
	"fmt"
	"slices"
	"strings"
)

// maxStaticContext is the longest context allowed with static_context: true
// (libmodulemd's MODULEMD_MODULE_STREAM_V2_MAXCONTEXTLEN).
const maxStaticContext = 13

// FieldError is one rule a stream breaks.
type FieldError struct {
	// Path is the key path inside the data section, e.g.
	// "components.rpms.foo.buildafter".
	Path string
	// Message says what is wrong, e.g. `"bar" is not a component`.
	Message string
}

// Error implements error: "<path>: <message>".
func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// ValidationError lists every rule a stream breaks, in a deterministic order.
type ValidationError struct {
	Errors []FieldError
}

// Error implements error; it joins the field errors with "; ".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Error()
	}
	return "modulemd: invalid stream: " + strings.Join(parts, "; ")
}

// Validate checks the semantic rules of a stream and returns nil or a
// *ValidationError listing every violation.
//
// libmodulemd's rules (modulemd_module_stream_v2_validate):
//   - summary, description and license.module are required;
//   - with static_context, context is 1 to 13 characters of [a-zA-Z0-9_];
//   - a dependency's stream list does not mix "stream" and "-stream";
//   - artifacts.rpms entries are N-E:V-R.A, epoch included;
//   - a component does not have both a non-zero buildorder and buildafter,
//     and a stream does not use both;
//   - buildafter entries are keys of components.rpms;
//   - a component's arches are a subset of buildopts.arches when set.
//
// Rules rida adds, because a build runner needs them:
//   - component keys and name overrides are usable as a path segment (no
//     "/", "..", NUL, whitespace, leading "." or "-");
//   - a component does not build after itself;
//   - buildafter has no cycles (the cycle is reported as a path).
//
// Version is unsigned, so "non-negative" holds by construction; the readers
// reject negative versions.
func (s *Stream) Validate() error {
	var v validator
	if s.Summary == "" {
		v.add("summary", "is required")
	}
	if s.Description == "" {
		v.add("description", "is required")
	}
	if len(s.License.Module) == 0 {
		v.add("license.module", "is required")
	}
	if s.StaticContext {
		switch {
		case s.Context == "":
			v.add("context", "is required with static_context")
		case len(s.Context) > maxStaticContext:
			v.add("context", fmt.Sprintf("%q is longer than %d characters", s.Context, maxStaticContext))
		case !isContextChars(s.Context):
			v.add("context", fmt.Sprintf("%q may only contain [a-zA-Z0-9_]", s.Context))
		}
	}
	for i, d := range s.Dependencies {
		for _, kind := range []struct {
			name string
			m    map[string][]string
		}{{"buildrequires", d.BuildRequires}, {"requires", d.Requires}} {
			for _, mod := range sortedKeys(kind.m) {
				var pos, neg bool
				for _, st := range kind.m[mod] {
					if strings.HasPrefix(st, "-") {
						neg = true
					} else {
						pos = true
					}
				}
				if pos && neg {
					v.add(fmt.Sprintf("dependencies[%d].%s.%s", i, kind.name, mod), "mixes included and excluded (-) streams")
				}
			}
		}
	}
	for i, a := range s.Artifacts.RPMs {
		if !isNEVRA(a) {
			v.add(fmt.Sprintf("artifacts.rpms[%d]", i), fmt.Sprintf("%q is not in N-E:V-R.A form", a))
		}
	}
	v.components(s)
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: v.errs}
}

type validator struct {
	errs []FieldError
}

func (v *validator) add(path, msg string) {
	v.errs = append(v.errs, FieldError{Path: path, Message: msg})
}

func (v *validator) components(s *Stream) {
	rpms := s.Components.RPMs
	keys := sortedKeys(rpms)
	var orderUsers, afterUsers []string
	var buildArches []string
	if s.BuildOpts != nil {
		buildArches = s.BuildOpts.Arches
	}
	for _, k := range keys {
		c := rpms[k]
		p := "components.rpms." + k
		if msg := checkName(k); msg != "" {
			v.add(p, "component key "+msg)
		}
		if c == nil {
			v.add(p, "is null")
			continue
		}
		if c.Key != "" && c.Key != k {
			v.add(p, fmt.Sprintf("Key field %q differs from the map key", c.Key))
		}
		if c.Name != "" {
			if msg := checkName(c.Name); msg != "" {
				v.add(p+".name", "package name "+msg)
			}
		}
		if c.BuildOrder != 0 {
			orderUsers = append(orderUsers, k)
		}
		if len(c.BuildAfter) > 0 {
			afterUsers = append(afterUsers, k)
			if c.BuildOrder != 0 {
				v.add(p, "cannot mix buildorder and buildafter in one component")
			}
		}
		for _, dep := range c.BuildAfter {
			switch _, ok := rpms[dep]; {
			case dep == k:
				v.add(p+".buildafter", fmt.Sprintf("%q refers to the component itself", dep))
			case !ok:
				v.add(p+".buildafter", fmt.Sprintf("%q is not a component", dep))
			}
		}
		if len(buildArches) > 0 {
			for _, a := range c.Arches {
				if !slices.Contains(buildArches, a) {
					v.add(p+".arches", fmt.Sprintf("%q is not in buildopts.arches", a))
				}
			}
		}
	}
	for _, k := range sortedKeys(s.Components.Modules) {
		if msg := checkName(k); msg != "" {
			v.add("components.modules."+k, "component key "+msg)
		}
	}
	if len(orderUsers) > 0 && len(afterUsers) > 0 {
		v.add("components.rpms", fmt.Sprintf("cannot mix buildorder (%s) and buildafter (%s) in one stream",
			strings.Join(orderUsers, ", "), strings.Join(afterUsers, ", ")))
	}
	for _, cyc := range buildAfterCycles(rpms) {
		v.add("components.rpms."+cyc[0]+".buildafter", "buildafter cycle: "+strings.Join(cyc, " -> "))
	}
}

// buildAfterCycles returns the buildafter cycles of length two or more, each
// as a path starting and ending with the same key, found by a depth-first
// search in sorted key order. Self-references and unknown keys are ignored
// (Validate reports them separately). Every component on a cycle makes the
// graph unorderable; one path per back edge is reported.
func buildAfterCycles(rpms map[string]*Component) [][]string {
	const (
		white = iota
		grey
		black
	)
	color := make(map[string]int, len(rpms))
	var stack []string
	var cycles [][]string
	var visit func(k string)
	visit = func(k string) {
		color[k] = grey
		stack = append(stack, k)
		deps := slices.Clone(rpms[k].BuildAfter)
		slices.Sort(deps)
		deps = slices.Compact(deps)
		for _, d := range deps {
			if d == k {
				continue
			}
			if c, ok := rpms[d]; !ok || c == nil {
				continue
			}
			switch color[d] {
			case white:
				visit(d)
			case grey:
				i := slices.Index(stack, d)
				cyc := append(slices.Clone(stack[i:]), d)
				cycles = append(cycles, cyc)
			}
		}
		stack = stack[:len(stack)-1]
		color[k] = black
	}
	for _, k := range sortedKeys(rpms) {
		if rpms[k] != nil && color[k] == white {
			visit(k)
		}
	}
	return cycles
}

func isContextChars(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// isNEVRA reports whether s is name-epoch:version-release.arch with every
// part non-empty and a numeric epoch.
func isNEVRA(s string) bool {
	dot := strings.LastIndexByte(s, '.')
	if dot <= 0 || dot == len(s)-1 {
		return false
	}
	nevr := s[:dot]
	dash := strings.LastIndexByte(nevr, '-')
	if dash <= 0 || dash == len(nevr)-1 {
		return false
	}
	nev := nevr[:dash]
	dash = strings.LastIndexByte(nev, '-')
	if dash <= 0 {
		return false
	}
	ev := nev[dash+1:]
	colon := strings.IndexByte(ev, ':')
	if colon <= 0 || colon == len(ev)-1 {
		return false
	}
	for _, r := range ev[:colon] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
