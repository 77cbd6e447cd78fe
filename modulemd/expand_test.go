package modulemd

import (
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	deps := func(ds ...Dependencies) *Stream { return &Stream{Name: "m", Stream: "s", Dependencies: ds} }
	br := func(kv ...string) map[string][]string {
		m := map[string][]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = strings.Split(kv[i+1], ",")
		}
		return m
	}
	for _, tc := range []struct {
		name string
		in   *Stream
		want []string // per expanded stream: "br | req"
		err  string
	}{
		{"NoExpansion", deps(Dependencies{BuildRequires: br("platform", "el9"), Requires: br("platform", "el9")}),
			[]string{"platform:el9 | platform:el9"}, ""},
		{"TwoPlatformsPinned", deps(Dependencies{BuildRequires: br("platform", "el8,el9"), Requires: br("platform", "el8,el9")}),
			[]string{"platform:el8 | platform:el8", "platform:el9 | platform:el9"}, ""},
		{"RequiresDifferentKept", deps(Dependencies{BuildRequires: br("platform", "el8,el9"), Requires: br("platform", "el9")}),
			[]string{"platform:el8 | platform:el9", "platform:el9 | platform:el9"}, ""},
		{"Product", deps(Dependencies{BuildRequires: br("platform", "el9", "nodejs", "18,20")}),
			[]string{"nodejs:18 platform:el9 | ", "nodejs:20 platform:el9 | "}, ""},
		{"TwoEntriesDeduplicated", deps(
			Dependencies{BuildRequires: br("platform", "el8")},
			Dependencies{BuildRequires: br("platform", "el9,el8")}),
			[]string{"platform:el8 | ", "platform:el9 | "}, ""},
		{"AllStreams", deps(Dependencies{BuildRequires: map[string][]string{"platform": {}}}), nil, "dependencies[0].buildrequires.platform: an empty list"},
		{"Exclusion", deps(Dependencies{BuildRequires: br("platform", "-el8")}), nil, `"-el8": exclusions`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Expand(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var sum []string
			for _, s := range got {
				if len(s.Dependencies) != 1 {
					t.Fatalf("expanded stream has %d dependency entries", len(s.Dependencies))
				}
				d := s.Dependencies[0]
				var b, r []string
				for _, n := range sortedKeys(d.BuildRequires) {
					b = append(b, n+":"+strings.Join(d.BuildRequires[n], ","))
				}
				for _, n := range sortedKeys(d.Requires) {
					r = append(r, n+":"+strings.Join(d.Requires[n], ","))
				}
				sum = append(sum, strings.Join(b, " ")+" | "+strings.Join(r, " "))
			}
			if strings.Join(sum, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("expanded:\n%s\nwant:\n%s", strings.Join(sum, "\n"), strings.Join(tc.want, "\n"))
			}
			if len(got) > 1 && got[0] == tc.in {
				t.Error("expanded streams must be copies")
			}
		})
	}
}
