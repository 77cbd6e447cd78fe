package kojitest

import (
	"cmp"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/rida-build/rida/koji/internal/wire"
)

// bound holds a call's arguments by parameter name.
type bound map[string]any

type method struct {
	fn     func(h *Hub, c *callCtx, a bound) (any, *wire.Fault)
	write  bool   // changes versioned data: a new event, and commits (stores the callnum)
	commit bool   // commits without a new event (sessions): stores the callnum
	perm   string // permission checked (anonymous callers are refused)
	login  bool   // needs a session
}

// methods returns the method table. It is rebuilt per call; it is small.
func (h *Hub) methods() map[string]method {
	return map[string]method{
		"getKojiVersion":      {fn: func(h *Hub, _ *callCtx, _ bound) (any, *wire.Fault) { return h.opts.Version, nil }},
		"getAPIVersion":       {fn: func(*Hub, *callCtx, bound) (any, *wire.Fault) { return 1, nil }},
		"hello":               {fn: func(*Hub, *callCtx, bound) (any, *wire.Fault) { return "Hello World", nil }},
		"echo":                {fn: func(_ *Hub, _ *callCtx, a bound) (any, *wire.Fault) { return a["args"], nil }},
		"getLastEvent":        {fn: (*Hub).getLastEvent},
		"getLoggedInUser":     {fn: (*Hub).getLoggedInUser},
		"login":               {fn: (*Hub).login},
		"sslLogin":            {fn: (*Hub).sslLogin},
		"logout":              {fn: (*Hub).logout, commit: true},
		"subsession":          {fn: (*Hub).subsession, commit: true},
		"logoutChild":         {fn: (*Hub).logoutChild, commit: true},
		"getTag":              {fn: (*Hub).getTag},
		"getAllPerms":         {fn: (*Hub).getAllPerms},
		"createTag":           {fn: (*Hub).createTagM, write: true, perm: "tag"},
		"editTag2":            {fn: (*Hub).editTag2, write: true, perm: "tag"},
		"getInheritanceData":  {fn: (*Hub).getInheritanceData},
		"setInheritanceData":  {fn: (*Hub).setInheritanceData, write: true, perm: "tag"},
		"getTagGroups":        {fn: (*Hub).getTagGroups},
		"groupListAdd":        {fn: (*Hub).groupListAdd, write: true, perm: "tag"},
		"groupPackageListAdd": {fn: (*Hub).groupPackageListAdd, write: true, perm: "tag"},
		"listPackages":        {fn: (*Hub).listPackages},
		"packageListAdd":      {fn: (*Hub).packageListAdd, write: true, perm: "tag"},
		"getBuildTarget":      {fn: (*Hub).getBuildTarget},
		"createBuildTarget":   {fn: (*Hub).createBuildTarget, write: true, perm: "target"},
		"build":               {fn: (*Hub).buildM, write: true, login: true},
		"getTaskInfo":         {fn: (*Hub).getTaskInfo},
		"getTaskResult":       {fn: (*Hub).getTaskResult},
		"listTasks":           {fn: (*Hub).listTasks},
		"cancelTask":          {fn: (*Hub).cancelTask, write: true, login: true},
		"tagBuild":            {fn: (*Hub).tagBuild, write: true, login: true},
		"getBuild":            {fn: (*Hub).getBuild},
		"listBuilds":          {fn: (*Hub).listBuilds},
		"listBuildRPMs":       {fn: (*Hub).listBuildRPMs},
		"listTagged":          {fn: (*Hub).listTagged},
		"newRepo":             {fn: (*Hub).newRepo, write: true, perm: "repo"},
		"getRepo":             {fn: (*Hub).getRepo},
		"repo.request":        {fn: (*Hub).repoRequest, write: true, login: true},
		"repo.checkRequest":   {fn: (*Hub).repoCheckRequest},
		"uploadFile":          {fn: (*Hub).uploadFile, login: true},
	}
}

func (h *Hub) getLastEvent(_ *callCtx, _ bound) (any, *wire.Fault) {
	return map[string]any{"id": h.event, "ts": kojiTS(h.opts.Now())}, nil
}

func (h *Hub) getLoggedInUser(c *callCtx, _ bound) (any, *wire.Fault) {
	if c.session == nil {
		return nil, nil
	}
	u := c.session.user
	return map[string]any{"id": u.id, "name": u.name, "status": 0, "usertype": 0, "authtype": 0,
		"krb_principal": nil, "krb_principals": []any{}}, nil
}

func (h *Hub) openSession(u *user) map[string]any {
	return h.newSession(u, 0)
}

// newSession creates a session of u, a subsession of master unless 0, and
// returns the hub's answer (createSession's).
func (h *Hub) newSession(u *user, master int64) map[string]any {
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var key strings.Builder
	fmt.Fprintf(&key, "%d-", u.id)
	for range 19 {
		key.WriteByte(alnum[rand.N(len(alnum))])
	}
	s := &session{id: int64(h.id("session")), key: key.String(), user: u, master: master}
	h.sessions[s.id] = s
	return map[string]any{"session-id": s.id, "session-key": s.key, "header-auth": true}
}

