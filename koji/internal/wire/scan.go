package wire

// A scanner over the byte slice for the XML-RPC subset Koji and this
// package emit: an optional <?xml version='1.0'?> declaration, elements
// without attributes or name space prefixes, whitespace between elements,
// and character data with the five predefined entities, numeric character
// references and CDATA sections.
//
// It mirrors the encoding/xml decoder in xmldecode.go token for token and
// gives up (ok == false) on anything else, and on every error, so that the
// caller falls back to the encoding/xml decoder: whatever the scanner
// accepts, it decodes to the same value; whatever it rejects gets exactly
// the old result or error. In particular it checks what encoding/xml
// checks in the parts it reads (matching end tags, UTF-8, the XML character
// range, entity syntax, "]]>" outside CDATA) and, like the old decoder,
// reads nothing past the point where the old decoder stops.

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type scanner struct {
	b     []byte
	pos   int
	depth int
	buf   []byte // scratch for character data that needs decoding
	// members holds the members of the structs being read (a stack: a
	// struct's members follow those of the structs it is nested in), so
	// that each map is made at its final size.
	members []member
	// names caches member names: a response repeats the same few.
	names [64]string
}

type member struct {
	name string
	v    any
}

// xmlDecls are the declarations the scanner accepts; encoding/xml accepts
// all of them (version 1.0, UTF-8).
var xmlDecls = []string{
	`<?xml version='1.0'?>`,
	`<?xml version="1.0"?>`,
	`<?xml version="1.0" encoding="UTF-8"?>`,
	`<?xml version="1.0" encoding="utf-8"?>`,
	`<?xml version='1.0' encoding='UTF-8'?>`,
	`<?xml version='1.0' encoding='utf-8'?>`,
}

