package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/examples"
	"github.com/rida-build/rida/forge"
	"github.com/rida-build/rida/forge/forgetest"
	"github.com/rida-build/rida/modulemd"
)

// graphWorld is a set of module and component repositories on disk and a
// rida serve building them with real rpmbuild (no --nodeps), reporting
// statuses to a GitHub Enterprise double.
type graphWorld struct {
	t      *testing.T
	dir    string
	srv    *forgetest.Server
	d      *demo
	repos  map[string]examples.Repo // full name → repository
	serve  *serverProc
	secret string
}

const zeroSHA = "0000000000000000000000000000000000000000"

func newGraphWorld(t *testing.T) *graphWorld {
	return newGraphWorldWith(t, `backend: {kind: local, local: {parallel: 2, sandbox: "off"}}`)
}

// newGraphWorldWith starts rida serve with backend as its backend
// configuration (YAML) and env entries added to its environment.
func newGraphWorldWith(t *testing.T, backend string, env ...string) *graphWorld {
	t.Helper()
	srv := forgetest.NewServer(t, forge.KindGHE)
	dir := t.TempDir()
	w := &graphWorld{t: t, dir: dir, srv: srv, repos: map[string]examples.Repo{}, secret: "graph-secret"}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
public_url: http://rida.example
forges: [{kind: github, secret_env: RIDA_WEBHOOK_SECRET, api_url: %q, token_env: RIDA_GITHUB_TOKEN}]
repos: {modules: ["modules/*"], components: ["rpms/*"]}
statuses: {rate_per_forge: 100}
build: {max_builds: 2, cascade: true}
%s
`, filepath.Join(dir, "data"), srv.URL(), backend)
	cfgPath := filepath.Join(dir, "rida.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	w.serve = startServe(t, filepath.Join(dir, "data"), w.secret, append([]string{"--config", cfgPath, "--", "RIDA_GITHUB_TOKEN=" + srv.Token()}, env...)...)
	w.d = &demo{base: w.serve.base, secret: w.secret, client: &http.Client{Timeout: 10 * time.Second}, out: &bytes.Buffer{}, timeout: 3 * time.Minute}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
			t.Logf("serve.log:\n%s", tail(string(log), 60))
		}
	})
	return w
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// spec returns a noarch package that installs one file and BuildRequires
// brs (checked by rpmbuild against the module's buildroot).
func spec(name string, sleep int, brs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Name: %s\nVersion: 1.0\nRelease: 1%%{?dist}\nSummary: %s\nLicense: MIT\nBuildArch: noarch\n", name, name)
	for _, br := range brs {
		fmt.Fprintf(&b, "BuildRequires: %s\n", br)
	}
	fmt.Fprintf(&b, "\n%%description\n%s for rida's module graph tests.\n\n%%build\n", name)
	if sleep > 0 {
		fmt.Fprintf(&b, "sleep %d\n", sleep)
	}
	fmt.Fprintf(&b, "\n%%install\nmkdir -p %%{buildroot}/usr/share/%s\necho %s > %%{buildroot}/usr/share/%s/file\n\n%%files\n/usr/share/%s/file\n", name, name, name, name)
	return b.String()
}

// module returns a modulemd for name (stream from the branch) that
// buildrequires brs ("name:stream") and builds components (ref main).
func module(name string, brs []string, comps ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "document: modulemd\nversion: 2\ndata:\n  name: %s\n  summary: %s\n  description: %s, a module of rida's graph tests.\n  license:\n    module: [MIT]\n", name, name, name)
	b.WriteString("  dependencies:\n    - buildrequires:\n        platform: [el9]\n")
	list := func(s string) string {
		if strings.HasPrefix(s, "[") {
			return s
		}
		return "[" + strconv.Quote(s) + "]"
	}
	for _, br := range brs {
		n, s, _ := strings.Cut(br, ":")
		fmt.Fprintf(&b, "        %s: %s\n", n, list(s))
	}
	b.WriteString("      requires:\n        platform: [el9]\n")
	for _, br := range brs {
		n, s, _ := strings.Cut(br, ":")
		fmt.Fprintf(&b, "        %s: %s\n", n, list(s))
	}
	b.WriteString("  components:\n    rpms:\n")
	for _, c := range comps {
		fmt.Fprintf(&b, "      %s:\n        rationale: test\n        ref: main\n", c)
	}
	return b.String()
}

// addModule creates modules/<name> (branch stream) and rpms/<comp> for
// each component spec, and pushes the module.
func (w *graphWorld) addModule(name, stream string, brs []string, specs map[string]string) {
	w.t.Helper()
	var comps []string
	for c, s := range specs {
		comps = append(comps, c)
		full := "rpms/" + c
		if _, ok := w.repos[full]; ok {
			continue
		}
		r, err := examples.CreateRepo(filepath.Join(w.dir, "git", "rpms", c), "main", map[string]string{c + ".spec": s}, examples.Options{})
		if err != nil {
			w.t.Fatal(err)
		}
		w.repos[full] = r
	}
	slices.Sort(comps)
	r, err := examples.CreateRepo(filepath.Join(w.dir, "git", "modules", name), stream,
		map[string]string{name + ".yaml": module(name, brs, comps...)}, examples.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.repos["modules/"+name] = r
}

// push delivers a signed push of the whole branch of full (as a new
// branch), or of before..after.
func (w *graphWorld) push(full, before, after string) uint64 {
	w.t.Helper()
	r := w.repos[full]
	if after == "" {
		before, after = zeroSHA, r.Commit
	}
	id, err := w.d.deliverID(context.Background(), full, r, before, after, "push")
	if err != nil {
		w.t.Fatalf("push %s: %v", full, err)
	}
	return id
}

// change commits a change to repository full and pushes it; it returns
// the new commit.
func (w *graphWorld) change(full string) string {
	w.t.Helper()
	r := w.repos[full]
	after, err := r.CommitFiles(full+": change", map[string]string{"README": "changed\n"})
	if err != nil {
		w.t.Fatal(err)
	}
	w.push(full, r.Commit, after)
	r.Commit = after
	w.repos[full] = r
	return after
}

// apiBuild is the part of MBS's verbose build JSON the tests read.
type apiBuild struct {
	ID            uint64                    `json:"id"`
	Name          string                    `json:"name"`
	Stream        string                    `json:"stream"`
	Version       string                    `json:"version"`
	Context       string                    `json:"context"`
	State         string                    `json:"state_name"`
	Reason        string                    `json:"state_reason"`
	Modulemd      string                    `json:"modulemd"`
	BuildRequires map[string]map[string]any `json:"buildrequires"`
	TimeCompleted string                    `json:"time_completed"`
	TimeSubmitted string                    `json:"time_submitted"`
	RequestID     uint64                    `json:"request_id"`
}

func (w *graphWorld) builds(name string) []apiBuild {
	w.t.Helper()
	var page struct {
		Items []apiBuild `json:"items"`
	}
	if err := w.d.get(context.Background(), "/module-build-service/1/module-builds/?verbose=true&per_page=100&name="+name, &page); err != nil {
		w.t.Fatal(err)
	}
	slices.SortFunc(page.Items, func(a, b apiBuild) int { return int(a.ID) - int(b.ID) })
	return page.Items
}

// waitBuilds waits until name has n builds and the newest is in a final
// state, and returns them, oldest first.
func (w *graphWorld) waitBuilds(name string, n int, timeout time.Duration) []apiBuild {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		bs := w.builds(name)
		if len(bs) >= n {
			last := bs[len(bs)-1].State
			if last == "ready" || last == "failed" || last == "garbage" {
				return bs
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: want %d builds, the last one final, within %s; have %+v", name, n, timeout, bs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// xmdBuildRequires reads xmd.mbs.buildrequires.<dep>.{version, context}
// from a build's modulemd.
func xmdBuildRequires(t *testing.T, b apiBuild, dep string) map[string]any {
	t.Helper()
	streams, err := modulemd.Parse([]byte(b.Modulemd))
	if err != nil || len(streams) != 1 {
		t.Fatalf("build %d: modulemd: %v", b.ID, err)
	}
	mbs, _ := streams[0].Xmd["mbs"].(map[string]any)
	brs, _ := mbs["buildrequires"].(map[string]any)
	entry, _ := brs[dep].(map[string]any)
	if entry == nil {
		t.Fatalf("build %d: no xmd.mbs.buildrequires.%s in %v", b.ID, dep, brs)
	}
	return entry
}

func (w *graphWorld) waitStatus(repo, sha, context, state string, timeout time.Duration) {
	w.t.Helper()
	key := forgetest.Key{Repo: repo, SHA: sha, Context: context}
	deadline := time.Now().Add(timeout)
	for {
		if got, ok := w.srv.Statuses()[key]; ok && got.State == state {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no %s status %s on %s@%.12s within %s; have %+v", state, context, repo, sha, timeout, w.srv.Statuses()[key])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServe_Graph_BuildRequiresAndCascade: module upper buildrequires
// lower:stable and its component BuildRequires lower's package. Both
// build; a push to lower's component rebuilds lower, then upper against the
// new lower, and the pushed commit gets both modules' statuses.
func TestServe_Graph_BuildRequiresAndCascade(t *testing.T) {
	w := newGraphWorld(t)
	w.addModule("lower", "stable", nil, map[string]string{"liblow": spec("liblow", 0)})
	w.addModule("upper", "stable", []string{"lower:stable"}, map[string]string{"app": spec("app", 0, "liblow")})

	w.push("modules/lower", "", "")
	lower := w.waitBuilds("lower", 1, 2*time.Minute)
	if lower[0].State != "ready" {
		t.Fatalf("lower: %s (%s)", lower[0].State, lower[0].Reason)
	}
	w.push("modules/upper", "", "")
	upper := w.waitBuilds("upper", 1, 2*time.Minute)
	if upper[0].State != "ready" {
		t.Fatalf("upper: %s (%s)", upper[0].State, upper[0].Reason)
	}
	br := xmdBuildRequires(t, upper[0], "lower")
	if br["version"] != lower[0].Version || br["context"] != lower[0].Context || br["stream"] != "stable" {
		t.Errorf("upper's xmd.mbs.buildrequires.lower = %v, want lower build %d (%s:%s)", br, lower[0].ID, lower[0].Version, lower[0].Context)
	}

	// A push to liblow: lower is rebuilt, then upper cascades.
	after := w.change("rpms/liblow")
	lower = w.waitBuilds("lower", 2, 2*time.Minute)
	if lower[1].State != "ready" {
		t.Fatalf("lower rebuild: %s (%s)", lower[1].State, lower[1].Reason)
	}
	upper = w.waitBuilds("upper", 2, 2*time.Minute)
	newUpper := upper[1]
	if newUpper.State != "ready" {
		t.Fatalf("upper cascade: %s (%s)", newUpper.State, newUpper.Reason)
	}
	br = xmdBuildRequires(t, newUpper, "lower")
	if br["version"] != lower[1].Version || br["context"] != lower[1].Context {
		t.Errorf("cascaded upper built against %v, want the new lower build %d (%s)", br, lower[1].ID, lower[1].Version)
	}
	if api := newUpper.BuildRequires["lower"]; api == nil || fmt.Sprint(api["version"]) != lower[1].Version {
		t.Errorf("API buildrequires of the cascaded upper: %v, want lower version %s", newUpper.BuildRequires, lower[1].Version)
	}
	if newUpper.Version == upper[0].Version {
		t.Errorf("the cascaded upper repeats version %s", newUpper.Version)
	}
	// The packager who pushed liblow sees both modules on the commit.
	w.waitStatus("rpms/liblow", after, "rida/lower:stable", "success", 30*time.Second)
	w.waitStatus("rpms/liblow", after, "rida/upper:stable", "success", 30*time.Second)
	// The cascaded request names its cause.
	var rq struct {
		Request struct {
			Key         string   `json:"key"`
			Kind        string   `json:"kind"`
			Reasons     []string `json:"reasons"`
			CascadeFrom uint64   `json:"cascade_from"`
		} `json:"request"`
	}
	if err := w.d.get(context.Background(), fmt.Sprintf("/api/v1/requests/%d", newUpper.RequestID), &rq); err != nil {
		t.Fatal(err)
	}
	if r := rq.Request; r.Kind != "cascade" || r.CascadeFrom != lower[1].ID ||
		!strings.Contains(strings.Join(r.Reasons, ";"), fmt.Sprintf("lower:stable build %d became ready", lower[1].ID)) {
		t.Errorf("cascaded request %+v", r)
	}
}

// TestServe_Graph_Diamond: b and c buildrequire a, d buildrequires b and c.
// A push to a's component rebuilds a, then b and c, then d once, after
// both.
func TestServe_Graph_Diamond(t *testing.T) {
	w := newGraphWorld(t)
	w.addModule("a", "1", nil, map[string]string{"pa": spec("pa", 0)})
	w.addModule("b", "1", []string{"a:1"}, map[string]string{"pb": spec("pb", 1, "pa")})
	w.addModule("c", "1", []string{"a:1"}, map[string]string{"pc": spec("pc", 0, "pa")})
	w.addModule("d", "1", []string{"b:1", "c:1"}, map[string]string{"pd": spec("pd", 0, "pb", "pc", "pa")})
	for _, m := range []string{"a", "b", "c", "d"} {
		w.push("modules/"+m, "", "")
		if bs := w.waitBuilds(m, 1, 2*time.Minute); bs[0].State != "ready" {
			t.Fatalf("%s: %s (%s)", m, bs[0].State, bs[0].Reason)
		}
	}
	w.change("rpms/pa")
	a := w.waitBuilds("a", 2, 2*time.Minute)
	b := w.waitBuilds("b", 2, 2*time.Minute)
	c := w.waitBuilds("c", 2, 2*time.Minute)
	d := w.waitBuilds("d", 2, 3*time.Minute)
	// Give a stray second cascade time to show up.
	time.Sleep(3 * time.Second)
	if n := len(w.builds("d")); n != 2 {
		t.Fatalf("d has %d builds, want 2 (one initial, one cascade): %+v", n, w.builds("d"))
	}
	for _, x := range [][]apiBuild{a, b, c, d} {
		if x[1].State != "ready" {
			t.Fatalf("%s rebuild: %s (%s)", x[1].Name, x[1].State, x[1].Reason)
		}
	}
	// d was built against the new b and c, hence after both.
	for dep, bs := range map[string][]apiBuild{"b": b, "c": c} {
		if got := xmdBuildRequires(t, d[1], dep); got["version"] != bs[1].Version {
			t.Errorf("d built against %s %v, want the rebuilt %s (%s)", dep, got["version"], dep, bs[1].Version)
		}
	}
	// a comes in transitively, through b's and c's requires.
	if got := xmdBuildRequires(t, d[1], "a"); got["version"] != a[1].Version {
		t.Errorf("d's transitive a: %v, want %s", got["version"], a[1].Version)
	}
	if !(d[1].TimeSubmitted != "" && b[1].TimeCompleted <= d[1].TimeCompleted && c[1].TimeCompleted <= d[1].TimeCompleted) {
		t.Errorf("d finished %s before b (%s) or c (%s)", d[1].TimeCompleted, b[1].TimeCompleted, c[1].TimeCompleted)
	}
}

// TestServe_Graph_RefusalsAndWait: a module cycle is refused naming the
// cycle; a buildrequired stream never built is a failure naming it; a
// dependent pushed while its buildrequired stream builds waits, then
// builds against it.
func TestServe_Graph_RefusalsAndWait(t *testing.T) {
	w := newGraphWorld(t)
	// Cycle: y buildrequires x:1, x buildrequires y:1.
	w.addModule("y", "1", []string{"x:1"}, map[string]string{"py": spec("py", 0)})
	w.addModule("x", "1", []string{"y:1"}, map[string]string{"px": spec("px", 0)})
	w.push("modules/y", "", "")
	y := w.waitBuilds("y", 1, time.Minute)
	if y[0].State != "failed" || !strings.Contains(y[0].Reason, "buildrequires x:1, which rida has never built") || !strings.Contains(y[0].Reason, "rida submit") {
		t.Errorf("y: %s (%s)", y[0].State, y[0].Reason)
	}
	w.waitStatus("modules/y", w.repos["modules/y"].Commit, "rida/y:1", "failure", 30*time.Second)
	w.push("modules/x", "", "")
	x := w.waitBuilds("x", 1, time.Minute)
	if x[0].State != "failed" || !strings.Contains(x[0].Reason, "module dependency cycle: x:1 → y:1 → x:1") {
		t.Errorf("x: %s (%s), want the cycle named", x[0].State, x[0].Reason)
	}

	// A component whose repository does not exist is the packager's
	// failure, not an infrastructure error.
	ghost, err := examples.CreateRepo(filepath.Join(w.dir, "git", "modules", "ghost"), "1",
		map[string]string{"ghost.yaml": module("ghost", nil, "no-such-component")}, examples.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.repos["modules/ghost"] = ghost
	w.push("modules/ghost", "", "")
	g := w.waitBuilds("ghost", 1, time.Minute)
	if g[0].State != "failed" || !strings.Contains(g[0].Reason, "no-such-component") || !strings.Contains(g[0].Reason, "repository not found") {
		t.Errorf("ghost: %s (%s)", g[0].State, g[0].Reason)
	}
	w.waitStatus("modules/ghost", ghost.Commit, "rida/ghost:1", "failure", 30*time.Second)

	// Wait: slow (building for a few seconds) and fast, which
	// buildrequires slow:1 and is pushed while slow builds.
	w.addModule("slow", "1", nil, map[string]string{"pslow": spec("pslow", 4)})
	w.addModule("fast", "1", []string{"slow:1"}, map[string]string{"pfast": spec("pfast", 0, "pslow")})
	w.push("modules/slow", "", "")
	deadline := time.Now().Add(time.Minute)
	for {
		if bs := w.builds("slow"); len(bs) == 1 && bs[0].State == "build" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slow never reached build: %+v", w.builds("slow"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.push("modules/fast", "", "")
	sawWait := false
	deadline = time.Now().Add(time.Minute)
	for !sawWait && time.Now().Before(deadline) {
		if bs := w.builds("fast"); len(bs) == 1 && bs[0].State == "wait" && strings.Contains(bs[0].Reason, "waiting for buildrequired slow:1") {
			sawWait = true
		}
		if bs := w.builds("slow"); len(bs) == 1 && bs[0].State == "ready" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sawWait {
		t.Errorf("fast never waited for slow: %+v", w.builds("fast"))
	}
	fast := w.waitBuilds("fast", 1, 2*time.Minute)
	slow := w.builds("slow")
	if fast[0].State != "ready" {
		t.Fatalf("fast: %s (%s)", fast[0].State, fast[0].Reason)
	}
	if got := xmdBuildRequires(t, fast[0], "slow"); got["version"] != slow[0].Version {
		t.Errorf("fast built against slow %v, want %s", got["version"], slow[0].Version)
	}
	// Stream expansion over the streams with ready builds: an empty list
	// expands to slow:1 (the only one), an exclusion of it leaves none.
	w.addModule("anyslow", "1", []string{"slow:[]"}, map[string]string{"pany": spec("pany", 0, "pslow")})
	w.push("modules/anyslow", "", "")
	anyslow := w.waitBuilds("anyslow", 1, 2*time.Minute)
	if anyslow[0].State != "ready" {
		t.Fatalf("anyslow: %s (%s)", anyslow[0].State, anyslow[0].Reason)
	}
	if got := xmdBuildRequires(t, anyslow[0], "slow"); got["stream"] != "1" || got["version"] != slow[0].Version {
		t.Errorf("anyslow expanded to %v, want slow:1 build %s", got, slow[0].Version)
	}
	w.addModule("notslow", "1", []string{"slow:-1"}, map[string]string{"pnot": spec("pnot", 0)})
	w.push("modules/notslow", "", "")
	if b := w.waitBuilds("notslow", 1, time.Minute); b[0].State != "failed" || !strings.Contains(b[0].Reason, "matches none of the available streams of slow (1)") {
		t.Errorf("notslow: %s (%s)", b[0].State, b[0].Reason)
	}
	// slow's becoming ready cascaded to fast, which was still waiting or
	// already built against it: the second request is identical, so no
	// third build of the same content is made.
	time.Sleep(2 * time.Second)
	for _, b := range w.builds("fast")[1:] {
		if b.State != "garbage" && b.State != "ready" {
			t.Errorf("fast: extra build %d %s (%s)", b.ID, b.State, b.Reason)
		}
	}
}

// TestServe_Graph_Koji: the same graph through the Koji backend against the
// hub double: upper's -build tag inherits lower's module tag after the base
// module tag, and the cascade rebuilds upper against the new lower's tag.
func TestServe_Graph_Koji(t *testing.T) {
	hub := newKojiHub(t, 20*time.Millisecond)
	w := newGraphWorldWith(t, kojiBackendYAML(hub), "RIDA_KOJI_PASSWORD=kojipass")
	w.addModule("lower", "stable", nil, map[string]string{"liblow": spec("liblow", 0)})
	w.addModule("upper", "stable", []string{"lower:stable"}, map[string]string{"app": spec("app", 0, "liblow")})
	w.push("modules/lower", "", "")
	lower := w.waitBuilds("lower", 1, 2*time.Minute)
	w.push("modules/upper", "", "")
	upper := w.waitBuilds("upper", 1, 2*time.Minute)
	if lower[0].State != "ready" || upper[0].State != "ready" {
		t.Fatalf("lower %s (%s), upper %s (%s)", lower[0].State, lower[0].Reason, upper[0].State, upper[0].Reason)
	}
	inherits := func(b apiBuild, dep apiBuild) {
		t.Helper()
		tag := modulemd.KojiTag(b.Name, b.Stream, parseUint(t, b.Version), b.Context)
		depTag := modulemd.KojiTag(dep.Name, dep.Stream, parseUint(t, dep.Version), dep.Context)
		st, ok := hub.Tag(tag + "-build")
		if !ok {
			t.Fatalf("no tag %s-build on the hub", tag)
		}
		var got []string
		for _, l := range st.Inheritance {
			got = append(got, fmt.Sprintf("%s@%d", l.Parent, l.Priority))
		}
		if want := []string{kojiBaseTag + "@0", depTag + "@10"}; !slices.Equal(got, want) {
			t.Errorf("%s-build inherits %v, want %v", tag, got, want)
		}
		if br := xmdBuildRequires(t, b, "lower"); br["koji_tag"] != depTag {
			t.Errorf("xmd.mbs.buildrequires.lower.koji_tag = %v, want %s", br["koji_tag"], depTag)
		}
	}
	inherits(upper[0], lower[0])

	w.change("rpms/liblow")
	lower = w.waitBuilds("lower", 2, 2*time.Minute)
	upper = w.waitBuilds("upper", 2, 2*time.Minute)
	if lower[1].State != "ready" || upper[1].State != "ready" {
		t.Fatalf("lower %s (%s), upper %s (%s)", lower[1].State, lower[1].Reason, upper[1].State, upper[1].Reason)
	}
	inherits(upper[1], lower[1])
}

func parseUint(t *testing.T, s string) uint64 {
	t.Helper()
	var v uint64
	if _, err := fmt.Sscan(s, &v); err != nil {
		t.Fatalf("version %q: %v", s, err)
	}
	return v
}
