package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rida-build/rida/api"
	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/runner"
	"github.com/rida-build/rida/scm"
	"github.com/rida-build/rida/state"
	"github.com/rida-build/rida/statuses"
	"github.com/rida-build/rida/webhook"
)

const serveHelp = `
Run rida's server: the webhook receiver (POST /webhooks/<forge>), the
planner that maps pushes to module streams, the runner that builds them, and
the API. Without --config the built-in configuration below is used; every key
is shown with its default.

Once it listens, rida prints "rida: listening on http://ADDR" on stdout.
SIGINT or SIGTERM stop it gracefully: running builds stay in state build
and are resumed, redoing only the interrupted batch, when rida starts again.
Every delivery answered 202 is in the store before the answer, so none is
lost, even on SIGKILL.

Configuration file (YAML):
`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "[flags]", serveHelp+indent(string(examples.DefaultConfig())), stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the built-in configuration)")
	listen := fs.String("listen", "", "override listen")
	dataDir := fs.String("data-dir", "", "override data_dir")
	var allowURLs stringList
	fs.Var(&allowURLs, "allow-url", "also allow this URL prefix: fetched from, and as every forge's clone URLs (repeatable; e.g. file:///srv/git/ to try rida on local repositories)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := loadConfig(*cfgPath)
	if err == nil && len(allowURLs) > 0 {
		cfg.URLs.extra = allowURLs
		if err = cfg.validateURLs(); err != nil {
			err = fmt.Errorf("--allow-url: %w", err)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "rida serve:", err)
		return exitUsage
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	forges, err := cfg.forgeSecrets(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "rida serve:", err)
		return exitUsage
	}
	level, _ := parseLevel(cfg.LogLevel)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintln(stderr, "rida serve:", err)
		return exitInfra
	}
	defer ln.Close()
	// Without public_url, links (commit statuses, API paging) use the
	// address rida is bound to, known only now (listen: …:0).
	cfg.PublicURL = cmp.Or(cfg.PublicURL, listenURL(ln.Addr()))
	srv, err := newServer(cfg, forges, logger)
	if err != nil {
		fmt.Fprintln(stderr, "rida serve:", err)
		return exitInfra
	}
	defer srv.close()
	if err := srv.start(ctx); err != nil {
		fmt.Fprintln(stderr, "rida serve:", err)
		return exitInfra
	}
	hs := cfg.HTTP.server(srv.handler())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "rida: listening on http://%s\n", ln.Addr())
	logger.Info("rida: serving", "addr", ln.Addr().String(), "data_dir", cfg.DataDir)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(stderr, "rida serve:", err)
			return exitInfra
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutdown)
	srv.stop()
	logger.Info("rida: stopped")
	return exitOK
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

// server holds rida serve's parts, wired together.
type server struct {
	cfg      *config
	log      *slog.Logger
	store    *state.Store
	receiver *webhook.Receiver
	planner  *webhook.Planner
	runner   *runner.Runner
	api      *api.Server
	statuses *statuses.Worker // nil when no forge has a status token
	// pruneStop ends the retention loop; pruneDone closes when it ended.
	pruneStop    context.CancelFunc
	pruneDone    chan struct{}
	pruneMetrics *pruneMetrics
}

