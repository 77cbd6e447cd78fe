package kojitest

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/rida-build/rida/koji/internal/wire"
)

// Koji state enums (koji.TASK_STATES, BUILD_STATES, REPO_STATES), for
// assertions on TaskState.
const (
	// TaskFree and the other Task* constants are task states.
	TaskFree     = 0
	TaskOpen     = 1 // started by a builder
	TaskClosed   = 2 // succeeded
	TaskCanceled = 3
	TaskAssigned = 4
	TaskFailed   = 5

	// BuildBuilding and the other Build* constants are build states.
	BuildBuilding = 0
	BuildComplete = 1
	BuildDeleted  = 2
	BuildFailed   = 3
	BuildCanceled = 4

	// RepoInit and the other Repo* constants are repo states.
	RepoInit    = 0
	RepoReady   = 1
	RepoExpired = 2
)

var taskStateNames = []string{"FREE", "OPEN", "CLOSED", "CANCELED", "ASSIGNED", "FAILED"}
var buildStateNames = []string{"BUILDING", "COMPLETE", "DELETED", "FAILED", "CANCELED"}

type tag struct {
	id              int
	name            string
	arches          any // string or nil
	perm            int // permission id, 0: none
	locked          bool
	mavenSupport    bool
	mavenIncludeAll bool
	extra           map[string]any
	parents         []link
	groups          map[string]*group
	pkgs            map[string]*pkgEntry
	tagged          []tagging
}

type link struct {
	parentID     int
	priority     int64
	maxdepth     any
	intransitive bool
	noconfig     bool
	pkgFilter    string
}

type group struct {
	id   int
	name string
	opts map[string]any
	pkgs []string
}

type pkgEntry struct {
	pkgID   int
	owner   *user
	blocked bool
}

type tagging struct {
	buildID int
	event   int64
}

type target struct {
	id                int
	name              string
	buildTag, destTag int
}

type rpm struct {
	id   int
	arch string
}

type build struct {
	id                     int
	pkgID                  int
	name, version, release string
	state                  int
	taskID                 int
	owner                  *user
	source                 string
	created, started, done time.Time
	event                  int64
	rpms                   []rpm
}

func (b *build) nvr() string { return b.name + "-" + b.version + "-" + b.release }

type task struct {
	id         int
	method     string
	state      int
	request    []any
	owner      *user
	priority   int
	arch       string
	channel    int
	created    time.Time
	started    time.Time
	completed  time.Time
	due        time.Time
	manual     bool
	result     any
	fault      *wire.Fault
	event      int64 // event when created
	repoTagID  int
	buildTagID int
}

type repo struct {
	id      int
	tagID   int
	state   int
	event   int64
	taskID  int
	created time.Time
}

type repoRequest struct {
	id       int
	tagID    int
	minEvent int64
	taskID   int
	repoID   int
	active   bool
	owner    *user
	created  time.Time
	updated  time.Time
	tries    int
}

func kojiTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02 15:04:05.000000") + "+00:00"
}

func kojiTS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return float64(t.UnixMicro()) / 1e6
}

// pyRepr renders a value as Python's %r would, for fault strings.
func pyRepr(v any) string {
	switch v := v.(type) {
	case string:
		return "'" + v + "'"
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	}
	return fmt.Sprint(v)
}

// pyType names a decoded value's Python type.
func pyType(v any) string {
	switch v.(type) {
	case nil:
		return "<class 'NoneType'>"
	case bool:
		return "<class 'bool'>"
	case int64:
		return "<class 'int'>"
	case float64:
		return "<class 'float'>"
	case string:
		return "<class 'str'>"
	case []any:
		return "<class 'list'>"
	case map[string]any:
		return "<class 'dict'>"
	case []byte:
		return "<class 'bytes'>"
	}
	return fmt.Sprintf("<class '%T'>", v)
}

func toInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case float64: // defaults from the JSON signature file
		if v == math.Trunc(v) {
			return int64(v), true
		}
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// truthy is Python's bool().
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case int64:
		return v != 0
	case float64:
		return v != 0
	case string:
		return v != ""
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

