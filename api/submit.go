package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
	"github.com/rida-build/rida/urlpolicy"
)

func isNotFound(err error) bool { return errors.Is(err, state.ErrNotFound) }

// parseSCMURL splits MBS's scmurl "<repo>?#<commit>" (or "<repo>#<commit>")
// and checks the scheme.
func parseSCMURL(raw string) (repo, rev string, err error) {
	repo, rev, ok := strings.Cut(raw, "#")
	repo = strings.TrimSuffix(repo, "?")
	if !ok || rev == "" {
		return "", "", errorf(http.StatusBadRequest, "The submitted scmurl %q is not valid: it must end with #<commit>", raw)
	}
	u, err := url.Parse(repo)
	if err != nil || u.Path == "" || strings.Trim(u.Path, "/") == "" {
		return "", "", errorf(http.StatusBadRequest, "The submitted scmurl %q is not valid: it must be <scheme>://<host>/<path>?#<commit>", raw)
	}
	switch u.Scheme {
	case "git", "git+http", "git+https", "http", "https", "file", "ssh", "git+ssh":
	default:
		return "", "", errorf(http.StatusBadRequest, "The submitted scmurl %q is not valid: scheme %q is not one of git, git+http(s), http(s), ssh, file", raw, u.Scheme)
	}
	return repo, rev, nil
}

// whyDenied is a URL policy refusal's reason, without the URL the caller
// already shows.
func whyDenied(err error) string {
	var de *urlpolicy.DeniedError
	if errors.As(err, &de) {
		return de.Why
	}
	return err.Error()
}

// moduleNameOf is the module name a module repository URL stands for: its
// last path element without ".git".
func moduleNameOf(repo string) string {
	u, _ := url.Parse(repo)
	return strings.TrimSuffix(path.Base(strings.TrimRight(u.Path, "/")), ".git")
}

