package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const clientExit = `
Exit status: 0 ok; 1 the build failed, or the server refused the call
(any 4xx: invalid, not found, unauthorised, forbidden, conflict); 2 bad
arguments or flags; 3 the server is unreachable or answered 5xx.`

// buildView is the part of the MBS build JSON the CLI shows.
type buildView struct {
	ID            uint64  `json:"id"`
	Name          string  `json:"name"`
	Stream        string  `json:"stream"`
	Version       string  `json:"version"`
	Context       string  `json:"context"`
	StateName     string  `json:"state_name"`
	StateReason   *string `json:"state_reason"`
	Owner         string  `json:"owner"`
	SCMURL        *string `json:"scmurl"`
	TimeSubmitted *string `json:"time_submitted"`
	TimeModified  *string `json:"time_modified"`
	TimeCompleted *string `json:"time_completed"`
	Components    []struct {
		Package string `json:"package"`
		Batch   int    `json:"batch"`
		State   string `json:"state"`
		Reason  string `json:"reason"`
		NVR     string `json:"nvr"`
	} `json:"components"`
	StateTrace []struct {
		Time      string  `json:"time"`
		StateName string  `json:"state_name"`
		Reason    *string `json:"reason"`
	} `json:"state_trace"`
}

// reasonWidth is how much of a reason a list shows; `rida status ID` shows
// all of it.
const reasonWidth = 60

// duration is how long the build took (submitted → completed), or has
// been running so far.
func (b *buildView) duration(now time.Time) string {
	start, err := time.Parse(time.RFC3339, deref(b.TimeSubmitted))
	if err != nil {
		return "-"
	}
	end := now
	if finalState(b.StateName) {
		if end, err = time.Parse(time.RFC3339, cmpOr(deref(b.TimeCompleted), deref(b.TimeModified))); err != nil {
			return "-"
		}
	}
	return max(0, end.Sub(start)).Round(time.Second).String()
}

func (b *buildView) nsvc() string {
	return fmt.Sprintf("%s:%s:%s:%s", b.Name, b.Stream, b.Version, b.Context)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func finalState(s string) bool {
	return s == "done" || s == "ready" || s == "failed" || s == "garbage"
}

// buildExit is 1 for a failed build, 0 otherwise.
func buildExit(b *buildView) int {
	if b.StateName == "failed" {
		return exitFail
	}
	return exitOK
}

const submitHelp = `
Submit a module build, as MBS's "POST module-builds": SCMURL names the module
repository and the commit, e.g. https://src.example.org/modules/foo?#abc1234,
and --branch the stream (the commit must be on it). Needs --token.
` + clientExit

func runSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("submit", "SCMURL --branch BRANCH [flags]", submitHelp, stderr)
	cf := addClientFlags(fs)
	branch := fs.String("branch", "", "the stream branch the commit is on (required)")
	strategy := fs.String("rebuild-strategy", "", "all, changed-and-after or only-changed (default: the server's)")
	owner := fs.String("owner", "", "record this owner instead of the token's name (rida takes it from an admin only: api.auth.admin_users/admin_groups)")
	watch := fs.Bool("watch", false, "follow the build until it finishes")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 || *branch == "" {
		fmt.Fprintln(stderr, "rida submit: need exactly one SCMURL and --branch")
		fs.Usage()
		return exitUsage
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rida submit:", err)
		return exitUsage
	}
	body := map[string]any{"scmurl": pos[0], "branch": *branch}
	if *strategy != "" {
		body["rebuild_strategy"] = *strategy
	}
	if *owner != "" {
		body["owner"] = *owner
	}
	var out map[string]any
	raw, err := c.call(ctx, http.MethodPost, "/module-build-service/1/module-builds/", body, &out)
	if err != nil {
		return clientFail(stderr, "submit", err)
	}
	if *cf.output == "json" && !*watch {
		writeRaw(stdout, raw)
		return exitOK
	}
	id, _ := out["id"].(float64)
	if id == 0 {
		fmt.Fprintf(stdout, "queued as build request %v: %v\n", out["request"].(map[string]any)["id"], out["message"])
		return exitOK
	}
	fmt.Fprintf(stdout, "module build %d submitted: %s:%s (%v)\n", int(id), out["name"], out["stream"], out["state_name"])
	if !*watch {
		return exitOK
	}
	return watchBuild(ctx, c, uint64(id), *cf.output, 2*time.Second, stdout, stderr)
}

