package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/modulemd"
)

const demoHelp = `
Show rida's main job end to end, on the built-in configuration:

 1. create the example modules' git repositories (modules/rida-demo,
    modules/rida-demo-extras, which buildrequires rida-demo:1.0, and
    rpms/<component>, embedded in this binary) in a new directory;
 2. start 'rida serve' on a free port with a data dir in that directory;
 3. deliver a signed GitHub push webhook for modules/rida-demo, exactly as
    GitHub would, and follow the module build it causes to the end;
 4. push modules/rida-demo-extras and follow its build, built against that
    rida-demo build;
 5. commit a change to one component of rida-demo with git, deliver its
    push, and follow the rebuild, which reuses every component that did not
    change;
 6. follow the rebuild of rida-demo-extras that rida queues when the new
    rida-demo build is ready (a cascade), built against the new build;
 7. print a summary, where the RPMs are, and stop the server.

The directory is kept so you can look at the RPMs, logs and repositories.`

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "[flags]", demoHelp, stderr)
	dir := fs.String("dir", "", "directory for the repositories and the server's data (default: a new temp dir)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up when a build takes longer")
	keep := fs.Bool("keep-serving", false, "keep the server running at the end, to browse the build pages, until Ctrl-C")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "rida-demo-")
		if err != nil {
			fmt.Fprintln(stderr, "rida demo:", err)
			return exitInfra
		}
		*dir = d
	}
	// Absolute: the repositories' file:// URLs and the URL policy need it.
	if abs, err := filepath.Abs(*dir); err == nil {
		*dir = abs
	}
	d := &demo{dir: *dir, out: stdout, errOut: stderr, timeout: *timeout, keep: *keep}
	if err := d.run(ctx); err != nil {
		fmt.Fprintln(stderr, "rida demo:", err)
		if d.serverLog != "" {
			fmt.Fprintln(stderr, "rida demo: the server's log is", d.serverLog)
		}
		return exitFail
	}
	return exitOK
}

type demo struct {
	dir       string
	out       io.Writer
	errOut    io.Writer
	timeout   time.Duration
	keep      bool
	secret    string
	base      string
	serverLog string
	client    *http.Client
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, "==> "+format+"\n", args...) }