func (h *Hub) login(c *callCtx, a bound) (any, *wire.Fault) {
	args, _ := a["args"].([]any)
	if len(args) < 2 {
		return nil, paramError("login() missing required arguments: 'username' and 'password'")
	}
	name, _ := args[0].(string)
	pw, _ := args[1].(string)
	u := h.users[name]
	if u == nil || u.password != pw {
		return nil, authFault("invalid username or password")
	}
	return h.openSession(u), nil
}

func (h *Hub) sslLogin(c *callCtx, _ bound) (any, *wire.Fault) {
	if !strings.HasSuffix(c.r.URL.Path, "/ssllogin") {
		return nil, authFault("sslLogin must be called on the /ssllogin endpoint")
	}
	if c.r.TLS == nil || len(c.r.TLS.PeerCertificates) == 0 {
		return nil, authFault("could not determine user: no client certificate")
	}
	cn := c.r.TLS.PeerCertificates[0].Subject.CommonName
	u := h.users[cn]
	if u == nil {
		u = &user{id: h.id("user"), name: cn} // LoginCreatesUser
		h.users[cn] = u
	}
	return h.openSession(u), nil
}

// logout closes the caller's session and its subsessions (the hub's
// "id = %(id)i OR master = %(id)i").
func (h *Hub) logout(c *callCtx, _ bound) (any, *wire.Fault) {
	if c.session == nil {
		return nil, authFault("Not logged in")
	}
	for _, s := range h.sessions {
		if s == c.session || s.master == c.session.id {
			s.closed, s.expired = true, true
		}
	}
	return nil, nil
}

// subsession opens a subsession of the caller's session; the subsession
// of a subsession hangs on the same master, as on the hub.
func (h *Hub) subsession(c *callCtx, _ bound) (any, *wire.Fault) {
	if c.session == nil {
		return nil, authFault("Not logged in")
	}
	master := c.session.master
	if master == 0 {
		master = c.session.id
	}
	return h.newSession(c.session.user, master), nil
}

// logoutChild closes the caller's subsession session_id. Like the hub it
// answers None whether or not there was such a subsession.
func (h *Hub) logoutChild(c *callCtx, a bound) (any, *wire.Fault) {
	if c.session == nil {
		return nil, authFault("Not logged in")
	}
	id, ok := a["session_id"].(int64)
	if !ok {
		return nil, genericf("kojitest: logoutChild: session_id must be an int, got %s", pyType(a["session_id"]))
	}
	if s := h.sessions[id]; s != nil && s.master == c.session.id {
		s.closed, s.expired = true, true
	}
	return nil, nil
}

func (h *Hub) getTag(_ *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.lookupTag(a["tagInfo"])
	if f != nil {
		return nil, f
	}
	if t == nil {
		if truthy(a["strict"]) {
			return nil, genericf("No such tagInfo: %s", pyRepr(a["tagInfo"]))
		}
		return nil, nil
	}
	return h.tagInfo(t), nil
}

func (h *Hub) createTagM(_ *callCtx, a bound) (any, *wire.Fault) {
	name, ok := a["name"].(string)
	if !ok || name == "" {
		return nil, genericf("Invalid tag name: %s", pyRepr(a["name"]))
	}
	if _, exists := h.tagNames[name]; exists {
		return nil, genericf("A tag with the name %s already exists", pyRepr(name))
	}
	var parent *tag
	if a["parent"] != nil {
		var f *wire.Fault
		if parent, f = h.mustTag(a["parent"]); f != nil {
			return nil, f
		}
	}
	if a["arches"] != nil {
		if _, ok := a["arches"].(string); !ok {
			return nil, genericf("Invalid type for value 'arches': %s", pyType(a["arches"]))
		}
	}
	extra, ok := a["extra"].(map[string]any)
	if a["extra"] != nil && !ok {
		return nil, genericf("Invalid type for extra: %s", pyType(a["extra"]))
	}
	perm, f := permID(a["perm"])
	if f != nil {
		return nil, f
	}
	t := h.createTag(name)
	t.arches, t.perm, t.locked = a["arches"], perm, truthy(a["locked"])
	t.mavenSupport, t.mavenIncludeAll = truthy(a["maven_support"]), truthy(a["maven_include_all"])
	for k, v := range extra {
		t.extra[k] = v
	}
	if parent != nil {
		t.parents = []link{{parentID: parent.id, priority: 0}}
	}
	return t.id, nil
}

var editTagKeys = []string{"name", "arches", "locked", "perm", "perm_id", "maven_support", "maven_include_all", "extra", "remove_extra", "block_extra"}