// lookupTag finds a tag by name, id or {id|name} dict. It returns nil
// without a fault when the tag does not exist, and a fault for a bad type.
func (h *Hub) lookupTag(info any) (*tag, *wire.Fault) {
	switch v := info.(type) {
	case string:
		if id, ok := h.tagNames[v]; ok {
			return h.tags[id], nil
		}
		return nil, nil
	case int64:
		return h.tags[int(v)], nil
	case map[string]any:
		if id, ok := v["id"]; ok {
			return h.lookupTag(id)
		}
		if n, ok := v["name"]; ok {
			return h.lookupTag(n)
		}
	}
	return nil, genericf("Invalid type for tagInfo: %s", pyType(info))
}

func (h *Hub) mustTag(info any) (*tag, *wire.Fault) {
	t, f := h.lookupTag(info)
	if f != nil {
		return nil, f
	}
	if t == nil {
		return nil, genericf("No such tagInfo: %s", pyRepr(info))
	}
	return t, nil
}

// ancestry returns the tag followed by its inheritance, depth first by
// priority, each tag once.
func (h *Hub) ancestry(t *tag) []*tag {
	var out []*tag
	seen := map[int]bool{}
	var walk func(*tag)
	walk = func(t *tag) {
		if t == nil || seen[t.id] {
			return
		}
		seen[t.id] = true
		out = append(out, t)
		links := slices.Clone(t.parents)
		slices.SortFunc(links, func(a, b link) int { return int(a.priority - b.priority) })
		for _, l := range links {
			walk(h.tags[l.parentID])
		}
	}
	walk(t)
	return out
}

// effectivePkg returns the package list entry a tag sees, inheritance
// included.
func (h *Hub) effectivePkg(t *tag, name string) *pkgEntry {
	for _, a := range h.ancestry(t) {
		if e, ok := a.pkgs[name]; ok {
			return e
		}
	}
	return nil
}

func (h *Hub) lookupUser(v any) *user {
	switch v := v.(type) {
	case string:
		return h.users[v]
	case int64:
		for _, u := range h.users {
			if int64(u.id) == v {
				return u
			}
		}
	}
	return nil
}

func (h *Hub) lookupBuild(info any) (*build, *wire.Fault) {
	switch v := info.(type) {
	case int64:
		return h.builds[int(v)], nil
	case string:
		for _, b := range h.builds {
			if b.nvr() == v {
				return b, nil
			}
		}
		return nil, nil
	case map[string]any:
		if id, ok := v["id"]; ok {
			return h.lookupBuild(id)
		}
		n, _ := v["name"].(string)
		ver, _ := v["version"].(string)
		rel, _ := v["release"].(string)
		return h.lookupBuild(n + "-" + ver + "-" + rel)
	}
	return nil, genericf("Invalid type for buildInfo: %s", pyType(info))
}

func (h *Hub) tagInfo(t *tag) map[string]any {
	extra := map[string]any{}
	for k, v := range t.extra {
		extra[k] = v
	}
	return map[string]any{
		"id": t.id, "name": t.name, "arches": t.arches, "perm": permName(t.perm), "perm_id": permIDValue(t.perm),
		"locked": t.locked, "maven_support": t.mavenSupport, "maven_include_all": t.mavenIncludeAll,
		"extra": extra,
	}
}

// buildInfo is getBuild's answer: every column of the build, "id" and
// "build_id" both, the content generator and promotion columns NULL.
func (h *Hub) buildInfo(b *build) map[string]any {
	m := h.listBuildsRow(b)
	m["id"], m["cg_id"], m["cg_name"] = b.id, nil, nil
	return m
}