func (d *demo) run(ctx context.Context) error {
	gitDir := filepath.Join(d.dir, "git")
	if err := os.MkdirAll(gitDir, 0o755); err != nil {
		return err
	}
	layout, err := examples.CreateRepos(gitDir, examples.Options{})
	if err != nil {
		return err
	}
	d.say("created the module repositories %s (branch %s) and %s (branch %s, buildrequires %s:%s), and %d component repositories under %s",
		layout.Module.Path, layout.Module.Branch, layout.Extras.Path, layout.Extras.Branch, examples.ModuleName, examples.ModuleStream,
		len(layout.Components)+len(layout.ExtrasComponents), filepath.Join(layout.Dir, "rpms"))

	stop, err := d.startServer(ctx)
	if err != nil {
		return err
	}
	defer stop()

	var done []demoBuild
	ready := func(b map[string]any, cause string) (demoBuild, error) {
		db := demoBuild{b: b, cause: cause}
		done = append(done, db)
		if b["state_name"] != "ready" {
			return db, fmt.Errorf("build %v (%v:%v) ended %v: %v", b["id"], b["name"], b["stream"], b["state_name"], b["state_reason"])
		}
		return db, nil
	}

	// 1. The module repository's first push: a new branch.
	zero := strings.Repeat("0", 40)
	b, err := d.push(ctx, "modules/"+examples.ModuleName, layout.Module, zero, layout.Module.Commit, "Import rida-demo")
	if err != nil {
		return err
	}
	demo1, err := ready(b, "push to modules/"+examples.ModuleName)
	if err != nil {
		return err
	}

	// 2. The second module, which buildrequires the first.
	d.say("%s:%s buildrequires %s:%s: rida builds it against the newest ready %s build (build %v)",
		examples.ExtrasName, examples.ExtrasStream, examples.ModuleName, examples.ModuleStream, examples.ModuleName, demo1.b["id"])
	b, err = d.push(ctx, "modules/"+examples.ExtrasName, layout.Extras, zero, layout.Extras.Commit, "Import rida-demo-extras")
	if err != nil {
		return err
	}
	extras1, err := ready(b, "push to modules/"+examples.ExtrasName)
	if err != nil {
		return err
	}
	extras1.against = d.builtAgainst(extras1.b, []demoBuild{demo1})
	done[len(done)-1] = extras1

	// 3. A packager changes one component of rida-demo's last batch.
	tools := layout.Components["rida-demo-tools"]
	before := tools.Commit
	after, err := tools.CommitFiles("Add release notes", map[string]string{"NOTES": "rida-demo-tools: now with release notes\n"})
	if err != nil {
		return err
	}
	d.say("committed %.12s to rpms/rida-demo-tools (git commit in %s)", after, tools.Path)
	b, err = d.push(ctx, "rpms/rida-demo-tools", tools, before, after, "Add release notes")
	if err != nil {
		return err
	}
	demo2, err := ready(b, "push to rpms/rida-demo-tools")
	if err != nil {
		return err
	}

	// 4. The cascade: the new rida-demo build being ready queued a rebuild
	// of every pushed module stream that buildrequires rida-demo:1.0.
	d.say("%s build %v is ready; %s:%s buildrequires %s:%s, so rida queued its rebuild (a cascade)",
		examples.ModuleName, demo2.b["id"], examples.ExtrasName, examples.ExtrasStream, examples.ModuleName, examples.ModuleStream)
	id, err := d.newerBuild(ctx, examples.ExtrasName, demoID(extras1.b))
	if err != nil {
		return err
	}
	cause, err := d.requestCause(ctx, id)
	if err != nil {
		return err
	}
	d.say("%s build %d, cause: %s", examples.ExtrasName, id, cause)
	b, err = d.followBuild(ctx, id)
	if err != nil {
		return err
	}
	short, _, _ := strings.Cut(cause, " (cascade:")
	if _, after, ok := strings.Cut(short, ": "); ok {
		short = "cascade: " + after
	}
	extras2, err := ready(b, short)
	if err != nil {
		return err
	}
	extras2.against = d.builtAgainst(extras2.b, []demoBuild{demo1, demo2})
	done[len(done)-1] = extras2

	d.overview(done)
	d.say("done. The RPMs, repodata and final modulemd (modules.yaml) of the last builds are in")
	for _, db := range []demoBuild{demo2, extras2} {
		fmt.Fprintf(d.out, "    %v:%v build %v: %v\n", db.b["name"], db.b["stream"], db.b["id"], db.b["result_dir"])
	}
	var pages []string
	for _, db := range done {
		pages = append(pages, fmt.Sprintf("%s/builds/%v", d.base, db.b["id"]))
	}
	d.say("build pages: %s", strings.Join(pages, " "))
	d.say("API:        %s/module-build-service/1/module-builds/", d.base)
	if d.keep {
		d.say("the server keeps running (data in %s); press Ctrl-C to stop it", filepath.Join(d.dir, "data"))
		<-ctx.Done()
		return nil
	}
	d.say("the server stops now; its data stays in %s (rerun with --keep-serving to browse the pages)", filepath.Join(d.dir, "data"))
	return nil
}

// demoBuild is a finished build of the demo: its verbose JSON, what caused
// it and, for rida-demo-extras, the rida-demo build it was built against.
type demoBuild struct {
	b       map[string]any
	cause   string
	against string
}

func demoID(b map[string]any) uint64 {
	f, _ := b["id"].(float64)
	return uint64(f)
}