// prolog skips the declaration, if any, and whitespace, and reads the
// start of the root element, which must be name and not empty.
func (s *scanner) prolog(name string) bool {
	if hasPrefix(s.b, "<?") {
		found := false
		for _, d := range xmlDecls {
			if hasPrefix(s.b, d) {
				s.pos = len(d)
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return s.expectStart(name) == 1
}

func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// space skips whitespace (encoding/xml's space(): the four XML blanks).
func (s *scanner) space() {
	for s.pos < len(s.b) && isSpace(s.b[s.pos]) {
		s.pos++
	}
}

// tag reads the tag at s.pos: a start tag (end == false, empty for <x/>)
// or an end tag. Comments, processing instructions, directives, CDATA,
// attributes and names with a colon are refused.
func (s *scanner) tag() (end bool, name []byte, empty, ok bool) {
	b, i := s.b, s.pos
	if i >= len(b) || b[i] != '<' {
		return
	}
	i++
	if i < len(b) && b[i] == '/' {
		end = true
		i++
	}
	start := i
	// encoding/xml's readName: up to a single-byte character that is not a
	// name byte. Names we accept are plain ASCII; a colon would mean name
	// space handling, so stop there too (and refuse below).
	for i < len(b) {
		c := b[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-' {
			i++
			continue
		}
		break
	}
	if i == start || i >= len(b) {
		return
	}
	name = b[start:i]
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i >= len(b) {
		return
	}
	switch b[i] {
	case '>':
		i++
	case '/':
		if end || i+1 >= len(b) || b[i+1] != '>' {
			return
		}
		empty = true
		i += 2
	default:
		return // attribute, colon, non-ASCII name, junk
	}
	if (name[0] < 'a' || name[0] > 'z') && (name[0] < 'A' || name[0] > 'Z') && name[0] != '_' {
		return // not a name encoding/xml accepts; none we expect anyway
	}
	s.pos = i
	return end, name, empty, true
}

// expectStart skips whitespace and reads a start tag called name. It
// returns 0 if that fails, 1 for <name>, 2 for <name/>.
func (s *scanner) expectStart(name string) int {
	s.space()
	end, n, empty, ok := s.tag()
	if !ok || end || string(n) != name {
		return 0
	}
	if empty {
		return 2
	}
	return 1
}

// expectEnd skips whitespace and reads </name>.
func (s *scanner) expectEnd(name string) bool {
	s.space()
	end, n, _, ok := s.tag()
	return ok && end && string(n) == name
}

// chars scans character data (text and CDATA sections) from s.pos up to
// the next tag, checking it as encoding/xml does. plain reports that
// b[start:end] is the data verbatim (no entity, CR or CDATA).
func (s *scanner) chars() (start, end int, plain, ok bool) {
	b := s.b
	i := s.pos
	start = i
	plain = true
	for i < len(b) {
		c := b[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '<' && c != '&' && c != ']' {
			i++
			continue
		}
		switch {
		case c == '<':
			if !hasPrefix(b[i:], "<![CDATA[") {
				s.pos = i
				return start, i, plain, true
			}
			j := bytes.Index(b[i+9:], []byte("]]>"))
			if j < 0 || !validChars(b[i+9:i+9+j]) {
				return 0, 0, false, false
			}
			plain = false
			i += 9 + j + 3
		case c == '&':
			_, n, ok := entity(b[i:])
			if !ok {
				return 0, 0, false, false
			}
			plain = false
			i += n
		case c == ']':
			if i+2 < len(b) && b[i+1] == ']' && b[i+2] == '>' {
				return 0, 0, false, false // unescaped ]]> not in CDATA section
			}
			i++
		case c == '\r':
			plain = false
			i++
		case c == '\n' || c == '\t':
			i++
		case c < 0x20:
			return 0, 0, false, false
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 || !isInCharacterRange(r) {
				return 0, 0, false, false
			}
			i += size
		}
	}
	return 0, 0, false, false // EOF inside an element
}

// validChars reports whether CDATA content is UTF-8 in the XML character
// range.
func validChars(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 || !isInCharacterRange(r) {
			return false
		}
		i += size
	}
	return true
}

// isInCharacterRange is encoding/xml's.
func isInCharacterRange(r rune) bool {
	return r == 0x09 ||
		r == 0x0A ||
		r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// entity decodes the entity or character reference at the start of b
// (b[0] == '&') as encoding/xml does in Strict mode, returning the rune and
// the length of the reference.
func entity(b []byte) (r rune, n int, ok bool) {
	if len(b) < 3 {
		return 0, 0, false
	}
	if b[1] != '#' {
		switch {
		case hasPrefix(b, "&amp;"):
			return '&', 5, true
		case hasPrefix(b, "&lt;"):
			return '<', 4, true
		case hasPrefix(b, "&gt;"):
			return '>', 4, true
		case hasPrefix(b, "&quot;"):
			return '"', 6, true
		case hasPrefix(b, "&apos;"):
			return '\'', 6, true
		}
		return 0, 0, false
	}
	i := 2
	base := uint64(10)
	if b[i] == 'x' {
		base = 16
		i++
	}
	start := i
	var v uint64
	for ; i < len(b); i++ {
		c := b[i]
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case base == 16 && 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		case base == 16 && 'A' <= c && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			goto done
		}
		v = v*base + d
		if v > unicode.MaxRune {
			return 0, 0, false // strconv.ParseUint fails or n > MaxRune
		}
	}
done:
	if i == start || i >= len(b) || b[i] != ';' {
		return 0, 0, false
	}
	r = rune(v)
	if !utf8.ValidRune(r) {
		r = utf8.RuneError // string(rune(n)) of a surrogate
	}
	if !isInCharacterRange(r) {
		return 0, 0, false
	}
	return r, i + 1, true
}

// intern returns string(b), from the cache of member names if it is there.
func (s *scanner) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	h := (uint(len(b))*31 + uint(b[0])*7 + uint(b[len(b)/2])*131 + uint(b[len(b)-1])) % uint(len(s.names))
	if c := s.names[h]; c == string(b) {
		return c
	}
	str := string(b)
	s.names[h] = str
	return str
}

// str returns the character data scanned by chars.
func (s *scanner) str(start, end int, plain bool) string {
	if plain {
		return string(s.b[start:end])
	}
	return string(s.decode(start, end))
}

// decode returns the decoded character data of b[start:end] (which chars
// accepted) in s.buf.
func (s *scanner) decode(start, end int) []byte {
	b := s.b
	out := s.buf[:0]
	for i := start; i < end; {
		switch c := b[i]; c {
		case '<': // <![CDATA[...]]>
			j := i + 9
			k := j + bytes.Index(b[j:end], []byte("]]>"))
			out = appendCRNormalized(out, b[j:k])
			i = k + 3
		case '&':
			r, n, _ := entity(b[i:end])
			out = utf8.AppendRune(out, r)
			i += n
		case '\r':
			out = append(out, '\n')
			i++
			if i < end && b[i] == '\n' {
				i++
			}
		default:
			out = append(out, c)
			i++
		}
	}
	s.buf = out
	return out
}

// appendCRNormalized appends b with \r\n and \r turned into \n.
func appendCRNormalized(out, b []byte) []byte {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\r' {
			out = append(out, c)
			continue
		}
		out = append(out, '\n')
		if i+1 < len(b) && b[i+1] == '\n' {
			i++
		}
	}
	return out
}

