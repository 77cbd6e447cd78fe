// Package api serves rida's HTTP surfaces: the MBS-compatible REST API under
// /module-build-service/<1|2>/ (MBS's JSON field names, filters, paging and
// error shape), rida's own endpoints under /api/v1/, server-rendered web
// pages (/, /builds, /deliveries), /metrics, /healthz and /readyz.
//
// docs/api.md documents every endpoint. Every error answer is
// {"status", "error", "message"}, written by one function (fail) from one
// error→status mapping.
package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/rida-build/rida/state"
	"github.com/rida-build/rida/urlpolicy"
)

// Store is what the API reads. *state.Store implements it.
type Store interface {
	GetModuleBuild(ctx context.Context, id uint64) (*state.ModuleBuild, error)
	ModuleBuilds(ctx context.Context, match func(*state.ModuleBuild) bool) ([]state.ModuleBuild, error)
	Delivery(ctx context.Context, id uint64) (*state.Delivery, error)
	Deliveries(ctx context.Context, offset, limit int) ([]state.Delivery, int, error)
	Request(ctx context.Context, id uint64) (*state.BuildRequest, error)
	ModulesForComponent(ctx context.Context, component, ref string) ([]state.ModuleStream, error)
	ComponentModules(ctx context.Context, component string) ([]state.ComponentModule, error)
	ModuleComponents(ctx context.Context, module, stream string) ([]state.IndexedComponent, string, error)
	EventsSince(ctx context.Context, after uint64, limit int) ([]state.Event, error)
	Paused(ctx context.Context) ([]state.Pause, error)
	// Index lookups: each decodes only the builds it returns.
	RequestModuleBuilds(ctx context.Context, id uint64) ([]state.ModuleBuild, error)
	StreamBuilds(ctx context.Context, module, stream string, states ...state.ModuleState) ([]state.ModuleBuild, error)
	ListModuleBuilds(ctx context.Context, q state.BuildQuery) ([]state.ModuleBuild, int, error)
	BuildCountsByState(ctx context.Context) (map[state.ModuleState]int, error)
	ActiveRequests(ctx context.Context) ([]state.BuildRequest, error)
}

// Queue is what the API's write calls change. *state.Store implements it.
type Queue interface {
	EnqueueWithOptions(ctx context.Context, req state.BuildRequest, opts state.RequestOptions) (state.EnqueueResult, error)
	// EnqueueWithBuild queues a submission and creates its module build
	// record (state init) in one transaction (POST module-builds).
	EnqueueWithBuild(ctx context.Context, req state.BuildRequest, opts state.RequestOptions) (state.EnqueueResult, []state.ModuleBuild, error)
	QueueSlot(ctx context.Context, key string) (running, pending *state.BuildRequest, err error)
	SetPaused(ctx context.Context, key string, paused bool, who string) error
}

// Canceler cancels module builds (the runner).
type Canceler interface {
	Cancel(ctx context.Context, id uint64, who string) error
}

// Readier accepts an external test result for a done build (the runner's
// MarkReady).
type Readier interface {
	MarkReady(ctx context.Context, id uint64) (*state.ModuleBuild, error)
}

// Branches checks submitted commits against the module repository
// (runner.SCMBranches implements it).
type Branches interface {
	// CommitOnBranch resolves rev in repoURL to a full commit hash and
	// reports whether branch contains it. A commit or branch that does not
	// exist is onBranch=false with no error; err is for infrastructure
	// trouble (the repository could not be fetched).
	CommitOnBranch(ctx context.Context, repoURL, branch, rev string) (commit string, onBranch bool, err error)
}

// backuper is the optional store capability GET /api/v1/backup uses
// (*state.Store implements it).
type backuper interface {
	WriteBackup(ctx context.Context, w io.Writer) (int64, error)
}

// readiness is the optional store capability /readyz uses.
type readiness interface {
	Readable(ctx context.Context) error
}

