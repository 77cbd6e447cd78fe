package modulemd

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The conformance test runs the real modulemd-validator (Debian package
// libmodulemd-tools) over the libmodulemd test corpus
// (testdata/libmodulemd, see COPYING.libmodulemd) and over rida's own cases
// (testdata/cases), and asserts that rida reaches the same valid/invalid
// verdict, except for the differences by design listed in
// conformanceDifferences.
//
// rida's verdict for a file the validator reads in its default (index) mode
// is ParseIndex plus Validate on every stream; for a file it reads with
// --type=modulemd-packager-vN it is Parse plus Validate on every stream.

const validatorBinary = "modulemd-validator"

// conformanceDifferences lists the files on which rida and libmodulemd
// disagree on purpose. The test asserts they still disagree this way, so a
// change on either side shows up.
var conformanceDifferences = map[string]struct {
	ridaValid, validatorValid bool
	reason                    string
}{
	"cases/cycle.yaml": {false, true,
		"libmodulemd does not detect buildafter cycles; no build order exists, so rida rejects them"},
	"cases/self_reference.yaml": {false, true,
		"libmodulemd does not check that a component builds after itself; rida rejects it"},
	"cases/slash_component_key.yaml": {false, true,
		"component keys become file names and package names; rida rejects '/', '..', NUL, whitespace and a leading '.' or '-'"},
	"cases/duplicate_key.yaml": {false, true,
		"libmodulemd silently keeps one of two equal keys; rida rejects the ambiguity"},
	"cases/packager_v3_bad_buildafter.yaml": {false, true,
		"modulemd-validator --type=modulemd-packager-v3 does not validate components; rida validates the converted streams"},
	"cases/packager_v3_no_configurations.yaml": {false, true,
		"configurations is MANDATORY in the packager v3 spec and without one there is nothing to build; libmodulemd accepts an empty list"},
}

// validatorTypes reads expected.tsv: file -> validator_type ("default" or
// "--type=...") and the recorded verdict.
func validatorTypes(t *testing.T) map[string][2]string {
	t.Helper()
	f, err := os.Open("testdata/libmodulemd/expected.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][2]string{}
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		if first {
			continue
		}
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 3 {
			continue
		}
		out[cols[0]] = [2]string{cols[1], cols[2]}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var packagerHeader = regexp.MustCompile(`(?m)^document:\s*modulemd-packager\s*$`)
var versionHeader = regexp.MustCompile(`(?m)^version:\s*(\d+)\s*$`)

// guessValidatorType picks --type for single-document packager files, the
// way expected.tsv does for the corpus.
func guessValidatorType(data []byte) string {
	if bytes.Count(data, []byte("\ndocument:"))+boolInt(bytes.HasPrefix(data, []byte("document:"))) != 1 {
		return "default"
	}
	if !packagerHeader.Match(data) {
		return "default"
	}
	m := versionHeader.FindSubmatch(data)
	if m == nil {
		return "default"
	}
	return "--type=modulemd-packager-v" + string(m[1])
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ridaVerdict reads data as the validator would with vtype and returns nil
// when rida finds it valid.
func ridaVerdict(data []byte, vtype string) error {
	var streams []*Stream
	var err error
	if strings.HasPrefix(vtype, "--type=modulemd-packager-") {
		streams, err = Parse(data)
	} else {
		streams, err = ParseIndex(data)
	}
	if err != nil {
		return err
	}
	for _, s := range streams {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func TestConformance(t *testing.T) {
	bin, err := exec.LookPath(validatorBinary)
	if err != nil {
		t.Fatalf("%s not found (%v): install the Debian package libmodulemd-tools (apt-get install libmodulemd-tools); CI installs it and this test needs it", validatorBinary, err)
	}
	types := validatorTypes(t)

	var files []string
	for _, dir := range []string{"testdata/libmodulemd/testdata", "testdata/libmodulemd/specs", "testdata/cases"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".yaml") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 60 {
		t.Fatalf("found only %d files; is testdata complete?", len(files))
	}
	seenDiffs := map[string]bool{}

	for _, p := range files {
		name := strings.TrimPrefix(strings.TrimPrefix(p, "testdata/libmodulemd/testdata/"), "testdata/")
		diff, isDiff := conformanceDifferences[name]
		seenDiffs[name] = isDiff
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			vtype := guessValidatorType(data)
			recorded, inTSV := types[name]
			if inTSV {
				vtype = recorded[0]
			}
			args := []string{"-q"}
			if vtype != "default" {
				args = append(args, vtype)
			}
			args = append(args, filepath.Base(p))
			cmd := exec.Command(bin, args...)
			cmd.Dir = filepath.Dir(p)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			runErr := cmd.Run()
			var exitErr *exec.ExitError
			switch {
			case runErr == nil:
			case errors.As(runErr, &exitErr) && exitErr.ExitCode() > 0:
			default:
				t.Fatalf("running %s %v: %v\n%s", bin, args, runErr, out.String())
			}
			validatorValid := runErr == nil
			if inTSV && validatorValid != (recorded[1] == "valid") {
				t.Errorf("validator says valid=%v, expected.tsv recorded %s", validatorValid, recorded[1])
			}

			ridaErr := ridaVerdict(data, vtype)
			ridaValid := ridaErr == nil
			if isDiff {
				if validatorValid != diff.validatorValid || ridaValid != diff.ridaValid {
					t.Errorf("documented difference changed (%s): want rida valid=%v validator valid=%v, got rida valid=%v (%v) validator valid=%v",
						diff.reason, diff.ridaValid, diff.validatorValid, ridaValid, ridaErr, validatorValid)
				}
				return
			}
			if ridaValid != validatorValid {
				t.Errorf("verdicts differ (%s): rida valid=%v (err: %v), modulemd-validator valid=%v\n%s",
					vtype, ridaValid, ridaErr, validatorValid, out.String())
			}
		})
	}
	for name := range conformanceDifferences {
		if !seenDiffs[name] {
			t.Errorf("difference table names %s, which is not in testdata", name)
		}
	}
}

// TestConformance_MarshalOutput checks that libmodulemd accepts what
// Marshal writes: every golden file must validate.
func TestConformance_MarshalOutput(t *testing.T) {
	bin, err := exec.LookPath(validatorBinary)
	if err != nil {
		t.Fatalf("%s not found (%v): install the Debian package libmodulemd-tools (apt-get install libmodulemd-tools); CI installs it and this test needs it", validatorBinary, err)
	}
	files, err := filepath.Glob("testdata/golden/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files (%v)", err)
	}
	for _, f := range files {
		out, err := exec.Command(bin, f).CombinedOutput()
		if err != nil {
			t.Errorf("%s: modulemd-validator rejects Marshal output: %v\n%s", f, err, out)
		}
	}
}
