// Package wire encodes and decodes XML-RPC in Koji's dialect: None is
// <nil/> both ways, integers outside int32 are <i8>, keyword arguments are a
// trailing struct carrying "__starstar", and an empty <value/> is the empty
// string, as Python's xmlrpc.client reads it.
//
// Decoded values are plain Go values: nil, bool, int64, float64, string,
// []byte (base64), []any (array) and map[string]any (struct).
// dateTime.iso8601 values are kept as their text (Koji never sends them).
//
// The package is shared by the koji client and its kojitest hub double; both
// are checked against bytes recorded from a real hub.
package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Fault is an XML-RPC fault as it travels on the wire.
type Fault struct {
	Code      int
	String    string
	Traceback []string
}

// Error implements error.
func (f *Fault) Error() string { return fmt.Sprintf("Fault(%d): %s", f.Code, f.String) }

// Marshaler lets a Go type choose its wire value (koji.KW uses it to add
// "__starstar").
type Marshaler interface {
	XMLRPCValue() any
}

const header = "<?xml version='1.0'?>\n"

// EncodeCall returns the methodCall document for method and params.
func EncodeCall(method string, params []any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("<methodCall>\n<methodName>")
	escape(&b, method)
	b.WriteString("</methodName>\n<params>\n")
	for i, p := range params {
		b.WriteString("<param>\n")
		if err := encodeValue(&b, reflect.ValueOf(p), 0); err != nil {
			return nil, fmt.Errorf("param %d: %w", i, err)
		}
		b.WriteString("</param>\n")
	}
	b.WriteString("</params>\n</methodCall>\n")
	return b.Bytes(), nil
}

// EncodeResponse returns the methodResponse document carrying v.
func EncodeResponse(v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("<methodResponse>\n<params>\n<param>\n")
	if err := encodeValue(&b, reflect.ValueOf(v), 0); err != nil {
		return nil, err
	}
	b.WriteString("</param>\n</params>\n</methodResponse>\n")
	return b.Bytes(), nil
}

// EncodeFault returns the methodResponse document carrying a fault.
func EncodeFault(f *Fault) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("<methodResponse>\n<fault>\n")
	_ = encodeValue(&b, reflect.ValueOf(map[string]any{"faultCode": f.Code, "faultString": f.String}), 0)
	b.WriteString("</fault>\n</methodResponse>\n")
	return b.Bytes()
}

// FaultValue returns the struct a multiCall result carries for f.
func FaultValue(f *Fault) map[string]any {
	m := map[string]any{"faultCode": f.Code, "faultString": f.String}
	if f.Traceback != nil {
		m["traceback"] = f.Traceback
	}
	return m
}

// Value encodes one value as a <value> element (for tests and for the
// request text Koji stores with a task).
func Value(v any) ([]byte, error) {
	var b bytes.Buffer
	err := encodeValue(&b, reflect.ValueOf(v), 0)
	return b.Bytes(), err
}

const maxDepth = 100

var (
	timeType   = reflect.TypeFor[time.Time]()
	marshalerT = reflect.TypeFor[Marshaler]()
)

func encodeValue(b *bytes.Buffer, v reflect.Value, depth int) error {
	if depth > maxDepth {
		return errors.New("value nested too deeply")
	}
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			break
		}
		if v.Type().Implements(marshalerT) {
			return encodeValue(b, reflect.ValueOf(v.Interface().(Marshaler).XMLRPCValue()), depth+1)
		}
		v = v.Elem()
	}
	if !v.IsValid() || ((v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil()) {
		b.WriteString("<value><nil/></value>")
		return nil
	}
	if v.Type().Implements(marshalerT) {
		return encodeValue(b, reflect.ValueOf(v.Interface().(Marshaler).XMLRPCValue()), depth+1)
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			b.WriteString("<value><boolean>1</boolean></value>")
		} else {
			b.WriteString("<value><boolean>0</boolean></value>")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		writeInt(b, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := v.Uint()
		if u > math.MaxInt64 {
			return fmt.Errorf("integer %d does not fit in i8", u)
		}
		writeInt(b, int64(u))
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("cannot encode %v", f)
		}
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0" // Python's repr of a float
		}
		b.WriteString("<value><double>" + s + "</double></value>")
	case reflect.String:
		b.WriteString("<value><string>")
		escape(b, v.String())
		b.WriteString("</string></value>")
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			var raw []byte
			if v.Kind() == reflect.Array {
				raw = make([]byte, v.Len())
				reflect.Copy(reflect.ValueOf(raw), v)
			} else {
				raw = v.Bytes()
			}
			b.WriteString("<value><base64>\n" + base64.StdEncoding.EncodeToString(raw) + "\n</base64></value>")
			return nil
		}
		b.WriteString("<value><array><data>\n")
		for i := 0; i < v.Len(); i++ {
			if err := encodeValue(b, v.Index(i), depth+1); err != nil {
				return err
			}
			b.WriteString("\n")
		}
		b.WriteString("</data></array></value>")
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("map key type %s is not string", v.Type().Key())
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		// Koji's client puts __starstar last; keep that order.
		if i := slices.Index(keys, "__starstar"); i >= 0 {
			keys = append(append(keys[:i:i], keys[i+1:]...), "__starstar")
		}
		b.WriteString("<value><struct>\n")
		for _, k := range keys {
			b.WriteString("<member>\n<name>")
			escape(b, k)
			b.WriteString("</name>\n")
			if err := encodeValue(b, v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), depth+1); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			b.WriteString("</member>\n")
		}
		b.WriteString("</struct></value>")
	case reflect.Struct:
		if v.Type() == timeType {
			t := v.Interface().(time.Time)
			b.WriteString("<value><dateTime.iso8601>" + t.UTC().Format("20060102T15:04:05") + "</dateTime.iso8601></value>")
			return nil
		}
		m := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, omit := fieldName(f)
			if name == "-" {
				continue
			}
			fv := v.Field(i)
			if omit && fv.IsZero() {
				continue
			}
			m[name] = fv.Interface()
		}
		return encodeValue(b, reflect.ValueOf(m), depth+1)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// fieldName returns the wire name of a struct field: its xmlrpc tag, else
