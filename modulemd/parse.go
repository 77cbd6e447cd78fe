package modulemd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// MaxDocumentSize is the largest input, in bytes, that Parse and ParseIndex
// accept. The biggest real-world index in the libmodulemd corpus (Fedora 29
// updates) is about 640 KiB.
const MaxDocumentSize = 8 << 20

// maxFreeFormDepth bounds the nesting of free-form sections (xmd, rpm-map).
const maxFreeFormDepth = 64

// Document types and versions, as written in the `document:` and `version:`
// keys.
const (
	docModulemd     = "modulemd"
	docPackager     = "modulemd-packager"
	docDefaults     = "modulemd-defaults"
	docObsoletes    = "modulemd-obsoletes"
	docTranslations = "modulemd-translations"
)

// ParseError reports input that cannot be read as modulemd.
type ParseError struct {
	// Doc is the 1-based number of the YAML document in the input, or 0
	// when the error is about the input as a whole.
	Doc int
	// Path is the key path inside the data section, e.g.
	// "components.rpms.foo.ref", or empty for the document envelope.
	Path string
	// Line and Column locate the offending node (1-based); 0 when unknown.
	Line, Column int
	// Msg says what is wrong.
	Msg string
}

// Error implements error.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("modulemd: ")
	if e.Doc > 0 {
		fmt.Fprintf(&b, "document %d: ", e.Doc)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d col %d: ", e.Line, e.Column)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Parse reads a module's source file: exactly one stream v2, packager v2 or
// packager v3 document. It returns one stream, except for packager v3, which
// yields one stream per configuration (in document order) with Context set
// to the configuration's context, Dependencies set to one entry holding the
// configuration's buildrequires and requires plus platform:[<platform>],
// BuildOpts set to the configuration's buildopts, License.Module defaulting
// to MIT, and Profile.Default dropped (libmodulemd turns it into a defaults
// document).
//
// Parse checks structure and types only; call Validate on each stream for
// the semantic rules. Errors are *ParseError.
func Parse(data []byte) ([]*Stream, error) {
	docs, err := decodeDocuments(data)
	if err != nil {
		return nil, err
	}
	switch len(docs) {
	case 0:
		return nil, &ParseError{Msg: "no YAML document found"}
	case 1:
	default:
		return nil, &ParseError{Msg: fmt.Sprintf("a module source file holds exactly one document, found %d", len(docs))}
	}
	w := &walker{doc: 1}
	kind, version, body, err := w.envelope(docs[0])
	if err != nil {
		return nil, err
	}
	switch {
	case kind == docModulemd && version == 2:
		s, err := w.streamV2(body, modeStreamV2)
		if err != nil {
			return nil, err
		}
		return []*Stream{s}, nil
	case kind == docPackager && version == 2:
		s, err := w.streamV2(body, modePackagerV2)
		if err != nil {
			return nil, err
		}
		return []*Stream{s}, nil
	case kind == docPackager && version == 3:
		return w.packagerV3(body)
	case kind == docModulemd && version == 1:
		return nil, w.errf(docs[0], "", "modulemd stream v1 is not accepted as a source file; use stream v2 or modulemd-packager v3")
	default:
		return nil, w.errf(docs[0], "", "document %q version %d is not a module source document", kind, version)
	}
}

// ParseIndex reads a multi-document YAML stream (for example a repository's
// modules.yaml) the way `modulemd-validator` reads files without --type:
// strictly, with stream v1 documents converted to v2 and stream names
// optional. Defaults, obsoletes and translations (version 1) documents are
// checked minimally (envelope, data is a mapping, required keys present) and
// not returned. Packager documents are rejected, as libmodulemd's index
// loader does. Empty input yields no streams and no error.
//
// ParseIndex checks structure and types only; call Validate on each stream
// for the semantic rules. Errors are *ParseError.
func ParseIndex(data []byte) ([]*Stream, error) {
	docs, err := decodeDocuments(data)
	if err != nil {
		return nil, err
	}
	var out []*Stream
	for i, d := range docs {
		w := &walker{doc: i + 1}
		kind, version, body, err := w.envelope(d)
		if err != nil {
			return nil, err
		}
		switch {
		case kind == docModulemd && version == 1:
			s, err := w.streamV2(body, modeStreamV1)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		case kind == docModulemd && version == 2:
			s, err := w.streamV2(body, modeStreamV2)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		case kind == docPackager:
			return nil, w.errf(d, "", "modulemd-packager documents are not allowed in an index")
		case kind == docDefaults && version == 1:
			if err := w.otherDoc(body, "module"); err != nil {
				return nil, err
			}
		case kind == docObsoletes && version == 1:
			if err := w.otherDoc(body, "module", "stream", "modified", "message"); err != nil {
				return nil, err
			}
		case kind == docTranslations && version == 1:
			if err := w.otherDoc(body, "module", "stream", "modified"); err != nil {
				return nil, err
			}
		default:
			return nil, w.errf(d, "", "unsupported document %q version %d", kind, version)
		}
	}
	return out, nil
}

// decodeDocuments checks the raw input and splits it into YAML documents.
// Decoding into yaml.Node never expands aliases; the walker rejects them.
func decodeDocuments(data []byte) ([]*yaml.Node, error) {
	if len(data) > MaxDocumentSize {
		return nil, &ParseError{Msg: fmt.Sprintf("input is %d bytes, more than the limit of %d", len(data), MaxDocumentSize)}
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return nil, &ParseError{Msg: fmt.Sprintf("input is not valid UTF-8 (first bad byte at offset %d)", off)}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, &ParseError{Msg: fmt.Sprintf("input contains a NUL byte at offset %d", i)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		n := new(yaml.Node)
		err := dec.Decode(n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, &ParseError{Doc: len(docs) + 1, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		docs = append(docs, n)
	}
}

// streamMode says which flavour of the stream v2 data section is read.
type streamMode int

const (
	modeStreamV2 streamMode = iota
	modePackagerV2
	modeStreamV1
)

// walker reads yaml.Node trees with paths and positions in its errors.
type walker struct {
	doc int
}

func (w *walker) errf(n *yaml.Node, path, format string, args ...any) error {
	e := &ParseError{Doc: w.doc, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// check rejects aliases and merge keys, the YAML features that let a small
// document describe a huge one.
func (w *walker) check(n *yaml.Node, path string) error {
	if n.Kind == yaml.AliasNode {
		return w.errf(n, path, "YAML aliases are not allowed")
	}
	return nil
}

// mapping calls fn for each key of a mapping node, in document order. A null
// node is an empty mapping.
func (w *walker) mapping(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node) error) error {
	if err := w.check(n, path); err != nil {
		return err
	}
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return w.errf(n, path, "expected a mapping")
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if err := w.check(k, path); err != nil {
			return err
		}
		if k.Kind != yaml.ScalarNode {
			return w.errf(k, path, "mapping keys must be scalars")
		}
		if k.ShortTag() == "!!merge" {
			return w.errf(k, path, "YAML merge keys are not allowed")
		}
		if seen[k.Value] {
			return w.errf(k, join(path, k.Value), "duplicate key")
		}
		seen[k.Value] = true
		if err := w.check(v, join(path, k.Value)); err != nil {
			return err
		}
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) unknown(k *yaml.Node, path string) error {
	return w.errf(k, path, "unknown key")
}

// str reads a scalar as a string; any scalar type is accepted (`stream: 8`
// is "8"), null is "".
func (w *walker) str(n *yaml.Node, path string) (string, error) {
	if err := w.check(n, path); err != nil {
		return "", err
	}
	if n.Kind != yaml.ScalarNode {
		return "", w.errf(n, path, "expected a scalar")
	}
	if isNull(n) {
		return "", nil
	}
	return n.Value, nil
}

func (w *walker) boolean(n *yaml.Node, path string) (bool, error) {
	v, err := w.str(n, path)
	if err != nil {
		return false, err
	}
	switch v {
	case "true":
		return true, nil
	case "false", "":
		return false, nil
	}
	return false, w.errf(n, path, "boolean value %q is neither true nor false", v)
}

func (w *walker) uint(n *yaml.Node, path string) (uint64, error) {
	v, err := w.str(n, path)
	if err != nil {
		return 0, err
	}
	if strings.HasPrefix(v, "-") {
		return 0, w.errf(n, path, "%q is negative", v)
	}
	u, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, w.errf(n, path, "%q is not an unsigned 64-bit integer", v)
	}
	return u, nil
}

func (w *walker) int(n *yaml.Node, path string) (int64, error) {
	v, err := w.str(n, path)
	if err != nil {
		return 0, err
	}
	i, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, w.errf(n, path, "%q is not a 64-bit integer", v)
	}
	return i, nil
}

// list reads a sequence of scalars; null is an empty list. When keepEmpty is
// false an empty list is returned as nil.
func (w *walker) list(n *yaml.Node, path string, keepEmpty bool) ([]string, error) {
	if err := w.check(n, path); err != nil {
		return nil, err
	}
	if isNull(n) {
		if keepEmpty {
			return []string{}, nil
		}
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, w.errf(n, path, "expected a list")
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		s, err := w.str(item, p)
		if err != nil {
			return nil, err
		}
		if isNull(item) || s == "" {
			return nil, w.errf(item, p, "empty list item")
		}
		out = append(out, s)
	}
	if len(out) == 0 && !keepEmpty {
		return nil, nil
	}
	return out, nil
}

// rpmsList reads a `{rpms: [...]}` mapping (api, filter, demodularized).
func (w *walker) rpmsList(n *yaml.Node, path string) ([]string, error) {
	var out []string
	err := w.mapping(n, path, func(key string, k, v *yaml.Node) error {
		if key != "rpms" {
			return w.unknown(k, join(path, key))
		}
		var err error
		out, err = w.list(v, join(path, key), false)
		return err
	})
	return out, err
}

// freeForm converts a free-form node (xmd, rpm-map) to Go values.
func (w *walker) freeForm(n *yaml.Node, path string, depth int) (any, error) {
	if err := w.check(n, path); err != nil {
		return nil, err
	}
	if depth > maxFreeFormDepth {
		return nil, w.errf(n, path, "nested more than %d levels deep", maxFreeFormDepth)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool", "!!int", "!!float":
			// Keep the value typed only when writing it back gives the
			// same text; "00000000" or "1.10" stay strings.
			var v any
			if err := n.Decode(&v); err != nil {
				return nil, w.errf(n, path, "bad scalar: %v", err)
			}
			var canon string
			switch t := v.(type) {
			case bool:
				return t, nil
			case int:
				canon = strconv.Itoa(t)
			case uint64:
				canon = strconv.FormatUint(t, 10)
			case float64:
				canon = formatFloat(t)
			}
			if canon != n.Value {
				return n.Value, nil
			}
			return v, nil
		default:
			return n.Value, nil
		}
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			v, err := w.freeForm(item, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		err := w.mapping(n, path, func(key string, k, v *yaml.Node) error {
			val, err := w.freeForm(v, join(path, key), depth+1)
			if err != nil {
				return err
			}
			out[key] = val
			return nil
		})
		return out, err
	}
	return nil, w.errf(n, path, "unsupported YAML node")
}

// freeFormMap reads a free-form section that must be a mapping.
func (w *walker) freeFormMap(n *yaml.Node, path string) (map[string]any, error) {
	if err := w.check(n, path); err != nil {
		return nil, err
	}
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, w.errf(n, path, "expected a mapping")
	}
	v, err := w.freeForm(n, path, 0)
	if err != nil {
		return nil, err
	}
	m := v.(map[string]any)
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// envelope reads the document/version/data root mapping.
func (w *walker) envelope(doc *yaml.Node) (kind string, version uint64, data *yaml.Node, err error) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return "", 0, nil, w.errf(doc, "", "empty document")
	}
	root := doc.Content[0]
	if err := w.check(root, ""); err != nil {
		return "", 0, nil, err
	}
	if root.Kind != yaml.MappingNode {
		return "", 0, nil, w.errf(root, "", "document is not a mapping")
	}
	hasDocument := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "document" {
			hasDocument = true
		}
	}
	if !hasDocument {
		return "", 0, nil, w.errf(root, "", "no document type specified (missing `document:`; a fragment is not a document)")
	}
	var haveVersion bool
	err = w.mapping(root, "", func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "document":
			kind, err = w.str(v, "")
			if err == nil && kind == "" {
				err = w.errf(v, "", "empty document type")
			}
		case "version":
			version, err = w.uint(v, "")
			haveVersion = true
		case "data":
			data = v
		default:
			err = w.errf(k, "", "unknown key %q in document root", key)
		}
		return err
	})
	switch {
	case err != nil:
		return "", 0, nil, err
	case kind == "":
		return "", 0, nil, w.errf(root, "", "no document type specified (missing `document:`)")
	case !haveVersion:
		return "", 0, nil, w.errf(root, "", "no document version specified (missing `version:`)")
	case data == nil:
		return "", 0, nil, w.errf(root, "", "no data section provided")
	case data.Kind != yaml.MappingNode:
		return "", 0, nil, w.errf(data, "", "data section is not a mapping")
	}
	return kind, version, data, nil
}

