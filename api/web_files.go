package api

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/rida-build/rida/state"
)

// maxLogPage caps how much of a log the HTML page shows: the last
// maxLogPage bytes (the raw log is always whole).
const maxLogPage = 8 << 20

// gitNoise matches git's progress lines, which say nothing about a build.
var gitNoise = regexp.MustCompile(`^(remote: )?(Enumerating objects|Counting objects|Compressing objects|Receiving objects|Resolving deltas|Unpacking objects|Total \d+ \(delta)`)

// errorLine matches the lines the log page's "first error" link jumps to.
var errorLine = regexp.MustCompile(`(?i)\berror\b|bad exit status|\bfailed\b`)

// logLine is one shown line of a log page.
type logLine struct {
	N     int
	Text  string
	Error bool
}

// componentFromPath finds the {component} of build mb (by key, else by
// package name).
func componentFromPath(mb *state.ModuleBuild, name string) *state.ComponentBuild {
	var comp *state.ComponentBuild
	for i := range mb.Components {
		if mb.Components[i].Key == name || (comp == nil && mb.Components[i].Package == name) {
			comp = &mb.Components[i]
		}
	}
	return comp
}

// pageLog serves a component's log: an HTML page with numbered lines
// (anchors #L<n>), a link to the first error and, while the component
// builds, a live tail; with ?raw=1 the text itself. A local file is read
// only when it lies inside Options.DataDir (after resolving symlinks); a
// remote log (Koji task directory) is a redirect. Never an arbitrary path.
func (s *Server) pageLog(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.buildFromPath(w, r)
	if !ok {
		return
	}
	id := mb.ID
	name := r.PathValue("component")
	comp := componentFromPath(mb, name)
	if comp == nil {
		s.fail(w, r, errorf(http.StatusNotFound, "build %d has no component %q", id, name))
		return
	}
	if comp.LogPath == "" && comp.ReusedFrom != 0 {
		http.Redirect(w, r, logURL(comp.ReusedFrom, cmp.Or(comp.Key, comp.Package))+rawQuery(r), http.StatusFound)
		return
	}
	if comp.LogPath == "" {
		s.fail(w, r, errorf(http.StatusNotFound, "component %q of build %d has no log yet", name, id))
		return
	}
	if u, err := url.Parse(comp.LogPath); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		http.Redirect(w, r, comp.LogPath, http.StatusFound)
		return
	}
	p, err := s.underDataDir(comp.LogPath)
	if err != nil {
		s.opts.Logger.Warn("api: refused log path", "build", id, "component", name, "err", err)
		s.fail(w, r, errorf(http.StatusNotFound, "the log of component %q of build %d is not available here", name, id))
		return
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = errorf(http.StatusNotFound, "the log of component %q of build %d is gone", name, id)
		}
		s.fail(w, r, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		s.fail(w, r, errorf(http.StatusNotFound, "the log of component %q of build %d is not a file", name, id))
		return
	}
	if r.URL.Query().Has("raw") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// A large log may take longer than the write timeout to send.
		http.ServeContent(streaming(w, r), r, "", st.ModTime(), f)
		return
	}
	size := st.Size()
	skipped := int64(0)
	if size > maxLogPage {
		skipped = size - maxLogPage
		if _, err := f.Seek(skipped, io.SeekStart); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxLogPage))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	first := 1
	if skipped > 0 {
		// Number lines as in the whole file: count the skipped ones.
		if _, err := f.Seek(0, io.SeekStart); err == nil {
			n, _ := countLines(io.LimitReader(f, skipped))
			first = n + 1
		}
		if i := bytes.IndexByte(data, '\n'); i >= 0 { // drop the cut line
			data, first = data[i+1:], first+1
		}
	}
	lines, noise, firstErr := logLines(data, first)
	building := comp.State == "building" && !mb.State.Terminal()
	s.page(w, r, "log", map[string]any{
		"Title": fmt.Sprintf("Build %d: %s log", id, comp.Package), "Build": mb, "Component": comp,
		"Lines": lines, "Noise": noise, "FirstError": firstErr, "Skipped": skipped,
		"Raw": logURL(id, cmp.Or(comp.Key, comp.Package)) + "?raw=1", "Live": building, "Size": size, "Next": first + countNewlines(data),
	})
}

func rawQuery(r *http.Request) string {
	if r.URL.Query().Has("raw") {
		return "?raw=1"
	}
	return ""
}

// logLines splits a log into numbered lines, leaving out git progress
// noise (a line's text is what follows its last carriage return, as a
// terminal shows it).
func logLines(data []byte, first int) (lines []logLine, noise, firstErr int) {
	text := strings.TrimSuffix(string(data), "\n")
	if text == "" {
		return nil, 0, 0
	}
	for i, l := range strings.Split(text, "\n") {
		if j := strings.LastIndexByte(strings.TrimRight(l, "\r"), '\r'); j >= 0 {
			l = l[j+1:]
		}
		l = strings.TrimRight(l, "\r")
		if gitNoise.MatchString(l) {
			noise++
			continue
		}
		ll := logLine{N: first + i, Text: l, Error: errorLine.MatchString(l)}
		if ll.Error && firstErr == 0 {
			firstErr = ll.N
		}
		lines = append(lines, ll)
	}
	return lines, noise, firstErr
}

