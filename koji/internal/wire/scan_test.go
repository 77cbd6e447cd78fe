package wire

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sameValue is reflect.DeepEqual for decoded values, except that floats are
// compared bit for bit (NaN equals NaN) and types must match exactly.
func sameValue(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case float64:
		b, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(b)
	case []byte:
		b, ok := b.([]byte)
		return ok && bytes.Equal(a, b) && (a == nil) == (b == nil)
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) || (a == nil) != (b == nil) {
			return false
		}
		for i := range a {
			if !sameValue(a[i], b[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) || (a == nil) != (b == nil) {
			return false
		}
		for k, x := range a {
			y, ok := b[k]
			if !ok || !sameValue(x, y) {
				return false
			}
		}
		return true
	case string, bool, int64:
		return a == b
	}
	panic(fmt.Sprintf("unexpected decoded type %T", a))
}

func sameFault(a, b *Fault) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Code == b.Code && a.String == b.String && sameStrings(a.Traceback, b.Traceback)
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// checkSame decodes body as a call and as a response with the public
// functions, the scanner alone and the encoding/xml decoder, and fails
// unless they agree: same values, or the same error. It reports whether
// the scanner handled the call and the response itself.
func checkSame(t testing.TB, body []byte) (fastCall, fastResp bool) {
	t.Helper()
	wm, wp, werr := xmlDecodeCall(body)
	gm, gp, gerr := DecodeCall(body)
	if errString(gerr) != errString(werr) || gm != wm || !sameValue(anySlice(gp), anySlice(wp)) {
		t.Fatalf("DecodeCall(%q)\n got %q %#v %v\nwant %q %#v %v", body, gm, gp, gerr, wm, wp, werr)
	}
	if fm, fp, ok := fastDecodeCall(body); ok {
		fastCall = true
		if werr != nil || fm != wm || !sameValue(anySlice(fp), anySlice(wp)) {
			t.Fatalf("fastDecodeCall(%q)\n got %q %#v\nwant %q %#v %v", body, fm, fp, wm, wp, werr)
		}
	}

	wv, wf, werr := xmlDecodeResponse(body)
	gv, gf, gerr := DecodeResponse(body)
	if errString(gerr) != errString(werr) || !sameValue(gv, wv) || !sameFault(gf, wf) {
		t.Fatalf("DecodeResponse(%q)\n got %#v %+v %v\nwant %#v %+v %v", body, gv, gf, gerr, wv, wf, werr)
	}
	if fv, ff, ok := fastDecodeResponse(body); ok {
		fastResp = true
		if werr != nil || !sameValue(fv, wv) || !sameFault(ff, wf) {
			t.Fatalf("fastDecodeResponse(%q)\n got %#v %+v\nwant %#v %+v %v", body, fv, ff, wv, wf, werr)
		}
	}
	return fastCall, fastResp
}

// anySlice keeps nil and empty params apart for sameValue.
func anySlice(p []any) any {
	if p == nil {
		return nil
	}
	return p
}

