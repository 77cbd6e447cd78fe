package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rida-build/rida/modulemd"
)

const validateHelp = `
Check modulemd files with rida's own rules, offline, before pushing: the
structure (modulemd.Parse, or ParseIndex for a file of several documents),
libmodulemd's semantic rules plus rida's stricter ones (modulemd.Validate:
component names usable as paths, no buildafter self-references or cycles),
and the batches the runner would build (modulemd.Batches). A module source
file is one stream v2, packager v2 or packager v3 document; a file with
several documents is read as an index (modules.yaml). FILE "-" is stdin.

Every problem is printed as FILE:LINE:COL: FIELD: MESSAGE (LINE:COL when
known). Included modules (components.modules) are not read: their batches
are checked when the module is built.

Exit status: 0 every file is valid; 1 a file is invalid or unreadable;
2 bad arguments or flags.`

// validateProblem is one thing wrong with a file.
type validateProblem struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// validateResult is what rida validate found in one file.
type validateResult struct {
	File     string            `json:"file"`
	Valid    bool              `json:"valid"`
	Streams  []string          `json:"streams"`
	Problems []validateProblem `json:"problems"`
}

func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "[--output text|json] FILE...", validateHelp, stderr)
	output := fs.String("output", "text", "output format: text or json")
	stdin := fs.String("stdin-name", "-", "the name printed for FILE \"-\"")
	files, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(files) == 0 || (*output != "text" && *output != "json") {
		fmt.Fprintln(stderr, "rida validate: need at least one FILE (\"-\" for stdin) and --output text or json")
		fs.Usage()
		return exitUsage
	}
	var results []validateResult
	exit := exitOK
	for _, f := range files {
		var (
			data []byte
			err  error
			name = f
		)
		if f == "-" {
			data, err = io.ReadAll(io.LimitReader(os.Stdin, 256<<20))
			name = *stdin
		} else {
			data, err = os.ReadFile(f)
		}
		res := validateResult{File: name, Streams: []string{}, Problems: []validateProblem{}}
		if err != nil {
			res.Problems = append(res.Problems, validateProblem{Message: err.Error()})
		} else {
			res = validateData(name, data)
		}
		if !res.Valid {
			exit = exitFail
		}
		results = append(results, res)
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"valid": exit == exitOK, "files": results})
		return exit
	}
	for _, r := range results {
		if r.Valid {
			fmt.Fprintf(stdout, "%s: valid (%s)\n", r.File, strings.Join(r.Streams, ", "))
			continue
		}
		for _, p := range r.Problems {
			loc := r.File
			if p.Line > 0 {
				loc += ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Column)
			}
			if p.Path != "" {
				fmt.Fprintf(stdout, "%s: %s: %s\n", loc, p.Path, p.Message)
			} else {
				fmt.Fprintf(stdout, "%s: %s\n", loc, p.Message)
			}
		}
	}
	return exit
}