func (h *Hub) editTag2(_ *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.mustTag(a["tagInfo"])
	if f != nil {
		return nil, f
	}
	kw, _ := a["kwargs"].(map[string]any)
	for _, k := range sortedKeys(kw) {
		if !slices.Contains(editTagKeys, k) {
			return nil, paramError("edit_tag() got an unexpected keyword argument '%s'", k)
		}
	}
	extra, ok := kw["extra"].(map[string]any)
	if kw["extra"] != nil && !ok {
		return nil, genericf("Invalid type for extra: %s", pyType(kw["extra"]))
	}
	if v, ok := kw["arches"]; ok && v != nil {
		if _, ok := v.(string); !ok {
			return nil, genericf("Invalid type for value 'arches': %s", pyType(v))
		}
	}
	if n, ok := kw["name"].(string); ok && n != t.name {
		if _, exists := h.tagNames[n]; exists {
			return nil, genericf("Name %s already taken by tag %s", n, n)
		}
		delete(h.tagNames, t.name)
		t.name = n
		h.tagNames[n] = t.id
	}
	if v, ok := kw["arches"]; ok {
		t.arches = v
	}
	if v, ok := kw["locked"]; ok {
		t.locked = truthy(v)
	}
	// perm and perm_id are aliases; perm_id wins.
	if v, ok := kw["perm_id"]; ok {
		kw["perm"] = v
	}
	if v, ok := kw["perm"]; ok {
		id, f := permID(v)
		if f != nil {
			return nil, f
		}
		t.perm = id
	}
	if v, ok := kw["maven_support"]; ok {
		t.mavenSupport = truthy(v)
	}
	if v, ok := kw["maven_include_all"]; ok {
		t.mavenIncludeAll = truthy(v)
	}
	for k, v := range extra {
		t.extra[k] = v
	}
	if rm, ok := kw["remove_extra"].([]any); ok {
		for _, k := range rm {
			if s, ok := k.(string); ok {
				delete(t.extra, s)
			}
		}
	}
	return nil, nil
}

func (h *Hub) inheritanceData(t *tag) []any {
	links := slices.Clone(t.parents)
	slices.SortFunc(links, func(a, b link) int { return int(a.priority - b.priority) })
	out := []any{}
	for _, l := range links {
		out = append(out, map[string]any{
			"child_id": t.id, "parent_id": l.parentID, "name": h.tags[l.parentID].name,
			"priority": l.priority, "maxdepth": l.maxdepth, "intransitive": l.intransitive,
			"noconfig": l.noconfig, "pkg_filter": l.pkgFilter,
		})
	}
	return out
}

func (h *Hub) getInheritanceData(_ *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.mustTag(a["tag"])
	if f != nil {
		return nil, f
	}
	return h.inheritanceData(t), nil
}

func (h *Hub) setInheritanceData(_ *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.mustTag(a["tag"])
	if f != nil {
		return nil, f
	}
	var data []any
	switch d := a["data"].(type) {
	case []any:
		data = d
	case map[string]any:
		data = []any{d}
	default:
		return nil, genericf("Invalid type for inheritance data: %s", pyType(a["data"]))
	}
	// As Koji's _writeInheritanceData: every link's fields are checked and
	// its parent looked up (strict) first, in the order given; then the
	// links are merged into the current ones (read by priority, new parents
	// after them in the order given), and priorities must be unique among
	// the links kept.
	for _, item := range data {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, genericf("Invalid inheritance link: %s", pyType(item))
		}
		fields := []string{"parent_id", "priority", "maxdepth", "intransitive", "noconfig", "pkg_filter"}
		if truthy(m["delete link"]) {
			fields = fields[:1]
		}
		for _, k := range fields {
			if _, ok := m[k]; !ok {
				return nil, genericf("No value for %s", k)
			}
		}
		if _, f := h.mustTag(m["parent_id"]); f != nil {
			return nil, f
		}
	}
	var order []int
	links := map[int]link{}
	deleted := map[int]bool{}
	current := slices.Clone(t.parents)
	slices.SortFunc(current, func(x, y link) int { return cmp.Compare(x.priority, y.priority) })
	for _, l := range current {
		order = append(order, l.parentID)
		links[l.parentID] = l
		if truthy(a["clear"]) {
			deleted[l.parentID] = true
		}
	}
	for _, item := range data {
		m := item.(map[string]any)
		pid64, _ := toInt(m["parent_id"])
		pid := int(pid64)
		if _, known := links[pid]; !known && !deleted[pid] {
			order = append(order, pid)
		}
		if truthy(m["delete link"]) {
			deleted[pid] = true
			continue
		}
		prio, ok := toInt(m["priority"])
		if !ok {
			return nil, &wire.Fault{Code: 1, String: fmt.Sprintf("<class 'psycopg2.errors.InvalidTextRepresentation'>: invalid input syntax for type integer: %q", fmt.Sprint(m["priority"]))}
		}
		var maxdepth any
		if m["maxdepth"] != nil {
			md, ok := toInt(m["maxdepth"])
			if !ok {
				// What a real hub answers for kolo's <value/> (read as "").
				return nil, &wire.Fault{Code: 1, String: fmt.Sprintf("<class 'psycopg2.errors.InvalidTextRepresentation'>: invalid input syntax for type integer: %q", fmt.Sprint(m["maxdepth"]))}
			}
			maxdepth = md
		}
		filter, _ := m["pkg_filter"].(string)
		links[pid] = link{parentID: pid, priority: prio, maxdepth: maxdepth,
			intransitive: truthy(m["intransitive"]), noconfig: truthy(m["noconfig"]), pkgFilter: filter}
		delete(deleted, pid)
	}
	var out []link
	byPrio := map[int64][]int{}
	var prios []int64
	for _, pid := range order {
		l, ok := links[pid]
		if !ok || deleted[pid] {
			continue
		}
		if len(byPrio[l.priority]) == 0 {
			prios = append(prios, l.priority)
		}
		byPrio[l.priority] = append(byPrio[l.priority], pid)
		out = append(out, l)
	}
	for _, p := range prios {
		if ids := byPrio[p]; len(ids) > 1 {
			strs := make([]string, len(ids))
			for i, id := range ids {
				strs[i] = strconv.Itoa(id)
			}
			return nil, genericf("Multiple parent tags ([%s]) cannot have the same priority value (%d) on child tag %d",
				strings.Join(strs, ", "), p, t.id)
		}
	}
	t.parents = out
	return nil, nil
}

