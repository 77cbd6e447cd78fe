package state

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestStore_SetModuleComponents_ReplacesAndLooksUp(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	s := b.store
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SetModuleComponents(ctx, "nodejs", "20", "modules/nodejs", []IndexedComponent{{"nodejs", "20"}, {"npm", "20"}, {"npm", "20"}}))
	must(s.SetModuleComponents(ctx, "nodejs", "22", "modules/nodejs", []IndexedComponent{{"nodejs", "22"}, {"npm", "main"}}))
	must(s.SetModuleComponents(ctx, "tools", "main", "modules/tools", []IndexedComponent{{"npm", "main"}}))

	tests := []struct {
		comp, ref string
		want      []ModuleStream
	}{
		{"npm", "20", []ModuleStream{{"nodejs", "20", "modules/nodejs"}}},
		{"npm", "main", []ModuleStream{{"nodejs", "22", "modules/nodejs"}, {"tools", "main", "modules/tools"}}},
		{"nodejs", "22", []ModuleStream{{"nodejs", "22", "modules/nodejs"}}},
		{"npm", "2", nil}, // prefix of a ref must not match
		{"np", "main", nil},
	}
	for _, tt := range tests {
		t.Run(tt.comp+"@"+tt.ref, func(t *testing.T) {
			got, err := s.ModulesForComponent(ctx, tt.comp, tt.ref)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("ModulesForComponent = %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	// Replacing drops entries that are no longer listed.
	must(s.SetModuleComponents(ctx, "nodejs", "22", "modules/nodejs", []IndexedComponent{{"nodejs", "22"}}))
	if got, _ := s.ModulesForComponent(ctx, "npm", "main"); !slices.Equal(got, []ModuleStream{{"tools", "main", "modules/tools"}}) {
		t.Errorf("after replace = %v", got)
	}
	// Empty removes the stream.
	must(s.SetModuleComponents(ctx, "tools", "main", "modules/tools", nil))
	if got, _ := s.ModulesForComponent(ctx, "npm", "main"); got != nil {
		t.Errorf("after removal = %v", got)
	}
	comps, repo, err := s.ModuleComponents(ctx, "nodejs", "20")
	if err != nil || repo != "modules/nodejs" || len(comps) != 2 {
		t.Errorf("ModuleComponents = %v %q %v", comps, repo, err)
	}
	if err := s.SetModuleComponents(ctx, "m", "s", "r", []IndexedComponent{{"a\x00b", "main"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NUL in name: %v, want ErrInvalid", err)
	}
}

// populateIndex indexes n module streams with 10 components each, drawn from
// a pool of 5000, plus "hot" (included by every stream), 500 streams per
// transaction (bbolt splits nodes only at commit, so one huge transaction of
// random inserts is quadratic).
func populateIndex(tb testing.TB, s *Store, n int) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	for start := 0; start < n; start += 500 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i := start; i < min(start+500, n); i++ {
				comps := []IndexedComponent{{"hot", "main"}}
				for range 10 {
					comps = append(comps, IndexedComponent{fmt.Sprintf("pkg%04d", rng.IntN(5000)), "main"})
				}
				if err := s.setModuleComponents(tx, fmt.Sprintf("mod%05d", i), "main", fmt.Sprintf("modules/mod%05d", i), comps, nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func TestStore_ModulesForComponent_10000(t *testing.T) {
	b := setup(t)
	populateIndex(t, b.store, 10000)
	got, err := b.store.ModulesForComponent(context.Background(), "hot", "main")
	if err != nil || len(got) != 10000 {
		t.Fatalf("hot lookup = %d results, %v", len(got), err)
	}
	got, err = b.store.ModulesForComponent(context.Background(), "pkg0042", "main")
	if err != nil || len(got) == 0 {
		t.Fatalf("pkg0042 lookup = %v, %v", got, err)
	}
}

// BenchmarkModulesForComponent_10000 measures the component→modules lookup
// with 10 000 module streams indexed. "typical" looks up a component included
// by ~20 streams; "hot" one included by all 10 000.
func BenchmarkModulesForComponent_10000(b *testing.B) {
	bb := setup(b)
	populateIndex(b, bb.store, 10000)
	ctx := context.Background()
	for _, c := range []struct{ name, comp string }{{"typical", "pkg0042"}, {"hot", "hot"}} {
		b.Run(c.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				got, err := bb.store.ModulesForComponent(ctx, c.comp, "main")
				if err != nil {
					b.Fatal(err)
				}
				n = len(got)
			}
			b.ReportMetric(float64(n), "modules/op")
		})
	}
}