func recordedBodies(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "wire", "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatal("no recorded bodies", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// The scanner must handle every recorded body and the benchmark bodies
// itself (else the speed-up silently disappears), with the same result.
func TestScanner_HandlesRecordedBodies(t *testing.T) {
	bodies := recordedBodies(t)
	bodies["multicall-taskinfo"] = multiCallTaskInfoResponse(t)
	bodies["listtagged"] = listTaggedResponse(t)
	req, err := EncodeCall("multiCall", multiCallRequest())
	if err != nil {
		t.Fatal(err)
	}
	bodies["multicall.request"] = req
	for name, body := range bodies {
		fastCall, fastResp := checkSame(t, body)
		isReq := strings.Contains(name, "request")
		if isReq && !fastCall || !isReq && !fastResp {
			t.Errorf("%s: scanner fell back to encoding/xml", name)
		}
	}
}

const (
	respHead = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n"
	respTail = "</param>\n</params>\n</methodResponse>\n"
)

func resp(v string) string { return respHead + v + respTail }

func TestScanner_AgreesWithEncodingXML(t *testing.T) {
	cases := []struct {
		body string
		fast bool // the scanner must handle it itself
	}{
		// character data
		{resp("<value><string>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;</string></value>"), true},
		{resp("<value><string>&#65;&#x42;&#x6a;&#X43;</string></value>"), false},
		{resp("<value><string>&#65;&#x42;&#x6a;&#0000067;&#x1F600;&#xD800;</string></value>"), true},
		{resp("<value><string>&#0;</string></value>"), false},
		{resp("<value><string>&#xFFFE;</string></value>"), false},
		{resp("<value><string>&#x110000;</string></value>"), false},
		{resp("<value><string>&#99999999999999999999999;</string></value>"), false},
		{resp("<value><string>&#;</string></value>"), false},
		{resp("<value><string>&#x;</string></value>"), false},
		{resp("<value><string>&nbsp;</string></value>"), false},
		{resp("<value><string>&amp</string></value>"), false},
		{resp("<value><string>a\r\nb\rc\n\r\r\nd&#13;\n</string></value>"), true},
		{resp("<value><string>x\r<![CDATA[\ny\r\n]]>\r</string></value>"), true},
		{resp("<value><string><![CDATA[<a>&amp;]]]]><![CDATA[>]]></string></value>"), true},
		{resp("<value><string><![CDATA[]]></string></value>"), true},
		{resp("<value><string><![CDATA[abc</string></value>"), false},
		{resp("<value><string>a]]>b</string></value>"), false},
		{resp("<value><string>a]]&gt;b ]] > ]</string></value>"), true},
		{resp("<value><string>tab\there é ü 😀 \u2028</string></value>"), true},
		{resp("<value><string>bad \x01</string></value>"), false},
		{resp("<value><string>bad \xff</string></value>"), false},
		{resp("<value><string>bad \xef\xbf\xbe</string></value>"), false},
		{resp("<value><string>bad \xed\xa0\x80</string></value>"), false},
		{resp("<value><string>a<!-- c -->b</string></value>"), false},
		{resp("<value><string>a<b/></string></value>"), false},
		// values
		{resp("<value>bare &amp; text</value>"), true},
		{resp("<value/>"), true},
		{resp("<value></value>"), true},
		{resp("<value>  <int> 42 </int>  </value>"), true},
		{resp("<value>junk<int>-7</int>more junk</value>"), true},
		{resp("<value><int>+7</int></value>"), true},
		{resp("<value><i4>-2147483648</i4></value>"), true},
		{resp("<value><i8>9223372036854775807</i8></value>"), true},
		{resp("<value><i8>9223372036854775808</i8></value>"), false},
		{resp("<value><i8>-9223372036854775808</i8></value>"), true},
		{resp("<value><int>0x10</int></value>"), false},
		{resp("<value><int>1_000</int></value>"), false},
		{resp("<value><int></int></value>"), false},
		{resp("<value><int/></value>"), false},
		{resp("<value><int>\u00a012\u0085</int></value>"), true},
		{resp("<value><boolean>1</boolean></value>"), true},
		{resp("<value><boolean> 0 </boolean></value>"), true},
		{resp("<value><boolean>true</boolean></value>"), false},
		{resp("<value><double>1.0</double></value>"), true},
		{resp("<value><double> -1.5e300 </double></value>"), true},
		{resp("<value><double>NaN</double></value>"), true},
		{resp("<value><double>inf</double></value>"), true},
		{resp("<value><double>0x1p-2</double></value>"), true},
		{resp("<value><double>1e400</double></value>"), false},
		{resp("<value><float>2.5</float></value>"), true},
		{resp("<value><dateTime.iso8601> 20260101T00:00:00 </dateTime.iso8601></value>"), true},
		{resp("<value><base64>\naGVs\nbG8=\n</base64></value>"), true},
		{resp("<value><base64/></value>"), true},
		{resp("<value><base64>!!</base64></value>"), false},
		{resp("<value><nil/></value>"), true},
		{resp("<value><nil>ignored</nil></value>"), true},
		{resp("<value><nil /></value>"), true},
		{resp("<value><ex:nil xmlns:ex=\"http://ws.apache.org/xmlrpc/namespaces/extensions\"/></value>"), false},
		{resp("<value><string a=\"b\">x</string></value>"), false},
		{resp("<value><unknown>x</unknown></value>"), false},
		{resp("<value><string>x</string><string>y</string></value>"), false},
		{resp("<value><string>x</String></value>"), false},
		{resp("<value><string>x</string ></value >"), true},
		{resp("<value\n><string\t>x</string\r\n></value>"), true},
		// arrays and structs
		{resp("<value><array><data/></array></value>"), true},
		{resp("<value><array><data></data></array></value>"), true},
		{resp("<value><array/></value>"), false},
		{resp("<value><array></array></value>"), false},
		{resp("<value><array><data><value><int>1</int></value>\n<value/></data>\n</array></value>"), true},
		{resp("<value><array><data><value>1</value></data><data/></array></value>"), false},
		{resp("<value><array><data><int>1</int></data></array></value>"), false},
		{resp("<value><struct/></value>"), true},
		{resp("<value><struct></struct></value>"), true},
		{resp("<value><struct><member><name>a</name><value><int>1</int></value></member><member><name>a</name><value><int>2</int></value></member></struct></value>"), true},
		{resp("<value><struct><member><value><int>1</int></value></member></struct></value>"), true},
		{resp("<value><struct><member><name>x</name><name>y</name><value>1</value><value>2</value></member></struct></value>"), true},
		{resp("<value><struct><member><name/><value/></member></struct></value>"), true},
		{resp("<value><struct><member><name>a &amp; b</name></member></struct></value>"), false},
		{resp("<value><struct><member/></struct></value>"), false},
		{resp("<value><struct><member><name>a<x/></name><value/></member></struct></value>"), false},
		{resp("<value><struct> junk <member><name>a</name><value/></member></struct></value>"), false},
		// documents
		{"<methodResponse><params><param><value>x</value></param></params></methodResponse>", true},
		{"\n\n  <methodResponse><params><param><value>x</value></param></params></methodResponse>", true},
		{`<?xml version="1.0" encoding="UTF-8"?><methodResponse><params><param><value>x</value></param></params></methodResponse>`, true},
		{`<?xml version="1.0" encoding="latin1"?><methodResponse><params><param><value>x</value></param></params></methodResponse>`, false},
		{`<?xml version="1.1"?><methodResponse><params><param><value>x</value></param></params></methodResponse>`, false},
		{"<!-- c --><methodResponse><params><param><value>x</value></param></params></methodResponse>", false},
		{"junk<methodResponse><params><param><value>x</value></param></params></methodResponse>", false},
		{"<methodResponse><params><param><value>x</value></param></params>trailing junk <<<", true},
		{"<methodResponse><params><param><value>x</value></param><param><value>y</value></param></params></methodResponse>", false},
		{"<methodResponse><params></params></methodResponse>", false},
		{"<methodResponse><params/></methodResponse>", false},
		{"<methodResponse></methodResponse>", false},
		{"<methodResponse/>", false},
		{"<methodResponse><params><param/></params></methodResponse>", false},
		{"<methodResponse><params><param><value>x</value>y</param></params></methodResponse>", false},
		{"<methodResponse><params><param><value>x", false},
		{"", false},
		{"<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member><name>faultString</name><value>boom</value></member><member><name>traceback</name><value><array><data><value>l1</value><value><int>2</int></value></data></array></value></member></struct></value></fault>", true},
		{"<methodResponse><fault><value><struct><member><name>faultCode</name><value><string>1</string></value></member></struct></value></fault></methodResponse>", false},
		{"<methodResponse><fault><value/></fault></methodResponse>", false},
		{"<methodResponse><fault/></methodResponse>", false},
		{"<methodResponse><other/></methodResponse>", false},
		{"<methodCall><methodName> m </methodName><params><param><value>1</value></param></params></methodCall>", true},
		{"<methodCall><methodName>m</methodName></methodCall>", true},
		{"<methodCall><methodName>m</methodName><params/></methodCall>", true},
		{"<methodCall><params/><methodName>a</methodName><methodName>b</methodName><params><param><value/></param></params></methodCall>", true},
		{"<methodCall><methodName> </methodName></methodCall>", false},
		{"<methodCall><params/></methodCall>", false},
		{"<methodCall/>", false},
		{"<methodCall><methodName>m</methodName></methodCall><garbage", true},
		{"<methodCall><methodName>m</methodName><x/></methodCall>", false},
		{"<methodCall><methodName>m</methodName></methodcall>", false},
		{"<methodCall><methodName>m<![CDATA[n]]>&#x6f;</methodName></methodCall>", true},
	}
	for _, tc := range cases {
		fastCall, fastResp := checkSame(t, []byte(tc.body))
		if tc.fast && !fastCall && !fastResp {
			t.Errorf("scanner fell back on %q", tc.body)
		}
		if !tc.fast && (fastCall || fastResp) {
			_, _, errC := xmlDecodeCall([]byte(tc.body))
			_, _, errR := xmlDecodeResponse([]byte(tc.body))
			if errC != nil && errR != nil {
				t.Errorf("scanner accepted %q, which encoding/xml rejects", tc.body)
			}
		}
	}
	// Nesting: the depth limit is the old decoder's.
	for _, n := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		body := resp(strings.Repeat("<value><array><data>", n-1) + "<value>x</value>" + strings.Repeat("</data></array></value>", n-1))
		checkSame(t, []byte(body))
	}
}