const statusHelp = `
Without ID: list module builds, newest first (filters as flags). With ID:
show one build: its state, state trace and components by batch. --watch
follows a build until it reaches a final state, printing each change; the
exit status is then 1 if it failed.
` + clientExit

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "[ID] [flags]", statusHelp, stderr)
	cf := addClientFlags(fs)
	watch := fs.Bool("watch", false, "follow the build until it finishes (needs ID)")
	interval := fs.Duration("interval", 2*time.Second, "how often --watch asks the server")
	stateF := fs.String("state", "", "list: only builds in this state (init, wait, build, done, failed, ready, garbage)")
	name := fs.String("name", "", "list: only this module")
	stream := fs.String("stream", "", "list: only this stream")
	limit := fs.Int("limit", 20, "list: how many builds")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	c, err := cf.client()
	if err != nil || len(pos) > 1 || (*watch && len(pos) == 0) || *limit < 1 {
		if err == nil {
			err = fmt.Errorf("usage: rida status [ID] [--watch]")
		}
		fmt.Fprintln(stderr, "rida status:", err)
		return exitUsage
	}
	if len(pos) == 0 {
		q := url.Values{"per_page": {strconv.Itoa(*limit)}}
		for k, v := range map[string]string{"state": *stateF, "name": *name, "stream": *stream} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var list struct {
			Items []buildView `json:"items"`
			Meta  struct {
				Total int `json:"total"`
			} `json:"meta"`
		}
		raw, err := c.call(ctx, http.MethodGet, "/module-build-service/1/module-builds/?"+q.Encode(), nil, &list)
		if err != nil {
			return clientFail(stderr, "status", err)
		}
		if *cf.output == "json" {
			writeRaw(stdout, raw)
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tMODULE\tSTATE\tMODIFIED\tDURATION\tREASON")
		now := time.Now()
		for _, b := range list.Items {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.nsvc(), b.StateName, deref(b.TimeModified), b.duration(now),
				truncate(strings.TrimSpace(strings.TrimPrefix(deref(b.StateReason), b.StateName+":")), reasonWidth))
		}
		tw.Flush()
		fmt.Fprintf(stdout, "%d of %d build(s)\n", len(list.Items), list.Meta.Total)
		return exitOK
	}
	id, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil || id == 0 {
		fmt.Fprintf(stderr, "rida status: ID %q is not a positive integer\n", pos[0])
		return exitUsage
	}
	if *watch {
		return watchBuild(ctx, c, id, *cf.output, *interval, stdout, stderr)
	}
	b, raw, err := getBuild(ctx, c, id)
	if err != nil {
		return clientFail(stderr, "status", err)
	}
	if *cf.output == "json" {
		writeRaw(stdout, raw)
	} else {
		printBuild(stdout, b)
	}
	return buildExit(b)
}

func getBuild(ctx context.Context, c *apiClient, id uint64) (*buildView, []byte, error) {
	var b buildView
	raw, err := c.call(ctx, http.MethodGet, fmt.Sprintf("/module-build-service/1/module-builds/%d?verbose=true", id), nil, &b)
	if err != nil {
		return nil, raw, err
	}
	return &b, raw, nil
}

