package scm_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/scm/scmtest"
)

// BenchmarkFirstFetch_20000Commits: the first fetch of a component's
// mirror (what the planner does on the first push of a repository: a
// clone) of a repository with 20,000 commits and 300 files, against
// `git clone --mirror` of the same repository. One op is one clone into a
// fresh directory.
func BenchmarkFirstFetch_20000Commits(b *testing.B) {
	src := scmtest.History(b, filepath.Join(b.TempDir(), "rpms", "hist"), "main", 20000, 300, nil)
	b.Run("rida", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			m, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(b.TempDir(), fmt.Sprint(i))})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Fetch(b.Context(), src.URL()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("git-clone-mirror", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			out, err := exec.Command("git", "clone", "-q", "--mirror", src.URL(), filepath.Join(b.TempDir(), fmt.Sprint(i))).CombinedOutput()
			if err != nil {
				b.Fatalf("git clone --mirror: %v\n%s", err, out)
			}
		}
	})
}
