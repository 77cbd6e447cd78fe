package modgraph

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rida-build/rida/modulemd"
)

func ref(s string) StreamRef {
	n, st, _ := strings.Cut(s, ":")
	return StreamRef{Name: n, Stream: st}
}

// graph is a test graph: stream → the streams it buildrequires.
type graph map[string][]string

func (g graph) dependents(s StreamRef) ([]StreamRef, error) {
	var out []StreamRef
	for from, tos := range g {
		if slices.Contains(tos, s.String()) {
			out = append(out, ref(from))
		}
	}
	return out, nil
}

func (g graph) buildRequires(s StreamRef) ([]StreamRef, error) {
	var out []StreamRef
	for _, t := range g[s.String()] {
		out = append(out, ref(t))
	}
	return out, nil
}

func TestRequirementMatches(t *testing.T) {
	for _, tc := range []struct {
		streams []string
		stream  string
		want    bool
	}{
		{nil, "1", true},
		{[]string{"1"}, "1", true},
		{[]string{"1", "2"}, "2", true},
		{[]string{"1"}, "2", false},
		{[]string{"-1"}, "2", true},
		{[]string{"-1"}, "1", false},
		{[]string{"-1", "-2"}, "3", true},
		{[]string{"-1", "3"}, "2", false},
	} {
		if got := (Requirement{Name: "m", Streams: tc.streams}).Matches(tc.stream); got != tc.want {
			t.Errorf("%v matches %q = %v, want %v", tc.streams, tc.stream, got, tc.want)
		}
	}
}

func TestBuildRequirements(t *testing.T) {
	s := &modulemd.Stream{Dependencies: []modulemd.Dependencies{
		{BuildRequires: map[string][]string{"platform": {"el9"}, "perl": {"5.30"}, "nodejs": {}}},
		{BuildRequires: map[string][]string{"platform": {"el8"}, "perl": {"5.32", "5.30"}, "nodejs": {"18"}}},
	}}
	got := BuildRequirements(s)
	want := []Requirement{{Name: "nodejs"}, {Name: "perl", Streams: []string{"5.30", "5.32"}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestChoose(t *testing.T) {
	cands := []Candidate{
		{ID: 1, Version: 10, Platform: "el9"},
		{ID: 2, Version: 30, Platform: "el8"},
		{ID: 3, Version: 20, Platform: "el9"},
		{ID: 4, Version: 20, Platform: "el9"},
	}
	if c, ok := Choose(cands, "el9"); !ok || c.ID != 4 {
		t.Errorf("el9: got %v %v, want build 4 (newest version, later build)", c, ok)
	}
	if c, ok := Choose(cands, "el8"); !ok || c.ID != 2 {
		t.Errorf("el8: got %v %v, want build 2", c, ok)
	}
	if _, ok := Choose(cands, "f40"); ok {
		t.Error("f40: a build for another platform was chosen")
	}
	if _, ok := Choose(nil, "el9"); ok {
		t.Error("no candidates: ok")
	}
}

func steps(c *Cascade) string {
	var out []string
	for _, s := range c.Steps {
		out = append(out, s.Stream.String())
	}
	return strings.Join(out, " ")
}

func TestPlanCascade(t *testing.T) {
	for _, tc := range []struct {
		name     string
		g        graph
		root     string
		maxDepth int
		want     string
		beyond   string
		cycle    string
	}{
		{name: "chain", g: graph{"b:1": {"a:1"}, "c:1": {"b:1"}}, root: "a:1", want: "b:1 c:1"},
		{name: "diamond", g: graph{"b:1": {"a:1"}, "c:1": {"a:1"}, "d:1": {"b:1", "c:1"}}, root: "a:1", want: "b:1 c:1 d:1"},
		{name: "diamond from the side", g: graph{"b:1": {"a:1"}, "c:1": {"a:1"}, "d:1": {"b:1", "c:1"}}, root: "b:1", want: "d:1"},
		// d is reached at depth 1 (it buildrequires a) but also needs c,
		// which is at depth 2: d must come after c.
		{name: "short and long path", g: graph{"b:1": {"a:1"}, "c:1": {"b:1"}, "d:1": {"a:1", "c:1"}}, root: "a:1", want: "b:1 c:1 d:1"},
		{name: "other stream not affected", g: graph{"b:1": {"a:2"}, "c:1": {"a:1"}}, root: "a:1", want: "c:1"},
		{name: "no dependents", g: graph{}, root: "a:1", want: ""},
		{name: "self edge", g: graph{"a:1": {"a:1"}, "b:1": {"a:1"}}, root: "a:1", want: "b:1"},
		{name: "depth bound", g: graph{"b:1": {"a:1"}, "c:1": {"b:1"}, "d:1": {"c:1"}}, root: "a:1", maxDepth: 2, want: "b:1 c:1", beyond: "[d:1]"},
		{name: "cycle among dependents", g: graph{"b:1": {"a:1", "c:1"}, "c:1": {"b:1"}}, root: "a:1", cycle: "b:1 → c:1 → b:1"},
		{name: "cycle back to root", g: graph{"a:1": {"c:1"}, "b:1": {"a:1"}, "c:1": {"b:1"}}, root: "a:1", cycle: "a:1 → c:1 → b:1 → a:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := PlanCascade(ref(tc.root), tc.g.dependents, tc.maxDepth)
			if tc.cycle != "" {
				var ce *CycleError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.cycle) {
					t.Fatalf("got %v, want a cycle error naming %s", err, tc.cycle)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := steps(c); got != tc.want {
				t.Errorf("order %q, want %q", got, tc.want)
			}
			if tc.beyond != "" && fmt.Sprint(c.Beyond) != tc.beyond {
				t.Errorf("beyond %v, want %s", c.Beyond, tc.beyond)
			}
		})
	}
}

func TestCascadeStepAfter(t *testing.T) {
	g := graph{"b:1": {"a:1"}, "c:1": {"a:1"}, "d:1": {"b:1", "c:1"}}
	c, err := PlanCascade(ref("a:1"), g.dependents, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := c.Steps[len(c.Steps)-1]
	if last.String() != "d:1 (after b:1, c:1)" || last.Depth != 2 {
		t.Errorf("last step %v depth %d", last, last.Depth)
	}
}

func TestFindCycle(t *testing.T) {
	g := graph{"a:1": {"b:1"}, "b:1": {"c:1", "platform:el9"}, "c:1": {"a:1"}, "x:1": {"x:1", "b:1"}}
	err := FindCycle(ref("a:1"), g.buildRequires)
	if err == nil || !strings.Contains(err.Error(), "a:1 → b:1 → c:1 → a:1") {
		t.Fatalf("got %v", err)
	}
	// x is not on the cycle (it only reaches it): no cycle through x.
	if err := FindCycle(ref("x:1"), g.buildRequires); err != nil {
		t.Fatalf("x: %v", err)
	}
	if err := FindCycle(ref("z:1"), g.buildRequires); err != nil {
		t.Fatalf("z: %v", err)
	}
}
