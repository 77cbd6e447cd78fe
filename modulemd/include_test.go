package modulemd

import (
	"strings"
	"testing"
)

func TestInclude_BatchesAsMBS(t *testing.T) {
	parent := &Stream{Name: "p", Stream: "1", Components: Components{
		RPMs: map[string]*Component{
			"a": {Key: "a", BuildOrder: 10},
			"b": {Key: "b", BuildOrder: 20},
			"z": {Key: "z", BuildOrder: 30},
		},
		Modules: map[string]*ModuleComponent{"inc": {Repository: "https://src/modules/inc", Ref: "2.0", BuildOrder: 20}},
	}}
	inc := &Stream{Name: "inc", Stream: "2.0", Components: Components{RPMs: map[string]*Component{
		"x": {Key: "x", BuildOrder: 1},
		"y": {Key: "y", BuildOrder: 2, Ref: "pinned"},
		"w": {Key: "w", BuildOrder: 1},
	}}}
	if err := Include(parent, map[string]*Stream{"inc": inc}); err != nil {
		t.Fatal(err)
	}
	batches, err := Batches(parent)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range batches {
		got = append(got, strings.Join(b.Components, ","))
	}
	// a (10) | b (20, rpm before the module of the same buildorder) |
	// the included module's own batches: w,x (1) then y (2) | z (30).
	if want := "a|b|w,x|y|z"; strings.Join(got, "|") != want {
		t.Errorf("batches %s, want %s", strings.Join(got, "|"), want)
	}
	if batches[0].Number != FirstComponentBatch {
		t.Errorf("first batch %d", batches[0].Number)
	}
	rpms := parent.Components.RPMs
	if rpms["x"].Ref != "2.0" || rpms["y"].Ref != "pinned" {
		t.Errorf("refs: x %q (want the included stream), y %q", rpms["x"].Ref, rpms["y"].Ref)
	}
	if len(parent.Components.Modules) != 0 {
		t.Error("components.modules left in place")
	}
	inc2, _ := parent.Xmd["rida"].(map[string]any)["included"].(map[string]any)["inc"].(map[string]any)
	if inc2["repository"] != "https://src/modules/inc" {
		t.Errorf("xmd.rida.included = %v", parent.Xmd["rida"])
	}
	if _, err := parent.Marshal(); err != nil {
		t.Errorf("merged stream does not marshal: %v", err)
	}
}

func TestInclude_Errors(t *testing.T) {
	mk := func() *Stream {
		return &Stream{Components: Components{
			RPMs:    map[string]*Component{"a": {Key: "a"}},
			Modules: map[string]*ModuleComponent{"inc": {BuildOrder: 1}},
		}}
	}
	for _, tc := range []struct {
		name     string
		mutate   func(*Stream)
		included map[string]*Stream
		want     string
	}{
		{"Missing", nil, map[string]*Stream{}, "components.modules.inc: the included module was not given"},
		{"Duplicate", nil, map[string]*Stream{"inc": {Components: Components{RPMs: map[string]*Component{"a": {}}}}}, `component "a" is in both modules`},
		{"BuildAfter", func(s *Stream) { s.Components.RPMs["b"] = &Component{Key: "b", BuildAfter: []string{"a"}} },
			map[string]*Stream{"inc": {}}, "components.rpms.b.buildafter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mk()
			if tc.mutate != nil {
				tc.mutate(s)
			}
			err := Include(s, tc.included)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