func (h *Hub) getTagGroups(_ *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.mustTag(a["tag"])
	if f != nil {
		return nil, f
	}
	chain := []*tag{t}
	if truthy(a["inherit"]) {
		chain = h.ancestry(t)
	}
	type merged struct {
		g    *group
		tag  *tag
		pkgs []string
	}
	groups := map[string]*merged{}
	var order []string
	for _, ct := range chain {
		for _, name := range sortedKeys(ct.groups) {
			g := ct.groups[name]
			m, ok := groups[name]
			if !ok {
				m = &merged{g: g, tag: ct}
				groups[name] = m
				order = append(order, name)
			}
			for _, p := range g.pkgs {
				if !slices.Contains(m.pkgs, p) {
					m.pkgs = append(m.pkgs, p)
				}
			}
		}
	}
	out := []any{}
	for _, name := range order {
		m := groups[name]
		pkgs := []any{}
		if truthy(a["incl_pkgs"]) {
			for _, p := range m.pkgs {
				pkgs = append(pkgs, map[string]any{"basearchonly": nil, "blocked": false, "group_id": m.g.id,
					"package": p, "requires": nil, "tag_id": m.tag.id, "type": "mandatory"})
			}
		}
		out = append(out, map[string]any{
			"biarchonly": false, "blocked": false, "description": nil, "display_name": name,
			"exported": true, "group_id": m.g.id, "grouplist": []any{}, "is_default": nil,
			"langonly": nil, "name": name, "packagelist": pkgs, "tag_id": m.tag.id, "uservisible": true,
		})
	}
	return out, nil
}

func (h *Hub) groupListAdd(_ *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.mustTag(a["taginfo"])
	if f != nil {
		return nil, f
	}
	name, ok := a["grpinfo"].(string)
	if !ok || name == "" {
		return nil, genericf("Invalid group: %s", pyRepr(a["grpinfo"]))
	}
	if t.locked {
		return nil, &wire.Fault{Code: 1001, String: "Tag " + t.name + " is locked"}
	}
	if _, ok := t.groups[name]; !ok {
		opts, _ := a["opts"].(map[string]any)
		t.groups[name] = &group{id: h.id("group"), name: name, opts: opts}
	}
	return nil, nil
}

func (h *Hub) groupPackageListAdd(_ *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.mustTag(a["taginfo"])
	if f != nil {
		return nil, f
	}
	name, _ := a["grpinfo"].(string)
	pkg, ok := a["pkg_name"].(string)
	if !ok || pkg == "" {
		return nil, genericf("Invalid package name: %s", pyRepr(a["pkg_name"]))
	}
	g, ok := t.groups[name]
	if !ok {
		inherited := false
		for _, anc := range h.ancestry(t)[1:] {
			if ag, ok := anc.groups[name]; ok {
				g = &group{id: ag.id, name: name}
				inherited = true
				break
			}
		}
		if !inherited {
			return nil, genericf("group %s not present in tag %s", name, t.name)
		}
		t.groups[name] = g
	}
	if !slices.Contains(g.pkgs, pkg) {
		g.pkgs = append(g.pkgs, pkg)
	}
	return nil, nil
}

func (h *Hub) listPackages(_ *callCtx, a bound) (any, *wire.Fault) {
	out := []any{}
	if a["tagID"] == nil {
		for _, name := range sortedKeys(h.packages) {
			out = append(out, map[string]any{"package_id": h.packages[name], "package_name": name})
		}
		return out, nil
	}
	t, f := h.mustTag(a["tagID"])
	if f != nil {
		return nil, f
	}
	chain := []*tag{t}
	if truthy(a["inherited"]) {
		chain = h.ancestry(t)
	}
	seen := map[string]bool{}
	for _, ct := range chain {
		for _, name := range sortedKeys(ct.pkgs) {
			if seen[name] {
				continue
			}
			seen[name] = true
			e := ct.pkgs[name]
			out = append(out, map[string]any{
				"package_id": e.pkgID, "package_name": name, "tag_id": ct.id, "tag_name": ct.name,
				"owner_id": e.owner.id, "owner_name": e.owner.name, "blocked": e.blocked, "extra_arches": nil,
			})
		}
	}
	return out, nil
}