// listBuildsRow is a listBuilds row: "build_id" and no "id" (recorded from
// Koji 1.35.3; reading "id" here is the bug the recordings caught).
func (h *Hub) listBuildsRow(b *build) map[string]any {
	owner, ownerID := "", 0
	if b.owner != nil {
		owner, ownerID = b.owner.name, b.owner.id
	}
	var taskID any
	if b.taskID != 0 {
		taskID = b.taskID
	}
	return map[string]any{
		"build_id": b.id, "package_id": b.pkgID, "package_name": b.name, "name": b.name,
		"version": b.version, "release": b.release, "epoch": nil, "nvr": b.nvr(), "draft": false,
		"state": b.state, "task_id": taskID, "owner_id": ownerID, "owner_name": owner,
		"volume_id": 0, "volume_name": "DEFAULT", "creation_event_id": b.event,
		"creation_time": kojiTime(b.created), "creation_ts": kojiTS(b.created),
		"start_time": kojiTime(b.started), "start_ts": kojiTS(b.started),
		"completion_time": kojiTime(b.done), "completion_ts": kojiTS(b.done),
		"source": b.source, "extra": nil,
		"promoter_id": nil, "promoter_name": nil, "promotion_time": nil, "promotion_ts": nil,
	}
}

// listTaggedRow is a listTagged row before its tag columns: "id" and
// "build_id", the tagging event as "create_event", no *_ts, source, extra
// or content generator columns.
func (h *Hub) listTaggedRow(b *build, event int64) map[string]any {
	m := h.listBuildsRow(b)
	for _, k := range []string{"creation_ts", "start_ts", "completion_ts", "promotion_ts", "source", "extra"} {
		delete(m, k)
	}
	m["id"], m["create_event"] = b.id, event
	return m
}

func (h *Hub) taskInfo(t *task, withRequest bool) map[string]any {
	ownerID := 0
	if t.owner != nil {
		ownerID = t.owner.id
	}
	m := map[string]any{
		"arch": t.arch, "awaited": nil, "channel_id": t.channel,
		"completion_time": kojiTime(t.completed), "completion_ts": kojiTS(t.completed),
		"create_time": kojiTime(t.created), "create_ts": kojiTS(t.created),
		"host_id": nil, "id": t.id, "label": nil, "method": t.method, "owner": ownerID,
		"parent": nil, "priority": t.priority, "start_time": kojiTime(t.started), "start_ts": kojiTS(t.started),
		"state": t.state, "waiting": nil, "weight": 1.0,
	}
	if t.state == TaskOpen || t.state == TaskClosed || t.state == TaskFailed {
		m["host_id"] = 1
	}
	if withRequest {
		m["request"] = t.request
	}
	return m
}

func (h *Hub) repoInfo(r *repo) map[string]any {
	t := h.tags[r.tagID]
	var taskState any
	if tk := h.tasks[r.taskID]; tk != nil {
		taskState = tk.state
	}
	return map[string]any{
		"id": r.id, "tag_id": r.tagID, "tag_name": t.name, "state": r.state, "dist": false,
		"opts":        map[string]any{"src": false, "debuginfo": false, "separate_src": false, "maven": false},
		"custom_opts": map[string]any{}, "task_id": r.taskID, "task_state": taskState,
		"create_event": r.event, "create_ts": kojiTS(r.created),
		"begin_event": r.event, "begin_ts": kojiTS(r.created), "end_event": nil, "end_ts": nil,
		"creation_time": kojiTime(r.created), "creation_ts": kojiTS(r.created),
		"state_time": kojiTime(r.created), "state_ts": kojiTS(r.created),
	}
}

func (h *Hub) requestInfo(q *repoRequest) map[string]any {
	t := h.tags[q.tagID]
	var taskID, taskState, repoID any
	if tk := h.tasks[q.taskID]; tk != nil {
		taskID, taskState = tk.id, tk.state
	}
	if q.repoID != 0 {
		repoID = q.repoID
	}
	return map[string]any{
		"active": q.active, "at_event": nil, "create_time": kojiTime(q.created), "create_ts": kojiTS(q.created),
		"id": q.id, "min_event": q.minEvent, "opts": map[string]any{}, "owner": q.owner.id,
		"owner_name": q.owner.name, "priority": 20, "repo_id": repoID, "tag_id": t.id, "tag_name": t.name,
		"task_id": taskID, "task_state": taskState, "tries": q.tries,
		"update_time": kojiTime(q.updated), "update_ts": kojiTS(q.updated),
	}
}