// Options configures a Server. Only Store is required; each field documents
// what happens without it.
type Options struct {
	Store Store
	// Queue takes build requests and pause flags. Default: Store, when it
	// implements Queue; otherwise the write calls answer 501.
	Queue Queue
	// Graph reads the module graph: GET /api/v1/modules/{name}/{stream}/
	// dependents and the build page's links to cascaded builds. Default:
	// Store, when it implements Graph; otherwise that endpoint answers 501
	// and the build page shows request ids only.
	Graph Graph
	// Canceler handles PATCH {"state": "failed"}; without it PATCH is 501.
	Canceler Canceler
	// Readier handles POST /api/v1/builds/{id}/ready; without it that call
	// answers 501.
	Readier Readier
	// Branches checks that a submitted commit is on the submitted branch;
	// without it POST module-builds answers 501.
	Branches Branches
	// Tokens are the bearer tokens accepted for write calls, name → token;
	// the name is recorded as who did it. Without tokens, Kerberos or
	// OIDC, writes are 401.
	Tokens map[string]string
	// Kerberos, if set, also accepts Kerberos tickets (SPNEGO); a 401 then
	// offers WWW-Authenticate: Negotiate.
	Kerberos *KerberosAuth
	// OIDC, if set, also accepts OIDC access tokens (JWTs) as bearer tokens.
	OIDC *OIDCAuth
	// AdminUsers and AdminGroups (OIDC groups, MBS's ADMIN_GROUPS) may
	// cancel any build; anyone else only the builds they own.
	AdminUsers  []string
	AdminGroups []string
	// SRPMs says how POST module-builds takes a scratch build's srpms:
	// SRPMsRefused (the default: 403), SRPMsUploaded (the local backend:
	// SRPM files sent as multipart/form-data parts, stored under
	// UploadDir) or SRPMsKoji (Koji upload paths, cli-build/…).
	SRPMs SRPMMode
	// UploadDir is where uploaded SRPMs are stored, one new directory per
	// submission (rida serve: <data_dir>/uploads, which the local backend
	// reads them from). Required with SRPMsUploaded.
	UploadDir string
	// MaxUpload caps the body of a multipart/form-data submission (a yaml
	// file, SRPM files). Default DefaultMaxUpload.
	MaxUpload int64
	// Modulemds, if set, reads a module repository's modulemd at a
	// commit so a submission with srpms is checked at once (every SRPM
	// must replace a component: else 400). Without it that check happens
	// when the build starts (the build fails naming the SRPM).
	Modulemds ModulemdReader
	// SCMURLPrefixes are the allowed prefixes of a submitted scmurl (MBS's
	// SCMURLS), compared as a urlpolicy.Policy: parsed and cleaned, the
	// host and port exactly, the path on segment boundaries. Without any,
	// every submission is 403; New refuses a prefix that does not parse.
	SCMURLPrefixes []string
	// OnEnqueue is called after a write call queued a build request (wire
	// runner.Notify). Optional.
	OnEnqueue func()
	// PublicURL is rida's external base URL (config public_url), used for
	// MBS's absolute paging links. Default: taken from the request's Host.
	PublicURL string
	// KojiWebURL is the Koji web UI's base URL (backend.koji.web_url, e.g.
	// "https://koji.example.org/koji"). When set, every component build
	// with a task id links to <KojiWebURL>/taskinfo?taskID=N (task_url in
	// the component and module build JSON, "task N" on the build page), and
	// a module build that got to Koji links its module tag,
	// <KojiWebURL>/taginfo?tagID=<tag name> (koji_tag_url, and on the
	// build page). Empty: no links.
	KojiWebURL string
	// DataDir is rida's data directory; component logs are served only
	// from below it. Without it, log links answer 404.
	DataDir string
	// EventPoll is how often a Server-Sent Events stream looks for new
	// events. Default 500ms.
	EventPoll time.Duration
	// Metrics, if set, is served on GET /metrics. NewMetrics makes one.
	Metrics *Metrics
	// Version is reported by about/. Default "dev".
	Version string
	// Logger receives errors the client is not shown. Default: discard.
	Logger *slog.Logger
	// MaxDependents bounds how many streams one dependents answer lists
	// (GET /api/v1/modules/{name}/{stream}/dependents). Default 1000.
	MaxDependents int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Server is the API's http.Handler.
type Server struct {
	opts    Options
	mux     *http.ServeMux
	web     *webPages
	scmurls *urlpolicy.Policy
}

// New returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("api: Options.Store is required")
	}
	if opts.Queue == nil {
		if q, ok := opts.Store.(Queue); ok {
			opts.Queue = q
		}
	}
	if opts.Graph == nil {
		if g, ok := opts.Store.(Graph); ok {
			opts.Graph = g
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opts.EventPoll = cmp.Or(opts.EventPoll, 500*time.Millisecond)
	opts.MaxUpload = cmp.Or(opts.MaxUpload, DefaultMaxUpload)
	opts.MaxDependents = cmp.Or(opts.MaxDependents, defaultMaxDependents)
	if opts.SRPMs == SRPMsUploaded && opts.UploadDir == "" {
		return nil, errors.New("api: Options.UploadDir is required with SRPMsUploaded")
	}
	opts.Version = cmp.Or(opts.Version, "dev")
	opts.KojiWebURL = strings.TrimRight(opts.KojiWebURL, "/")
	if opts.Now == nil {
		opts.Now = time.Now
	}
	scmurls, err := urlpolicy.New(opts.SCMURLPrefixes...)
	if err != nil {
		return nil, fmt.Errorf("api: Options.SCMURLPrefixes: %w", err)
	}
	web, err := newWebPages()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), web: web, scmurls: scmurls}
	s.routes()
	return s, nil
}

// Metrics returns Options.Metrics (nil when none), so the caller can wrap
// the webhook receiver with Metrics.Webhooks.
func (s *Server) Metrics() *Metrics { return s.opts.Metrics }