// submitBuild is POST module-builds: check, then queue a "module" request
// and create its module build (state init) in one transaction, and answer
// 201 with the build (v2: a list), as MBS does. The module is the module
// repository's file at the exact commit (scmurl, branch) or, for a scratch
// build, a submitted modulemd (modulemd, or a yaml file part); a scratch
// build may replace components by SRPMs (srpms). See docs/api.md.
func (s *Server) submitBuild(w http.ResponseWriter, r *http.Request) {
	id, err := s.identify(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sub, err := s.readSubmission(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	recorded := false
	defer func() {
		if !recorded {
			sub.discard() // uploaded SRPMs of a refused submission
		}
	}()
	req, opts, err := s.checkSubmission(r.Context(), id, sub)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := sub.syncUploads(); err != nil {
		s.fail(w, r, err)
		return
	}
	// The request and its module build record (state init) are made in one
	// transaction, as MBS makes the build in the request: the answer has
	// the build's id even when the build is queued. Conflicts (the commit
	// already built or queued) are checked in that transaction, and the
	// submitted modulemd and SRPM list are stored in it.
	res, builds, err := s.opts.Queue.EnqueueWithBuild(r.Context(), req, opts)
	var ce *state.ConflictError
	if errors.As(err, &ce) {
		s.fail(w, r, errorf(http.StatusConflict, "%s", ce.Message))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	recorded = true
	s.enqueued()
	audit(r, "module", res.Request.Key)
	audit(r, "request", res.Request.ID)
	out := make([]any, 0, len(builds))
	for i := range builds {
		audit(r, "build", builds[i].ID)
		out = append(out, buildJSON(&builds[i], DetailVerbose, apiVersion(r)))
	}
	w.Header().Set("Location", out[0].(map[string]any)["state_url"].(string))
	if apiVersion(r) == "2" {
		writeJSON(w, http.StatusCreated, out)
		return
	}
	writeJSON(w, http.StatusCreated, out[0])
}

// checkSubmission checks a submission in MBS's order and returns the
// request to queue and its options.
func (s *Server) checkSubmission(ctx context.Context, id identity, sub *submission) (state.BuildRequest, state.RequestOptions, error) {
	var none state.BuildRequest
	body := sub.body
	if err := unknownKeys(body, "scmurl", "branch", "rebuild_strategy", "owner", "scratch", "modulemd", "module_name", "module_stream",
		"srpms", "reuse_components_from", "buildrequire_overrides", "require_overrides"); err != nil {
		return none, state.RequestOptions{}, err
	}
	opts, err := submitOptions(body)
	if err != nil {
		return none, opts, err
	}
	fields := map[string]string{}
	for _, k := range []string{"scmurl", "branch", "rebuild_strategy", "owner", "modulemd", "module_name", "module_stream"} {
		if fields[k], err = stringField(body, k); err != nil {
			return none, opts, err
		}
	}
	// MBS takes owner only with NO_AUTH; rida always authenticates, so
	// only an admin may submit on someone else's behalf.
	if o := fields["owner"]; o != "" && o != id.name && !s.isAdmin(id) {
		return none, opts, errorf(http.StatusForbidden, "The \"owner\" parameter (%q) may only be given by an admin (api.auth.admin_users, admin_groups): MBS accepts it only without authentication, and %s submits as %s", o, id.name, id.name)
	}
	_, hasModulemd := body["modulemd"]
	if hasModulemd && sub.hasYAML {
		return none, opts, errorf(http.StatusBadRequest, "Give the modulemd either as the \"modulemd\" parameter or as the \"yaml\" file, not both")
	}
	yaml := hasModulemd || sub.hasYAML
	if yaml && !opts.Scratch {
		return none, opts, errorf(http.StatusForbidden, "YAML submission is not enabled: a modulemd (\"modulemd\" or a \"yaml\" file) is accepted only with \"scratch\": true; submit an scmurl")
	}
	for _, k := range []string{"module_name", "module_stream"} {
		if _, ok := body[k]; ok && !yaml {
			return none, opts, errorf(http.StatusBadRequest, "The %q parameter is only used with a modulemd submission (\"modulemd\" or a \"yaml\" file)", k)
		}
	}
	srpms, err := s.srpmEntries(body, sub, opts.Scratch)
	if err != nil {
		return none, opts, err
	}
	if st := fields["rebuild_strategy"]; st != "" && !slices.Contains(rebuildStrategyNames, st) {
		return none, opts, errorf(http.StatusBadRequest, "The rebuild method of %q is not allowed. Choose from: %s", st, strings.Join(rebuildStrategyNames, ", "))
	}
	if raw, ok := body["reuse_components_from"]; ok {
		if fields["rebuild_strategy"] == "all" {
			return none, opts, errorf(http.StatusBadRequest, "You cannot specify the parameter \"reuse_components_from\" when the \"rebuild_strategy\" parameter is set to \"all\"")
		}
		if opts.ReuseFrom, err = s.reuseFrom(ctx, raw); err != nil {
			return none, opts, err
		}
	}
	opts.Owner = cmp.Or(fields["owner"], id.name)
	opts.RebuildStrategy = fields["rebuild_strategy"]
	if yaml {
		text, file := fields["modulemd"], ""
		if sub.hasYAML {
			text, file = string(sub.yaml), sub.yamlName
		}
		req, err := s.yamlSubmission(fields, text, file, srpms, &opts)
		if err != nil {
			return none, opts, err
		}
		req.Reasons = []string{"scratch build of a submitted modulemd by " + id.name}
		return req, opts, nil
	}
	req, err := s.scmSubmission(ctx, fields, srpms, &opts)
	if err != nil {
		return none, opts, err
	}
	req.Reasons = []string{"submitted by " + id.name}
	if opts.Scratch {
		req.Reasons = []string{"scratch build submitted by " + id.name}
	}
	return req, opts, nil
}

// scmSubmission checks the module repository commit a submission names
// (scmurl, branch) and returns its request.
func (s *Server) scmSubmission(ctx context.Context, fields map[string]string, srpms []srpmEntry, opts *state.RequestOptions) (state.BuildRequest, error) {
	var none state.BuildRequest
	if fields["scmurl"] == "" {
		return none, errorf(http.StatusBadRequest, "Missing scmurl")
	}
	if fields["branch"] == "" {
		return none, errorf(http.StatusBadRequest, "Missing branch")
	}
	scmurl, branch := fields["scmurl"], fields["branch"]
	repo, rev, err := parseSCMURL(scmurl)
	if err != nil {
		return none, err
	}
	// The repository part, parsed and cleaned, against the prefixes
	// (never a string prefix: "https://host.evil/" is not under
	// "https://host"); what was checked is what is fetched.
	if repo, err = s.scmurls.Check(repo); err != nil {
		return none, errorf(http.StatusForbidden, "The submitted scmurl %s is not allowed: %s", urlpolicy.Redact(scmurl), whyDenied(err))
	}
	if s.opts.Branches == nil || s.opts.Queue == nil {
		return none, errorf(http.StatusNotImplemented, "submitting builds is not available on this server")
	}
	commit, onBranch, err := s.opts.Branches.CommitOnBranch(ctx, repo, branch, rev)
	if err != nil {
		s.opts.Logger.Error("api: check submitted commit", "repo", repo, "err", err)
		return none, errorf(http.StatusBadGateway, "The module repository %s could not be read; see rida's log", repo)
	}
	if !onBranch {
		return none, errorf(http.StatusBadRequest, "Commit %s is not in branch %s.", rev, branch)
	}
	name := moduleNameOf(repo)
	if len(srpms) > 0 {
		// Which components the SRPMs replace: read the modulemd now when
		// we can; otherwise the build's init checks it.
		var components map[string]bool
		if s.opts.Modulemds != nil {
			if data, err := s.opts.Modulemds.ReadModulemd(ctx, repo, name, commit); err != nil {
				s.opts.Logger.Warn("api: read the modulemd to check srpms; init will", "repo", repo, "commit", commit, "err", err)
			} else if streams, err := modulemd.Parse(data); err == nil {
				components = componentPackages(streams)
			}
		}
		if opts.SRPMs, err = matchSRPMs(srpms, components, name+":"+branch); err != nil {
			return none, err
		}
	}
	return state.BuildRequest{Module: name, Stream: branch, Kind: state.RequestModule, ModuleRepo: repo, ModuleCommit: commit}, nil
}

// submitOptions reads MBS's optional submit parameters: scratch (a
// boolean), buildrequire_overrides and require_overrides ({module:
// [streams]}). reuse_components_from is read by reuseFrom.
func submitOptions(body map[string]json.RawMessage) (state.RequestOptions, error) {
	var o state.RequestOptions
	if raw, ok := body["scratch"]; ok {
		if err := json.Unmarshal(raw, &o.Scratch); err != nil {
			return o, errorf(http.StatusBadRequest, "scratch must be true or false")
		}
	}
	for _, f := range []struct {
		key string
		dst *map[string][]string
	}{{"buildrequire_overrides", &o.BuildRequireOverrides}, {"require_overrides", &o.RequireOverrides}} {
		raw, ok := body[f.key]
		if !ok {
			continue
		}
		var m map[string][]string
		if err := json.Unmarshal(raw, &m); err != nil || m == nil {
			return o, errorf(http.StatusBadRequest, "The %q parameter must be an object whose values are lists of streams, e.g. {\"platform\": [\"el9\"]}", f.key)
		}
		for mod, streams := range m {
			if mod == "" || len(streams) == 0 || slices.Contains(streams, "") {
				return o, errorf(http.StatusBadRequest, "The %q parameter: module %q needs a non-empty list of streams", f.key, mod)
			}
		}
		*f.dst = m
	}
	return o, nil
}

// reuseFrom resolves reuse_components_from, a module build id or
// "N:S:V:C", to a build that is ready (MBS's rule; a scratch build never
// is).
func (s *Server) reuseFrom(ctx context.Context, raw json.RawMessage) (uint64, error) {
	var (
		id   uint64
		nsvc string
	)
	if err := json.Unmarshal(raw, &id); err != nil || id == 0 {
		if err := json.Unmarshal(raw, &nsvc); err != nil || nsvc == "" {
			return 0, errorf(http.StatusBadRequest, "reuse_components_from must be a module build id or \"name:stream:version:context\"")
		}
		if n, err := strconv.ParseUint(nsvc, 10, 64); err == nil {
			id = n
		}
	}
	var mb *state.ModuleBuild
	if id != 0 {
		found, err := s.opts.Store.GetModuleBuild(ctx, id)
		if isNotFound(err) {
			return 0, errorf(http.StatusBadRequest, "The module in the parameter \"reuse_components_from\" could not be found: build %d", id)
		}
		if err != nil {
			return 0, err
		}
		mb = found
	} else {
		parts := strings.Split(nsvc, ":")
		if len(parts) != 4 {
			return 0, errorf(http.StatusBadRequest, "reuse_components_from %q is not \"name:stream:version:context\"", nsvc)
		}
		builds, err := s.opts.Store.StreamBuilds(ctx, parts[0], parts[1])
		if err != nil {
			return 0, err
		}
		for i := range builds {
			if strconv.FormatUint(builds[i].Version, 10) == parts[2] && builds[i].Context == parts[3] {
				mb = &builds[i]
				break
			}
		}
		if mb == nil {
			return 0, errorf(http.StatusBadRequest, "The module in the parameter \"reuse_components_from\" could not be found: %s", nsvc)
		}
	}
	if mb.State != state.ModuleStateReady || mb.Scratch {
		return 0, errorf(http.StatusBadRequest, "The module in the parameter \"reuse_components_from\" must be in the ready state: build %d is %s", mb.ID, mb.State)
	}
	return mb.ID, nil
}

func (s *Server) enqueued() {
	if s.opts.OnEnqueue != nil {
		s.opts.OnEnqueue()
	}
}
