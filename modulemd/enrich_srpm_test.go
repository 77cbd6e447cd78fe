package modulemd

import (
	"context"
	"strings"
	"testing"
)

// TestEnrich_Overridden: a component built from an SRPM is not resolved
// (its repository need not even exist) and its xmd.mbs.rpms ref is null,
// as MBS records SRPM overrides; the others resolve as usual, and the null
// survives Marshal.
func TestEnrich_Overridden(t *testing.T) {
	t.Parallel()
	s := mustParseOne(t, enrichSource())
	r := &fakeResolver{refs: map[string]string{"https://git.example.com/rpms/foo#stable": hashA}}
	opts := enrichOptions(r)
	opts.Overridden = map[string]bool{"bar": true}
	if err := Enrich(context.Background(), s, opts); err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != 1 || r.calls[0] != "https://git.example.com/rpms/foo#stable" {
		t.Errorf("resolver calls %v, want only foo's", r.calls)
	}
	rpms := s.Xmd["mbs"].(map[string]any)["rpms"].(map[string]any)
	bar, ok := rpms["bar"].(map[string]any)
	if !ok || len(bar) != 1 || bar["ref"] != nil {
		t.Errorf("xmd.mbs.rpms.bar = %#v, want {ref: nil}", rpms["bar"])
	}
	if foo := rpms["foo"].(map[string]any); foo["ref"] != hashA {
		t.Errorf("xmd.mbs.rpms.foo = %#v", foo)
	}
	out, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "bar:\n          ref: null") {
		t.Errorf("marshalled xmd lacks bar's null ref:\n%s", out)
	}
}
