package koji

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rida-build/rida/buildmacros"
	"github.com/rida-build/rida/runner"
)

// job is one component's Koji build task within a batch.
type job struct {
	c      *runner.Component
	src    string
	taskID int
	done   bool
	nvr    string
}

// BuildBatch builds the components of batch in Koji and reports each one's
// progress. Batch 1 builds module-build-macros from an SRPM generated with
// buildmacros and uploaded to the hub; later batches build
// "<repository>#<commit>". Every submission is recorded in the IntentStore
// first, so a BuildBatch after a restart re-attaches to the tasks of the
// earlier run instead of submitting again.
//
// When every component completed, their builds are tagged into the build
// tag (and, except module-build-macros, into the module tag), and, unless
// this is the last batch, BuildBatch waits for the build tag's repo to be
// regenerated before returning. A component that fails leaves the batch
// untagged; the runner fails the module.
func (be *Backend) BuildBatch(ctx context.Context, b *runner.Build, batch *runner.Batch, report func(runner.ComponentUpdate)) error {
	st := be.state(b)
	intents, err := be.opts.Intents.Tasks(ctx, b.ID)
	if err != nil {
		return fmt.Errorf("koji: batch %d of %s: intents: %w", batch.Number, b.NSVC(), err)
	}
	var jobs []*job
	var lost []*job // intent recorded, task id not: look the task up
	for _, c := range batch.Components {
		j := &job{c: c}
		if in, ok := intents[c.Key]; ok {
			j.src, j.taskID = in.Src, in.TaskID
			if j.taskID == 0 {
				lost = append(lost, j)
			}
			jobs = append(jobs, j)
			continue
		}
		if c.Key == runner.MacrosComponent {
			jobs = append(jobs, j)
			continue
		}
		if reason := be.refuseSCM(c.Repository); reason != "" {
			report(runner.ComponentUpdate{Key: c.Key, State: runner.ComponentFailed, Reason: reason, Time: be.now()})
			continue
		}
		j.src = scmURL(c.Repository, c.Commit)
		jobs = append(jobs, j)
	}
	if len(lost) > 0 {
		if err := be.rediscover(ctx, b, st, lost); err != nil {
			return fmt.Errorf("koji: batch %d of %s: %w", batch.Number, b.NSVC(), err)
		}
	}
	resumed := false
	for _, j := range jobs {
		if j.taskID != 0 {
			resumed = true
			be.log.Info("koji: re-attached to task", "nsvc", b.NSVC(), "component", j.c.Key, "task", j.taskID)
		} else {
			if j.c.Key == runner.MacrosComponent && j.src == "" {
				if j.src, err = be.uploadMacros(ctx, b); err != nil {
					return fmt.Errorf("koji: batch %d of %s: module-build-macros: %w", batch.Number, b.NSVC(), err)
				}
			}
			if err := be.submit(ctx, b, st, j); err != nil {
				return fmt.Errorf("koji: batch %d of %s: submit %s: %w", batch.Number, b.NSVC(), j.c.Key, err)
			}
		}
		report(runner.ComponentUpdate{Key: j.c.Key, State: runner.ComponentBuilding, LogPath: be.taskLogPath(j.taskID), Time: be.now()})
	}

	if err := be.watch(ctx, jobs, report); err != nil {
		return fmt.Errorf("koji: batch %d of %s: %w", batch.Number, b.NSVC(), err)
	}
	var nvrs []string
	for _, j := range jobs {
		if j.nvr == "" {
			return nil // a component failed: no tagging, the module fails
		}
		nvrs = append(nvrs, j.nvr)
	}
	if len(jobs) < len(batch.Components) {
		return nil // refused components
	}
	// A resumed batch holds only the components still to build; the ones
	// that completed in an earlier run are tagged too if they are not yet.
	for _, full := range b.Batches {
		if full.Number != batch.Number {
			continue
		}
		for _, c := range full.Components {
			if c.State == runner.ComponentComplete && c.NVR != "" && !slices.ContainsFunc(jobs, func(j *job) bool { return j.c.Key == c.Key }) {
				jobs = append(jobs, &job{c: c, nvr: c.NVR})
				resumed = true
			}
		}
	}
	if err := be.tagBatch(ctx, st, jobs, resumed); err != nil {
		return fmt.Errorf("koji: batch %d of %s: tag: %w", batch.Number, b.NSVC(), err)
	}
	if batch.Number == 1 && len(jobs) == 1 && jobs[0].c.Key == runner.MacrosComponent {
		// As MBS: every later buildroot (and SRPM buildroot) installs the
		// macros package.
		var calls []MultiCallEntry
		for _, g := range []string{"build", "srpm-build"} {
			calls = append(calls, MultiCallEntry{Method: "groupPackageListAdd", Args: []any{st.buildTag, g, runner.MacrosComponent}})
		}
		if _, err := be.multi(ctx, calls); err != nil {
			return fmt.Errorf("koji: batch 1 of %s: add %s to groups: %w", b.NSVC(), runner.MacrosComponent, err)
		}
	}
	if len(b.Batches) > 0 && b.Batches[len(b.Batches)-1].Number == batch.Number {
		return nil // nothing builds after this: no repo to wait for
	}
	if err := be.waitRepo(ctx, st); err != nil {
		return fmt.Errorf("koji: batch %d of %s: repo: %w", batch.Number, b.NSVC(), err)
	}
	be.log.Info("koji: batch done", "nsvc", b.NSVC(), "batch", batch.Number, "builds", len(nvrs))
	return nil
}