// its json tag, else its Go name.
func fieldName(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("xmlrpc")
	if tag == "" {
		tag = f.Tag.Get("json")
	}
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, strings.Contains(opts, "omitempty")
}

func writeInt(b *bytes.Buffer, i int64) {
	if i > math.MaxInt32 || i < math.MinInt32 {
		b.WriteString("<value><i8>" + strconv.FormatInt(i, 10) + "</i8></value>")
		return
	}
	b.WriteString("<value><int>" + strconv.FormatInt(i, 10) + "</int></value>")
}

// escape writes s with &, < and > escaped, as Python's xmlrpc.client does.
func escape(b *bytes.Buffer, s string) {
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\r':
			b.WriteString("&#13;") // XML parsers normalise a raw CR away
		default:
			b.WriteRune(r)
		}
	}
}

// DecodeCall parses a methodCall document.
func DecodeCall(body []byte) (method string, params []any, err error) {
	d := newDecoder(body)
	if err := d.expectStart("methodCall"); err != nil {
		return "", nil, err
	}
	params = []any{}
	for {
		tok, err := d.next()
		if err != nil {
			return "", nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "methodName":
				s, err := d.text()
				if err != nil {
					return "", nil, err
				}
				method = strings.TrimSpace(s)
			case "params":
				params, err = d.params()
				if err != nil {
					return "", nil, err
				}
			default:
				return "", nil, fmt.Errorf("unexpected <%s> in methodCall", t.Name.Local)
			}
		case xml.EndElement:
			if method == "" {
				return "", nil, errors.New("methodCall has no methodName")
			}
			return method, params, nil
		}
	}
}

// DecodeResponse parses a methodResponse document: either its value or its
// fault.
func DecodeResponse(body []byte) (any, *Fault, error) {
	d := newDecoder(body)
	if err := d.expectStart("methodResponse"); err != nil {
		return nil, nil, err
	}
	for {
		tok, err := d.next()
		if err != nil {
			return nil, nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "params":
				ps, err := d.params()
				if err != nil {
					return nil, nil, err
				}
				if len(ps) != 1 {
					return nil, nil, fmt.Errorf("methodResponse has %d params, want 1", len(ps))
				}
				return ps[0], nil, nil
			case "fault":
				if err := d.expectStart("value"); err != nil {
					return nil, nil, err
				}
				v, err := d.value()
				if err != nil {
					return nil, nil, err
				}
				f, ok := AsFault(v)
				if !ok {
					return nil, nil, errors.New("malformed fault")
				}
				return nil, f, nil
			default:
				return nil, nil, fmt.Errorf("unexpected <%s> in methodResponse", t.Name.Local)
			}
		case xml.EndElement:
			return nil, nil, errors.New("empty methodResponse")
		}
	}
}

// AsFault converts a decoded {faultCode, faultString[, traceback]} struct.
func AsFault(v any) (*Fault, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	code, ok1 := m["faultCode"].(int64)
	msg, ok2 := m["faultString"].(string)
	if !ok1 || !ok2 {
		return nil, false
	}
	f := &Fault{Code: int(code), String: msg}
	if tb, ok := m["traceback"].([]any); ok {
		for _, l := range tb {
			if s, ok := l.(string); ok {
				f.Traceback = append(f.Traceback, s)
			}
		}
	}
	return f, true
}

type decoder struct {
	*xml.Decoder
	depth int
}

func newDecoder(body []byte) *decoder {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	return &decoder{Decoder: d}
}