// newTask creates a task in state FREE, due after d (Manual: never).
func (h *Hub) newTask(method string, request []any, owner *user, priority int, d time.Duration) *task {
	now := h.opts.Now()
	t := &task{
		id: h.id("task"), method: method, state: TaskFree, request: request, owner: owner,
		priority: priority, arch: "noarch", channel: 1, created: now, event: h.event,
	}
	if d < 0 {
		t.manual = true
	} else {
		t.due = now.Add(d)
	}
	h.tasks[t.id] = t
	return t
}

// advance moves time-driven tasks along. Called with h.mu held at the
// start of every request.
func (h *Hub) advance() {
	now := h.opts.Now()
	ids := make([]int, 0, len(h.tasks))
	for id, t := range h.tasks {
		if !t.manual && (t.state == TaskFree || t.state == TaskOpen) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		t := h.tasks[id]
		if t.state == TaskFree {
			t.state, t.started = TaskOpen, now
		}
		if !now.Before(t.due) {
			// As on a real hub, the task ended when its builder finished
			// it, not when a client next asked.
			end := t.due
			if end.Before(t.created) {
				end = t.created
			}
			if t.started.After(end) {
				t.started = t.created
			}
			h.finishTask(t, end)
		}
	}
}

// CompleteTask runs a FREE or OPEN task to its end as kojid would: a build
// task creates its build (or fails, e.g. when the NVR exists), a tagBuild
// task tags, a newRepo task makes a READY repo.
func (h *Hub) CompleteTask(id int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.tasks[id]
	if !ok {
		return fmt.Errorf("kojitest: no task %d", id)
	}
	if t.state != TaskFree && t.state != TaskOpen && t.state != TaskAssigned {
		return fmt.Errorf("kojitest: task %d is %s", id, taskStateNames[t.state])
	}
	now := h.opts.Now()
	if t.started.IsZero() {
		t.started = now
	}
	h.finishTask(t, now)
	return nil
}

// FailTask fails a FREE or OPEN task with BuildError msg, as a failed
// kojid task does.
func (h *Hub) FailTask(id int, msg string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.tasks[id]
	if !ok {
		return fmt.Errorf("kojitest: no task %d", id)
	}
	if t.state != TaskFree && t.state != TaskOpen && t.state != TaskAssigned {
		return fmt.Errorf("kojitest: task %d is %s", id, taskStateNames[t.state])
	}
	h.fail(t, h.opts.Now(), &wire.Fault{Code: 1005, String: msg})
	return nil
}

func (h *Hub) fail(t *task, now time.Time, f *wire.Fault) {
	if t.started.IsZero() {
		t.started = now
	}
	t.state, t.completed, t.fault = TaskFailed, now, f
}

func (h *Hub) finishTask(t *task, now time.Time) {
	var f *wire.Fault
	switch t.method {
	case "build":
		f = h.finishBuild(t, now)
	case "tagBuild":
		f = h.finishTag(t, now)
	case "newRepo":
		f = h.finishRepo(t, now)
	}
	if f != nil {
		h.fail(t, now, f)
		return
	}
	t.state, t.completed = TaskClosed, now
}