// builtAgainst prints and returns which build of examples.ModuleName the
// finished build b was built against, read from the API's buildrequires
// (MBS's: the build's xmd.mbs.buildrequires), or from that xmd in its
// modulemd; candidates are the rida-demo builds it may name.
func (d *demo) builtAgainst(b map[string]any, candidates []demoBuild) string {
	dep := examples.ModuleName
	var entry map[string]any
	src := "the API's buildrequires"
	if brs, ok := b["buildrequires"].(map[string]any); ok {
		entry, _ = brs[dep].(map[string]any)
	}
	if entry == nil || entry["version"] == nil {
		src = "xmd.mbs.buildrequires of its modulemd"
		entry = nil
		if doc, _ := b["modulemd"].(string); doc != "" {
			if streams, err := modulemd.Parse([]byte(doc)); err == nil && len(streams) == 1 {
				mbs, _ := streams[0].Xmd["mbs"].(map[string]any)
				brs, _ := mbs["buildrequires"].(map[string]any)
				entry, _ = brs[dep].(map[string]any)
			}
		}
	}
	if entry == nil {
		fmt.Fprintf(d.out, "    build %v does not say which %s build it was built against\n", b["id"], dep)
		return "?"
	}
	nsvc := fmt.Sprintf("%s:%v:%v:%v", dep, entry["stream"], entry["version"], entry["context"])
	which := nsvc
	for _, c := range candidates {
		if fmt.Sprint(c.b["version"]) == fmt.Sprint(entry["version"]) && fmt.Sprint(c.b["context"]) == fmt.Sprint(entry["context"]) {
			which = fmt.Sprintf("%s build %v", dep, c.b["id"])
			nsvc += " = " + which
		}
	}
	fmt.Fprintf(d.out, "    build %v %v:%v was built against %s (%s)\n\n", b["id"], b["name"], b["stream"], nsvc, src)
	return which
}

// newerBuild waits for a build of module newer than build after and
// returns its id.
func (d *demo) newerBuild(ctx context.Context, module string, after uint64) (uint64, error) {
	deadline := time.Now().Add(d.timeout)
	for time.Now().Before(deadline) {
		var page struct {
			Items []struct {
				ID uint64 `json:"id"`
			} `json:"items"`
		}
		if err := d.get(ctx, "/module-build-service/1/module-builds/?name="+module+"&order_desc_by=id&per_page=1", &page); err != nil {
			return 0, err
		}
		if len(page.Items) > 0 && page.Items[0].ID > after {
			return page.Items[0].ID, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("no build of %s after build %d within %s", module, after, d.timeout)
}

// requestCause returns why build id was queued: its request's kind and
// reasons.
func (d *demo) requestCause(ctx context.Context, id uint64) (string, error) {
	var b struct {
		RequestID uint64 `json:"request_id"`
	}
	if err := d.get(ctx, fmt.Sprintf("/module-build-service/1/module-builds/%d?verbose=true", id), &b); err != nil {
		return "", err
	}
	var rq struct {
		Request struct {
			Kind    string   `json:"kind"`
			Reasons []string `json:"reasons"`
		} `json:"request"`
	}
	if err := d.get(ctx, fmt.Sprintf("/api/v1/requests/%d", b.RequestID), &rq); err != nil {
		return "", err
	}
	return fmt.Sprintf("request %d (%s): %s", b.RequestID, rq.Request.Kind, strings.Join(rq.Request.Reasons, "; ")), nil
}

// overview prints one line per build of the demo.
func (d *demo) overview(builds []demoBuild) {
	tw := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "    BUILD\tMODULE\tSTATE\tCOMPONENTS\tBUILT AGAINST\tCAUSE\n")
	for _, db := range builds {
		n := map[string]int{}
		for _, c := range components(db.b) {
			if c.Key != "module-build-macros" {
				n[c.State]++
			}
		}
		var parts []string
		for _, st := range []struct{ state, word string }{{"complete", "built"}, {"reused", "reused"}, {"failed", "failed"}, {"canceled", "canceled"}} {
			if n[st.state] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n[st.state], st.word))
			}
		}
		against := cmp.Or(db.against, "-")
		fmt.Fprintf(tw, "    %v\t%v:%v\t%v\t%s\t%s\t%s\n", db.b["id"], db.b["name"], db.b["stream"], db.b["state_name"], strings.Join(parts, ", "), against, db.cause)
	}
	tw.Flush()
	fmt.Fprintln(d.out)
}