// next returns the next start or end element, skipping text, comments and
// processing instructions.
func (d *decoder) next() (xml.Token, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch tok.(type) {
		case xml.StartElement, xml.EndElement:
			return tok, nil
		}
	}
}

func (d *decoder) expectStart(name string) error {
	tok, err := d.next()
	if err != nil {
		return err
	}
	if s, ok := tok.(xml.StartElement); !ok || s.Name.Local != name {
		return fmt.Errorf("expected <%s>", name)
	}
	return nil
}

// text reads character data up to the end of the current element.
func (d *decoder) text() (string, error) {
	var s strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			s.Write(t)
		case xml.EndElement:
			return s.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("unexpected <%s> in text", t.Name.Local)
		}
	}
}

func (d *decoder) params() ([]any, error) {
	ps := []any{}
	for {
		tok, err := d.next()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "param" {
				return nil, fmt.Errorf("unexpected <%s> in params", t.Name.Local)
			}
			if err := d.expectStart("value"); err != nil {
				return nil, err
			}
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			ps = append(ps, v)
			if tok, err := d.next(); err != nil {
				return nil, err
			} else if _, ok := tok.(xml.EndElement); !ok {
				return nil, errors.New("expected </param>")
			}
		case xml.EndElement:
			return ps, nil
		}
	}
}

// value decodes the content of a <value> element whose start was consumed,
// and consumes its end.
func (d *decoder) value() (any, error) {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		return nil, errors.New("value nested too deeply")
	}
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			// <value>text</value> and <value/> are strings.
			return text.String(), nil
		case xml.StartElement:
			v, err := d.typed(t.Name.Local)
			if err != nil {
				return nil, err
			}
			// consume up to </value>
			for {
				tok, err := d.Token()
				if err != nil {
					return nil, err
				}
				if _, ok := tok.(xml.EndElement); ok {
					return v, nil
				}
				if s, ok := tok.(xml.StartElement); ok {
					return nil, fmt.Errorf("unexpected <%s> after value", s.Name.Local)
				}
			}
		}
	}
}

func (d *decoder) typed(kind string) (any, error) {
	switch kind {
	case "nil":
		if _, err := d.text(); err != nil {
			return nil, err
		}
		return nil, nil
	case "int", "i4", "i8", "i1", "i2", "biginteger":
		s, err := d.text()
		if err != nil {
			return nil, err
		}
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad <%s>: %w", kind, err)
		}
		return i, nil
	case "boolean":
		s, err := d.text()
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(s) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, fmt.Errorf("bad boolean %q", s)
	case "string":
		return d.text()
	case "double", "float":
		s, err := d.text()
		if err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("bad <%s>: %w", kind, err)
		}
		return f, nil
	case "dateTime.iso8601":
		s, err := d.text()
		return strings.TrimSpace(s), err
	case "base64":
		s, err := d.text()
		if err != nil {
			return nil, err
		}
		raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("bad base64: %w", err)
		}
		return raw, nil
	case "array":
		if err := d.expectStart("data"); err != nil {
			return nil, err
		}
		out := []any{}
		for {
			tok, err := d.next()
			if err != nil {
				return nil, err
			}
			switch t := tok.(type) {
			case xml.StartElement:
				if t.Name.Local != "value" {
					return nil, fmt.Errorf("unexpected <%s> in array", t.Name.Local)
				}
				v, err := d.value()
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			case xml.EndElement: // </data>
				if tok, err := d.next(); err != nil {
					return nil, err
				} else if _, ok := tok.(xml.EndElement); !ok {
					return nil, errors.New("expected </array>")
				}
				return out, nil
			}
		}
	case "struct":
		out := map[string]any{}
		for {
			tok, err := d.next()
			if err != nil {
				return nil, err
			}
			switch t := tok.(type) {
			case xml.StartElement:
				if t.Name.Local != "member" {
					return nil, fmt.Errorf("unexpected <%s> in struct", t.Name.Local)
				}
				name, v, err := d.member()
				if err != nil {
					return nil, err
				}
				out[name] = v
			case xml.EndElement:
				return out, nil
			}
		}
	}
	return nil, fmt.Errorf("unknown value type <%s>", kind)
}

func (d *decoder) member() (string, any, error) {
	var name string
	var val any
	seen := false
	for {
		tok, err := d.next()
		if err != nil {
			return "", nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "name":
				if name, err = d.text(); err != nil {
					return "", nil, err
				}
			case "value":
				if val, err = d.value(); err != nil {
					return "", nil, err
				}
				seen = true
			default:
				return "", nil, fmt.Errorf("unexpected <%s> in member", t.Name.Local)
			}
		case xml.EndElement:
			if !seen {
				return "", nil, fmt.Errorf("member %q has no value", name)
			}
			return name, val, nil
		}
	}
}