// refuseSCM returns why repo may not be built, or "".
func (be *Backend) refuseSCM(repo string) string {
	if len(be.opts.AllowedSCM) == 0 {
		return ""
	}
	for _, p := range be.opts.AllowedSCM {
		if strings.HasPrefix(repo, p) {
			return ""
		}
	}
	return fmt.Sprintf("repository %q is not under an allowed SCM prefix (allowed: %s); it was not submitted to Koji",
		repo, strings.Join(be.opts.AllowedSCM, ", "))
}

// scmURL returns the source Koji builds: "<repository>#<commit>", with
// http(s) repositories given the "git+" scheme Koji's SCM handler expects.
func scmURL(repo, commit string) string {
	if strings.HasPrefix(repo, "https://") || strings.HasPrefix(repo, "http://") {
		repo = "git+" + repo
	}
	return repo + "#" + commit
}

// buildOpts are the opts of a component's build call. skip_tag: as MBS,
// the backend tags itself after the batch. The rida_* keys are stored
// with the task (the hub ignores unknown opts) and identify it after a
// crash.
func buildOpts(b *runner.Build, st *buildState, key string) map[string]any {
	return map[string]any{
		"skip_tag":       true,
		"rida_build_id":  b.ID,
		"rida_module":    st.tag,
		"rida_component": key,
	}
}

// submit records the intent, calls build once, and records the task. A
// transport error after the call went out may hide a task the hub created:
// the backend looks for it before it submits again.
func (be *Backend) submit(ctx context.Context, b *runner.Build, st *buildState, j *job) error {
	if err := be.opts.Intents.RecordIntent(ctx, b.ID, j.c.Key, j.src); err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	args := []any{j.src, st.target, buildOpts(b, st, j.c.Key)}
	if be.opts.Priority != 0 {
		args = append(args, KW{"priority": be.opts.Priority})
	}
	const attempts = 3
	for attempt := 1; ; attempt++ {
		v, err := be.c.CallOnce(ctx, "build", args...)
		if err == nil {
			var id int
			if err := v.Decode(&id); err != nil {
				return err
			}
			j.taskID = id
			break
		}
		var f *Fault
		if errors.As(err, &f) || ctx.Err() != nil || attempt >= attempts {
			return err
		}
		be.log.Warn("koji: build submission failed; looking for the task before retrying",
			"component", j.c.Key, "attempt", attempt, "error", err.Error())
		if ferr := be.rediscover(ctx, b, st, []*job{j}); ferr != nil {
			return errors.Join(err, ferr)
		}
		if j.taskID != 0 {
			break
		}
	}
	if err := be.opts.Intents.RecordTask(ctx, b.ID, j.c.Key, j.taskID); err != nil {
		return fmt.Errorf("record task %d: %w", j.taskID, err)
	}
	be.log.Info("koji: submitted", "nsvc", b.NSVC(), "component", j.c.Key, "task", j.taskID, "src", j.src)
	return nil
}

