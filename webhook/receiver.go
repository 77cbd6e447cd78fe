package webhook

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rida-build/rida/state"
)

// DeliveryRecorder is the one store method the receiver needs;
// *state.Store implements it. RecordDelivery must return only after the
// delivery (and its plan job) is durable.
type DeliveryRecorder interface {
	RecordDelivery(ctx context.Context, d *state.Delivery) (uint64, error)
}

// ForgeConfig enables one forge dialect.
type ForgeConfig struct {
	Kind ForgeKind
	// Secrets are the accepted webhook secrets (HMAC keys; GitLab: tokens).
	// A delivery matching any of them is accepted, so a secret can be
	// rotated by adding the new one, updating the forge, then removing the
	// old one. At least one non-empty secret is required.
	Secrets []string
}

// ReceiverOptions configures NewReceiver.
type ReceiverOptions struct {
	// Store records accepted pushes. Required.
	Store DeliveryRecorder
	// Forges lists the enabled dialects; each kind at most once. Required.
	Forges []ForgeConfig
	// Logger receives one record per request (never secrets or signatures).
	// Default: discard.
	Logger *slog.Logger
	// MaxBody caps the request body in bytes; larger bodies get 413.
	// Default 25 MiB (GitHub's own payload cap).
	MaxBody int64
	// MaxConcurrent bounds the requests reading a body or recording a
	// delivery at once; more wait up to SlotWait for a slot, before their
	// body is read, then get 503 with Retry-After. Default
	// DefaultMaxConcurrent.
	MaxConcurrent int
	// SlotWait is how long a request beyond MaxConcurrent waits for a
	// slot before it gets 503: a burst during a slow disk write is then
	// answered late rather than refused (GitHub does not redeliver a 503
	// by itself). Negative: no wait. Default DefaultSlotWait, well under
	// GitHub's 10 s delivery timeout.
	SlotWait time.Duration
	// BodyTimeout is how long a request may take to send its body,
	// from when its headers were read; a slower one gets 408. Default
	// DefaultBodyTimeout.
	BodyTimeout time.Duration
	// Now stamps Delivery.ReceivedAt. Default time.Now.
	Now func() time.Time
	// OnRecorded, when set, is called with the new delivery's ID after it
	// was durably recorded and answered 202 (e.g. Planner.Notify, to plan
	// it at once). It runs on the request's goroutine and must not block.
	OnRecorded func(id uint64)
}

// DefaultMaxBody is ReceiverOptions.MaxBody's default.
const DefaultMaxBody int64 = 25 << 20

// DefaultMaxConcurrent is ReceiverOptions.MaxConcurrent's default.
const DefaultMaxConcurrent = 16

// DefaultSlotWait is ReceiverOptions.SlotWait's default.
const DefaultSlotWait = 2 * time.Second

// DefaultBodyTimeout is ReceiverOptions.BodyTimeout's default.
const DefaultBodyTimeout = 20 * time.Second

// busyRetryAfter is the Retry-After (seconds) of a 503 for too many
// requests at once.
const busyRetryAfter = "5"

// maxGUIDLen bounds the delivery id header we store.
const maxGUIDLen = 200

// dialect holds the per-forge header names (Gitea and Forgejo share one
// implementation; Forgejo's headers fall back to Gitea's).
type dialect struct {
	eventHeaders    []string
	deliveryHeaders []string
	sigHeaders      []string
	// token: the signature header carries the secret itself (GitLab).
	token bool
	// sigPrefix is stripped from the signature header before hex decoding.
	sigPrefix string
	// generateID: a missing delivery header is replaced by a generated id.
	generateID bool
}

var dialects = map[ForgeKind]dialect{
	GitHub: {
		eventHeaders:    []string{"X-GitHub-Event"},
		deliveryHeaders: []string{"X-GitHub-Delivery"},
		sigHeaders:      []string{"X-Hub-Signature-256"},
		sigPrefix:       "sha256=",
	},
	Gitea: {
		eventHeaders:    []string{"X-Gitea-Event"},
		deliveryHeaders: []string{"X-Gitea-Delivery"},
		sigHeaders:      []string{"X-Gitea-Signature"},
	},
	Forgejo: {
		eventHeaders:    []string{"X-Forgejo-Event", "X-Gitea-Event"},
		deliveryHeaders: []string{"X-Forgejo-Delivery", "X-Gitea-Delivery"},
		sigHeaders:      []string{"X-Forgejo-Signature", "X-Gitea-Signature"},
	},
	GitLab: {
		eventHeaders:    []string{"X-Gitlab-Event"},
		deliveryHeaders: []string{"X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID"},
		sigHeaders:      []string{"X-Gitlab-Token"},
		token:           true,
		generateID:      true,
	},
}

