package kojitest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rida-build/rida/koji/internal/wire"
)

// The hub's _listapi answer and its ParameterError texts, recorded from a
// stock Koji 1.35.3 hub (see /work/shared/reference/koji-listapi.md).
//
//go:embed api/koji-listapi.json
var listAPIJSON []byte

//go:embed api/koji-listapi-argerrors.json
var argErrorsJSON []byte

// signature is one hub method's Python signature.
type signature struct {
	method   string
	pyName   string // Python function name as TypeError prints it
	self     bool   // bound method: Python counts self
	args     []string
	defaults []any // aligned to the end of args
	varargs  string
	varkw    string
}

type apiEntry struct {
	Name    string `json:"name"`
	Argspec []any  `json:"argspec"`
}

// loadSignatures parses the embedded API description.
func loadSignatures() (map[string]*signature, error) {
	var entries []apiEntry
	if err := json.Unmarshal(listAPIJSON, &entries); err != nil {
		return nil, fmt.Errorf("kojitest: listapi: %w", err)
	}
	var argErrs map[string]struct {
		FaultString string `json:"faultString"`
	}
	if err := json.Unmarshal(argErrorsJSON, &argErrs); err != nil {
		return nil, fmt.Errorf("kojitest: argerrors: %w", err)
	}
	out := make(map[string]*signature, len(entries))
	for _, e := range entries {
		if len(e.Argspec) < 4 {
			return nil, fmt.Errorf("kojitest: listapi: %s: short argspec", e.Name)
		}
		s := &signature{method: e.Name, pyName: e.Name}
		for _, a := range e.Argspec[0].([]any) {
			s.args = append(s.args, a.(string))
		}
		s.varargs, _ = e.Argspec[1].(string)
		s.varkw, _ = e.Argspec[2].(string)
		if d, ok := e.Argspec[3].([]any); ok {
			s.defaults = d
		}
		if ae, ok := argErrs[e.Name]; ok {
			if name, _, ok := strings.Cut(ae.FaultString, "() "); ok {
				s.pyName = name
				s.self = strings.Contains(name, ".")
			}
		}
		out[e.Name] = s
	}
	return out, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func paramError(format string, a ...any) *wire.Fault {
	return &wire.Fault{Code: 1019, String: fmt.Sprintf(format, a...)}
}

// bind matches positional params and keyword arguments against the
// signature as Python does, and returns every parameter by name (defaults
// filled in; *args under the varargs name as []any, **kwargs under the varkw
// name as map[string]any).
func (s *signature) bind(pos []any, kw map[string]any) (map[string]any, *wire.Fault) {
	self := 0
	if s.self {
		self = 1
	}
	out := make(map[string]any, len(s.args)+2)
	if len(pos) > len(s.args) && s.varargs == "" {
		total := len(s.args) + self
		required := len(s.args) - len(s.defaults) + self
		given := len(pos) + self
		if len(s.defaults) > 0 {
			return nil, paramError("%s() takes from %d to %d positional arguments but %d %s given",
				s.pyName, required, total, given, plural(given, "was", "were"))
		}
		return nil, paramError("%s() takes %d positional %s but %d %s given",
			s.pyName, total, plural(total, "argument", "arguments"), given, plural(given, "was", "were"))
	}
	for i, v := range pos {
		if i < len(s.args) {
			out[s.args[i]] = v
		}
	}
	if s.varargs != "" {
		extra := []any{}
		if len(pos) > len(s.args) {
			extra = append(extra, pos[len(s.args):]...)
		}
		out[s.varargs] = extra
	}
	var rest map[string]any
	if s.varkw != "" {
		rest = map[string]any{}
		out[s.varkw] = rest
	}
	for _, k := range sortedKeys(kw) {
		known := false
		for _, a := range s.args {
			if a == k {
				known = true
				break
			}
		}
		switch {
		case known:
			if _, dup := out[k]; dup {
				return nil, paramError("%s() got multiple values for argument '%s'", s.pyName, k)
			}
			out[k] = kw[k]
		case rest != nil:
			rest[k] = kw[k]
		default:
			return nil, paramError("%s() got an unexpected keyword argument '%s'", s.pyName, k)
		}
	}
	firstDefault := len(s.args) - len(s.defaults)
	var missing []string
	for i, a := range s.args {
		if _, ok := out[a]; ok {
			continue
		}
		if i >= firstDefault {
			out[a] = s.defaults[i-firstDefault]
			continue
		}
		missing = append(missing, "'"+a+"'")
	}
	if len(missing) > 0 {
		var names string
		switch len(missing) {
		case 1:
			names = missing[0]
		case 2:
			names = missing[0] + " and " + missing[1]
		default:
			names = strings.Join(missing[:len(missing)-1], ", ") + ", and " + missing[len(missing)-1]
		}
		return nil, paramError("%s() missing %d required positional %s: %s",
			s.pyName, len(missing), plural(len(missing), "argument", "arguments"), names)
	}
	return out, nil
}
