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
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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
		if err := encodeAny(&b, p, 0); err != nil {
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
	if err := encodeAny(&b, v, 0); err != nil {
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
	_ = encodeAny(&b, map[string]any{"faultCode": f.Code, "faultString": f.String}, 0)
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
	err := encodeAny(&b, v, 0)
	return b.Bytes(), err
}

const maxDepth = 100

var (
	timeType   = reflect.TypeFor[time.Time]()
	marshalerT = reflect.TypeFor[Marshaler]()
)

// encodeAny is encodeValue(b, reflect.ValueOf(v), depth) with the types
// decoded values and Koji arguments are made of handled without reflection.
// The cases match unnamed types only, which have no methods, so a Marshaler
// always takes the reflection path.
func encodeAny(b *bytes.Buffer, v any, depth int) error {
	if depth > maxDepth {
		return errors.New("value nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("<value><nil/></value>")
	case string:
		writeString(b, x)
	case bool:
		if x {
			b.WriteString("<value><boolean>1</boolean></value>")
		} else {
			b.WriteString("<value><boolean>0</boolean></value>")
		}
	case int:
		writeInt(b, int64(x))
	case int64:
		writeInt(b, x)
	case float64:
		return writeFloat(b, x)
	case []any:
		b.WriteString("<value><array><data>\n")
		for _, e := range x {
			if err := encodeAny(b, e, depth+1); err != nil {
				return err
			}
			b.WriteString("\n")
		}
		b.WriteString("</data></array></value>")
	case map[string]any:
		var buf [32]string
		keys := buf[:0]
		for k := range x {
			keys = append(keys, k)
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
			if err := encodeAny(b, x[k], depth+1); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			b.WriteString("</member>\n")
		}
		b.WriteString("</struct></value>")
	default:
		return encodeValue(b, reflect.ValueOf(v), depth)
	}
	return nil
}

func encodeValue(b *bytes.Buffer, v reflect.Value, depth int) error {
	if depth > maxDepth {
		return errors.New("value nested too deeply")
	}
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			break
		}
		if v.Type().Implements(marshalerT) {
			return encodeAny(b, v.Interface().(Marshaler).XMLRPCValue(), depth+1)
		}
		v = v.Elem()
	}
	if !v.IsValid() || ((v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil()) {
		b.WriteString("<value><nil/></value>")
		return nil
	}
	if v.Type().Implements(marshalerT) {
		return encodeAny(b, v.Interface().(Marshaler).XMLRPCValue(), depth+1)
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
		return writeFloat(b, v.Float())
	case reflect.String:
		writeString(b, v.String())
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
		return encodeAny(b, m, depth+1)
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
		b.WriteString("<value><i8>")
		b.Write(strconv.AppendInt(b.AvailableBuffer(), i, 10))
		b.WriteString("</i8></value>")
		return
	}
	b.WriteString("<value><int>")
	b.Write(strconv.AppendInt(b.AvailableBuffer(), i, 10))
	b.WriteString("</int></value>")
}

func writeFloat(b *bytes.Buffer, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("cannot encode %v", f)
	}
	b.WriteString("<value><double>")
	s := strconv.AppendFloat(b.AvailableBuffer(), f, 'f', -1, 64)
	if bytes.IndexByte(s, '.') < 0 {
		s = append(s, ".0"...) // Python's repr of a float
	}
	b.Write(s)
	b.WriteString("</double></value>")
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	b.WriteString("<value><string>")
	escape(b, s)
	b.WriteString("</string></value>")
}

// escape writes s with &, < and > escaped, as Python's xmlrpc.client does.
func escape(b *bytes.Buffer, s string) {
	// Plain ASCII runs are copied as they are; the rest goes rune by rune
	// (invalid UTF-8 becomes U+FFFD, as WriteRune writes it).
	for len(s) > 0 {
		i := 0
		for i < len(s) {
			c := s[i]
			if c >= utf8.RuneSelf || c == '&' || c == '<' || c == '>' || c == '\r' {
				break
			}
			i++
		}
		b.WriteString(s[:i])
		s = s[i:]
		if len(s) == 0 {
			return
		}
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
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
	if m, ps, ok := fastDecodeCall(body); ok {
		return m, ps, nil
	}
	return xmlDecodeCall(body)
}

// DecodeResponse parses a methodResponse document: either its value or its
// fault.
func DecodeResponse(body []byte) (any, *Fault, error) {
	if v, f, ok := fastDecodeResponse(body); ok {
		return v, f, nil
	}
	return xmlDecodeResponse(body)
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