type forge struct {
	kind    ForgeKind
	dialect dialect
	secrets [][]byte
}

// Receiver is the webhook endpoint: an http.Handler serving
// POST /webhooks/{github,gitea,forgejo,gitlab}. It answers 202 only after
// the push is durably recorded. Safe for concurrent use.
type Receiver struct {
	store   DeliveryRecorder
	forges  map[ForgeKind]*forge
	log     *slog.Logger
	maxBody int64
	now     func() time.Time
	// slots holds one token per request past the header checks
	// (ReceiverOptions.MaxConcurrent).
	slots       chan struct{}
	slotWait    time.Duration // <= 0: none
	bodyTimeout time.Duration
	// onRecorded is ReceiverOptions.OnRecorded (may be nil).
	onRecorded func(id uint64)
}

// takeSlot takes one of the MaxConcurrent slots, waiting up to slotWait
// (or until ctx ends) for one to free up; false means none did.
func (rc *Receiver) takeSlot(ctx context.Context) bool {
	select {
	case rc.slots <- struct{}{}:
		return true
	default:
	}
	if rc.slotWait <= 0 {
		return false
	}
	t := time.NewTimer(rc.slotWait)
	defer t.Stop()
	select {
	case rc.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// NewReceiver validates opts and returns a Receiver. It fails when Store is
// nil, no forge is enabled, a kind is unknown or repeated, or an enabled
// forge has no secret (the error names the forge and the field, never a
// secret's value): rida refuses unsigned webhooks at startup.
func NewReceiver(opts ReceiverOptions) (*Receiver, error) {
	if opts.Store == nil {
		return nil, errors.New("webhook: ReceiverOptions.Store is required")
	}
	if len(opts.Forges) == 0 {
		return nil, errors.New("webhook: ReceiverOptions.Forges is empty: enable at least one forge")
	}
	if opts.MaxBody < 0 {
		return nil, fmt.Errorf("webhook: ReceiverOptions.MaxBody is negative (%d)", opts.MaxBody)
	}
	if opts.MaxConcurrent < 0 || opts.BodyTimeout < 0 {
		return nil, fmt.Errorf("webhook: ReceiverOptions.MaxConcurrent (%d) and BodyTimeout (%s) must not be negative", opts.MaxConcurrent, opts.BodyTimeout)
	}
	r := &Receiver{
		store:       opts.Store,
		forges:      map[ForgeKind]*forge{},
		log:         cmp.Or(opts.Logger, slog.New(slog.NewTextHandler(io.Discard, nil))),
		maxBody:     cmp.Or(opts.MaxBody, DefaultMaxBody),
		now:         opts.Now,
		onRecorded:  opts.OnRecorded,
		slots:       make(chan struct{}, cmp.Or(opts.MaxConcurrent, DefaultMaxConcurrent)),
		slotWait:    cmp.Or(opts.SlotWait, DefaultSlotWait),
		bodyTimeout: cmp.Or(opts.BodyTimeout, DefaultBodyTimeout),
	}
	if r.now == nil {
		r.now = time.Now
	}
	for i, fc := range opts.Forges {
		d, ok := dialects[fc.Kind]
		if !ok {
			return nil, fmt.Errorf("webhook: ReceiverOptions.Forges[%d].Kind %q is unknown (want one of %v)", i, fc.Kind, ForgeKinds())
		}
		if _, dup := r.forges[fc.Kind]; dup {
			return nil, fmt.Errorf("webhook: ReceiverOptions.Forges[%d]: forge %s is configured twice", i, fc.Kind)
		}
		if len(fc.Secrets) == 0 {
			return nil, fmt.Errorf("webhook: forge %s (ReceiverOptions.Forges[%d].Secrets) has no secret: configure one, rida does not accept unsigned webhooks", fc.Kind, i)
		}
		f := &forge{kind: fc.Kind, dialect: d}
		for j, s := range fc.Secrets {
			if s == "" {
				return nil, fmt.Errorf("webhook: forge %s: ReceiverOptions.Forges[%d].Secrets[%d] is empty", fc.Kind, i, j)
			}
			f.secrets = append(f.secrets, []byte(s))
		}
		r.forges[fc.Kind] = f
	}
	return r, nil
}

// ServeHTTP checks the request in a fixed order — method, forge enabled,
// event header, delivery header, signature present, content type, body size,
// signature/token valid, JSON — and then answers a ping (200 {"pong": true}),
// ignores other non-push events (202 {"ignored": "event <name>"}), or records
// the push and answers 202 {"delivery": <id>} after the commit. A store
// failure gives 503 asking the operator to redeliver.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := &requestInfo{}
	status, err := rc.serve(w, r, info)
	attrs := []slog.Attr{
		slog.String("path", r.URL.Path), slog.String("forge", info.forge), slog.String("event", info.event),
		slog.String("delivery_guid", info.guid), slog.String("remote", r.RemoteAddr),
		slog.Int("status", status), slog.Duration("took", time.Since(start)),
	}
	if info.id != 0 {
		attrs = append(attrs, slog.Uint64("delivery", info.id))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		level := slog.LevelInfo
		var e *Error
		if errors.As(err, &e) && e.Code == CodeBusy {
			level = slog.LevelWarn // a flood: one line each, not an error of rida's
		} else if status >= 500 {
			level = slog.LevelError
		} else if status == http.StatusUnauthorized {
			level = slog.LevelWarn
		}
		rc.log.LogAttrs(r.Context(), level, "webhook rejected", attrs...)
		return
	}
	rc.log.LogAttrs(r.Context(), slog.LevelInfo, "webhook "+info.outcome, attrs...)
}

// requestInfo collects log attributes as the checks progress.
type requestInfo struct {
	forge, event, guid, outcome string
	id                          uint64
}

// serve writes the response and returns its status and, for failures, the
// error (for the log).
func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request, info *requestInfo) (int, error) {
	fail := func(err error) (int, error) {
		writeError(w, err)
		return ErrorStatus(err), err
	}
	// 1. Method.
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(errorf(CodeMethodNotAllowed, fmt.Sprintf("method %s not allowed: webhooks are delivered with POST", r.Method)))
	}
	// 2. Forge enabled.
	name, ok := strings.CutPrefix(r.URL.Path, "/webhooks/")
	f := rc.forges[ForgeKind(name)]
	if !ok || f == nil {
		return fail(errorf(CodeNotFound, fmt.Sprintf("no webhook endpoint at %s: enabled forges are %s", r.URL.Path, rc.enabledPaths())))
	}
	info.forge = string(f.kind)
	d := f.dialect
	// 3. Event header.
	event, _ := header(r, d.eventHeaders)
	if event == "" {
		return fail(errorf(CodeInvalid, fmt.Sprintf("missing %s header", strings.Join(d.eventHeaders, " or "))))
	}
	info.event = event
	// 4. Delivery id.
	guid, _ := header(r, d.deliveryHeaders)
	if guid == "" {
		if !d.generateID {
			return fail(errorf(CodeInvalid, fmt.Sprintf("missing %s header", strings.Join(d.deliveryHeaders, " or "))))
		}
		guid = "rida-" + randomHex(16)
	}
	if len(guid) > maxGUIDLen {
		return fail(errorf(CodeInvalid, fmt.Sprintf("%s header is longer than %d bytes", d.deliveryHeaders[0], maxGUIDLen)))
	}
	info.guid = guid
	// 5. Signature present.
	sig, sigHeader := header(r, d.sigHeaders)
	if sig == "" {
		return fail(errorf(CodeUnauthorized, fmt.Sprintf("missing or empty %s header: set a secret on the forge's webhook (rida refuses unsigned deliveries)", strings.Join(d.sigHeaders, " or "))))
	}
	// 6. Content type.
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return fail(err)
	}
	// 7. Body, capped, against a deadline, by at most MaxConcurrent
	// requests at once: slow or huge senders cannot pin unbounded memory
	// or goroutines, and the rest are told to come back.
	if r.ContentLength > rc.maxBody {
		return fail(errorf(CodeTooLarge, fmt.Sprintf("body of %d bytes exceeds the limit of %d bytes", r.ContentLength, rc.maxBody)))
	}
	if !rc.takeSlot(r.Context()) {
		w.Header().Set("Retry-After", busyRetryAfter)
		return fail(errorf(CodeBusy, fmt.Sprintf("too many webhook requests at once (%d) for %s; retry in %s seconds", cap(rc.slots), rc.slotWait, busyRetryAfter)))
	}
	defer func() { <-rc.slots }()
	// Not every writer can set deadlines (a test recorder): then the
	// server's own read timeout is the bound.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(rc.bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rc.maxBody))
	if err != nil {
		var (
			mbe *http.MaxBytesError
			ne  net.Error
		)
		if errors.As(err, &mbe) {
			return fail(errorf(CodeTooLarge, fmt.Sprintf("body exceeds the limit of %d bytes", rc.maxBody)))
		}
		if errors.As(err, &ne) && ne.Timeout() {
			return fail(&Error{Code: CodeTimeout, Message: fmt.Sprintf("the body did not arrive within %s", rc.bodyTimeout), Err: err})
		}
		return fail(&Error{Code: CodeInvalid, Message: "could not read the request body", Err: err})
	}
	// 8. Signature or token valid.
	if err := f.verify(sig, sigHeader, body); err != nil {
		return fail(err)
	}
	// 9. JSON.
	if err := decode(body, &struct{}{}); err != nil {
		return fail(err)
	}
	// 10. Dispatch on the event.
	switch classify(f.kind, event, body) {
	case eventPing:
		info.outcome = "ping"
		writeJSON(w, http.StatusOK, map[string]bool{"pong": true})
		return http.StatusOK, nil
	case eventOther:
		info.outcome = "ignored"
		writeJSON(w, http.StatusAccepted, map[string]string{"ignored": "event " + event})
		return http.StatusAccepted, nil
	}
	del, err := ParsePush(f.kind, event, body)
	if err != nil {
		return fail(err)
	}
	del.DeliveryGUID, del.ReceivedAt = guid, rc.now().UTC()
	id, err := rc.store.RecordDelivery(r.Context(), del)
	if err != nil {
		return fail(&Error{Code: CodeUnavailable, Message: "the delivery could not be recorded; it was not accepted: redeliver it from the forge once rida is healthy", Err: err})
	}
	info.id, info.outcome = id, "accepted"
	writeJSON(w, http.StatusAccepted, map[string]uint64{"delivery": id})
	if rc.onRecorded != nil {
		rc.onRecorded(id)
	}
	return http.StatusAccepted, nil
}

