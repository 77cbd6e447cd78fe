package modulemd

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse and ParseIndex. Whatever they
// accept must survive Validate, Batches, Marshal and a second parse.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/libmodulemd", "testdata/cases"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if len(data) < 4<<10 { // big seeds make minimization crawl
				f.Add(data)
			}
			return nil
		})
		if err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) ([]*Stream, error){Parse, ParseIndex} {
			ss, err := parse(data)
			if err != nil {
				continue
			}
			for _, s := range ss {
				_ = s.Validate()
				_, _ = Batches(s)
				out, err := s.Marshal()
				if err != nil {
					t.Fatalf("Marshal of a parsed stream: %v", err)
				}
				back, err := Parse(out)
				if err != nil {
					t.Fatalf("Parse(Marshal()) = %v\n%s", err, out)
				}
				if !reflect.DeepEqual(back[0], s) {
					t.Fatalf("round trip differs:\n%#v\n%#v\n%s", s, back[0], out)
				}
			}
		}
	})
}