// text reads the character data of the element name whose start (empty
// for <name/>) was read, and its end tag. It returns the raw span.
func (s *scanner) text(name string, empty bool) (start, end int, plain, ok bool) {
	if empty {
		return s.pos, s.pos, true, true
	}
	start, end, plain, ok = s.chars()
	if !ok {
		return
	}
	e, n, _, ok := s.tag()
	if !ok || !e || string(n) != name {
		return 0, 0, false, false
	}
	return start, end, plain, true
}

// textString is text returning the data as a string.
func (s *scanner) textString(name string, empty bool) (string, bool) {
	start, end, plain, ok := s.text(name, empty)
	if !ok {
		return "", false
	}
	return s.str(start, end, plain), true
}

// params reads the content of <params> and its end.
func (s *scanner) params(empty bool) ([]any, bool) {
	ps := []any{}
	if empty {
		return ps, true
	}
	for {
		s.space()
		end, n, e, ok := s.tag()
		if !ok {
			return nil, false
		}
		if end {
			return ps, string(n) == "params"
		}
		if string(n) != "param" || e {
			return nil, false
		}
		st := s.expectStart("value")
		if st == 0 {
			return nil, false
		}
		v, ok := s.value(st == 2)
		if !ok || !s.expectEnd("param") {
			return nil, false
		}
		ps = append(ps, v)
	}
}

// value decodes the content of a <value> element whose start was read, and
// reads its end.
func (s *scanner) value(empty bool) (any, bool) {
	s.depth++
	if s.depth > maxDepth {
		return nil, false
	}
	if empty {
		s.depth--
		return "", true
	}
	start, end, plain, ok := s.chars()
	if !ok {
		return nil, false
	}
	e, n, emptyT, ok := s.tag()
	if !ok {
		return nil, false
	}
	if e {
		// <value>text</value> is a string.
		if string(n) != "value" {
			return nil, false
		}
		s.depth--
		return s.str(start, end, plain), true
	}
	v, ok := s.typed(n, emptyT)
	if !ok {
		return nil, false
	}
	// Character data after the typed element is skipped, as before.
	if _, _, _, ok := s.chars(); !ok {
		return nil, false
	}
	if e, n, _, ok := s.tag(); !ok || !e || string(n) != "value" {
		return nil, false
	}
	s.depth--
	return v, true
}