func countLines(r io.Reader) (int, error) {
	sc := bufio.NewReader(r)
	n := 0
	buf := make([]byte, 64<<10)
	for {
		k, err := sc.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func countNewlines(b []byte) int { return bytes.Count(b, []byte{'\n'}) }

// hasRepo reports whether build mb has a local repository the pages may
// serve: its result directory lies inside the data directory.
func (s *Server) hasRepo(mb *state.ModuleBuild) bool {
	if mb.ResultDir == "" {
		return false
	}
	dir, err := s.underDataDir(path.Join(mb.ResultDir, "repo"))
	if err != nil {
		return false
	}
	st, err := os.Stat(dir)
	return err == nil && st.IsDir()
}

// repoRoot opens build mb's repository directory (<result dir>/repo) as
// an os.Root: every open below it stays inside it, whatever ".." or
// symlinks the path holds.
func (s *Server) repoRoot(mb *state.ModuleBuild) (*os.Root, error) {
	if mb.ResultDir == "" {
		return nil, errorf(http.StatusNotFound, "build %d has no repository on this server", mb.ID)
	}
	dir, err := s.underDataDir(path.Join(mb.ResultDir, "repo"))
	if err != nil {
		s.opts.Logger.Warn("api: refused repository path", "build", mb.ID, "err", err)
		return nil, errorf(http.StatusNotFound, "build %d has no repository on this server", mb.ID)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, errorf(http.StatusNotFound, "build %d has no repository on this server", mb.ID)
	}
	return root, nil
}

// repoEntry is one file or directory of a repository listing.
type repoEntry struct {
	Name string
	Dir  bool
	Size int64
}

// pageRepo serves build {id}'s repository: RPMs, SRPMs, repodata/ and
// modules.yaml, and an HTML listing for a directory. Only regular files and
// directories inside <result dir>/repo are served; a path that leaves it
// ("..", a symlink pointing out) is 404.
func (s *Server) pageRepo(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.buildFromPath(w, r)
	if !ok {
		return
	}
	root, err := s.repoRoot(mb)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer root.Close()
	rel := r.PathValue("path")
	notFound := errorf(http.StatusNotFound, "build %d's repository has no %q", mb.ID, rel)
	clean := path.Clean("/" + rel)[1:]
	if clean == "" {
		clean = "."
	}
	if strings.Contains(rel, "\\") || (rel != "" && clean != strings.TrimSuffix(rel, "/")) {
		s.fail(w, r, notFound)
		return
	}
	st, err := root.Lstat(clean)
	if err != nil || (!st.Mode().IsRegular() && !st.IsDir()) {
		s.fail(w, r, notFound)
		return
	}
	if st.IsDir() {
		if clean != "." && !strings.HasSuffix(rel, "/") {
			http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
			return
		}
		d, err := root.Open(clean)
		if err != nil {
			s.fail(w, r, notFound)
			return
		}
		defer d.Close()
		ents, err := d.ReadDir(-1)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var list []repoEntry
		for _, e := range ents {
			if e.Type()&fs.ModeSymlink != 0 || (!e.Type().IsRegular() && !e.IsDir()) {
				continue
			}
			var size int64
			if info, err := e.Info(); err == nil {
				size = info.Size()
			}
			list = append(list, repoEntry{Name: e.Name(), Dir: e.IsDir(), Size: size})
		}
		s.page(w, r, "repo", map[string]any{
			"Title": fmt.Sprintf("Build %d: repository /%s", mb.ID, strings.TrimPrefix(clean, ".")), "Build": mb,
			"Path": strings.TrimPrefix(clean, "."), "Entries": list, "Parent": clean != ".",
		})
		return
	}
	f, err := root.Open(clean)
	if err != nil {
		s.fail(w, r, notFound)
		return
	}
	defer f.Close()
	fst, err := f.Stat()
	if err != nil || !fst.Mode().IsRegular() {
		s.fail(w, r, notFound)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch {
	case strings.HasSuffix(clean, ".rpm"):
		w.Header().Set("Content-Type", "application/x-rpm")
	case strings.HasSuffix(clean, ".yaml"):
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	// A large package may take longer than the write timeout to send.
	http.ServeContent(streaming(w, r), r, path.Base(clean), fst.ModTime(), f)
}

// baseURL is rida's external base: Options.PublicURL, else the request's
// own scheme and Host.
func (s *Server) baseURL(r *http.Request) string {
	if b := strings.TrimRight(s.opts.PublicURL, "/"); b != "" {
		return b
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// dnfRepo serves a .repo file for build {id}'s repository, for
// /etc/yum.repos.d/ (module_hotfixes: the packages install without
// enabling the module stream).
func (s *Server) dnfRepo(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.buildFromPath(w, r)
	if !ok {
		return
	}
	if !s.hasRepo(mb) {
		s.fail(w, r, errorf(http.StatusNotFound, "build %d has no repository on this server", mb.ID))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "[rida-%s-%s-%d]\nname=rida build %d: %s\nbaseurl=%s/builds/%d/repo/\nenabled=1\ngpgcheck=0\nmodule_hotfixes=1\n",
		mb.Name, mb.Stream, mb.ID, mb.ID, nsvcOf(mb), s.baseURL(r), mb.ID)
}

// finalModulemdFile serves a done or ready build's final modulemd as YAML.
func (s *Server) finalModulemdFile(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.buildFromPath(w, r)
	if !ok {
		return
	}
	if (mb.State != state.ModuleStateDone && mb.State != state.ModuleStateReady) || mb.Modulemd == "" {
		s.fail(w, r, errorf(http.StatusNotFound, "build %d has no final modulemd: its state is %s, not done or ready", mb.ID, mb.State))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", "inline; filename=\""+mb.Name+"-"+mb.Stream+"-"+strconv.FormatUint(mb.Version, 10)+".modulemd.yaml\"")
	_, _ = io.WriteString(w, mb.Modulemd)
}