func (s *Server) routes() {
	m := s.mux
	for _, v := range []string{"1", "2"} {
		base := "/module-build-service/" + v + "/"
		m.HandleFunc("GET "+base+"module-builds/{$}", s.listBuilds)
		m.HandleFunc("POST "+base+"module-builds/{$}", s.submitBuild)
		m.HandleFunc("GET "+base+"module-builds/{id}", s.getBuild)
		m.HandleFunc("PATCH "+base+"module-builds/{id}", s.patchBuild)
		m.HandleFunc("GET "+base+"module-builds/{id}/messages", s.buildMessages)
		m.HandleFunc("GET "+base+"component-builds/{$}", s.listComponents)
		m.HandleFunc("GET "+base+"component-builds/{id}", s.getComponent)
		m.HandleFunc("GET "+base+"final-modulemd/{id}", s.finalModulemd)
		m.HandleFunc("GET "+base+"about/{$}", s.about)
		m.HandleFunc("GET "+base+"rebuild-strategies/{$}", s.rebuildStrategies)
	}
	m.HandleFunc("/module-build-service/{v}/", func(w http.ResponseWriter, r *http.Request) {
		if v := r.PathValue("v"); v == "1" || v == "2" {
			s.fail(w, r, errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
			return
		}
		s.fail(w, r, errorf(http.StatusNotFound, "The requested API version is not available"))
	})

	m.HandleFunc("GET /api/v1/deliveries", s.listDeliveries)
	m.HandleFunc("GET /api/v1/deliveries/{id}", s.getDelivery)
	m.HandleFunc("GET /api/v1/requests/{id}", s.getRequest)
	m.HandleFunc("GET /api/v1/components/{name}/modules", s.componentModules)
	m.HandleFunc("GET /api/v1/modules/{name}/{stream}/dependents", s.moduleDependents)
	m.HandleFunc("POST /api/v1/rerun", s.rerun)
	m.HandleFunc("POST /api/v1/rebuild", s.rebuild)
	m.HandleFunc("GET /api/v1/pause", s.listPaused)
	m.HandleFunc("POST /api/v1/builds/{id}/ready", s.markReady)
	m.HandleFunc("POST /api/v1/pause", s.pause)
	m.HandleFunc("POST /api/v1/resume", s.resume)
	m.HandleFunc("GET /api/v1/events", s.events)
	m.HandleFunc("GET /api/v1/backup", s.backup)

	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	m.HandleFunc("GET /readyz", s.readyz)
	if s.opts.Metrics != nil {
		m.Handle("GET /metrics", s.opts.Metrics.Handler())
	}

	m.HandleFunc("GET /{$}", s.pageBuilds)
	m.HandleFunc("GET /builds", s.pageBuilds)
	m.HandleFunc("GET /builds/{id}", s.pageBuild)
	m.HandleFunc("GET /builds/{id}/logs/{component}", s.pageLog)
	m.HandleFunc("GET /builds/{id}/repo/{path...}", s.pageRepo)
	m.HandleFunc("GET /builds/{id}/dnf.repo", s.dnfRepo)
	m.HandleFunc("GET /builds/{id}/modules.yaml", s.finalModulemdFile)
	m.HandleFunc("GET /deliveries", s.pageDeliveries)
	m.HandleFunc("GET /deliveries/{id}", s.pageDelivery)
	m.HandleFunc("GET /requests/{id}", s.pageRequest)

	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
}

// ServeHTTP implements http.Handler. Every write call (any method but
// GET, HEAD and OPTIONS) and every backup is logged once as an audit line:
// who (the token's name, never the token), what (method, path, the build
// or request ids it named or made) and the answer's status.
//
// With Options.Metrics, every request's duration is observed by the route
// pattern it matched (Metrics.HTTP).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.opts.Metrics.HTTP(w, r, s.serve)
}

// serve answers r and returns the request the mux routed.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) *http.Request {
	if r.Method == http.MethodGet {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	}
	if !isWrite(r) {
		s.mux.ServeHTTP(w, r)
		return r
	}
	w = &challengeWriter{ResponseWriter: w, s: s}
	rec := &auditRecord{}
	r = r.WithContext(context.WithValue(r.Context(), auditKey{}, rec))
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(sw, r)
	attrs := []any{"method", r.Method, "path", r.URL.Path, "who", cmp.Or(rec.who, "(no valid token)"), "status", sw.status}
	if id := r.PathValue("id"); id != "" {
		attrs = append(attrs, "build", id)
	}
	attrs = append(attrs, rec.attrs...)
	s.opts.Logger.Info("api: audit", attrs...)
	return r
}

func isWrite(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return r.URL.Path == "/api/v1/backup"
	}
	return true
}

// auditRecord collects what a write call did, for its audit line.
type auditRecord struct {
	who   string
	attrs []any
}

type auditKey struct{}

// audit adds key=value to the request's audit line (no-op for reads).
func audit(r *http.Request, key string, value any) {
	if rec, ok := r.Context().Value(auditKey{}).(*auditRecord); ok {
		rec.attrs = append(rec.attrs, key, value)
	}
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var err error
	if rd, ok := s.opts.Store.(readiness); ok {
		err = rd.Readable(r.Context())
	} else {
		_, err = s.opts.Store.EventsSince(r.Context(), 0, 1)
	}
	if err != nil {
		s.opts.Logger.Error("api: readyz", "err", err)
		s.fail(w, r, errorf(http.StatusServiceUnavailable, "the store is not readable"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