// rediscoverLimit bounds the task listing rediscover reads.
const rediscoverLimit = 2000

// rediscover finds the build tasks of jobs whose submission was not
// confirmed, by the [src, target, opts] request the hub stored. Jobs
// without a task keep taskID 0 (they will be submitted).
func (be *Backend) rediscover(ctx context.Context, b *runner.Build, st *buildState, jobs []*job) error {
	// Only this session's user's build tasks, newest first, in any state
	// (the task may have finished while the process was down).
	var me *struct {
		ID int `json:"id"`
	}
	if err := callInto(ctx, be.c, &me, "getLoggedInUser"); err != nil {
		return fmt.Errorf("look up tasks: %w", err)
	}
	opts := map[string]any{"method": "build", "decode": true}
	if me != nil {
		opts["owner"] = me.ID
	}
	var rows []struct {
		ID      int   `json:"id"`
		Request []any `json:"request"`
	}
	if err := callInto(ctx, be.c, &rows, "listTasks", opts,
		map[string]any{"order": "-id", "limit": rediscoverLimit}); err != nil {
		return fmt.Errorf("look up tasks: %w", err)
	}
	for _, j := range jobs {
		for _, r := range rows {
			if len(r.Request) < 3 {
				continue
			}
			src, _ := r.Request[0].(string)
			target, _ := r.Request[1].(string)
			opts, _ := r.Request[2].(map[string]any)
			comp, _ := opts["rida_component"].(string)
			id, _ := opts["rida_build_id"].(float64) // JSON-decoded
			if src == j.src && target == st.target && comp == j.c.Key && int64(id) == b.ID {
				j.taskID = r.ID
				break
			}
		}
		if j.taskID != 0 {
			if err := be.opts.Intents.RecordTask(ctx, b.ID, j.c.Key, j.taskID); err != nil {
				return fmt.Errorf("record task %d: %w", j.taskID, err)
			}
			be.log.Info("koji: found task of unconfirmed submission", "component", j.c.Key, "task", j.taskID)
		}
	}
	return nil
}

func (be *Backend) taskLogPath(taskID int) string {
	if be.opts.TopURL == "" || taskID == 0 {
		return ""
	}
	return fmt.Sprintf("%s/work/tasks/%d/%d/", be.opts.TopURL, taskID%10000, taskID)
}

type buildRow struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Release string `json:"release"`
	NVR     string `json:"nvr"`
}

type rpmRow struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Release string `json:"release"`
	Epoch   *int   `json:"epoch"`
	Arch    string `json:"arch"`
}

// watch polls the jobs' tasks, all of them in one multiCall per poll, and
// reports each one's end.
func (be *Backend) watch(ctx context.Context, jobs []*job, report func(runner.ComponentUpdate)) error {
	p := &poller{min: be.opts.PollMin, max: be.opts.PollMax}
	byTask := map[int]*job{}
	var open []int
	for _, j := range jobs {
		byTask[j.taskID] = j
		open = append(open, j.taskID)
	}
	for changed := true; len(open) > 0; {
		if err := p.wait(ctx, changed); err != nil {
			return err
		}
		infos, err := be.taskInfos(ctx, open)
		if err != nil {
			return err
		}
		var closed, ended, still []int
		for _, id := range open {
			switch in := infos[id]; {
			case in.State == taskClosed:
				closed = append(closed, id)
			case in.done():
				ended = append(ended, id)
			default:
				still = append(still, id)
			}
		}
		changed = len(closed)+len(ended) > 0
		if changed {
			if err := be.collect(ctx, byTask, closed, ended, infos, report); err != nil {
				return err
			}
		}
		open = still
	}
	return nil
}