func (h *Hub) packageListAdd(c *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.mustTag(a["taginfo"])
	if f != nil {
		return nil, f
	}
	var name string
	switch p := a["pkginfo"].(type) {
	case string:
		name = p
	case int64:
		for n, id := range h.packages {
			if int64(id) == p {
				name = n
			}
		}
		if name == "" {
			return nil, genericf("No such package: %d", p)
		}
	default:
		return nil, genericf("Invalid type for pkginfo: %s", pyType(p))
	}
	if name == "" || strings.ContainsAny(name, " /") {
		return nil, &wire.Fault{Code: 1024, String: fmt.Sprintf("Name %s does not match policy", pyRepr(name))}
	}
	var owner *user
	if a["owner"] != nil {
		if owner = h.lookupUser(a["owner"]); owner == nil {
			return nil, genericf("No such user: %s", pyRepr(a["owner"]))
		}
	}
	prev := h.effectivePkg(t, name)
	if prev == nil {
		if owner == nil {
			if !truthy(a["force"]) {
				return nil, genericf("owner not specified")
			}
			owner = c.session.user
		}
	} else {
		if owner == nil {
			owner = prev.owner
		}
		blocked := prev.blocked
		if a["block"] != nil {
			blocked = truthy(a["block"])
		}
		if owner == prev.owner && blocked == prev.blocked && !truthy(a["force"]) {
			return nil, nil // unchanged: the hub does nothing
		}
	}
	id, ok := h.packages[name]
	if !ok {
		id = h.id("package")
		h.packages[name] = id
	}
	t.pkgs[name] = &pkgEntry{pkgID: id, owner: owner, blocked: truthy(a["block"])}
	return nil, nil
}

func (h *Hub) targetInfo(tg *target) map[string]any {
	return map[string]any{"id": tg.id, "name": tg.name, "build_tag": tg.buildTag, "build_tag_name": h.tags[tg.buildTag].name,
		"dest_tag": tg.destTag, "dest_tag_name": h.tags[tg.destTag].name}
}

func (h *Hub) getBuildTarget(_ *callCtx, a bound) (any, *wire.Fault) {
	for _, tg := range h.targets {
		if tg.name == a["info"] {
			return h.targetInfo(tg), nil
		}
		if id, ok := a["info"].(int64); ok && int64(tg.id) == id {
			return h.targetInfo(tg), nil
		}
	}
	if truthy(a["strict"]) {
		return nil, genericf("No such build target: %s", pyRepr(a["info"]))
	}
	return nil, nil
}

func (h *Hub) createBuildTarget(_ *callCtx, a bound) (any, *wire.Fault) {
	name, ok := a["name"].(string)
	if !ok || name == "" {
		return nil, genericf("Invalid target name: %s", pyRepr(a["name"]))
	}
	for _, tg := range h.targets {
		if tg.name == name {
			return nil, genericf("A build target with the name '%s' already exists", name)
		}
	}
	bt, f := h.mustTag(a["build_tag"])
	if f != nil {
		return nil, f
	}
	dt, f := h.mustTag(a["dest_tag"])
	if f != nil {
		return nil, f
	}
	tg := &target{id: h.id("target"), name: name, buildTag: bt.id, destTag: dt.id}
	h.targets[tg.id] = tg
	return nil, nil
}

func (h *Hub) buildM(c *callCtx, a bound) (any, *wire.Fault) {
	src, ok := a["src"].(string)
	if !ok {
		return nil, genericf("Invalid type for src: %s", pyType(a["src"]))
	}
	if a["target"] != nil {
		if _, ok := a["target"].(string); !ok {
			return nil, genericf("Invalid type for target: %s", pyType(a["target"]))
		}
	}
	opts := map[string]any{}
	if a["opts"] != nil {
		m, ok := a["opts"].(map[string]any)
		if !ok {
			return nil, genericf("Invalid type for opts: %s", pyType(a["opts"]))
		}
		opts = m
	}
	prio := 20
	if a["priority"] != nil {
		p, ok := toInt(a["priority"])
		if !ok {
			return nil, genericf("Invalid type for priority: %s", pyType(a["priority"]))
		}
		prio += int(p)
	}
	t := h.newTask("build", []any{src, a["target"], opts}, c.session.user, prio, h.opts.BuildDuration)
	return t.id, nil
}

func (h *Hub) taskByArg(v any, strict bool) (*task, *wire.Fault) {
	id, ok := v.(int64)
	if !ok {
		return nil, genericf("Invalid type for task_id: %s", pyType(v))
	}
	t := h.tasks[int(id)]
	if t == nil && strict {
		return nil, genericf("No such task: %d", id)
	}
	return t, nil
}

func (h *Hub) getTaskInfo(_ *callCtx, a bound) (any, *wire.Fault) {
	withReq, strict := truthy(a["request"]), truthy(a["strict"])
	if ids, ok := a["task_id"].([]any); ok {
		out := []any{}
		for _, id := range ids {
			t, f := h.taskByArg(id, strict)
			if f != nil {
				return nil, f
			}
			if t == nil {
				out = append(out, nil)
			} else {
				out = append(out, h.taskInfo(t, withReq))
			}
		}
		return out, nil
	}
	t, f := h.taskByArg(a["task_id"], strict)
	if f != nil || t == nil {
		return nil, f
	}
	return h.taskInfo(t, withReq), nil
}

