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
// for the exact commit and create its module build (state init) in one
// transaction, and answer 201 with the build (v2: a list), as MBS does.
func (s *Server) submitBuild(w http.ResponseWriter, r *http.Request) {
	who, err := s.who(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := decodeBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := unknownKeys(body, "scmurl", "branch", "rebuild_strategy", "owner", "scratch", "modulemd", "module_name", "module_stream",
		"srpms", "reuse_components_from", "buildrequire_overrides", "require_overrides"); err != nil {
		s.fail(w, r, err)
		return
	}
	opts, err := submitOptions(body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, k := range []string{"modulemd", "module_name", "module_stream"} {
		if _, ok := body[k]; ok {
			s.fail(w, r, errorf(http.StatusForbidden, "YAML submission is not enabled (parameter %q); submit an scmurl", k))
			return
		}
	}
	if _, ok := body["srpms"]; ok {
		if !opts.Scratch {
			s.fail(w, r, errorf(http.StatusForbidden, "srpms may only be submitted with scratch builds"))
			return
		}
		s.fail(w, r, errorf(http.StatusForbidden, "Uploaded SRPMs (parameter \"srpms\") are not supported; build the components from their repositories"))
		return
	}
	fields := map[string]string{}
	for _, k := range []string{"scmurl", "branch", "rebuild_strategy", "owner"} {
		if fields[k], err = stringField(body, k); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if fields["scmurl"] == "" {
		s.fail(w, r, errorf(http.StatusBadRequest, "Missing scmurl"))
		return
	}
	if fields["branch"] == "" {
		s.fail(w, r, errorf(http.StatusBadRequest, "Missing branch"))
		return
	}
	if st := fields["rebuild_strategy"]; st != "" && !slices.Contains(rebuildStrategyNames, st) {
		s.fail(w, r, errorf(http.StatusBadRequest, "The rebuild method of %q is not allowed. Choose from: %s", st, strings.Join(rebuildStrategyNames, ", ")))
		return
	}
	scmurl, branch := fields["scmurl"], fields["branch"]
	repo, rev, err := parseSCMURL(scmurl)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The repository part, parsed and cleaned, against the prefixes
	// (never a string prefix: "https://host.evil/" is not under
	// "https://host"); what was checked is what is fetched.
	if repo, err = s.scmurls.Check(repo); err != nil {
		s.fail(w, r, errorf(http.StatusForbidden, "The submitted scmurl %s is not allowed: %s", urlpolicy.Redact(scmurl), whyDenied(err)))
		return
	}
	if raw, ok := body["reuse_components_from"]; ok {
		if fields["rebuild_strategy"] == "all" {
			s.fail(w, r, errorf(http.StatusBadRequest, "You cannot specify the parameter \"reuse_components_from\" when the \"rebuild_strategy\" parameter is set to \"all\""))
			return
		}
		if opts.ReuseFrom, err = s.reuseFrom(r.Context(), raw); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if s.opts.Branches == nil || s.opts.Queue == nil {
		s.fail(w, r, errorf(http.StatusNotImplemented, "submitting builds is not available on this server"))
		return
	}
	commit, onBranch, err := s.opts.Branches.CommitOnBranch(r.Context(), repo, branch, rev)
	if err != nil {
		s.opts.Logger.Error("api: check submitted commit", "repo", repo, "err", err)
		s.fail(w, r, errorf(http.StatusBadGateway, "The module repository %s could not be read; see rida's log", repo))
		return
	}
	if !onBranch {
		s.fail(w, r, errorf(http.StatusBadRequest, "Commit %s is not in branch %s.", rev, branch))
		return
	}
	name := moduleNameOf(repo)
	opts.Owner = cmp.Or(fields["owner"], who)
	opts.RebuildStrategy = fields["rebuild_strategy"]
	reason := "submitted by " + who
	if opts.Scratch {
		reason = "scratch build submitted by " + who
	}
	// The request and its module build record (state init) are made in one
	// transaction, as MBS makes the build in the request: the answer has
	// the build's id even when the build is queued. Conflicts (the commit
	// already built or queued) are checked in that transaction.
	res, builds, err := s.opts.Queue.EnqueueWithBuild(r.Context(), state.BuildRequest{
		Module: name, Stream: branch, Kind: state.RequestModule, ModuleRepo: repo, ModuleCommit: commit,
		Reasons: []string{reason},
	}, opts)
	var ce *state.ConflictError
	if errors.As(err, &ce) {
		s.fail(w, r, errorf(http.StatusConflict, "%s", ce.Message))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
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