// FuzzDecode checks that the scanner-backed DecodeCall and DecodeResponse
// agree with the encoding/xml decoder on arbitrary input: the same values,
// or the same error.
func FuzzDecode(f *testing.F) {
	for _, b := range recordedBodies(f) {
		f.Add(b)
	}
	f.Add(multiCallTaskInfoResponse(f))
	f.Add([]byte(resp("<value><string>a &amp; &#x42; <![CDATA[<c>]]> \r\n é</string></value>")))
	f.Add([]byte(resp("<value><array><data><value><nil/></value><value><i8>1099511627776</i8></value><value/><value>bare</value></data></array></value>")))
	f.Add([]byte(resp("<value><struct><member><name>b</name><value><base64>aGVsbG8=</base64></value></member><member><name>d</name><value><double>1.5</double></value></member><member><name>t</name><value><dateTime.iso8601>20260101T00:00:00</dateTime.iso8601></value></member><member><name>f</name><value><boolean>0</boolean></value></member></struct></value>")))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkSame(t, body)
	})
}

// encodeAny's reflection-free cases must write what encodeValue writes.
func TestEncodeAny_MatchesReflection(t *testing.T) {
	deep := any("x")
	for range maxDepth + 1 {
		deep = []any{deep}
	}
	var nilMap map[string]any
	var nilSlice []any
	values := []any{
		nil, "", "a & <b> \r\n é \xff\xfe 😀", true, false, 0, -1, 1 << 31, int64(-1) << 40, 1.0, 1.5e300, -0.0, 1e-7,
		nilMap, nilSlice, []any{}, map[string]any{},
		[]any{1, "x", nil, []any{2.5, map[string]any{"b": 1, "a": kw{"k": "v"}, "__starstar": true, "z": nil}}},
		map[string]any{"f": math.NaN()}, []any{math.Inf(1)}, map[string]any{"deep": deep}, deep,
		map[string]any{"s": struct{ A int }{1}, "p": new(int), "m": map[string]int{"x": 1}},
	}
	for _, v := range values {
		var got, want bytes.Buffer
		gerr := encodeAny(&got, v, 0)
		werr := encodeValue(&want, reflect.ValueOf(v), 0)
		if errString(gerr) != errString(werr) || (werr == nil && got.String() != want.String()) {
			t.Errorf("%#v:\n got %q %v\nwant %q %v", v, got.String(), gerr, want.String(), werr)
		}
	}
}
