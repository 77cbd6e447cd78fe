package wire

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// kw stands in for koji.KW (a Marshaler adding "__starstar").
type kw map[string]any

func (k kw) XMLRPCValue() any {
	m := make(map[string]any, len(k)+1)
	for n, v := range k {
		m[n] = v
	}
	m["__starstar"] = true
	return m
}

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "wire", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// multiCallTaskInfoResponse is the answer to a multiCall of 10 getTaskInfo
// calls (request=True), built from the recorded getTaskInfo answer.
func multiCallTaskInfoResponse(tb testing.TB) []byte {
	tb.Helper()
	v, f, err := DecodeResponse(readTestdata(tb, "12-getTaskInfo.response.xml"))
	if err != nil || f != nil {
		tb.Fatal(err, f)
	}
	res := make([]any, 10)
	for i := range res {
		ti := map[string]any{}
		for k, x := range v.(map[string]any) {
			ti[k] = x
		}
		ti["id"] = 1000 + i
		ti["create_time"] = fmt.Sprintf("2026-11-23 08:35:%02d.334881+00:00", i)
		res[i] = []any{ti}
	}
	body, err := EncodeResponse(res)
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// listTaggedResponse is a listTagged-like answer: 200 build structs.
func listTaggedResponse(tb testing.TB) []byte {
	tb.Helper()
	builds := make([]any, 200)
	for i := range builds {
		name := fmt.Sprintf("pkg%03d", i)
		builds[i] = map[string]any{
			"id": 5000 + i, "build_id": 5000 + i, "package_id": 300 + i, "package_name": name, "name": name,
			"version": "1.2.3", "release": "1.module_f99+1234+abcdef12", "epoch": nil,
			"nvr": name + "-1.2.3-1.module_f99+1234+abcdef12", "draft": false,
			"state": 1, "task_id": 70000 + i, "owner_id": 1, "owner_name": "kojiadmin",
			"volume_id": 0, "volume_name": "DEFAULT", "creation_event_id": 9000 + i,
			"creation_time": "2026-11-23 08:35:36.334881+00:00", "creation_ts": 1795422936.334881,
			"start_time": "2026-11-23 08:35:36.334881+00:00", "start_ts": 1795422936.334881,
			"completion_time": "2026-11-23 08:37:01.000120+00:00", "completion_ts": 1795423021.00012,
			"source": "git+https://src.example.com/rpms/" + name + ".git#0123abc", "extra": nil,
			"cg_id": nil, "cg_name": nil, "tag_id": 42, "tag_name": "module-m-s-1-c-build",
		}
	}
	body, err := EncodeResponse(builds)
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// multiCallRequest is a multiCall of 10 getTaskInfo calls, as the backend's
// poller sends it.
func multiCallRequest() []any {
	calls := make([]any, 10)
	for i := range calls {
		calls[i] = map[string]any{"methodName": "getTaskInfo", "params": []any{1000 + i, kw{"request": true}}}
	}
	return []any{calls}
}

func benchDecodeResponse(b *testing.B, body []byte) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeResponse(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeMultiCall10TaskInfo(b *testing.B) {
	benchDecodeResponse(b, multiCallTaskInfoResponse(b))
}

func BenchmarkDecodeListTagged200(b *testing.B) {
	benchDecodeResponse(b, listTaggedResponse(b))
}

func BenchmarkDecodeCallMultiCall10(b *testing.B) {
	body, err := EncodeCall("multiCall", multiCallRequest())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeCall(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeCallMultiCall10(b *testing.B) {
	params := multiCallRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeCall("multiCall", params); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeResponseListTagged200(b *testing.B) {
	v, _, err := DecodeResponse(listTaggedResponse(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeResponse(v); err != nil {
			b.Fatal(err)
		}
	}
}