func (h *Hub) finishBuild(t *task, now time.Time) *wire.Fault {
	src, _ := t.request[0].(string)
	targetName, _ := t.request[1].(string)
	opts, _ := t.request[2].(map[string]any)
	for _, sub := range sortedKeys(h.failSrc) {
		if strings.Contains(src, sub) {
			return &wire.Fault{Code: 1005, String: h.failSrc[sub]}
		}
	}
	var tg *target
	for _, x := range h.targets {
		if x.name == targetName {
			tg = x
		}
	}
	if tg == nil {
		return genericf("No such build target: %s", targetName)
	}
	if strings.HasPrefix(src, "cli-build/") {
		if _, ok := h.uploads[src]; !ok {
			return genericf("No such file: %s (not uploaded)", src)
		}
	} else if !strings.Contains(src, "://") {
		return genericf("Invalid source: %s", src)
	}
	name, version, release := h.nvrFor(src, tg)
	if name == "" {
		return genericf("cannot determine the package of %s", src)
	}
	nvr := name + "-" + version + "-" + release
	for _, b := range h.builds {
		if b.nvr() == nvr && (b.state == BuildComplete || b.state == BuildBuilding) {
			return &wire.Fault{Code: 1005, String: fmt.Sprintf("Build already exists (id=%d, state=%s): %s", b.id, buildStateNames[b.state], nvr)}
		}
	}
	dest := h.tags[tg.destTag]
	skipTag := truthy(opts["skip_tag"]) || truthy(opts["scratch"])
	if !skipTag {
		if e := h.effectivePkg(dest, name); e == nil || e.blocked {
			return &wire.Fault{Code: 1005, String: fmt.Sprintf("package %s not in list for tag %s", name, dest.name)}
		}
	}
	pkgID, ok := h.packages[name]
	if !ok {
		pkgID = h.id("package")
		h.packages[name] = pkgID
	}
	h.event++
	b := &build{
		id: h.id("build"), pkgID: pkgID, name: name, version: version, release: release,
		state: BuildComplete, taskID: t.id, owner: t.owner, source: src,
		created: t.started, started: t.started, done: now, event: h.event,
	}
	b.rpms = append(b.rpms, rpm{id: h.id("rpm"), arch: "src"})
	arches := []string{"noarch"}
	if name != "module-build-macros" {
		if a, ok := h.tags[tg.buildTag].arches.(string); ok && strings.TrimSpace(a) != "" {
			arches = strings.Fields(a)
		}
	}
	for _, a := range arches {
		b.rpms = append(b.rpms, rpm{id: h.id("rpm"), arch: a})
	}
	h.builds[b.id] = b
	if !skipTag {
		dest.tagged = append(dest.tagged, tagging{buildID: b.id, event: h.event})
	}
	return nil
}

// nvrFor names the build of src.
func (h *Hub) nvrFor(src string, tg *target) (string, string, string) {
	if h.opts.NVR != nil {
		return h.opts.NVR(src, tg.name)
	}
	if strings.HasPrefix(src, "cli-build/") {
		base := strings.TrimSuffix(path.Base(src), ".src.rpm")
		i := strings.LastIndex(base, "-")
		if i <= 0 {
			return "", "", ""
		}
		j := strings.LastIndex(base[:i], "-")
		if j <= 0 {
			return "", "", ""
		}
		return base[:j], base[j+1 : i], base[i+1:]
	}
	u := src
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	name := strings.TrimSuffix(path.Base(strings.TrimRight(u, "/")), ".git")
	release := "1"
	for _, tg := range h.tags[tg.buildTag].tagged {
		if b := h.builds[tg.buildID]; b != nil && b.name == "module-build-macros" && strings.HasPrefix(b.release, "1") {
			release = b.release
		}
	}
	return name, "1.0", release
}

func (h *Hub) finishTag(t *task, now time.Time) *wire.Fault {
	tagID, _ := toInt(t.request[0])
	buildID, _ := toInt(t.request[1])
	tg, b := h.tags[int(tagID)], h.builds[int(buildID)]
	if tg == nil || b == nil {
		return genericf("tag or build vanished")
	}
	for _, x := range tg.tagged {
		if x.buildID == b.id {
			return &wire.Fault{Code: 1003, String: fmt.Sprintf("build %s already tagged (%s)", b.nvr(), tg.name)}
		}
	}
	h.event++
	tg.tagged = append(tg.tagged, tagging{buildID: b.id, event: h.event})
	return nil
}

func (h *Hub) finishRepo(t *task, now time.Time) *wire.Fault {
	tg := h.tags[t.repoTagID]
	if tg == nil {
		return genericf("tag vanished")
	}
	for _, r := range h.repos {
		if r.tagID == tg.id && r.state == RepoReady {
			r.state = RepoExpired
		}
	}
	r := &repo{id: h.id("repo"), tagID: tg.id, state: RepoReady, event: t.event, taskID: t.id, created: now}
	h.repos[r.id] = r
	t.result = []any{r.id, r.event}
	for _, q := range h.requests {
		if q.taskID == t.id {
			q.repoID, q.active, q.updated = r.id, false, now
		}
	}
	return nil
}

// TaskState returns a task's state (TaskFree, ...) and whether it exists.
func (h *Hub) TaskState(id int) (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.tasks[id]
	if !ok {
		return 0, false
	}
	return t.state, true
}