// typed decodes a typed element (<int>, <struct>, ...) whose start was read.
func (s *scanner) typed(kind []byte, empty bool) (any, bool) {
	switch string(kind) {
	case "nil":
		_, _, _, ok := s.text("nil", empty)
		return nil, ok
	case "int", "i4", "i8", "i1", "i2", "biginteger":
		start, end, plain, ok := s.text(string(kind), empty)
		if !ok {
			return nil, false
		}
		if plain {
			if i, ok := parseSmallInt(s.b[start:end]); ok {
				return i, true
			}
		}
		i, err := strconv.ParseInt(strings.TrimSpace(s.str(start, end, plain)), 10, 64)
		if err != nil {
			return nil, false
		}
		return i, true
	case "boolean":
		start, end, plain, ok := s.text("boolean", empty)
		if !ok {
			return nil, false
		}
		if plain && end == start+1 {
			switch s.b[start] {
			case '1':
				return true, true
			case '0':
				return false, true
			}
		}
		switch strings.TrimSpace(s.str(start, end, plain)) {
		case "1":
			return true, true
		case "0":
			return false, true
		}
		return nil, false
	case "string":
		return s.textString("string", empty)
	case "double", "float":
		str, ok := s.textString(string(kind), empty)
		if !ok {
			return nil, false
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(str), 64)
		if err != nil {
			return nil, false
		}
		return f, true
	case "dateTime.iso8601":
		str, ok := s.textString("dateTime.iso8601", empty)
		return strings.TrimSpace(str), ok
	case "base64":
		str, ok := s.textString("base64", empty)
		if !ok {
			return nil, false
		}
		raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(str), ""))
		if err != nil {
			return nil, false
		}
		return raw, true
	case "array":
		if empty {
			return nil, false
		}
		st := s.expectStart("data")
		if st == 0 {
			return nil, false
		}
		out := []any{}
		if st == 1 {
			for {
				s.space()
				end, n, e, ok := s.tag()
				if !ok {
					return nil, false
				}
				if end {
					if string(n) != "data" {
						return nil, false
					}
					break
				}
				if string(n) != "value" {
					return nil, false
				}
				v, ok := s.value(e)
				if !ok {
					return nil, false
				}
				out = append(out, v)
			}
		}
		if !s.expectEnd("array") {
			return nil, false
		}
		return out, true
	case "struct":
		if empty {
			return map[string]any{}, true
		}
		base := len(s.members)
		for {
			s.space()
			end, n, e, ok := s.tag()
			if !ok {
				return nil, false
			}
			if end {
				if string(n) != "struct" {
					return nil, false
				}
				out := make(map[string]any, len(s.members)-base)
				for _, m := range s.members[base:] {
					out[m.name] = m.v // in order: the last of equal names wins
				}
				clear(s.members[base:])
				s.members = s.members[:base]
				return out, true
			}
			if string(n) != "member" || e {
				return nil, false // <member/> has no value
			}
			name, v, ok := s.member()
			if !ok {
				return nil, false
			}
			s.members = append(s.members, member{name, v})
		}
	}
	return nil, false
}

// member reads the content of a <member> whose start was read, and its end.
func (s *scanner) member() (string, any, bool) {
	var name string
	var val any
	seen := false
	for {
		s.space()
		end, n, e, ok := s.tag()
		if !ok {
			return "", nil, false
		}
		if end {
			return name, val, seen && string(n) == "member"
		}
		switch string(n) {
		case "name":
			start, end, plain, ok := s.text("name", e)
			if !ok {
				return "", nil, false
			}
			if plain {
				name = s.intern(s.b[start:end])
			} else {
				name = string(s.decode(start, end))
			}
		case "value":
			if val, ok = s.value(e); !ok {
				return "", nil, false
			}
			seen = true
		default:
			return "", nil, false
		}
	}
}

// parseSmallInt parses [+-]?[0-9]{1,18}, which needs no trimming and cannot
// overflow; anything else goes to strconv.
func parseSmallInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// fastDecodeCall is DecodeCall on the scanner; ok is false when the caller
// must use the encoding/xml decoder.
func fastDecodeCall(body []byte) (method string, params []any, ok bool) {
	s := scanner{b: body}
	if !s.prolog("methodCall") {
		return "", nil, false
	}
	params = []any{}
	for {
		s.space()
		end, n, e, ok := s.tag()
		if !ok {
			return "", nil, false
		}
		if end {
			if string(n) != "methodCall" || method == "" {
				return "", nil, false
			}
			return method, params, true
		}
		switch string(n) {
		case "methodName":
			str, ok := s.textString("methodName", e)
			if !ok {
				return "", nil, false
			}
			method = strings.TrimSpace(str)
		case "params":
			if params, ok = s.params(e); !ok {
				return "", nil, false
			}
		default:
			return "", nil, false
		}
	}
}

// fastDecodeResponse is DecodeResponse on the scanner; ok is false when the
// caller must use the encoding/xml decoder.
func fastDecodeResponse(body []byte) (v any, f *Fault, ok bool) {
	s := scanner{b: body}
	if !s.prolog("methodResponse") {
		return nil, nil, false
	}
	s.space()
	end, n, e, ok := s.tag()
	if !ok || end {
		return nil, nil, false
	}
	switch string(n) {
	case "params":
		ps, ok := s.params(e)
		if !ok || len(ps) != 1 {
			return nil, nil, false
		}
		return ps[0], nil, true
	case "fault":
		if e {
			return nil, nil, false
		}
		st := s.expectStart("value")
		if st == 0 {
			return nil, nil, false
		}
		v, ok := s.value(st == 2)
		if !ok {
			return nil, nil, false
		}
		f, ok := AsFault(v)
		return nil, f, ok
	}
	return nil, nil, false
}
