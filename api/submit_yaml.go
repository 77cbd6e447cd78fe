package api

import (
	"cmp"
	"encoding/json"
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
)

// A scratch build may be submitted with its modulemd instead of an scmurl
// (MBS's YAMLFileHandler with YAML_SUBMIT_ALLOWED off) and with SRPMs that
// replace components (MBS's srpms).

// yamlSubmission checks a submitted modulemd (text; file is the yaml file
// part's name, "" for the modulemd parameter) and returns the request that
// builds it; opts gets the modulemd, the submission time and the SRPMs.
// MBS's rules: the name is the document's, else module_name, else the
// file's name without its extension; the stream is module_stream, else
// the document's, else "master"; the version is the document's, else the
// submission time (the runner prefixes it as it does for commits); the
// document may not carry xmd.mbs. No scmurl or branch is used.
func (s *Server) yamlSubmission(fields map[string]string, text, file string, srpms []srpmEntry, opts *state.RequestOptions) (state.BuildRequest, error) {
	var none state.BuildRequest
	if fields["scmurl"] != "" || fields["branch"] != "" {
		return none, errorf(http.StatusBadRequest, "A modulemd submission takes no \"scmurl\" or \"branch\": the module is built from the submitted modulemd")
	}
	if s.opts.Queue == nil {
		return none, errorf(http.StatusNotImplemented, "submitting builds is not available on this server")
	}
	if strings.TrimSpace(text) == "" {
		return none, errorf(http.StatusBadRequest, "The submitted modulemd is empty")
	}
	streams, err := modulemd.Parse([]byte(text))
	if err != nil {
		return none, errorf(http.StatusBadRequest, "The submitted modulemd is not valid: %v", err)
	}
	name := cmp.Or(streams[0].Name, fields["module_name"], strings.TrimSuffix(file, path.Ext(file)))
	stream := cmp.Or(fields["module_stream"], streams[0].Stream, "master")
	if name == "" {
		return none, errorf(http.StatusBadRequest, "The module's name is not known: give it in the modulemd (data.name), as \"module_name\" or as the yaml file's name")
	}
	if err := checkNamePart("module name", name); err != nil {
		return none, err
	}
	if err := checkNamePart("module stream", stream); err != nil {
		return none, err
	}
	if name == modulemd.PlatformModule {
		return none, errorf(http.StatusBadRequest, "The module name %q is the base module's; it cannot be built", name)
	}
	for _, st := range streams {
		if _, ok := st.Xmd["mbs"]; ok {
			return none, errorf(http.StatusBadRequest, `The "mbs" xmd field is reserved for MBS`)
		}
		st.Name, st.Stream = name, stream
		if err := st.Validate(); err != nil {
			return none, errorf(http.StatusBadRequest, "The submitted modulemd is not valid: %v", err)
		}
	}
	if len(srpms) > 0 {
		if opts.SRPMs, err = matchSRPMs(srpms, componentPackages(streams), name+":"+stream); err != nil {
			return none, err
		}
	}
	opts.Modulemd, opts.SubmittedAt = text, s.opts.Now().UTC()
	return state.BuildRequest{Module: name, Stream: stream, Kind: state.RequestModule}, nil
}

// checkNamePart refuses a submitted module name or stream that is empty,
// too long or holds anything but letters, digits and ._+- (it names
// directories, Koji tags and queue keys).
func checkNamePart(what, v string) error {
	if v == "" || len(v) > 100 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-") != "" || v[0] == '.' || v[0] == '-' {
		return errorf(http.StatusBadRequest, "The %s %q is not usable: at most 100 letters, digits and ._+- (not first: . or -)", what, v)
	}
	return nil
}

// srpmEntry is one SRPM of a submission before it is matched to a
// component: where it is (state.SRPM.Path) and the package names it may
// stand for, preferred first.
type srpmEntry struct {
	path  string
	names []string
}

