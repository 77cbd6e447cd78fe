// Package wire is the XML-RPC codec of the koji client and of its kojitest
// hub double: github.com/kolo/xmlrpc, with the little Koji's dialect needs
// around it.
//
//   - Encoding is xmlrpc.EncodeMethodCall on plain values (see plain).
//     kolo writes a Go nil as <value/> (a nil param as an empty <param>),
//     which Python's xmlrpc.client reads as "" rather than None; Koji sends
//     and expects <nil/>, so both forms are rewritten to <value><nil/></value>.
//     The rewrite cannot touch data: in character data "<" is always
//     escaped. Integers go as <int> whatever their size: Python reads <int>
//     and <i8> alike, with int().
//   - Decoding is xmlrpc.Response.Unmarshal into an any, which gives nil
//     for <nil/>, int64 for <int>, <i4> and <i8>, float64, bool, string,
//     []any and map[string]any. kolo reads an empty <string></string> (how
//     Python sends "") as nil, so empty strings are rewritten to an empty
//     CDATA section first, which it reads as "". <base64> arrives as its
//     text (Koji sends none; uploads go as base64 strings) and
//     <dateTime.iso8601> as a time.Time. kolo gives a nil map for an empty
//     <struct>; it is replaced by an empty one. An untyped
//     <value>text</value> is refused by kolo when decoding into an any;
//     Python's marshaller always writes <string>.
//   - A fault document becomes a *Fault through xmlrpc.Response.Err's
//     xmlrpc.FaultError, code and string kept.
//
// Only the codec is kolo's: its net/rpc Client flattens faults into strings
// and cannot carry Koji's session headers, so the koji package keeps its
// own transport (sessions, callnums, retries).
package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/kolo/xmlrpc"
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

var (
	kolonil  = [][2]string{{"<value/>", "<value><nil/></value>"}, {"<param></param>", "<param><value><nil/></value></param>"}}
	emptyStr = [][2]string{{"<string></string>", "<string><![CDATA[]]></string>"}, {"<string/>", "<string><![CDATA[]]></string>"}}
)

func replaceAll(b []byte, pairs [][2]string) []byte {
	for _, p := range pairs {
		if bytes.Contains(b, []byte(p[0])) {
			b = bytes.ReplaceAll(b, []byte(p[0]), []byte(p[1]))
		}
	}
	return b
}

// EncodeCall returns the methodCall document for method and params.
func EncodeCall(method string, params []any) ([]byte, error) {
	args := make([]any, len(params))
	for i, p := range params {
		v, err := plain(reflect.ValueOf(p), 0)
		if err != nil {
			return nil, fmt.Errorf("param %d: %w", i, err)
		}
		args[i] = v
	}
	if len(args) == 0 {
		// kolo writes no <params> at all for none; Python wants the element.
		return []byte(`<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>` + method + `</methodName><params></params></methodCall>`), nil
	}
	b, err := xmlrpc.EncodeMethodCall(method, args...)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", method, err)
	}
	return replaceAll(b, kolonil), nil
}

// valueOf returns the <value> element encoding v.
func valueOf(v any) ([]byte, error) {
	b, err := EncodeCall("v", []any{v})
	if err != nil {
		return nil, err
	}
	i := bytes.Index(b, []byte("<param>"))
	j := bytes.LastIndex(b, []byte("</param>"))
	if i < 0 || j < i {
		return nil, errors.New("encode value: unexpected methodCall from kolo/xmlrpc")
	}
	return b[i+len("<param>") : j], nil
}

// EncodeResponse returns the methodResponse document carrying v.
func EncodeResponse(v any) ([]byte, error) {
	val, err := valueOf(v)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse><params><param>%s</param></params></methodResponse>\n", val), nil
}

