package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// The libmodulemd corpus rida keeps (a copy of ../shared/corpus/modulemd:
// libmodulemd's test files, its spec files and expected.tsv, the validator
// type each file is read with) and rida's own cases.
const (
	corpusDir = "../../modulemd/testdata/libmodulemd"
	casesDir  = "../../modulemd/testdata/cases"
)

// validateStricter lists the files on which rida validate and
// modulemd-validator disagree on purpose: rida's stricter rules (also listed
// in docs/api.md, rida validate). On each, rida says invalid with a message
// containing problem, and modulemd-validator says valid; the test checks
// that they still do, so a change on either side shows up.
var validateStricter = map[string]struct{ problem, rule string }{
	"cases/cycle.yaml": {"cycle",
		"buildafter cycles: no build order exists (libmodulemd does not look for cycles)"},
	"cases/self_reference.yaml": {"buildafter",
		"a component listed in its own buildafter"},
	"cases/slash_component_key.yaml": {"component",
		"component names become file and package names: no '/', '..', NUL, whitespace, leading '.' or '-'"},
	"cases/duplicate_key.yaml": {"duplicate",
		"a mapping key given twice (libmodulemd silently keeps one)"},
	"cases/packager_v3_bad_buildafter.yaml": {"buildafter",
		"packager v3 components are checked too (modulemd-validator --type=modulemd-packager-v3 does not check them)"},
	"cases/packager_v3_no_configurations.yaml": {"configurations",
		"packager v3 needs at least one configuration (MANDATORY in the spec; libmodulemd accepts an empty list)"},
	"cases/empty.yaml": {"no YAML document",
		"an empty file is not a module source (libmodulemd reads it as an empty index)"},
	"dependson_v1.yaml": {"stream v1",
		"a single stream v1 document is not accepted as a source file: write stream v2 or packager v3"},
	"stream_unicode_v1.yaml": {"stream v1",
		"a single stream v1 document is not accepted as a source file: write stream v2 or packager v3"},
}

// TestValidate_AgreesWithModulemdValidator runs rida validate (the CLI
// command, --output json) and the real modulemd-validator (Debian's
// libmodulemd-tools, installed by scripts/install-deps) on every file of
// the corpus, the spec files and rida's cases, and checks the verdicts
// agree except for validateStricter.
func TestValidate_AgreesWithModulemdValidator(t *testing.T) {
	bin, err := exec.LookPath("modulemd-validator")
	if err != nil {
		t.Fatalf("modulemd-validator not found (%v): run scripts/install-deps (Debian package libmodulemd-tools)", err)
	}
	types := corpusValidatorTypes(t)
	var files, names []string
	for _, dir := range []string{corpusDir + "/testdata", corpusDir + "/specs", casesDir} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
				files = append(files, p)
				name := strings.TrimPrefix(p, corpusDir+"/testdata/")
				name = strings.TrimPrefix(strings.TrimPrefix(name, corpusDir+"/"), "../../modulemd/testdata/")
				names = append(names, name)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 60 {
		t.Fatalf("found only %d files; is modulemd/testdata complete?", len(files))
	}

	// rida validate, once over every file.
	var out, errOut bytes.Buffer
	runValidate(context.Background(), append([]string{"--output", "json"}, files...), &out, &errOut)
	var report struct {
		Files []validateResult `json:"files"`
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil || len(report.Files) != len(files) {
		t.Fatalf("rida validate --output json: %v, %d results for %d files\n%s%s", err, len(report.Files), len(files), out.String(), errOut.String())
	}

	// modulemd-validator, once per file (it stops at the first), in
	// parallel.
	validatorValid := make([]bool, len(files))
	validatorOut := make([]string, len(files))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, p := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			data, err := os.ReadFile(p)
			if err != nil {
				t.Error(err)
				return
			}
			args := []string{"-q"}
			if vt := validatorType(types, names[i], data); vt != "default" {
				args = append(args, vt)
			}
			cmd := exec.Command(bin, append(args, filepath.Base(p))...)
			cmd.Dir = filepath.Dir(p)
			b, err := cmd.CombinedOutput()
			var exitErr *exec.ExitError
			if err != nil && !(errors.As(err, &exitErr) && exitErr.ExitCode() > 0) {
				t.Errorf("running %s %v: %v\n%s", bin, args, err, b)
			}
			validatorValid[i], validatorOut[i] = err == nil, string(b)
		}()
	}
	wg.Wait()

	seen := map[string]bool{}
	agree := 0
	for i, name := range names {
		res := report.Files[i]
		var msgs []string
		for _, p := range res.Problems {
			msgs = append(msgs, p.Path+": "+p.Message)
		}
		if s, ok := validateStricter[name]; ok {
			seen[name] = true
			if res.Valid || !validatorValid[i] || !strings.Contains(strings.Join(msgs, "\n"), s.problem) {
				t.Errorf("%s: documented stricter rule (%s) no longer holds: rida valid=%v %q, modulemd-validator valid=%v %s",
					name, s.rule, res.Valid, msgs, validatorValid[i], validatorOut[i])
			}
			continue
		}
		if res.Valid != validatorValid[i] {
			t.Errorf("%s: rida validate valid=%v %q, modulemd-validator valid=%v %s", name, res.Valid, msgs, validatorValid[i], validatorOut[i])
			continue
		}
		agree++
	}
	for name := range validateStricter {
		if !seen[name] {
			t.Errorf("validateStricter names %s, which is not in the corpus", name)
		}
	}
	t.Logf("%d files: %d same verdict, %d stricter in rida by design", len(files), agree, len(seen))
}

// corpusValidatorTypes reads expected.tsv: file → how modulemd-validator
// reads it ("default", or "--type=modulemd-packager-vN").
func corpusValidatorTypes(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(corpusDir + "/expected.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if cols := strings.Split(sc.Text(), "\t"); len(cols) >= 2 && cols[0] != "file" {
			out[cols[0]] = cols[1]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	packagerDoc     = regexp.MustCompile(`(?m)^document:\s*modulemd-packager\s*$`)
	documentVersion = regexp.MustCompile(`(?m)^version:\s*(\d+)\s*$`)
	documentLine    = regexp.MustCompile(`(?m)^document:`)
)

// validatorType is how modulemd-validator must read a file to check what
// rida validate checks: expected.tsv's choice for the corpus; for other
// files, a single packager document with --type=modulemd-packager-vN (as
// rida reads it as a module source), anything else as an index.
func validatorType(types map[string]string, name string, data []byte) string {
	if vt, ok := types[name]; ok {
		return vt
	}
	if len(documentLine.FindAll(data, -1)) != 1 || !packagerDoc.Match(data) {
		return "default"
	}
	if m := documentVersion.FindSubmatch(data); m != nil {
		return "--type=modulemd-packager-v" + string(m[1])
	}
	return "default"
}
