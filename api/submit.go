package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rida-build/rida/state"
)

func isNotFound(err error) bool { return errors.Is(err, state.ErrNotFound) }

// who authenticates a write call and returns the token's name.
func (s *Server) who(r *http.Request) (string, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return "", errorf(http.StatusUnauthorized, "this call needs an Authorization: Bearer <token> header")
	}
	name := ""
	for n, want := range s.opts.Tokens {
		// Compare against every token so the time does not say which matched.
		if want != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1 {
			name = n
		}
	}
	if name == "" {
		return "", errorf(http.StatusUnauthorized, "the bearer token is not one of the configured api.tokens")
	}
	if rec, ok := r.Context().Value(auditKey{}).(*auditRecord); ok {
		rec.who = name
	}
	return name, nil
}

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

// moduleNameOf is the module name a module repository URL stands for: its
// last path element without ".git".
func moduleNameOf(repo string) string {
	u, _ := url.Parse(repo)
	return strings.TrimSuffix(path.Base(strings.TrimRight(u.Path, "/")), ".git")
}

// submitBuild is POST module-builds: check, enqueue a "module" request for
// the exact commit, then answer 201 with the module build once the runner
// has created it (MBS creates it in the request itself), or with the queued
// request if that takes longer than Options.SubmitWait.
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
	if err := unknownKeys(body, "scmurl", "branch", "rebuild_strategy", "owner", "scratch", "modulemd", "module_name", "module_stream"); err != nil {
		s.fail(w, r, err)
		return
	}
	for _, k := range []string{"modulemd", "module_name", "module_stream"} {
		if _, ok := body[k]; ok {
			s.fail(w, r, errorf(http.StatusForbidden, "YAML submission is not enabled (parameter %q); submit an scmurl", k))
			return
		}
	}
	if raw, ok := body["scratch"]; ok && string(raw) != "false" {
		s.fail(w, r, errorf(http.StatusForbidden, "Scratch builds are not enabled (parameter \"scratch\")"))
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
	if !slices.ContainsFunc(s.opts.SCMURLPrefixes, func(p string) bool { return p != "" && strings.HasPrefix(scmurl, p) }) {
		s.fail(w, r, errorf(http.StatusForbidden, "The submitted scmurl %s is not allowed (it does not start with any configured prefix)", scmurl))
		return
	}
	repo, rev, err := parseSCMURL(scmurl)
	if err != nil {
		s.fail(w, r, err)
		return
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
	if err := s.conflict(r.Context(), name, branch, commit); err != nil {
		s.fail(w, r, err)
		return
	}
	owner := fields["owner"]
	if owner == "" {
		owner = who
	}
	res, err := s.opts.Queue.EnqueueWithOptions(r.Context(), state.BuildRequest{
		Module: name, Stream: branch, Kind: state.RequestModule, ModuleRepo: repo, ModuleCommit: commit,
		Reasons: []string{"submitted by " + who},
	}, state.RequestOptions{RebuildStrategy: fields["rebuild_strategy"], Owner: owner})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.enqueued()
	audit(r, "module", res.Request.Key)
	audit(r, "request", res.Request.ID)
	if mb := s.waitForBuild(r.Context(), res.Request.ID); mb != nil {
		audit(r, "build", mb.ID)
		out := buildJSON(mb, DetailVerbose, apiVersion(r))
		w.Header().Set("Location", out["state_url"].(string))
		if apiVersion(r) == "2" {
			writeJSON(w, http.StatusCreated, []any{out})
			return
		}
		writeJSON(w, http.StatusCreated, out)
		return
	}
	loc := fmt.Sprintf("/api/v1/requests/%d", res.Request.ID)
	w.Header().Set("Location", loc)
	out := map[string]any{
		"id": nil, "name": name, "stream": branch, "state": nil, "state_name": "queued",
		"scmurl": repo + "?#" + commit, "owner": owner, "request": res.Request, "request_url": loc,
		"message": "queued as build request " + strconv.FormatUint(res.Request.ID, 10) + " (" + string(res.Action) + "); its module build is created when the runner starts it",
	}
	if apiVersion(r) == "2" {
		writeJSON(w, http.StatusCreated, []any{out})
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// conflict is MBS's 409: a build of that exact module commit exists and has
// not failed, or is already queued.
func (s *Server) conflict(ctx context.Context, name, stream, commit string) error {
	same, err := s.opts.Store.StreamBuilds(ctx, name, stream)
	if err != nil {
		return err
	}
	same = slices.DeleteFunc(same, func(mb state.ModuleBuild) bool {
		return mb.ModuleCommit != commit || mb.State == state.ModuleStateFailed || mb.State == state.ModuleStateGarbage
	})
	if len(same) > 0 {
		return errorf(http.StatusConflict, "Module (state=%d) already exists as build %d. Only a new build or resubmission of a failed build is allowed.", int(same[0].State), same[0].ID)
	}
	running, pending, err := s.opts.Queue.QueueSlot(ctx, state.RequestKey(name, stream))
	if err != nil {
		return err
	}
	for _, rq := range []*state.BuildRequest{running, pending} {
		if rq != nil && rq.ModuleCommit == commit {
			return errorf(http.StatusConflict, "Module %s:%s at %s is already queued as build request %d (%s).", name, stream, commit, rq.ID, rq.State)
		}
	}
	return nil
}

func (s *Server) enqueued() {
	if s.opts.OnEnqueue != nil {
		s.opts.OnEnqueue()
	}
}

// waitForBuild polls for the module build of request id for up to
// Options.SubmitWait.
func (s *Server) waitForBuild(ctx context.Context, id uint64) *state.ModuleBuild {
	if s.opts.SubmitWait < 0 {
		return nil
	}
	deadline := time.Now().Add(s.opts.SubmitWait)
	for {
		found, err := s.opts.Store.RequestModuleBuilds(ctx, id)
		if err == nil && len(found) > 0 {
			return &found[0]
		}
		if time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}