func (h *Hub) getTaskResult(_ *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.taskByArg(a["taskId"], false)
	if f != nil {
		return nil, f
	}
	if t == nil {
		return nil, genericf("No such task") // Task.getResult says no more
	}
	switch t.state {
	case TaskClosed:
		return t.result, nil
	case TaskFailed:
		if !truthy(a["raise_fault"]) {
			return map[string]any{"faultCode": t.fault.Code, "faultString": t.fault.String}, nil
		}
		return nil, t.fault
	case TaskCanceled:
		return nil, genericf("Task %d is canceled", t.id)
	}
	return nil, genericf("Task %d is not finished", t.id)
}

func intSet(v any) (map[int64]bool, bool) {
	if v == nil {
		return nil, false
	}
	out := map[int64]bool{}
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			if i, ok := toInt(x); ok {
				out[i] = true
			}
		}
	default:
		if i, ok := toInt(v); ok {
			out[i] = true
		}
	}
	return out, true
}

func (h *Hub) listTasks(_ *callCtx, a bound) (any, *wire.Fault) {
	opts, _ := a["opts"].(map[string]any)
	qo, _ := a["queryOpts"].(map[string]any)
	method, _ := opts["method"].(string)
	states, byState := intSet(opts["state"])
	notStates, byNotState := intSet(opts["not_state"])
	owners, byOwner := intSet(opts["owner"])
	decode := truthy(opts["decode"])
	ids := make([]int, 0, len(h.tasks))
	for id := range h.tasks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if order, _ := qo["order"].(string); order == "-id" {
		slices.Reverse(ids)
	}
	var rows []any
	for _, id := range ids {
		t := h.tasks[id]
		if method != "" && t.method != method {
			continue
		}
		if byState && !states[int64(t.state)] {
			continue
		}
		if byNotState && notStates[int64(t.state)] {
			continue
		}
		if byOwner && (t.owner == nil || !owners[int64(t.owner.id)]) {
			continue
		}
		if _, ok := opts["parent"]; ok && opts["parent"] != nil {
			continue // no subtasks here
		}
		m := h.taskInfo(t, false)
		m["owner_name"], m["owner_type"] = "", 0
		if t.owner != nil {
			m["owner_name"] = t.owner.name
		}
		if decode {
			// The hub decodes the stored result document: a params
			// tuple, so a list of one value once the task closed.
			m["request"], m["result"] = t.request, nil
			if t.state == TaskClosed {
				m["result"] = []any{t.result}
			}
		} else {
			req, _ := wire.EncodeCall(t.method, t.request)
			m["request"] = string(req)
			m["result"] = nil
		}
		rows = append(rows, m)
	}
	if off, ok := toInt(qo["offset"]); ok && off > 0 {
		rows = rows[min(int(off), len(rows)):]
	}
	if lim, ok := toInt(qo["limit"]); ok && lim >= 0 && int(lim) < len(rows) {
		rows = rows[:lim]
	}
	if truthy(qo["countOnly"]) {
		return len(rows), nil
	}
	if rows == nil {
		rows = []any{}
	}
	return rows, nil
}

func (h *Hub) cancelTask(_ *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.taskByArg(a["task_id"], true)
	if f != nil {
		return nil, f
	}
	switch t.state {
	case TaskFree, TaskOpen, TaskAssigned:
		now := h.opts.Now()
		t.state, t.completed = TaskCanceled, now
	}
	return nil, nil
}

func (h *Hub) tagBuild(c *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.mustTag(a["tag"])
	if f != nil {
		return nil, f
	}
	b, f := h.lookupBuild(a["build"])
	if f != nil {
		return nil, f
	}
	if b == nil {
		return nil, genericf("No such build: %s", pyRepr(a["build"]))
	}
	if b.state != BuildComplete {
		return nil, &wire.Fault{Code: 1003, String: fmt.Sprintf("build %s not complete: state %s", b.nvr(), buildStateNames[b.state])}
	}
	if e := h.effectivePkg(t, b.name); e == nil || e.blocked {
		return nil, &wire.Fault{Code: 1003, String: fmt.Sprintf("Package %s not in list for %s", b.name, t.name)}
	}
	for _, x := range t.tagged {
		if x.buildID == b.id {
			return nil, &wire.Fault{Code: 1003, String: fmt.Sprintf("build %s already tagged (%s)", b.nvr(), t.name)}
		}
	}
	tk := h.newTask("tagBuild", []any{t.id, b.id, truthy(a["force"]), a["fromtag"], false}, c.session.user, 10, h.opts.TagDuration)
	return tk.id, nil
}

func (h *Hub) getBuild(_ *callCtx, a bound) (any, *wire.Fault) {
	b, f := h.lookupBuild(a["buildInfo"])
	if f != nil {
		return nil, f
	}
	if b == nil {
		if truthy(a["strict"]) {
			return nil, genericf("No such build: %s", pyRepr(a["buildInfo"]))
		}
		return nil, nil
	}
	return h.buildInfo(b), nil
}

func (h *Hub) sortedBuilds() []*build {
	out := make([]*build, 0, len(h.builds))
	for _, b := range h.builds {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *build) int { return a.id - b.id })
	return out
}