func (rc *Receiver) enabledPaths() string {
	var ps []string
	for k := range rc.forges {
		ps = append(ps, "/webhooks/"+string(k))
	}
	slices.Sort(ps)
	return strings.Join(ps, ", ")
}

// header returns the first non-empty value among names, and its name.
func header(r *http.Request, names []string) (string, string) {
	for _, n := range names {
		if v := strings.TrimSpace(r.Header.Get(n)); v != "" {
			return v, n
		}
	}
	return "", ""
}

func checkContentType(ct string) error {
	const want = "set the webhook's content type to application/json on the forge"
	if ct == "" {
		return errorf(CodeUnsupportedMediaType, "missing Content-Type header: "+want)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return errorf(CodeUnsupportedMediaType, fmt.Sprintf("Content-Type %.100q cannot be parsed: %s", ct, want))
	}
	switch mt {
	case "application/json":
		return nil
	case "application/x-www-form-urlencoded":
		return errorf(CodeUnsupportedMediaType, "Content-Type application/x-www-form-urlencoded is not accepted (form-encoded payloads cannot be verified): "+want)
	default:
		return errorf(CodeUnsupportedMediaType, fmt.Sprintf("Content-Type %.100q is not accepted: %s", mt, want))
	}
}

// verify checks the signature (HMAC-SHA256 of the raw body, hex) or token in
// constant time against every configured secret.
func (f *forge) verify(sig, sigHeader string, body []byte) error {
	if f.dialect.token {
		ok := 0
		for _, s := range f.secrets {
			ok |= subtle.ConstantTimeCompare([]byte(sig), s)
		}
		if ok != 1 {
			return errorf(CodeUnauthorized, sigHeader+" does not match any configured secret token")
		}
		return nil
	}
	hexSig := sig
	if p := f.dialect.sigPrefix; p != "" {
		var found bool
		if hexSig, found = strings.CutPrefix(sig, p); !found {
			return errorf(CodeUnauthorized, fmt.Sprintf("%s must be %q followed by the hex HMAC-SHA256 of the body", sigHeader, p))
		}
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return errorf(CodeUnauthorized, sigHeader+" is not a hex HMAC-SHA256 (64 hex digits)")
	}
	match := false
	for _, s := range f.secrets {
		m := hmac.New(sha256.New, s)
		m.Write(body)
		if hmac.Equal(m.Sum(nil), got) {
			match = true // keep going: same work whichever secret matches
		}
	}
	if !match {
		return errorf(CodeUnauthorized, "signature mismatch: "+sigHeader+" is not the HMAC-SHA256 of the body with any configured secret")
	}
	return nil
}

type eventClass int

const (
	eventOther eventClass = iota
	eventPing
	eventPush
)

// classify decides what an event is. GitLab system hooks carry the kind in
// the body (object_kind/event_name "push" or "tag_push").
func classify(kind ForgeKind, event string, body []byte) eventClass {
	switch kind {
	case GitHub:
		switch event {
		case "ping":
			return eventPing
		case "push":
			return eventPush
		}
	case Gitea, Forgejo:
		if event == "push" {
			return eventPush
		}
	case GitLab:
		switch event {
		case "Push Hook", "Tag Push Hook":
			return eventPush
		case "System Hook":
			var p struct {
				ObjectKind string `json:"object_kind"`
				EventName  string `json:"event_name"`
			}
			_ = json.Unmarshal(body, &p) // validity was checked already
			switch cmp.Or(p.ObjectKind, p.EventName) {
			case "push", "tag_push":
				return eventPush
			}
		}
	}
	return eventOther
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