func printBuild(w io.Writer, b *buildView) {
	fmt.Fprintf(w, "build %d  %s\n", b.ID, b.nsvc())
	fmt.Fprintf(w, "state   %s", stateText(b.StateName, deref(b.StateReason)))
	fmt.Fprintf(w, "\nowner   %s\nscmurl  %s\n", b.Owner, deref(b.SCMURL))
	if len(b.StateTrace) > 0 {
		fmt.Fprintln(w, "\ntrace:")
		for i := len(b.StateTrace) - 1; i >= 0; i-- {
			t := b.StateTrace[i]
			fmt.Fprintf(w, "  %s  %-7s %s\n", t.Time, t.StateName, deref(t.Reason))
		}
	}
	if len(b.Components) > 0 {
		fmt.Fprintln(w, "\ncomponents:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  BATCH\tCOMPONENT\tSTATE\tNVR\tREASON")
		for _, c := range b.Components {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", c.Batch, c.Package, c.State, c.NVR, c.Reason)
		}
		tw.Flush()
	}
}

// stateText shows a state with its reason without repeating the state
// ("ready: done, no gating configured" → "ready — done, no gating
// configured").
func stateText(st, reason string) string {
	reason = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(reason, st+":"), st+" "))
	if reason == "" || reason == st {
		return st
	}
	return st + " — " + reason
}

// truncate shortens s to its first line and at most n runes, marking a cut
// with "…".
func truncate(s string, n int) string {
	line, _, cut := strings.Cut(s, "\n")
	r := []rune(line)
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	if cut {
		return line + " …"
	}
	return line
}

// colorizer paints state names on a terminal; it is a no-op when the
// output is not a terminal or NO_COLOR is set (https://no-color.org).
type colorizer bool