// validateData checks one file's contents.
func validateData(name string, data []byte) validateResult {
	res := validateResult{File: name, Streams: []string{}, Problems: []validateProblem{}}
	var (
		streams []*modulemd.Stream
		err     error
	)
	if multiDocument(data) {
		streams, err = modulemd.ParseIndex(data)
	} else {
		streams, err = modulemd.Parse(data)
	}
	if err != nil {
		var pe *modulemd.ParseError
		if errors.As(err, &pe) {
			res.Problems = append(res.Problems, validateProblem{Line: pe.Line, Column: pe.Column, Path: pe.Path, Message: pe.Msg})
		} else {
			res.Problems = append(res.Problems, validateProblem{Message: err.Error()})
		}
		return res
	}
	// A packager v3 file gives one stream per configuration, all from the
	// one document; an index gives one per modulemd document, in order
	// (other documents, defaults and the like, give none). The YAML nodes
	// only give problems their line and column, so the file is parsed a
	// second time only when a problem needs them.
	var (
		docs, streamDocs []*yaml.Node
		loaded           bool
	)
	docFor := func(i int) *yaml.Node {
		if !loaded {
			loaded = true
			docs = yamlDocuments(data)
			for _, d := range docs {
				if docKind(d) == "modulemd" {
					streamDocs = append(streamDocs, d)
				}
			}
		}
		switch {
		case len(docs) == 1:
			return docs[0]
		case i < len(streamDocs):
			return streamDocs[i]
		}
		return nil
	}
	for i, s := range streams {
		label := strings.Trim(s.Name+":"+s.Stream, ":")
		if s.Context != "" {
			label += " (context " + s.Context + ")"
		}
		res.Streams = append(res.Streams, label)
		seen := map[string]bool{}
		add := func(path, msg string) {
			if seen[path+"\x00"+msg] {
				return
			}
			seen[path+"\x00"+msg] = true
			p := validateProblem{Path: path, Message: msg}
			if n := nodeAt(docFor(i), path); n != nil {
				p.Line, p.Column = n.Line, n.Column
			}
			if len(streams) > 1 && label != "" {
				p.Message += " (in " + label + ")"
			}
			res.Problems = append(res.Problems, p)
		}
		if err := s.Validate(); err != nil {
			var ve *modulemd.ValidationError
			if errors.As(err, &ve) {
				for _, fe := range ve.Errors {
					add(fe.Path, fe.Message)
				}
			} else {
				add("", err.Error())
			}
			continue
		}
		if len(s.Components.Modules) > 0 {
			continue // batches need the included modules, read at build time
		}
		if _, err := modulemd.Batches(s); err != nil {
			path, msg := "components.rpms", strings.TrimPrefix(err.Error(), "modulemd: batches: ")
			if p, m, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(p, "components.") {
				path, msg = p, m
			}
			add(path, msg)
		}
	}
	res.Valid = len(res.Problems) == 0
	return res
}

// yamlDocuments decodes data into its YAML documents (nil for those that do
// not decode; the modulemd parser reports why).
func yamlDocuments(data []byte) []*yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*yaml.Node
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if !errors.Is(err, io.EOF) {
				out = append(out, nil)
			}
			return out
		}
		out = append(out, &n)
	}
}

// docKind is a document's "document:" value with any "-packager" or
// "-defaults" suffix kept apart: "modulemd" for streams (v1 or v2).
func docKind(doc *yaml.Node) string {
	if n := child(doc, "document"); n != nil {
		return n.Value
	}
	return ""
}

// child returns the value node of key in mapping n (n may be a document).
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// nodeAt finds the node of a field path ("components.rpms.foo.buildafter",
// "dependencies[0].buildrequires.platform") inside doc's data section; it
// returns the deepest node it reached, so an error about a missing key
// points at its parent, and nil when doc is nil.
func nodeAt(doc *yaml.Node, path string) *yaml.Node {
	cur := child(doc, "data")
	if cur == nil || path == "" {
		return cur
	}
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if open := strings.IndexByte(part, '['); open >= 0 && strings.HasSuffix(part, "]") {
			key = part[:open]
			if n, err := strconv.Atoi(part[open+1 : len(part)-1]); err == nil {
				idx = n
			}
		}
		next := cur
		if key != "" {
			if next = child(cur, key); next == nil {
				return cur
			}
		}
		if idx >= 0 {
			if next.Kind != yaml.SequenceNode || idx >= len(next.Content) {
				return next
			}
			next = next.Content[idx]
		}
		cur = next
	}
	return cur
}

// multiDocument reports whether data holds more than one YAML document,
// without parsing it: a line that is "---" (or starts with "--- ") at
// column 0 is always a document marker in YAML, never content.
func multiDocument(data []byte) bool {
	markers, contentFirst := 0, false
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if bytes.Equal(line, []byte("---")) || bytes.HasPrefix(line, []byte("--- ")) {
			markers++
			continue
		}
		if markers == 0 && len(bytes.TrimSpace(line)) > 0 && !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) && !bytes.HasPrefix(line, []byte("%")) {
			contentFirst = true
		}
	}
	if contentFirst {
		markers++
	}
	return markers > 1
}