// collect reports finished tasks: builds and RPMs of closed ones (two
// multiCalls), Koji's failure text of failed ones (in the first).
func (be *Backend) collect(ctx context.Context, byTask map[int]*job, closed, ended []int, infos map[int]taskInfo, report func(runner.ComponentUpdate)) error {
	var calls []MultiCallEntry
	for _, id := range closed {
		calls = append(calls, MultiCallEntry{Method: "listBuilds", Args: []any{KW{"taskID": id}}})
	}
	for _, id := range ended {
		calls = append(calls, MultiCallEntry{Method: "getTaskResult", Args: []any{id}})
	}
	res, err := be.c.MultiCall(ctx, calls)
	if err != nil {
		return err
	}
	builds := map[int]buildRow{}
	var rpmCalls []MultiCallEntry
	var rpmTasks []int
	for i, id := range closed {
		j := byTask[id]
		var rows []buildRow
		if res[i].Fault != nil {
			return fmt.Errorf("koji: listBuilds for task %d: %w", id, res[i].Fault)
		}
		if err := res[i].Value.Decode(&rows); err != nil {
			return err
		}
		if len(rows) == 0 {
			report(runner.ComponentUpdate{Key: j.c.Key, State: runner.ComponentFailed, Time: be.now(),
				Reason: fmt.Sprintf("%s: koji task %d closed but produced no build", j.c.Key, id)})
			j.done = true
			continue
		}
		builds[id] = rows[0]
		rpmCalls = append(rpmCalls, MultiCallEntry{Method: "listBuildRPMs", Args: []any{rows[0].ID}})
		rpmTasks = append(rpmTasks, id)
	}
	for i, id := range ended {
		j := byTask[id]
		j.done = true
		r := res[len(closed)+i]
		state := infos[id].State
		text := "no failure text from Koji"
		if r.Fault != nil {
			text = FaultName(r.Fault.Code) + ": " + strings.TrimSpace(r.Fault.String)
		}
		u := runner.ComponentUpdate{Key: j.c.Key, State: runner.ComponentFailed, Time: be.now(), LogPath: be.taskLogPath(id),
			Reason: fmt.Sprintf("%s: koji build task %d failed: %s", j.c.Key, id, text)}
		if state == taskCanceled {
			u.State, u.Reason = runner.ComponentCanceled, fmt.Sprintf("%s: koji build task %d was canceled", j.c.Key, id)
		}
		report(u)
	}
	if len(rpmCalls) == 0 {
		return nil
	}
	rres, err := be.multi(ctx, rpmCalls)
	if err != nil {
		return err
	}
	for i, id := range rpmTasks {
		j, bd := byTask[id], builds[id]
		var rows []rpmRow
		if err := rres[i].Value.Decode(&rows); err != nil {
			return err
		}
		var nevras []string
		for _, r := range rows {
			epoch := 0
			if r.Epoch != nil {
				epoch = *r.Epoch
			}
			nevras = append(nevras, fmt.Sprintf("%s-%d:%s-%s.%s", r.Name, epoch, r.Version, r.Release, r.Arch))
		}
		slices.Sort(nevras)
		j.nvr, j.done = bd.NVR, true
		logPath := ""
		if be.opts.TopURL != "" {
			logPath = fmt.Sprintf("%s/packages/%s/%s/%s/data/logs/", be.opts.TopURL, bd.Name, bd.Version, bd.Release)
		}
		report(runner.ComponentUpdate{Key: j.c.Key, State: runner.ComponentComplete, NVR: bd.NVR, RPMs: nevras,
			LogPath: logPath, Time: be.now()})
	}
	return nil
}