func newServer(cfg *config, forges []webhook.ForgeConfig, logger *slog.Logger) (*server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	reporters, err := cfg.statusReporters(os.Getenv)
	if err != nil {
		return nil, err
	}
	mapper, err := newStatusWorker(cfg, reporters, logger)
	if err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, log: logger}
	opts := state.Options{Logger: logger}
	// A build's becoming ready queues the rebuilds of the streams that
	// buildrequire it, in the same transaction.
	opts.CascadeFor = runner.Cascader{Enabled: cfg.Build.Cascade == nil || *cfg.Build.Cascade, MaxDepth: cfg.Build.CascadeDepth}.For
	if mapper != nil {
		// Statuses are written into the outbox in the same transaction as
		// the change that causes them.
		opts.StatusesFor, opts.OnStatusQueued = mapper.StatusesFor, func() { s.statuses.Notify() }
	}
	store, err := state.Open(filepath.Join(cfg.DataDir, "rida.db"), opts)
	if err != nil {
		return nil, err
	}
	s.store = store
	fail := func(err error) (*server, error) { store.Close(); return nil, err }
	fetchURLs, err := cfg.fetchPolicy()
	if err != nil {
		return fail(err)
	}
	cloneURLs, err := cfg.cloneURLs()
	if err != nil {
		return fail(err)
	}
	mirrors, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(cfg.DataDir, "mirrors"), Logger: logger, URLs: fetchURLs})
	if err != nil {
		return fail(err)
	}
	be, backendName, err := newBackend(context.Background(), cfg, store, logger)
	if err != nil {
		return fail(err)
	}
	tokens, err := cfg.apiTokens(os.Getenv)
	if err != nil {
		return fail(err)
	}
	s.runner, err = runner.New(runner.Options{
		// WithAPIControls: paused streams are not started, and a request
		// submitted through the API keeps its strategy and owner.
		Store: runner.WithAPIControls(store), Backend: be, Modules: runner.SCMModules{Mirrors: mirrors, File: cfg.Repos.ModuleFile},
		Resolver: scm.Resolver{Mirrors: mirrors}, NotFound: scm.ErrNotFound, BackendName: backendName,
		MaxBuilds: cfg.Build.MaxBuilds, DefaultRepository: cfg.Repos.ComponentBaseURL,
		Platform: cfg.Build.Platform, Marking: cfg.Build.Marking, RebuildStrategy: cfg.Build.RebuildStrategy,
		CancelRunning: cfg.Build.CancelRunning, ManualReady: cfg.Build.ManualReady, Logger: logger,
		Graph: store, Failpoint: crashAt(os.Getenv("RIDA_TEST_FAILPOINT"), logger), ComponentURLs: cfg.componentURLs(fetchURLs),
		OnFinish: func(mb state.ModuleBuild) { s.api.Metrics().ObserveBuild(mb) },
	})
	if err != nil {
		return fail(err)
	}
	s.planner, err = webhook.NewPlanner(webhook.PlannerOptions{
		Store: store, Mirrors: mirrors, Classifier: cfg.classifier(), ModuleFile: cfg.Repos.ModuleFile,
		IgnorePaths: cfg.Repos.ComponentIgnore, TrackedBranches: cfg.Repos.TrackedBranches, ComponentBaseURL: cfg.Repos.ComponentBaseURL,
		OnEnqueue: func(state.EnqueueResult) { s.runner.Notify() }, Logger: logger, CloneURLs: cloneURLs,
	})
	if err != nil {
		return fail(err)
	}
	s.receiver, err = webhook.NewReceiver(webhook.ReceiverOptions{
		Store: store, Forges: forges, Logger: logger, OnRecorded: func(uint64) { s.planner.Notify() },
		MaxBody: cfg.Webhook.MaxBody, MaxConcurrent: cfg.Webhook.MaxConcurrent, SlotWait: cfg.Webhook.SlotWait, BodyTimeout: cfg.Webhook.BodyTimeout,
	})
	if err != nil {
		return fail(err)
	}
	if mapper != nil {
		s.statuses, err = statuses.NewWorker(statuses.WorkerOptions{
			Store: store, Reporters: reporters, Logger: logger,
			PendingDeadline: cfg.Statuses.PendingDeadline, RatePerForge: cfg.Statuses.RatePerForge,
			OnPost: func(forge, outcome string, first bool, age time.Duration) {
				m := s.api.Metrics()
				m.StatusPosted(forge, outcome)
				if first {
					m.TimeToFirstStatus(age)
				}
			},
		})
		if err != nil {
			return fail(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := api.NewMetrics(api.MetricsOptions{Registry: reg, Store: store, Version: version})
	if err != nil {
		return fail(err)
	}
	if s.pruneMetrics, err = newPruneMetrics(reg); err != nil {
		return fail(err)
	}
	apiOpts := api.Options{
		Store: store, Canceler: s.runner, Readier: s.runner, Logger: logger, Metrics: metrics, DataDir: cfg.DataDir,
		Tokens: tokens, SCMURLPrefixes: cfg.API.AllowedSCM,
		PublicURL: cfg.PublicURL, OnEnqueue: s.runner.Notify, Branches: runner.SCMBranches{Mirrors: mirrors}, Version: version,
		KojiWebURL: cfg.kojiWebURL(),
		// A scratch build's SRPMs: files stored under data_dir/uploads for
		// the local backend (a submission's body capped like a webhook's),
		// Koji upload paths for Koji.
		SRPMs: srpmMode(cfg), UploadDir: uploadsDir(cfg), MaxUpload: cfg.Webhook.MaxBody,
		Modulemds: moduleFiles{runner.SCMModules{Mirrors: mirrors, File: cfg.Repos.ModuleFile}},
	}
	if err := cfg.apiAuth(&apiOpts, os.Getenv); err != nil {
		return fail(err)
	}
	s.api, err = api.New(apiOpts)
	if err != nil {
		return fail(err)
	}
	return s, nil
}

func (s *server) start(ctx context.Context) error {
	// bbolt lets one process open the file, so every plan job lease in it
	// belongs to a process that died: plan those deliveries now rather than
	// when their lease would have expired.
	if n, err := s.store.ReleaseLeases(ctx); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("rida: released plan job leases of a previous process", "jobs", n)
	}
	// A crash between two of the runner's transactions can leave a
	// request running with no build, or with every build ended: repair
	// both before the runner looks at the queue, or the stream would never
	// build again.
	fixed, err := s.store.ReconcileRunning(ctx)
	if err != nil {
		return err
	}
	for _, f := range fixed {
		s.log.Warn("rida: reconciled a request a previous process left running", "key", f.Key, "request", f.RequestID, "action", f.Action, "result", f.Result)
	}
	if s.statuses != nil {
		if err := s.statuses.Start(ctx); err != nil {
			return err
		}
	}
	if err := s.runner.Start(ctx); err != nil {
		return err
	}
	s.startPruning(ctx)
	return s.planner.Start(ctx)
}

// pruneInterval is how often the retention loop runs.
const pruneInterval = time.Hour

// startPruning runs the retention (config retention:: the store's records,
// build trees, mirrors; see pruner) at start and every pruneInterval until
// stop.
func (s *server) startPruning(ctx context.Context) {
	ctx, s.pruneStop = context.WithCancel(ctx)
	s.pruneDone = make(chan struct{})
	p := &pruner{store: s.store, log: s.log, r: s.cfg.retention(), mirrorAge: s.cfg.mirrorRetention(), metrics: s.pruneMetrics,
		uploadsDir: uploadsDir(s.cfg)}
	if s.cfg.Backend.Kind != "koji" {
		p.treesDir = filepath.Join(s.cfg.DataDir, "builds")
	}
	if p.mirrorAge > 0 {
		// The planner's and the backend's Mirrors share its locks (one
		// lock table per directory in the process).
		m, err := scm.NewMirrors(scm.Options{Dir: filepath.Join(s.cfg.DataDir, "mirrors"), Logger: s.log})
		if err != nil {
			s.log.Error("rida: retention: mirrors", "err", err)
		}
		p.mirrors = m
	}
	go func() {
		defer close(s.pruneDone)
		t := time.NewTicker(pruneInterval)
		defer t.Stop()
		for {
			res, err := p.runOnce(ctx, time.Now())
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Error("rida: retention", "err", err)
			case !res.empty():
				s.log.Info("rida: retention pruned", res.logAttrs()...)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (s *server) stop() {
	if s.pruneStop != nil {
		s.pruneStop()
		<-s.pruneDone
	}
	s.planner.Stop()
	s.runner.Stop()
	if s.statuses != nil {
		s.statuses.Stop()
	}
}

func (s *server) close() { s.store.Close() }

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", s.api.Metrics().Webhooks(s.receiver))
	mux.Handle("/", api.LimitStreams(s.api, s.cfg.HTTP.MaxStreams, s.cfg.HTTP.MaxStreamsPerClient))
	return mux
}

// crashAt returns a runner failpoint that kills this process with SIGKILL
// at the named point, for crash tests (RIDA_TEST_FAILPOINT); nil when name
// is empty, as in production.
func crashAt(name string, log *slog.Logger) func(string) {
	if name == "" {
		return nil
	}
	return func(at string) {
		if at == name {
			log.Warn("rida: failpoint reached, killing the process", "failpoint", at)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}