func (h *Hub) listBuilds(_ *callCtx, a bound) (any, *wire.Fault) {
	out := []any{}
	for _, b := range h.sortedBuilds() {
		if tid, ok := toInt(a["taskID"]); ok && a["taskID"] != nil && int64(b.taskID) != tid {
			continue
		}
		if st, ok := toInt(a["state"]); ok && a["state"] != nil && int64(b.state) != st {
			continue
		}
		if pid, ok := toInt(a["packageID"]); ok && a["packageID"] != nil && int64(b.pkgID) != pid {
			continue
		}
		out = append(out, h.listBuildsRow(b))
	}
	return out, nil
}

func (h *Hub) listBuildRPMs(_ *callCtx, a bound) (any, *wire.Fault) {
	b, f := h.lookupBuild(a["build"])
	if f != nil {
		return nil, f
	}
	out := []any{}
	if b == nil {
		// "If no build has the given ID ... an empty list is returned";
		// only an NVR is looked up strictly.
		if _, ok := a["build"].(int64); ok {
			return out, nil
		}
		return nil, genericf("No such build: %s", pyRepr(a["build"]))
	}
	for _, r := range b.rpms {
		out = append(out, map[string]any{
			"id": r.id, "build_id": b.id, "name": b.name, "version": b.version, "release": b.release,
			"epoch": nil, "arch": r.arch, "nvr": b.nvr(), "buildroot_id": nil, "payloadhash": "0123456789abcdef0123456789abcdef",
			"size": 1024, "buildtime": b.done.Unix(), "external_repo_id": 0, "external_repo_name": "INTERNAL",
			"metadata_only": false, "extra": nil, "draft": false,
		})
	}
	return out, nil
}

func (h *Hub) listTagged(_ *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.lookupTag(a["tag"])
	if f != nil {
		return nil, f
	}
	if t == nil {
		if !truthy(a["strict"]) {
			return []any{}, nil
		}
		return nil, genericf("No such tagInfo: %s", pyRepr(a["tag"]))
	}
	pkg, _ := a["package"].(string)
	atEvent, byEvent := toInt(a["event"])
	byEvent = byEvent && a["event"] != nil
	chain := []*tag{t}
	if truthy(a["inherit"]) {
		chain = h.ancestry(t)
	}
	out := []any{}
	latest := map[string]bool{}
	for _, ct := range chain {
		tagged := slices.Clone(ct.tagged)
		slices.Reverse(tagged) // newest first, as the hub orders
		for _, x := range tagged {
			b := h.builds[x.buildID]
			if byEvent && x.event > atEvent {
				continue // tagged after the event asked for
			}
			if pkg != "" && b.name != pkg {
				continue
			}
			if truthy(a["latest"]) {
				if latest[b.name] {
					continue
				}
				latest[b.name] = true
			}
			m := h.listTaggedRow(b, x.event)
			m["tag_id"], m["tag_name"] = ct.id, ct.name
			out = append(out, m)
		}
	}
	return out, nil
}

func (h *Hub) newRepo(c *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.mustTag(a["tag"])
	if f != nil {
		return nil, f
	}
	tk := h.newTask("newRepo", []any{t.name, a["event"], map[string]any{}}, c.session.user, 15, h.opts.RepoDuration)
	tk.repoTagID = t.id
	return tk.id, nil
}

func (h *Hub) getRepo(_ *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.mustTag(a["tag"])
	if f != nil {
		return nil, f
	}
	state := int64(RepoReady)
	if s, ok := toInt(a["state"]); ok && a["state"] != nil {
		state = s
	}
	var best *repo
	for _, r := range h.repos {
		if r.tagID == t.id && int64(r.state) == state && (best == nil || r.id > best.id) {
			best = r
		}
	}
	if best == nil {
		return nil, nil
	}
	return h.repoInfo(best), nil
}

func (h *Hub) repoRequest(c *callCtx, a bound) (any, *wire.Fault) {
	t, f := h.mustTag(a["tag"])
	if f != nil {
		return nil, f
	}
	minEvent := h.event
	switch v := a["min_event"].(type) {
	case nil:
	case string:
		if v != "last" {
			return nil, genericf("Invalid min_event: %s", pyRepr(v))
		}
	default:
		e, ok := toInt(v)
		if !ok {
			return nil, genericf("Invalid min_event: %s", pyRepr(v))
		}
		minEvent = e
	}
	if !truthy(a["force"]) {
		for _, r := range h.repos {
			if r.tagID == t.id && r.state == RepoReady && r.event >= minEvent {
				return map[string]any{"repo": h.repoInfo(r), "request": nil, "duplicate": false}, nil
			}
		}
		for _, q := range h.requests {
			if q.active && q.tagID == t.id && q.minEvent >= minEvent {
				return map[string]any{"repo": nil, "request": h.requestInfo(q), "duplicate": true}, nil
			}
		}
	}
	now := h.opts.Now()
	q := &repoRequest{id: h.id("request"), tagID: t.id, minEvent: minEvent, active: true,
		owner: c.session.user, created: now, updated: now, tries: 1}
	if !h.opts.StallRepoRequests {
		// kojira picks the request up and starts a newRepo task.
		tk := h.newTask("newRepo", []any{t.name, nil, map[string]any{}}, c.session.user, 15, h.opts.RepoDuration)
		tk.repoTagID, tk.event = t.id, minEvent
		q.taskID = tk.id
	}
	h.requests[q.id] = q
	return map[string]any{"repo": nil, "request": h.requestInfo(q), "duplicate": false}, nil
}

