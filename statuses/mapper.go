package statuses

import (
	"cmp"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/rida-build/rida/forge"
	"github.com/rida-build/rida/state"
)

// DefaultContextTemplate is the default commit status context: one per
// module stream, the same for every forge and branch (peers lesson 17).
const DefaultContextTemplate = "rida/{name}:{stream}"

// MapperOptions configures NewMapper.
type MapperOptions struct {
	// ContextTemplate names the status context. {name} and {stream} are
	// replaced by the module's name and stream; both must appear so that
	// every module stream keeps its own context. Default
	// DefaultContextTemplate.
	ContextTemplate string
	// PublicURL is rida's externally reachable base URL (config
	// public_url). Statuses link to PublicURL/builds/<id> once a build
	// exists and to PublicURL/api/v1/deliveries/<id> while queued. Empty:
	// statuses carry no target_url.
	PublicURL string
	// Forges, when non-nil, limits statuses to deliveries from these forge
	// kinds (state.Delivery.Forge, e.g. "github", "gitlab"): pass the kinds
	// that have a reporter so the outbox holds nothing that cannot be
	// posted. Nil: every forge.
	Forges []string
}

// Mapper decides which commit statuses a state change owes the forges. It
// is pure: its StatusesFor method is installed as state.Options.StatusesFor
// and runs inside the store's transactions.
type Mapper struct {
	tmpl   string
	public string
	forges []string
}

var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

// NewMapper validates opts and returns a Mapper.
func NewMapper(opts MapperOptions) (*Mapper, error) {
	tmpl := cmp.Or(opts.ContextTemplate, DefaultContextTemplate)
	for _, p := range placeholder.FindAllString(tmpl, -1) {
		if p != "{name}" && p != "{stream}" {
			return nil, fmt.Errorf("statuses: MapperOptions.ContextTemplate %q: unknown placeholder %s (known: {name}, {stream})", tmpl, p)
		}
	}
	if !strings.Contains(tmpl, "{name}") || !strings.Contains(tmpl, "{stream}") {
		return nil, fmt.Errorf("statuses: MapperOptions.ContextTemplate %q must contain {name} and {stream}, or module streams would share one status", tmpl)
	}
	public := strings.TrimRight(opts.PublicURL, "/")
	if public != "" {
		u, err := url.Parse(public)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("statuses: MapperOptions.PublicURL %q: want an absolute http(s) URL", opts.PublicURL)
		}
	}
	return &Mapper{tmpl: tmpl, public: public, forges: slices.Clone(opts.Forges)}, nil
}

// Context returns the status context of a module stream.
func (m *Mapper) Context(name, stream string) string {
	return strings.NewReplacer("{name}", name, "{stream}", stream).Replace(m.tmpl)
}

// BuildURL returns the target_url of module build id ("" without PublicURL).
func (m *Mapper) BuildURL(id uint64) string {
	if m.public == "" {
		return ""
	}
	return m.public + "/builds/" + strconv.FormatUint(id, 10)
}

func (m *Mapper) deliveryURL(id uint64) string {
	if m.public == "" {
		return ""
	}
	return m.public + "/api/v1/deliveries/" + strconv.FormatUint(id, 10)
}

// Descriptions (also used by tests and documentation).
const (
	DescQueued = "queued"
	// DescLost is the watchdog's description; %s is the deadline.
	DescLost = "rida lost track of this build (pending for %s); re-run it with rida rerun or redeliver the webhook"
)

// StatusesFor maps one state change to the statuses it owes: for every
// commit of the request's deliveries (forge, repo, after; deduplicated),
// under the module stream's context:
//
//	request enqueued or merged   pending  "queued"            → delivery page
//	build init, wait             pending  "queued"            → build page
//	build build, batch progress  running  "building batch k/n" (GitHub,
//	                                      Gitea: pending)
//	build done, ready            success  "built name:stream:version:context"
//	build garbage (from init)    success  why it was not rebuilt
//	build failed                 failure (FailureBuild), error
//	                             (FailureInfra), canceled (FailureCanceled;
//	                             "superseded by abc1234" for a superseded build)
//
// Nothing is owed for a put that does not change what the forge should
// show; the outbox drops repeats of the same content anyway.
func (m *Mapper) StatusesFor(ev state.StatusEvent) []state.StatusUpdate {
	var (
		st, desc string
		name     string
		stream   string
		target   func(d *state.Delivery) string
	)
	switch ev.Kind {
	case state.StatusEventEnqueued:
		if ev.Request == nil {
			return nil
		}
		st, desc, name, stream = string(forge.StatePending), DescQueued, ev.Request.Module, ev.Request.Stream
		target = func(d *state.Delivery) string { return m.deliveryURL(d.ID) }
	case state.StatusEventBuildState, state.StatusEventBatchProgress:
		b := ev.After
		if b == nil || b.Scratch {
			return nil // MBS: a scratch build reports nothing
		}
		var ok bool
		if st, desc, ok = buildStatus(ev.Kind, ev.Before, b); !ok {
			return nil
		}
		if len(ev.Siblings) > 0 && b.State.Terminal() {
			st, desc = aggregate(b, st, desc, ev.Siblings)
		}
		name, stream = b.Name, b.Stream
		url := m.BuildURL(b.ID)
		target = func(*state.Delivery) string { return url }
	default:
		return nil
	}
	ctx := m.Context(name, stream)
	desc = forge.TruncateDescription(desc)
	var out []state.StatusUpdate
	seen := map[string]bool{}
	for i := range ev.Deliveries {
		d := &ev.Deliveries[i]
		sha := cmp.Or(d.CheckoutSHA, d.After)
		if d.Forge == "" || d.Repo == "" || sha == "" || (m.forges != nil && !slices.Contains(m.forges, d.Forge)) {
			continue
		}
		k := state.OutboxKey(d.Forge, d.Repo, sha, ctx)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, state.StatusUpdate{
			Forge: d.Forge, Repo: d.Repo, SHA: sha, Context: ctx,
			State: st, Description: desc, TargetURL: target(d),
		})
	}
	return out
}