// otherDoc checks a defaults, obsoletes or translations document minimally:
// the data section is a strict mapping holding the required keys.
func (w *walker) otherDoc(data *yaml.Node, required ...string) error {
	seen := map[string]bool{}
	err := w.mapping(data, "", func(key string, k, v *yaml.Node) error {
		seen[key] = true
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range required {
		if !seen[r] {
			return w.errf(data, r, "missing")
		}
	}
	return nil
}

// checkName rejects component keys and names that could escape a directory
// or confuse a command line when used as a path segment or package name.
func checkName(s string) string {
	switch {
	case s == "":
		return "is empty"
	case strings.HasPrefix(s, "."):
		return "starts with '.'"
	case strings.HasPrefix(s, "-"):
		return "starts with '-'"
	case strings.Contains(s, ".."):
		return "contains '..'"
	}
	for _, r := range s {
		switch {
		case r == '/' || r == '\\':
			return fmt.Sprintf("contains %q", r)
		case r == 0:
			return "contains a NUL character"
		case unicode.IsSpace(r):
			return "contains whitespace"
		case unicode.IsControl(r):
			return "contains a control character"
		}
	}
	return ""
}

// streamV2 reads the data section of a stream v2, packager v2 or stream v1
// document.
func (w *walker) streamV2(data *yaml.Node, mode streamMode) (*Stream, error) {
	s := &Stream{}
	err := w.mapping(data, "", func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "name", "stream", "version", "context", "arch", "servicelevels", "buildopts", "artifacts":
			if mode == modePackagerV2 {
				return w.errf(k, key, "not allowed in a modulemd-packager v2 document")
			}
		case "static_context", "demodularized":
			if mode == modeStreamV1 {
				return w.unknown(k, key)
			}
		case "eol":
			if mode != modeStreamV1 {
				return w.unknown(k, key)
			}
		}
		switch key {
		case "name":
			s.Name, err = w.str(v, key)
		case "stream":
			s.Stream, err = w.str(v, key)
		case "version":
			s.Version, err = w.uint(v, key)
		case "context":
			s.Context, err = w.str(v, key)
		case "static_context":
			s.StaticContext, err = w.boolean(v, key)
		case "arch":
			s.Arch, err = w.str(v, key)
		case "summary":
			s.Summary, err = w.str(v, key)
		case "description":
			s.Description, err = w.str(v, key)
		case "eol":
			var eol string
			if eol, err = w.date(v, key); err == nil && eol != "" {
				if s.ServiceLevels == nil {
					s.ServiceLevels = map[string]ServiceLevel{}
				}
				if _, ok := s.ServiceLevels["rawhide"]; !ok {
					s.ServiceLevels["rawhide"] = ServiceLevel{EOL: eol}
				}
			}
		case "servicelevels":
			err = w.serviceLevels(v, key, s)
		case "license":
			err = w.mapping(v, key, func(lk string, kn, vn *yaml.Node) error {
				var err error
				switch lk {
				case "module":
					s.License.Module, err = w.list(vn, join(key, lk), false)
				case "content":
					s.License.Content, err = w.list(vn, join(key, lk), false)
				default:
					err = w.unknown(kn, join(key, lk))
				}
				return err
			})
		case "xmd":
			s.Xmd, err = w.freeFormMap(v, key)
		case "dependencies":
			if mode == modeStreamV1 {
				err = w.dependenciesV1(v, key, s)
			} else {
				s.Dependencies, err = w.dependencies(v, key)
			}
		case "references":
			s.References, err = w.references(v, key)
		case "profiles":
			s.Profiles, err = w.profiles(v, key)
		case "api":
			s.API, err = w.rpmsList(v, key)
		case "filter":
			s.Filter, err = w.rpmsList(v, key)
		case "demodularized":
			s.Demodularized, err = w.rpmsList(v, key)
		case "buildopts":
			s.BuildOpts, err = w.buildOpts(v, key)
		case "components":
			err = w.components(v, key, &s.Components)
		case "artifacts":
			err = w.mapping(v, key, func(ak string, kn, vn *yaml.Node) error {
				var err error
				switch ak {
				case "rpms":
					s.Artifacts.RPMs, err = w.list(vn, join(key, ak), false)
				case "rpm-map":
					s.Artifacts.RPMMap, err = w.freeFormMap(vn, join(key, ak))
				default:
					err = w.unknown(kn, join(key, ak))
				}
				return err
			})
		default:
			err = w.unknown(k, key)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (w *walker) date(n *yaml.Node, path string) (string, error) {
	v, err := w.str(n, path)
	if err != nil || v == "" {
		return "", err
	}
	if _, err := time.Parse("2006-01-02", v); err != nil {
		return "", w.errf(n, path, "%q is not a YYYY-MM-DD date", v)
	}
	return v, nil
}

func (w *walker) serviceLevels(n *yaml.Node, path string, s *Stream) error {
	return w.mapping(n, path, func(name string, _, v *yaml.Node) error {
		p := join(path, name)
		var sl ServiceLevel
		err := w.mapping(v, p, func(key string, k, v *yaml.Node) error {
			if key != "eol" {
				return w.unknown(k, join(p, key))
			}
			var err error
			sl.EOL, err = w.date(v, join(p, key))
			return err
		})
		if err != nil {
			return err
		}
		if s.ServiceLevels == nil {
			s.ServiceLevels = map[string]ServiceLevel{}
		}
		s.ServiceLevels[name] = sl
		return nil
	})
}

// streamMap reads {module: [streams]} (stream v2 dependencies).
func (w *walker) streamMap(n *yaml.Node, path string) (map[string][]string, error) {
	var out map[string][]string
	err := w.mapping(n, path, func(mod string, _, v *yaml.Node) error {
		l, err := w.list(v, join(path, mod), true)
		if err != nil {
			return err
		}
		if out == nil {
			out = map[string][]string{}
		}
		out[mod] = l
		return nil
	})
	return out, err
}

func (w *walker) dependencies(n *yaml.Node, path string) ([]Dependencies, error) {
	if err := w.check(n, path); err != nil {
		return nil, err
	}
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, w.errf(n, path, "expected a list")
	}
	var out []Dependencies
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		var d Dependencies
		err := w.mapping(item, p, func(key string, k, v *yaml.Node) error {
			var err error
			switch key {
			case "buildrequires":
				d.BuildRequires, err = w.streamMap(v, join(p, key))
			case "requires":
				d.Requires, err = w.streamMap(v, join(p, key))
			default:
				err = w.unknown(k, join(p, key))
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// dependenciesV1 reads the stream v1 form {buildrequires: {mod: stream}}
// and converts it to one v2 entry, as libmodulemd's upgrade does.
func (w *walker) dependenciesV1(n *yaml.Node, path string, s *Stream) error {
	var d Dependencies
	single := func(v *yaml.Node, p string) (map[string][]string, error) {
		var out map[string][]string
		err := w.mapping(v, p, func(mod string, _, sv *yaml.Node) error {
			st, err := w.str(sv, join(p, mod))
			if err != nil {
				return err
			}
			if out == nil {
				out = map[string][]string{}
			}
			out[mod] = []string{st}
			return nil
		})
		return out, err
	}
	err := w.mapping(n, path, func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "buildrequires":
			d.BuildRequires, err = single(v, join(path, key))
		case "requires":
			d.Requires, err = single(v, join(path, key))
		default:
			err = w.unknown(k, join(path, key))
		}
		return err
	})
	if err != nil {
		return err
	}
	if d.BuildRequires != nil || d.Requires != nil {
		s.Dependencies = []Dependencies{d}
	}
	return nil
}

func (w *walker) references(n *yaml.Node, path string) (*References, error) {
	if isNull(n) {
		return nil, nil
	}
	r := &References{}
	err := w.mapping(n, path, func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "community":
			r.Community, err = w.str(v, join(path, key))
		case "documentation":
			r.Documentation, err = w.str(v, join(path, key))
		case "tracker":
			r.Tracker, err = w.str(v, join(path, key))
		default:
			err = w.unknown(k, join(path, key))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if *r == (References{}) {
		return nil, nil
	}
	return r, nil
}

func (w *walker) profiles(n *yaml.Node, path string) (map[string]*Profile, error) {
	var out map[string]*Profile
	err := w.mapping(n, path, func(name string, _, v *yaml.Node) error {
		p := join(path, name)
		pr := &Profile{}
		err := w.mapping(v, p, func(key string, k, v *yaml.Node) error {
			var err error
			switch key {
			case "description":
				pr.Description, err = w.str(v, join(p, key))
			case "rpms":
				pr.RPMs, err = w.list(v, join(p, key), false)
			case "default":
				pr.Default, err = w.boolean(v, join(p, key))
			default:
				err = w.unknown(k, join(p, key))
			}
			return err
		})
		if err != nil {
			return err
		}
		if out == nil {
			out = map[string]*Profile{}
		}
		out[name] = pr
		return nil
	})
	return out, err
}

func (w *walker) buildOpts(n *yaml.Node, path string) (*BuildOpts, error) {
	if isNull(n) {
		return nil, nil
	}
	b := &BuildOpts{}
	err := w.mapping(n, path, func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "rpms":
			p := join(path, key)
			err = w.mapping(v, p, func(rk string, kn, vn *yaml.Node) error {
				var err error
				switch rk {
				case "macros":
					b.Macros, err = w.str(vn, join(p, rk))
				case "whitelist":
					b.Whitelist, err = w.list(vn, join(p, rk), false)
				default:
					err = w.unknown(kn, join(p, rk))
				}
				return err
			})
		case "arches":
			b.Arches, err = w.list(v, join(path, key), false)
		default:
			err = w.unknown(k, join(path, key))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if b.Macros == "" && b.Whitelist == nil && b.Arches == nil {
		return nil, nil
	}
	return b, nil
}

func (w *walker) components(n *yaml.Node, path string, c *Components) error {
	return w.mapping(n, path, func(key string, k, v *yaml.Node) error {
		p := join(path, key)
		switch key {
		case "rpms":
			return w.mapping(v, p, func(ck string, kn, vn *yaml.Node) error {
				cp := join(p, ck)
				if msg := checkName(ck); msg != "" {
					return w.errf(kn, cp, "component key %s", msg)
				}
				comp, err := w.component(vn, cp)
				if err != nil {
					return err
				}
				comp.Key = ck
				if c.RPMs == nil {
					c.RPMs = map[string]*Component{}
				}
				c.RPMs[ck] = comp
				return nil
			})
		case "modules":
			return w.mapping(v, p, func(ck string, kn, vn *yaml.Node) error {
				cp := join(p, ck)
				if msg := checkName(ck); msg != "" {
					return w.errf(kn, cp, "component key %s", msg)
				}
				m := &ModuleComponent{}
				err := w.mapping(vn, cp, func(f string, fk, fv *yaml.Node) error {
					var err error
					switch f {
					case "rationale":
						m.Rationale, err = w.str(fv, join(cp, f))
					case "repository":
						m.Repository, err = w.str(fv, join(cp, f))
					case "ref":
						m.Ref, err = w.str(fv, join(cp, f))
					case "buildorder":
						m.BuildOrder, err = w.int(fv, join(cp, f))
					default:
						err = w.unknown(fk, join(cp, f))
					}
					return err
				})
				if err != nil {
					return err
				}
				if c.Modules == nil {
					c.Modules = map[string]*ModuleComponent{}
				}
				c.Modules[ck] = m
				return nil
			})
		}
		return w.unknown(k, p)
	})
}

func (w *walker) component(n *yaml.Node, path string) (*Component, error) {
	c := &Component{}
	err := w.mapping(n, path, func(key string, k, v *yaml.Node) error {
		p := join(path, key)
		var err error
		switch key {
		case "name":
			if c.Name, err = w.str(v, p); err == nil && c.Name != "" {
				if msg := checkName(c.Name); msg != "" {
					err = w.errf(v, p, "package name %s", msg)
				}
			}
		case "rationale":
			c.Rationale, err = w.str(v, p)
		case "repository":
			c.Repository, err = w.str(v, p)
		case "cache":
			c.Cache, err = w.str(v, p)
		case "ref":
			c.Ref, err = w.str(v, p)
		case "buildorder":
			c.BuildOrder, err = w.int(v, p)
		case "buildafter":
			c.BuildAfter, err = w.list(v, p, false)
		case "buildonly":
			c.BuildOnly, err = w.boolean(v, p)
		case "buildroot":
			c.Buildroot, err = w.boolean(v, p)
		case "srpm-buildroot":
			c.SRPMBuildroot, err = w.boolean(v, p)
		case "arches":
			c.Arches, err = w.list(v, p, false)
		case "multilib":
			c.Multilib, err = w.list(v, p, false)
		default:
			err = w.unknown(k, p)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}