// EncodeFault returns the methodResponse document carrying a fault.
func EncodeFault(f *Fault) []byte {
	val, err := valueOf(map[string]any{"faultCode": f.Code, "faultString": f.String})
	if err != nil { // a map of an int and a string always encodes
		panic(err)
	}
	return fmt.Appendf(nil, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse><fault>%s</fault></methodResponse>\n", val)
}

// FaultValue returns the struct a multiCall result carries for f.
func FaultValue(f *Fault) map[string]any {
	m := map[string]any{"faultCode": f.Code, "faultString": f.String}
	if f.Traceback != nil {
		m["traceback"] = f.Traceback
	}
	return m
}

// DecodeCall parses a methodCall document (the hub double's side): its
// params become the elements of one array, which kolo decodes.
func DecodeCall(body []byte) (method string, params []any, err error) {
	_, rest, ok := bytes.Cut(body, []byte("<methodName>"))
	name, rest, ok2 := bytes.Cut(rest, []byte("</methodName>"))
	if !ok || !ok2 || !bytes.Contains(body, []byte("<methodCall>")) {
		return "", nil, errors.New("decode call: not a methodCall document")
	}
	method = strings.TrimSpace(string(name))
	if method == "" {
		return "", nil, errors.New("decode call: methodCall has no methodName")
	}
	var values []byte
	if _, ps, ok := bytes.Cut(rest, []byte("<params>")); ok {
		ps, _, ok = bytes.Cut(ps, []byte("</params>"))
		if !ok {
			return "", nil, errors.New("decode call: <params> not closed")
		}
		values = bytes.ReplaceAll(bytes.ReplaceAll(ps, []byte("<param>"), nil), []byte("</param>"), nil)
	}
	doc := make([]byte, 0, len(values)+128)
	doc = append(doc, "<methodResponse><params><param><value><array><data>"...)
	doc = append(doc, values...)
	doc = append(doc, "</data></array></value></param></params></methodResponse>"...)
	params = []any{}
	if err := xmlrpc.Response(replaceAll(doc, emptyStr)).Unmarshal(&params); err != nil {
		return "", nil, fmt.Errorf("decode call %s: %w", method, err)
	}
	emptyStructs(params)
	return method, params, nil
}

// DecodeResponse parses a methodResponse document: either its value or its
// fault.
func DecodeResponse(body []byte) (any, *Fault, error) {
	if !bytes.Contains(body, []byte("<methodResponse")) {
		return nil, nil, errors.New("decode response: not a methodResponse document")
	}
	r := xmlrpc.Response(replaceAll(body, emptyStr))
	if err := r.Err(); err != nil {
		var fe xmlrpc.FaultError
		if errors.As(err, &fe) {
			return nil, &Fault{Code: fe.Code, String: fe.String}, nil
		}
		return nil, nil, fmt.Errorf("decode fault: %w", err)
	}
	var v any
	if err := r.Unmarshal(&v); err != nil {
		return nil, nil, fmt.Errorf("decode response: %w", err)
	}
	return emptyStructs(v), nil, nil
}

// emptyStructs replaces the nil maps kolo gives for an empty <struct> with
// empty ones, in place: an empty struct is not None.
func emptyStructs(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return map[string]any{}
		}
		for k, e := range x {
			if m, ok := e.(map[string]any); ok && m == nil {
				x[k] = map[string]any{}
			} else {
				emptyStructs(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = emptyStructs(e)
		}
	}
	return v
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

const maxDepth = 100

var (
	timeType   = reflect.TypeFor[time.Time]()
	marshalerT = reflect.TypeFor[Marshaler]()
)

// plain turns v into what kolo encodes the way Koji reads it: a Marshaler
// into its value, structs into maps by their xmlrpc or json tags (kolo
// reads xmlrpc tags only), typed slices and maps into []any and
// map[string]any (member names escaped: kolo writes them as they are), unsigned integers into int64 (kolo would write <i4>),
// []byte into xmlrpc.Base64; nil stays nil (rewritten to <nil/> after
// encoding).
func plain(v reflect.Value, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("value nested too deeply")
	}
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return nil, nil
		}
		if v.Type().Implements(marshalerT) {
			return plain(reflect.ValueOf(v.Interface().(Marshaler).XMLRPCValue()), depth+1)
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return nil, nil
	}
	if v.Type().Implements(marshalerT) {
		return plain(reflect.ValueOf(v.Interface().(Marshaler).XMLRPCValue()), depth+1)
	}
	switch v.Kind() {
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if v.Uint() > math.MaxInt64 {
			return nil, fmt.Errorf("integer %d does not fit in i8", v.Uint())
		}
		return int64(v.Uint()), nil
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("cannot encode %v", f)
		}
		return v.Float(), nil
	case reflect.String:
		return v.String(), nil
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			raw := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(raw), v)
			return xmlrpc.Base64(base64.StdEncoding.EncodeToString(raw)), nil
		}
		out := make([]any, v.Len())
		for i := range out {
			e, err := plain(v.Index(i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map key type %s is not string", v.Type().Key())
		}
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			e, err := plain(it.Value(), depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", it.Key().String(), err)
			}
			out[escapeName(it.Key().String())] = e
		}
		return out, nil
	case reflect.Struct:
		if v.Type() == timeType {
			return v.Interface(), nil
		}
		out := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, omit := fieldName(f)
			if name == "-" || (omit && v.Field(i).IsZero()) {
				continue
			}
			e, err := plain(v.Field(i), depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out[escapeName(name)] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported type %s", v.Type())
}

// escapeName escapes a struct member name: kolo writes names as they are.
func escapeName(s string) string {
	if !strings.ContainsAny(s, "&<>\"'\r\n\t") {
		return s
	}
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
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