func (h *Hub) repoCheckRequest(_ *callCtx, a bound) (any, *wire.Fault) {
	id, ok := toInt(a["req_id"])
	if !ok {
		return nil, genericf("Invalid type for req_id: %s", pyType(a["req_id"]))
	}
	q := h.requests[int(id)]
	if q == nil {
		return nil, genericf("No such repo request: %d", id)
	}
	var r any
	if q.repoID != 0 {
		r = h.repoInfo(h.repos[q.repoID])
	}
	return map[string]any{"request": h.requestInfo(q), "repo": r}, nil
}

func (h *Hub) uploadFile(_ *callCtx, a bound) (any, *wire.Fault) {
	dir, _ := a["path"].(string)
	name, _ := a["name"].(string)
	if dir == "" || name == "" || strings.HasPrefix(dir, "/") || strings.Contains(dir, "..") || strings.ContainsAny(name, "/") {
		return nil, genericf("Invalid upload path: %s/%s", dir, name)
	}
	data, ok := a["data"].(string)
	if !ok {
		return nil, genericf("Invalid type for data: %s", pyType(a["data"]))
	}
	contents, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, genericf("Invalid base64 data: %v", err)
	}
	offset, ok := intArg(a["offset"])
	if !ok {
		return nil, genericf("Invalid offset: %s", pyRepr(a["offset"]))
	}
	size, hasSize := intArg(a["size"])
	checksum := a["checksum"]
	if checksum == nil {
		checksum = a["md5sum"]
	}
	verify, digest := "", ""
	switch cs := checksum.(type) {
	case string:
		verify, digest = "md5", cs
	case []any:
		if len(cs) == 2 {
			verify, _ = cs[0].(string)
			digest, _ = cs[1].(string)
		}
	}
	if verify != "" && verify != "md5" {
		return nil, genericf("kojitest: unsupported checksum type %s", verify)
	}
	key := path.Join(dir, name)
	if offset != -1 {
		if hasSize && size != int64(len(contents)) {
			return false, nil
		}
		if verify != "" {
			sum := md5.Sum(contents)
			if hex.EncodeToString(sum[:]) != digest {
				return false, nil
			}
		}
		cur := h.uploads[key]
		if int64(len(cur)) < offset {
			cur = append(cur, make([]byte, int(offset)-len(cur))...)
		}
		end := int(offset) + len(contents)
		if end > len(cur) {
			cur = append(cur, make([]byte, end-len(cur))...)
		}
		copy(cur[offset:], contents)
		h.uploads[key] = cur
		return true, nil
	}
	cur := h.uploads[key]
	if hasSize && size != int64(len(cur)) {
		return nil, genericf("Uploaded file is wrong length: %s/%s, %d != %d", dir, name, size, len(cur))
	}
	if verify != "" {
		sum := md5.Sum(cur)
		if hex.EncodeToString(sum[:]) != digest {
			return nil, genericf("Uploaded file has wrong checksum: %s/%s, %s != %s", dir, name, digest, hex.EncodeToString(sum[:]))
		}
	}
	return true, nil
}

// intArg reads an int the hub also accepts as a string (koji.decode_int).
func intArg(v any) (int64, bool) {
	if s, ok := v.(string); ok {
		i, err := strconv.ParseInt(s, 10, 64)
		return i, err == nil
	}
	if v == nil {
		return 0, false
	}
	return toInt(v)
}

// Upload returns the bytes uploaded to path ("cli-build/.../x.src.rpm").
func (h *Hub) Upload(p string) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.uploads[p]
	return slices.Clone(b), ok
}

// permNames are the permissions of a new Koji database (schema.sql), in id
// order from 1.
var permNames = []string{"admin", "appliance", "dist-repo", "host", "image", "image-import", "livecd",
	"maven-import", "repo", "sign", "tag", "target", "win-admin", "win-import", "draft-promoter"}

func (h *Hub) getAllPerms(_ *callCtx, _ bound) (any, *wire.Fault) {
	out := make([]any, len(permNames))
	for i, n := range permNames {
		out[i] = map[string]any{"id": i + 1, "name": n, "description": n + " (kojitest)"}
	}
	return out, nil
}

// permID resolves a permission given by name or id as get_perm_id(strict)
// does; nil is no permission (0).
func permID(v any) (int, *wire.Fault) {
	switch v := v.(type) {
	case nil:
		return 0, nil
	case string:
		if i := slices.Index(permNames, v); i >= 0 {
			return i + 1, nil
		}
	case int64:
		if v >= 1 && int(v) <= len(permNames) {
			return int(v), nil
		}
	default:
		return 0, genericf("Invalid type for id lookup: %s", pyType(v))
	}
	return 0, genericf("No such entry in table permissions: %v", v)
}