// startServer runs this binary's 'serve' with a fresh secret and waits for
// it to listen.
func (d *demo) startServer(ctx context.Context) (func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	d.secret = hex.EncodeToString(raw)
	d.serverLog = filepath.Join(d.dir, "serve.log")
	logf, err := os.Create(d.serverLog)
	if err != nil {
		return nil, err
	}
	// The built-in configuration fetches no file:// URL: allow the demo's
	// own repositories (and only them; not its data dir).
	cmd := exec.CommandContext(ctx, exe, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(d.dir, "data"),
		"--allow-url", "file://"+filepath.Join(d.dir, "git")+"/")
	cmd.Env = append(os.Environ(), "RIDA_WEBHOOK_SECRET="+d.secret)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "rida: listening on "); ok {
			d.base = addr
			break
		}
	}
	if d.base == "" {
		stop()
		return nil, errors.New("the server did not start")
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	d.client = &http.Client{Timeout: 30 * time.Second}
	d.say("started: rida serve --listen 127.0.0.1:0 --data-dir %s (log: %s), listening on %s", filepath.Join(d.dir, "data"), d.serverLog, d.base)
	return stop, nil
}

// push delivers a GitHub push webhook for repo, signed, then follows the
// module build it causes and returns the finished build's JSON.
func (d *demo) push(ctx context.Context, fullName string, repo examples.Repo, before, after, msg string) (map[string]any, error) {
	id, err := d.deliverID(ctx, fullName, repo, before, after, msg)
	if err != nil {
		return nil, err
	}
	return d.follow(ctx, id)
}

// deliver sends the push webhook and returns once it was acknowledged.
func (d *demo) deliver(ctx context.Context, fullName string, repo examples.Repo, before, after, msg string) error {
	_, err := d.deliverID(ctx, fullName, repo, before, after, msg)
	return err
}

func (d *demo) deliverID(ctx context.Context, fullName string, repo examples.Repo, before, after, msg string) (uint64, error) {
	payload, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/" + repo.Branch, "before": before, "after": after, "forced": false,
		"created": before == strings.Repeat("0", 40), "deleted": false,
		"repository": map[string]any{"full_name": fullName, "name": filepath.Base(fullName), "clone_url": repo.URL},
		"pusher":     map[string]any{"name": "packager"}, "sender": map[string]any{"login": "packager"},
		"commits": []map[string]any{{"id": after, "message": msg}},
	})
	mac := hmac.New(sha256.New, []byte(d.secret))
	mac.Write(payload)
	guid := make([]byte, 8)
	_, _ = rand.Read(guid)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/webhooks/github", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", hex.EncodeToString(guid))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	d.say("POST /webhooks/github (push to %s %s, %.12s..%.12s) → %d %s", fullName, repo.Branch, before, after, resp.StatusCode, strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("delivery refused: %d %s", resp.StatusCode, body)
	}
	var ack struct {
		Delivery uint64 `json:"delivery"`
	}
	if err := json.Unmarshal(body, &ack); err != nil {
		return 0, err
	}
	return ack.Delivery, nil
}