// TaskIDs returns the ids of the tasks of a method ("" for all), in order.
func (h *Hub) TaskIDs(method string) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []int
	for id, t := range h.tasks {
		if method == "" || t.method == method {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// TaskSource returns the src argument of a build task.
func (h *Hub) TaskSource(id int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.tasks[id]; ok && t.method == "build" && len(t.request) > 0 {
		s, _ := t.request[0].(string)
		return s
	}
	return ""
}

// Tagged returns the NVRs tagged into a tag, in tagging order.
func (h *Hub) Tagged(tagName string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.tagNames[tagName]
	if !ok {
		return nil
	}
	var out []string
	for _, x := range h.tags[id].tagged {
		out = append(out, h.builds[x.buildID].nvr())
	}
	return out
}

// TagSeed describes a tag to create with SeedTag.
type TagSeed struct {
	Name   string
	Arches string
	Extra  map[string]any
	// Groups maps a group name to its packages.
	Groups map[string][]string
}

// SeedTag creates a tag directly (a base module's tag, say). It returns the
// tag id.
func (h *Hub) SeedTag(s TagSeed) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.createTag(s.Name)
	if s.Arches != "" {
		t.arches = s.Arches
	}
	for k, v := range s.Extra {
		t.extra[k] = v
	}
	for _, g := range sortedKeys(s.Groups) {
		t.groups[g] = &group{id: h.id("group"), name: g, pkgs: slices.Clone(s.Groups[g])}
	}
	h.event++
	return t.id
}

func (h *Hub) createTag(name string) *tag {
	t := &tag{id: h.id("tag"), name: name, extra: map[string]any{}, groups: map[string]*group{}, pkgs: map[string]*pkgEntry{}}
	h.tags[t.id] = t
	h.tagNames[name] = t.id
	return t
}

// TagState is a snapshot of a tag for assertions.
type TagState struct {
	ID     int
	Name   string
	Arches string
	Extra  map[string]any
	// Parents lists the parent tag names by priority.
	Parents []string
	// Inheritance lists the inheritance links by priority.
	Inheritance []Link
	// Groups maps group name to its packages (own groups only).
	Groups map[string][]string
	// Packages lists the package list entries (own, not inherited).
	Packages []string
	// Perm is the permission the tag requires, "" for none.
	Perm string
}

// Link is one inheritance link of a tag, as getInheritanceData gives it.
type Link struct {
	Parent   string
	ParentID int
	Priority int64
	// MaxDepth is nil (no limit) or an int64.
	MaxDepth     any
	Intransitive bool
	NoConfig     bool
	PkgFilter    string
}

// Tag returns a snapshot of a tag.
func (h *Hub) Tag(name string) (TagState, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.tagNames[name]
	if !ok {
		return TagState{}, false
	}
	t := h.tags[id]
	s := TagState{ID: t.id, Name: t.name, Extra: map[string]any{}, Groups: map[string][]string{}}
	s.Arches, _ = t.arches.(string)
	s.Perm, _ = permName(t.perm).(string)
	for k, v := range t.extra {
		s.Extra[k] = v
	}
	links := slices.Clone(t.parents)
	slices.SortFunc(links, func(a, b link) int { return int(a.priority - b.priority) })
	for _, l := range links {
		s.Parents = append(s.Parents, h.tags[l.parentID].name)
		s.Inheritance = append(s.Inheritance, Link{Parent: h.tags[l.parentID].name, ParentID: l.parentID,
			Priority: l.priority, MaxDepth: l.maxdepth, Intransitive: l.intransitive, NoConfig: l.noconfig,
			PkgFilter: l.pkgFilter})
	}
	for n, g := range t.groups {
		s.Groups[n] = slices.Clone(g.pkgs)
	}
	s.Packages = sortedKeys(t.pkgs)
	return s, true
}

// permName is getTag's "perm": the permission's name, nil for none.
func permName(id int) any {
	if id < 1 || id > len(permNames) {
		return nil
	}
	return permNames[id-1]
}

// permIDValue is getTag's "perm_id", nil for none.
func permIDValue(id int) any {
	if id == 0 {
		return nil
	}
	return id
}