// tagBatch tags the batch's builds into the build tag and, except
// module-build-macros (build-time only), into the module tag, and waits for
// the tagBuild tasks. When the batch was resumed from an earlier run it
// first asks which builds are tagged already (builds made by this run
// cannot be), so tagging stays idempotent without listing whole tags on
// every batch.
func (be *Backend) tagBatch(ctx context.Context, st *buildState, jobs []*job, resumed bool) error {
	tagged := [2]map[string]bool{{}, {}}
	if resumed {
		res, err := be.multi(ctx, []MultiCallEntry{
			{Method: "listTagged", Args: []any{st.buildTag}},
			{Method: "listTagged", Args: []any{st.tag}},
		})
		if err != nil {
			return err
		}
		for i := range res {
			var rows []buildRow
			if err := res[i].Value.Decode(&rows); err != nil {
				return err
			}
			for _, r := range rows {
				tagged[i][r.NVR] = true
			}
		}
	}
	var calls []MultiCallEntry
	for _, j := range jobs {
		if !tagged[0][j.nvr] {
			calls = append(calls, MultiCallEntry{Method: "tagBuild", Args: []any{st.buildTag, j.nvr}})
		}
		if j.c.Key != runner.MacrosComponent && !tagged[1][j.nvr] {
			calls = append(calls, MultiCallEntry{Method: "tagBuild", Args: []any{st.tag, j.nvr}})
		}
	}
	if len(calls) == 0 {
		return nil
	}
	tres, err := be.c.MultiCall(ctx, calls)
	if err != nil {
		return err
	}
	var ids []int
	for i, r := range tres {
		if r.Fault != nil {
			if r.Fault.Code == TagError && strings.Contains(r.Fault.String, "already tagged") {
				continue // a concurrent or earlier run tagged it
			}
			return fmt.Errorf("koji: tagBuild %v: %w", calls[i].Args, r.Fault)
		}
		var id int
		if err := r.Value.Decode(&id); err != nil {
			return err
		}
		ids = append(ids, id)
	}
	_, err = be.waitAux(ctx, st, ids)
	return err
}

// waitRepo waits until the build tag has a repo containing everything
// tagged so far: repo.request + repo.checkRequest on hubs ≥ 1.35, newRepo
// and its task on older ones.
func (be *Backend) waitRepo(ctx context.Context, st *buildState) error {
	newAPI, err := be.hubHasRepoRequests(ctx)
	if err != nil {
		return err
	}
	if !newAPI {
		var id int
		if err := callInto(ctx, be.c, &id, "newRepo", st.buildTag); err != nil {
			return err
		}
		_, err := be.waitAux(ctx, st, []int{id})
		return err
	}
	type reqInfo struct {
		ID       int  `json:"id"`
		Active   bool `json:"active"`
		TaskID   *int `json:"task_id"`
		TaskSt   *int `json:"task_state"`
		RepoID   *int `json:"repo_id"`
		TriesCnt int  `json:"tries"`
	}
	var r struct {
		Repo    map[string]any `json:"repo"`
		Request *reqInfo       `json:"request"`
	}
	if err := callInto(ctx, be.c, &r, "repo.request", st.buildTag, KW{"min_event": "last"}); err != nil {
		return err
	}
	if r.Repo != nil {
		return nil
	}
	if r.Request == nil {
		return errors.New("koji: repo.request answered neither a repo nor a request")
	}
	reqID := r.Request.ID
	p := &poller{min: be.opts.PollMin, max: be.opts.PollMax}
	for changed := true; ; changed = false {
		if err := p.wait(ctx, changed); err != nil {
			return err
		}
		var c struct {
			Repo    map[string]any `json:"repo"`
			Request reqInfo        `json:"request"`
		}
		if err := callInto(ctx, be.c, &c, "repo.checkRequest", reqID); err != nil {
			return err
		}
		be.polls.Add(1)
		if c.Repo != nil {
			return nil
		}
		if !c.Request.Active {
			return fmt.Errorf("koji: repo request %d for %s ended without a repo", reqID, st.buildTag)
		}
	}
}