func newColorizer(w io.Writer) colorizer {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// stateText is the package's stateText with the state painted.
func (c colorizer) stateText(st, reason string) string {
	return c.state(st) + strings.TrimPrefix(stateText(st, reason), st)
}

func (c colorizer) state(s string) string {
	if !c {
		return s
	}
	code := ""
	switch s {
	case "failed", "canceled":
		code = "31"
	case "done", "ready", "complete", "reused":
		code = "32"
	case "build", "building":
		code = "33"
	default:
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// progress is the watch's progress line: the batch being built, the
// components finished and the time since the build was submitted.
func progress(b *buildView, now time.Time) string {
	batches, cur, done := 0, 0, 0
	for _, c := range b.Components {
		batches = max(batches, c.Batch)
		switch c.State {
		case "complete", "reused", "failed", "canceled":
			done++
		case "building":
			if cur == 0 || c.Batch < cur {
				cur = c.Batch
			}
		}
	}
	if cur == 0 {
		for _, c := range b.Components {
			if c.State == "queued" || c.State == "" {
				cur = c.Batch
				break
			}
		}
	}
	if cur == 0 {
		cur = batches
	}
	elapsed := "--:--"
	if t, err := time.Parse(time.RFC3339, deref(b.TimeSubmitted)); err == nil {
		d := max(0, now.Sub(t)).Round(time.Second)
		elapsed = fmt.Sprintf("%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
		if d >= time.Hour {
			elapsed = fmt.Sprintf("%d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
		}
	}
	if batches == 0 {
		return fmt.Sprintf("%s · %s", b.StateName, elapsed)
	}
	return fmt.Sprintf("batch %d/%d · %d/%d done · %s", cur, batches, done, len(b.Components), elapsed)
}

// watchBuild polls build id until it is final, printing the build once and
// then every change, in order: component changes first (with the reason
// of a failure), then the build's state change, then a progress line.
func watchBuild(ctx context.Context, c *apiClient, id uint64, output string, interval time.Duration, stdout, stderr io.Writer) int {
	seen := map[string]string{}
	first := true
	col := newColorizer(stdout)
	for {
		b, raw, err := getBuild(ctx, c, id)
		if err != nil {
			return clientFail(stderr, "status", err)
		}
		now := time.Now()
		switch {
		case output == "json":
			if seen["raw"] != string(raw) {
				var compact bytes.Buffer
				if err := json.Compact(&compact, raw); err == nil {
					fmt.Fprintln(stdout, compact.String())
				}
				seen["raw"] = string(raw)
			}
		case first:
			printBuild(stdout, b)
			fmt.Fprintln(stdout)
		default:
			changed := false
			for _, comp := range b.Components {
				if seen["c/"+comp.Package] == comp.State {
					continue
				}
				changed = true
				line := fmt.Sprintf("%s  batch %d %s: %s", now.Format("15:04:05"), comp.Batch, comp.Package, col.state(comp.State))
				if comp.NVR != "" {
					line += " " + comp.NVR
				}
				if comp.Reason != "" && (comp.State == "failed" || comp.State == "canceled") {
					line += " — " + truncate(comp.Reason, 200)
				}
				fmt.Fprintln(stdout, line)
			}
			if seen["state"] != b.StateName && !finalState(b.StateName) {
				changed = true
				fmt.Fprintf(stdout, "%s  build %d: %s\n", now.Format("15:04:05"), b.ID, col.stateText(b.StateName, deref(b.StateReason)))
			}
			if changed && !finalState(b.StateName) {
				fmt.Fprintf(stdout, "%s  %s\n", now.Format("15:04:05"), progress(b, now))
			}
		}
		seen["state"] = b.StateName
		for _, comp := range b.Components {
			seen["c/"+comp.Package] = comp.State
		}
		first = false
		if finalState(b.StateName) {
			if output != "json" {
				fmt.Fprintf(stdout, "build %d finished: %s\n", b.ID, col.stateText(b.StateName, deref(b.StateReason)))
			}
			return buildExit(b)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr, "rida status: interrupted")
			return exitInfra
		case <-time.After(interval):
		}
	}
}

const cancelHelp = `
Cancel module build ID (MBS's PATCH {"state": "failed"}). Only builds in
init, wait or build can be cancelled. Needs --token.
` + clientExit

func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cancel", "ID [flags]", cancelHelp, stderr)
	cf := addClientFlags(fs)
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	c, err := cf.client()
	if err != nil || len(pos) != 1 {
		if err == nil {
			err = fmt.Errorf("need exactly one build ID")
		}
		fmt.Fprintln(stderr, "rida cancel:", err)
		return exitUsage
	}
	id, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil || id == 0 {
		fmt.Fprintf(stderr, "rida cancel: ID %q is not a positive integer\n", pos[0])
		return exitUsage
	}
	var b buildView
	raw, err := c.call(ctx, http.MethodPatch, fmt.Sprintf("/module-build-service/1/module-builds/%d", id), map[string]string{"state": "failed"}, &b)
	if err != nil {
		return clientFail(stderr, "cancel", err)
	}
	if *cf.output == "json" {
		writeRaw(stdout, raw)
	} else {
		fmt.Fprintf(stdout, "build %d: %s (%s)\n", b.ID, b.StateName, deref(b.StateReason))
	}
	return exitOK
}

const rerunHelp = `
Queue a build again: what delivery N asked for (--delivery), what build N
built (--build: the same module commit), or a module stream (--module
name:stream, optionally at --commit). --force rebuilds every component
(rebuild strategy "all"). Needs --token.
` + clientExit

func runRerun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rerun", "(--delivery N | --build N | --module NAME:STREAM [--commit SHA]) [flags]", rerunHelp, stderr)
	cf := addClientFlags(fs)
	delivery := fs.Uint64("delivery", 0, "rerun what this delivery asked for")
	build := fs.Uint64("build", 0, "rerun this module build")
	module := fs.String("module", "", "rerun this module stream (name:stream)")
	commit := fs.String("commit", "", "with --module: the module commit to build (default: the branch head)")
	force := fs.Bool("force", false, "rebuild every component (rebuild strategy all)")
	watch := fs.Bool("watch", false, "follow each queued request's build until it finishes (exit 1 if one failed)")
	interval := fs.Duration("interval", 2*time.Second, "how often --watch asks the server")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	n := 0
	for _, set := range []bool{*delivery != 0, *build != 0, *module != ""} {
		if set {
			n++
		}
	}
	c, err := cf.client()
	if err != nil || n != 1 || len(pos) != 0 {
		if err == nil {
			err = fmt.Errorf("give exactly one of --delivery, --build or --module")
		}
		fmt.Fprintln(stderr, "rida rerun:", err)
		return exitUsage
	}
	body := map[string]any{}
	switch {
	case *delivery != 0:
		body["delivery"] = *delivery
	case *build != 0:
		body["build"] = *build
	default:
		body["module"] = *module
		if *commit != "" {
			body["commit"] = *commit
		}
	}
	path := "/api/v1/rerun"
	if *force {
		path = "/api/v1/rebuild"
	}
	var out struct {
		Requests []struct {
			RequestID uint64 `json:"request_id"`
			Key       string `json:"key"`
			Action    string `json:"action"`
		} `json:"requests"`
	}
	raw, err := c.call(ctx, http.MethodPost, path, body, &out)
	if err != nil {
		return clientFail(stderr, "rerun", err)
	}
	if *cf.output == "json" && !*watch {
		writeRaw(stdout, raw)
		return exitOK
	}
	for _, r := range out.Requests {
		fmt.Fprintf(stdout, "%s: build request %d (%s)\n", r.Key, r.RequestID, r.Action)
	}
	if !*watch {
		return exitOK
	}
	worst := exitOK
	for _, r := range out.Requests {
		id, code := waitForBuild(ctx, c, r.RequestID, *interval, stdout, stderr)
		if id != 0 {
			code = watchBuild(ctx, c, id, *cf.output, *interval, stdout, stderr)
		}
		worst = max(worst, code)
	}
	return worst
}

// waitForBuild polls build request id until the runner has made its module
// build and returns the build's id; a request that finished without one
// (e.g. identical to an earlier build) is printed and gives id 0.
func waitForBuild(ctx context.Context, c *apiClient, id uint64, interval time.Duration, stdout, stderr io.Writer) (uint64, int) {
	said := false
	for {
		var out struct {
			Request struct {
				State        string `json:"state"`
				Result       string `json:"result"`
				ResultReason string `json:"result_reason"`
			} `json:"request"`
			Build *struct {
				ID uint64 `json:"id"`
			} `json:"build"`
		}
		if _, err := c.call(ctx, http.MethodGet, fmt.Sprintf("/api/v1/requests/%d", id), nil, &out); err != nil {
			return 0, clientFail(stderr, "rerun", err)
		}
		switch {
		case out.Build != nil && out.Build.ID != 0:
			fmt.Fprintf(stdout, "build request %d: module build %d\n", id, out.Build.ID)
			return out.Build.ID, exitOK
		case out.Request.State == "finished":
			fmt.Fprintf(stdout, "build request %d finished without a module build: %s\n", id, stateText(out.Request.Result, out.Request.ResultReason))
			if out.Request.Result == "succeeded" {
				return 0, exitOK
			}
			return 0, exitFail
		case !said:
			fmt.Fprintf(stdout, "build request %d is %s; waiting for its module build\n", id, out.Request.State)
			said = true
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr, "rida rerun: interrupted")
			return 0, exitInfra
		case <-time.After(interval):
		}
	}
}

const deliveriesHelp = `
Without ID: list the pushes rida received, newest first. With ID: show what
that push did and why (its disposition, build requests and builds).
` + clientExit

func runDeliveries(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("deliveries", "[ID] [flags]", deliveriesHelp, stderr)
	cf := addClientFlags(fs)
	limit := fs.Int("limit", 20, "list: how many deliveries")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	c, err := cf.client()
	if err != nil || len(pos) > 1 || *limit < 1 {
		if err == nil {
			err = fmt.Errorf("usage: rida deliveries [ID]")
		}
		fmt.Fprintln(stderr, "rida deliveries:", err)
		return exitUsage
	}
	type delivery struct {
		ID          uint64 `json:"id"`
		Forge       string `json:"forge"`
		Repo        string `json:"repo"`
		Ref         string `json:"ref"`
		Before      string `json:"before"`
		After       string `json:"after"`
		Sender      string `json:"sender"`
		ReceivedAt  string `json:"received_at"`
		Disposition *struct {
			Reason   string `json:"reason"`
			Requests []struct {
				RequestID uint64 `json:"request_id"`
				Key       string `json:"key"`
				Action    string `json:"action"`
			} `json:"requests"`
		} `json:"disposition"`
	}
	outcome := func(d delivery) string {
		switch {
		case d.Disposition == nil:
			return "planning…"
		case len(d.Disposition.Requests) == 0:
			return d.Disposition.Reason
		}
		var keys []string
		for _, r := range d.Disposition.Requests {
			keys = append(keys, fmt.Sprintf("%s (request %d, %s)", r.Key, r.RequestID, r.Action))
		}
		return strings.Join(keys, ", ")
	}
	if len(pos) == 0 {
		var list struct {
			Items []delivery `json:"items"`
			Meta  struct {
				Total int `json:"total"`
			} `json:"meta"`
		}
		raw, err := c.call(ctx, http.MethodGet, "/api/v1/deliveries?per_page="+strconv.Itoa(*limit), nil, &list)
		if err != nil {
			return clientFail(stderr, "deliveries", err)
		}
		if *cf.output == "json" {
			writeRaw(stdout, raw)
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tFORGE\tREPO\tREF\tAFTER\tOUTCOME")
		for _, d := range list.Items {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.7s\t%s\n", d.ID, d.Forge, d.Repo, strings.TrimPrefix(d.Ref, "refs/heads/"), d.After, outcome(d))
		}
		tw.Flush()
		fmt.Fprintf(stdout, "%d of %d deliveries\n", len(list.Items), list.Meta.Total)
		return exitOK
	}
	id, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil || id == 0 {
		fmt.Fprintf(stderr, "rida deliveries: ID %q is not a positive integer\n", pos[0])
		return exitUsage
	}
	var one struct {
		Delivery delivery    `json:"delivery"`
		Builds   []buildView `json:"builds"`
	}
	raw, err := c.call(ctx, http.MethodGet, fmt.Sprintf("/api/v1/deliveries/%d", id), nil, &one)
	if err != nil {
		return clientFail(stderr, "deliveries", err)
	}
	if *cf.output == "json" {
		writeRaw(stdout, raw)
		return exitOK
	}
	d := one.Delivery
	fmt.Fprintf(stdout, "delivery %d  %s %s %s\npush      %.12s → %.12s by %s at %s\noutcome   %s\n",
		d.ID, d.Forge, d.Repo, d.Ref, d.Before, d.After, d.Sender, d.ReceivedAt, outcome(d))
	for _, b := range one.Builds {
		fmt.Fprintf(stdout, "build %d  %s  %s  %s\n", b.ID, b.nsvc(), b.StateName, deref(b.StateReason))
	}
	return exitOK
}

const whichModulesHelp = `
List the module streams whose modulemd includes COMPONENT (from rida's
component index), optionally only those that take it from --branch.

With --dependents NAME:STREAM instead: list the module streams whose
modulemd buildrequires NAME:STREAM (from rida's index of dependents), and
with --transitive also those that buildrequire one of them, and so on
(depth 1 is direct; the server stops at depth 10). It also prints what
NAME:STREAM itself buildrequires.
` + clientExit

func runWhichModules(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("which-modules", "(COMPONENT [--branch B] | --dependents NAME:STREAM [--transitive]) [flags]", whichModulesHelp, stderr)
	cf := addClientFlags(fs)
	branch := fs.String("branch", "", "only module streams that use this branch of the component")
	dependents := fs.String("dependents", "", "list the module streams that buildrequire this NAME:STREAM instead")
	transitive := fs.Bool("transitive", false, "with --dependents: also the streams that depend on it through others")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	c, err := cf.client()
	if err == nil {
		switch {
		case *dependents != "" && (len(pos) != 0 || *branch != ""):
			err = fmt.Errorf("--dependents takes no COMPONENT and no --branch")
		case *dependents == "" && *transitive:
			err = fmt.Errorf("--transitive goes with --dependents")
		case *dependents == "" && len(pos) != 1:
			err = fmt.Errorf("need exactly one COMPONENT, or --dependents NAME:STREAM")
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "rida which-modules:", err)
		return exitUsage
	}
	if *dependents != "" {
		name, stream, ok := strings.Cut(*dependents, ":")
		if !ok || name == "" || stream == "" {
			fmt.Fprintf(stderr, "rida which-modules: --dependents %q is not NAME:STREAM\n", *dependents)
			return exitUsage
		}
		return whichDependents(ctx, c, name, stream, *transitive, *cf.output, stdout, stderr)
	}
	path := "/api/v1/components/" + url.PathEscape(pos[0]) + "/modules"
	if *branch != "" {
		path += "?branch=" + url.QueryEscape(*branch)
	}
	var out struct {
		Items []struct {
			Ref        string `json:"ref"`
			Module     string `json:"module"`
			Stream     string `json:"stream"`
			ModuleRepo string `json:"module_repo"`
		} `json:"items"`
	}
	raw, err := c.call(ctx, http.MethodGet, path, nil, &out)
	if err != nil {
		return clientFail(stderr, "which-modules", err)
	}
	if *cf.output == "json" {
		writeRaw(stdout, raw)
		return exitOK
	}
	if len(out.Items) == 0 {
		fmt.Fprintf(stdout, "no indexed module stream includes %s\n", pos[0])
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE:STREAM\tCOMPONENT REF\tMODULE REPO")
	for _, m := range out.Items {
		fmt.Fprintf(tw, "%s:%s\t%s\t%s\n", m.Module, m.Stream, m.Ref, m.ModuleRepo)
	}
	tw.Flush()
	return exitOK
}

// whichDependents prints GET /api/v1/modules/{name}/{stream}/dependents.
func whichDependents(ctx context.Context, c *apiClient, name, stream string, transitive bool, output string, stdout, stderr io.Writer) int {
	path := "/api/v1/modules/" + url.PathEscape(name) + "/" + url.PathEscape(stream) + "/dependents"
	if transitive {
		path += "?transitive=true"
	}
	var out struct {
		BuildRequires []struct {
			Name    string   `json:"name"`
			Streams []string `json:"streams"`
		} `json:"buildrequires"`
		Items []struct {
			Module string   `json:"module"`
			Stream string   `json:"stream"`
			Direct bool     `json:"direct"`
			Depth  int      `json:"depth"`
			Via    []string `json:"via"`
		} `json:"items"`
		Truncated bool `json:"truncated"`
		MaxDepth  int  `json:"max_depth"`
	}
	raw, err := c.call(ctx, http.MethodGet, path, nil, &out)
	if err != nil {
		return clientFail(stderr, "which-modules", err)
	}
	if output == "json" {
		writeRaw(stdout, raw)
		return exitOK
	}
	key := name + ":" + stream
	var brs []string
	for _, br := range out.BuildRequires {
		streams := strings.Join(br.Streams, ",")
		if streams == "" {
			streams = "every stream"
		}
		brs = append(brs, fmt.Sprintf("%s [%s]", br.Name, streams))
	}
	if len(brs) == 0 {
		brs = []string{"no module (or not indexed)"}
	}
	fmt.Fprintf(stdout, "%s buildrequires %s\n", key, strings.Join(brs, ", "))
	if len(out.Items) == 0 {
		fmt.Fprintf(stdout, "no indexed module stream buildrequires %s\n", key)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE:STREAM\tDEPENDS\tDEPTH\tVIA")
	for _, d := range out.Items {
		how := "transitive"
		if d.Direct {
			how = "direct"
		}
		fmt.Fprintf(tw, "%s:%s\t%s\t%d\t%s\n", d.Module, d.Stream, how, d.Depth, strings.Join(d.Via, ", "))
	}
	tw.Flush()
	if out.Truncated {
		fmt.Fprintf(stdout, "more module streams depend on %s beyond depth %d (not shown)\n", key, out.MaxDepth)
	}
	return exitOK
}