// buildStatus returns the status a module build shows, and false when the
// change owes nothing.
func buildStatus(kind state.StatusEventKind, before, b *state.ModuleBuild) (st, desc string, ok bool) {
	if kind == state.StatusEventBatchProgress {
		if b.State != state.ModuleStateBuild || (before != nil && progress(before) == progress(b)) {
			return "", "", false
		}
		return string(forge.StateRunning), progress(b), true
	}
	changed := before == nil || before.State != b.State
	switch b.State {
	case state.ModuleStateInit, state.ModuleStateWait:
		return string(forge.StatePending), DescQueued, true
	case state.ModuleStateBuild:
		return string(forge.StateRunning), progress(b), true
	case state.ModuleStateDone, state.ModuleStateReady:
		return string(forge.StateSuccess), fmt.Sprintf("built %s:%s:%d:%s", b.Name, b.Stream, b.Version, b.Context), true
	case state.ModuleStateGarbage:
		// Only straight from a live state: the init phase found an
		// identical build that succeeded. Cleaning up an old build owes
		// nothing.
		if !changed || (before != nil && before.State.Terminal()) {
			return "", "", false
		}
		return string(forge.StateSuccess), cmp.Or(b.StateReason, "not rebuilt"), true
	case state.ModuleStateFailed:
		if !changed {
			return "", "", false
		}
		st, desc := failedStatus(b)
		return st, desc, true
	}
	return "", "", false
}

// failedStatus maps a failed build by its FailureKind; without one it
// guesses: a recorded cancel is canceled, a reason the runner marked
// "infrastructure error" is error, anything else failure.
func failedStatus(b *state.ModuleBuild) (string, string) {
	kind := b.FailureKind
	if kind == "" {
		switch {
		case b.CancelRequestedBy != "":
			kind = state.FailureCanceled
		case strings.HasPrefix(b.StateReason, "infrastructure error"):
			kind = state.FailureInfra
		default:
			kind = state.FailureBuild
		}
	}
	reason := cmp.Or(b.StateReason, b.CancelRequestedBy)
	switch kind {
	case state.FailureInfra:
		reason = strings.TrimSpace(strings.TrimPrefix(reason, "infrastructure error:"))
		return string(forge.StateError), "infrastructure error, re-run with rida rerun: " + cmp.Or(reason, "unknown")
	case state.FailureCanceled:
		return string(forge.StateCanceled), cancelDescription(cmp.Or(b.CancelRequestedBy, b.StateReason))
	default:
		return string(forge.StateFailure), "build failed: " + cmp.Or(reason, "unknown reason")
	}
}

// supersededRE matches the runner's "superseded by request 7 (abc1234)".
var supersededRE = regexp.MustCompile(`^superseded by request \d+ \(([0-9a-fA-F]+)\)`)

// cancelDescription shortens the runner's supersede reason to "superseded by
// abc1234" (the newer module commit); other reasons are kept as they are.
func cancelDescription(reason string) string {
	if m := supersededRE.FindStringSubmatch(reason); m != nil {
		return "superseded by " + m[1]
	}
	return cmp.Or(reason, "canceled")
}

// progress describes a building module: the first batch that still has
// work, out of all batches ("building batch 2/5"), or "building" when the
// build has no components recorded.
func progress(b *state.ModuleBuild) string {
	var batches []int
	for _, c := range b.Components {
		if !slices.Contains(batches, c.Batch) {
			batches = append(batches, c.Batch)
		}
	}
	if len(batches) == 0 {
		return "building"
	}
	slices.Sort(batches)
	current := len(batches)
	for i, n := range batches {
		if slices.ContainsFunc(b.Components, func(c state.ComponentBuild) bool {
			return c.Batch == n && c.State != "complete" && c.State != "reused"
		}) {
			current = i + 1
			break
		}
	}
	return fmt.Sprintf("building batch %d/%d", current, len(batches))
}

// aggregate is the status of a request with several module builds (one per
// context) when one of them, b, has just ended with st/desc: pending while
// a sibling still runs, else the worst outcome of them all (failure, error,
// canceled, success), so the commit never shows success over a failed
// context, whichever finished last.
func aggregate(b *state.ModuleBuild, st, desc string, siblings []state.ModuleBuild) (string, string) {
	rank := map[string]int{string(forge.StateSuccess): 0, string(forge.StateCanceled): 1, string(forge.StateError): 2, string(forge.StateFailure): 3}
	done := 1
	worstSt, worstDesc := st, desc
	for i := range siblings {
		o := &siblings[i]
		if !o.State.Terminal() {
			continue
		}
		done++
		ost, odesc, ok := buildStatus(state.StatusEventBuildState, nil, o)
		if !ok {
			continue
		}
		if rank[ost] > rank[worstSt] {
			worstSt, worstDesc = ost, odesc
		}
	}
	total := len(siblings) + 1
	if done < total {
		return string(forge.StatePending), fmt.Sprintf("%d of %d contexts built; %s", done, total, desc)
	}
	if worstSt == string(forge.StateSuccess) {
		return worstSt, fmt.Sprintf("all %d contexts built; %s", total, desc)
	}
	return worstSt, worstDesc
}