// srpmEntries reads a submission's srpms: MBS's rules (scratch only: 403;
// a list: 400), then the server's way of taking them (Options.SRPMs):
// Koji upload paths, or SRPM files sent to rida (already stored by
// readSubmission).
func (s *Server) srpmEntries(body map[string]json.RawMessage, sub *submission, scratch bool) ([]srpmEntry, error) {
	raw, inBody := body["srpms"]
	if !inBody && len(sub.files) == 0 {
		return nil, nil
	}
	if !scratch {
		return nil, errorf(http.StatusForbidden, "srpms may only be submitted with scratch builds")
	}
	var paths []string
	if inBody {
		if err := json.Unmarshal(raw, &paths); err != nil || (paths == nil && string(raw) != "[]") {
			return nil, errorf(http.StatusBadRequest, "srpms must be a list of strings")
		}
	}
	var out []srpmEntry
	switch s.opts.SRPMs {
	case SRPMsRefused:
		return nil, errorf(http.StatusForbidden, "Uploaded SRPMs (parameter \"srpms\") are not supported on this server; build the components from their repositories")
	case SRPMsUploaded:
		if len(paths) > 0 {
			return nil, errorf(http.StatusBadRequest, "srpms: %q: this server builds locally, so uploaded SRPMs must be sent as multipart/form-data file parts named \"srpms\"; Koji upload paths (cli-build/…) only work with the Koji backend", paths[0])
		}
		for _, f := range sub.files {
			out = append(out, srpmEntry{path: f.Path, names: []string{f.Package}})
		}
	case SRPMsKoji:
		for _, p := range paths {
			names, err := kojiUploadPath(p)
			if err != nil {
				return nil, err
			}
			out = append(out, srpmEntry{path: p, names: names})
		}
	}
	return out, nil
}

// componentPackages returns the package names of the RPM components of
// streams, or nil when some stream includes other modules (their
// components are known only at init).
func componentPackages(streams []*modulemd.Stream) map[string]bool {
	out := map[string]bool{}
	for _, st := range streams {
		if len(st.Components.Modules) > 0 {
			return nil
		}
		for key, c := range st.Components.RPMs {
			if c != nil {
				out[c.PackageName()] = true
			} else {
				out[key] = true
			}
		}
	}
	return out
}

// matchSRPMs picks the package each SRPM replaces: the first of its names
// that is a component's package (components nil: not known yet; the
// last, most specific name is taken and init checks it). An SRPM that
// matches no component, or two for one package, is the submitter's
// mistake: 400 naming it.
func matchSRPMs(entries []srpmEntry, components map[string]bool, module string) ([]state.SRPM, error) {
	var out []state.SRPM
	by := map[string]string{}
	for _, e := range entries {
		pkg := ""
		if components == nil {
			pkg = e.names[len(e.names)-1]
		}
		for _, n := range e.names {
			if components[n] {
				pkg = n
				break
			}
		}
		if pkg == "" {
			return nil, errorf(http.StatusBadRequest, "srpms: %s (package %s) matches no component of %s (components: %s)",
				e.path, e.names[len(e.names)-1], module, strings.Join(slices.Sorted(maps.Keys(components)), ", "))
		}
		if prev, ok := by[pkg]; ok {
			return nil, errorf(http.StatusBadRequest, "srpms: %s and %s are both package %s; give one SRPM per component", prev, e.path, pkg)
		}
		by[pkg] = e.path
		out = append(out, state.SRPM{Package: pkg, Path: e.path})
	}
	return out, nil
}

// isAdmin reports whether id is an admin (Options.AdminUsers, or in one of
// Options.AdminGroups).
func (s *Server) isAdmin(id identity) bool {
	return slices.Contains(s.opts.AdminUsers, id.name) ||
		slices.ContainsFunc(id.groups, func(g string) bool { return slices.Contains(s.opts.AdminGroups, g) })
}
