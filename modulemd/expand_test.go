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

func TestExpandWith_Available(t *testing.T) {
	for _, tc := range []struct {
		name    string
		br      map[string][]string
		avail   map[string][]string
		want    []string
		wantErr string
	}{
		{name: "empty list", br: map[string][]string{"platform": {"el9"}, "perl": {}}, avail: map[string][]string{"perl": {"5.30", "5.32"}},
			want: []string{"perl:5.30", "perl:5.32"}},
		{name: "exclusion", br: map[string][]string{"platform": {"el9"}, "perl": {"-5.30"}}, avail: map[string][]string{"perl": {"5.30", "5.32", "5.34"}},
			want: []string{"perl:5.32", "perl:5.34"}},
		{name: "nothing left", br: map[string][]string{"platform": {"el9"}, "perl": {"-5.30"}}, avail: map[string][]string{"perl": {"5.30"}},
			wantErr: "matches none of the available streams of perl (5.30)"},
		{name: "not known", br: map[string][]string{"platform": {"el9"}, "perl": {}}, avail: map[string][]string{},
			wantErr: "an empty list means every active stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Stream{Name: "m", Dependencies: []Dependencies{{BuildRequires: tc.br, Requires: map[string][]string{"perl": tc.br["perl"]}}}}
			out, err := ExpandWith(s, ExpandOptions{Available: tc.avail})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range out {
				st := o.Dependencies[0].BuildRequires["perl"]
				if len(st) != 1 {
					t.Fatalf("not pinned: %v", st)
				}
				// The runtime requirement equal to the buildrequirement is
				// pinned to the stream built against.
				if rq := o.Dependencies[0].Requires["perl"]; len(rq) != 1 || rq[0] != st[0] {
					t.Errorf("requires %v, want [%s]", rq, st[0])
				}
				got = append(got, "perl:"+st[0])
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