// follow polls the delivery until it was planned and its build finished,
// printing each state and component change once.
func (d *demo) follow(ctx context.Context, delivery uint64) (map[string]any, error) {
	deadline := time.Now().Add(d.timeout)
	printed := false
	for time.Now().Before(deadline) {
		var dv struct {
			Delivery struct {
				Disposition *struct {
					Reason   string `json:"reason"`
					Requests []struct {
						RequestID uint64 `json:"request_id"`
						Key       string `json:"key"`
					} `json:"requests"`
				} `json:"disposition"`
			} `json:"delivery"`
			Builds []map[string]any `json:"builds"`
		}
		if err := d.get(ctx, fmt.Sprintf("/api/v1/deliveries/%d", delivery), &dv); err != nil {
			return nil, err
		}
		if disp := dv.Delivery.Disposition; disp != nil && !printed {
			printed = true
			if len(disp.Requests) == 0 {
				return nil, fmt.Errorf("delivery %d planned no build: %s", delivery, disp.Reason)
			}
			d.say("delivery %d planned: build request %d for %s", delivery, disp.Requests[0].RequestID, disp.Requests[0].Key)
		}
		if len(dv.Builds) > 0 {
			return d.followBuild(ctx, demoID(dv.Builds[0]))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("delivery %d: no build after %s", delivery, d.timeout)
}

// followBuild polls build id until it finished, printing each state and
// component change once, then its summary.
func (d *demo) followBuild(ctx context.Context, id uint64) (map[string]any, error) {
	deadline := time.Now().Add(d.timeout)
	seen := map[string]bool{}
	var doneSince time.Time
	for time.Now().Before(deadline) {
		var b map[string]any
		if err := d.get(ctx, fmt.Sprintf("/module-build-service/1/module-builds/%d?verbose=true", id), &b); err != nil {
			return nil, err
		}
		d.progress(b, seen)
		// done moves to ready at once unless ready is manual: stop at
		// done only once it stayed done.
		s := b["state_name"]
		if s == "done" && doneSince.IsZero() {
			doneSince = time.Now()
		}
		if s == "ready" || s == "failed" || s == "garbage" || (s == "done" && time.Since(doneSince) > 2*time.Second) {
			d.summary(b)
			return b, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("build %d: not finished after %s", id, d.timeout)
}

func (d *demo) get(ctx context.Context, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.base+path, nil)
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

type demoComponent struct {
	Key    string `json:"key"`
	Batch  int    `json:"batch"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	NVR    string `json:"nvr"`
}

func components(b map[string]any) []demoComponent {
	raw, _ := json.Marshal(b["components"])
	var cs []demoComponent
	_ = json.Unmarshal(raw, &cs)
	return cs
}

func (d *demo) progress(b map[string]any, seen map[string]bool) {
	key := fmt.Sprintf("build %v", b["state_name"])
	if !seen[key] {
		seen[key] = true
		fmt.Fprintf(d.out, "    build %v %s:%s  %v", b["id"], b["name"], b["stream"], b["state_name"])
		if r, ok := b["state_reason"].(string); ok && r != "" {
			fmt.Fprintf(d.out, "  (%s)", r)
		}
		fmt.Fprintln(d.out)
	}
	for _, c := range components(b) {
		k := c.Key + " " + c.State
		if seen[k] || c.State == "queued" {
			continue
		}
		seen[k] = true
		line := fmt.Sprintf("      batch %d  %-22s %s", c.Batch, c.Key, c.State)
		switch c.State {
		case "complete":
			line += "  " + c.NVR
		case "failed", "reused":
			line += "  " + c.Reason
		}
		fmt.Fprintln(d.out, line)
	}
}

func (d *demo) summary(b map[string]any) {
	tw := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\n    BATCH\tCOMPONENT\tSTATE\tNVR\n")
	cs := components(b)
	slices.SortStableFunc(cs, func(x, y demoComponent) int { return x.Batch - y.Batch })
	for _, c := range cs {
		fmt.Fprintf(tw, "    %d\t%s\t%s\t%s\n", c.Batch, c.Key, c.State, c.NVR)
	}
	tw.Flush()
	fmt.Fprintf(d.out, "    build %v: %v (%v)\n\n", b["id"], b["state_name"], b["state_reason"])
}