// uploadMacros generates the module-build-macros SRPM, uploads it and
// returns its hub path "cli-build/<dir>/<file>.src.rpm".
func (be *Backend) uploadMacros(ctx context.Context, b *runner.Build) (string, error) {
	srpm, cleanup, err := be.macrosSRPM(ctx, b)
	if err != nil {
		return "", err
	}
	defer cleanup()
	data, err := os.ReadFile(srpm)
	if err != nil {
		return "", err
	}
	const letters = "abcdefghijklmnopqrstuvwxyz"
	var suffix strings.Builder
	for range 8 {
		suffix.WriteByte(letters[rand.N(len(letters))])
	}
	dir := "cli-build/" + strconv.FormatInt(be.now().UnixNano(), 10) + "." + suffix.String()
	name := filepath.Base(srpm)
	if err := be.upload(ctx, dir, name, data); err != nil {
		return "", err
	}
	return dir + "/" + name, nil
}

// upload sends data with uploadFile in base64 chunks, each with its size
// and md5, then a final call (offset -1) with the whole file's size and
// md5, which the hub verifies.
func (be *Backend) upload(ctx context.Context, dir, name string, data []byte) error {
	for off := 0; off < len(data) || off == 0; off += be.opts.UploadChunk {
		chunk := data[off:min(off+be.opts.UploadChunk, len(data))]
		sum := md5.Sum(chunk)
		var ok bool
		if err := callInto(ctx, be.c, &ok, "uploadFile", dir, name, len(chunk), hex.EncodeToString(sum[:]), off,
			base64.StdEncoding.EncodeToString(chunk)); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("koji: upload %s/%s at offset %d: %w", dir, name, off, ErrUpload)
		}
		if len(data) == 0 {
			break
		}
	}
	sum := md5.Sum(data)
	var ok bool
	if err := callInto(ctx, be.c, &ok, "uploadFile", dir, name, len(data), hex.EncodeToString(sum[:]), -1, ""); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("koji: upload %s/%s: %w", dir, name, ErrUpload)
	}
	return nil
}

// macrosSRPM builds the module-build-macros SRPM with rpmbuild -bs in a
// temporary directory, which cleanup removes.
func (be *Backend) macrosSRPM(ctx context.Context, b *runner.Build) (string, func(), error) {
	m := buildmacros.Module{Name: b.Name, Stream: b.Stream, Version: b.Version, Context: b.Context,
		DistTag: b.DistTag, ChangelogTime: be.now()}
	if b.Modulemd != nil && b.Modulemd.BuildOpts != nil {
		m.BuildoptsMacros = b.Modulemd.BuildOpts.Macros
	}
	macros, err := buildmacros.Macros(m)
	if err != nil {
		return "", nil, err
	}
	spec, err := buildmacros.Spec(m)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "rida-koji-macros-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	src, out := filepath.Join(dir, "SOURCES"), filepath.Join(dir, "SRPMS")
	for _, d := range []string{src, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	specPath := filepath.Join(dir, buildmacros.PackageName+".spec")
	if err := os.WriteFile(filepath.Join(src, buildmacros.SourceName), []byte(macros), 0o644); err == nil {
		err = os.WriteFile(specPath, []byte(spec), 0o644)
	}
	if err != nil {
		cleanup()
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, be.opts.Test.RPMBuild, "-bs",
		"--define", "_topdir "+dir, "--define", "_sourcedir "+src, "--define", "_srcrpmdir "+out, specPath)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if output, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		tail := strings.TrimSpace(string(output))
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return "", nil, fmt.Errorf("rpmbuild -bs: %w: %s", err, tail)
	}
	matches, _ := filepath.Glob(filepath.Join(out, "*.src.rpm"))
	if len(matches) != 1 {
		cleanup()
		return "", nil, fmt.Errorf("rpmbuild -bs produced %d SRPMs", len(matches))
	}
	return matches[0], cleanup, nil
}
