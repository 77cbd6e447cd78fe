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
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rida-build/rida/buildmacros"
	"github.com/rida-build/rida/runner"
)

// job is one component's Koji build task within a batch.
type job struct {
	c      *runner.Component
	src    string
	taskID int
	sent   time.Time // when this process got the task id (zero: re-attached)
	done   bool
	nvr    string
	build  buildRow // the task's build, once it closed
	// inBuildTag and inTag: the build is known to be tagged into the
	// build tag, the module tag, already (reused builds, resumed batches).
	inBuildTag, inTag bool
}

// BuildBatch builds the components of batch in Koji and reports each one's
// progress. Batch 1 builds module-build-macros from an SRPM generated with
// buildmacros and uploaded to the hub; later batches build
// "<repository>#<commit>". Every submission is recorded in the IntentStore
// first, so a BuildBatch after a restart re-attaches to the tasks of the
// earlier run instead of submitting again.
//
// When every component completed, their builds are tagged into the build
// tag (and, except module-build-macros, into the module tag), together with
// the batch's reused components (see Reuse), and, unless this is the last
// batch, BuildBatch waits for the build tag's repo to be regenerated before
// returning; a batch whose components are all reused comes with no
// component to build and only tags. A component that fails leaves the
// batch untagged; the runner fails the module.
//
// The hub sees one request per step: all of a batch's build calls in one
// multiCall, one multiCall per poll, all tagBuild calls in one multiCall;
// the repo is requested as soon as the build tag's tagBuild tasks closed,
// and the module tag's are watched in the same polls as the repo request.
//
// The calls go through the module build's own session (see buildSession),
// which is closed when BuildBatch returns an error or a component failed:
// by runner.Execute's contract the module build ends then.
func (be *Backend) BuildBatch(ctx context.Context, b *runner.Build, batch *runner.Batch, report func(runner.ComponentUpdate)) error {
	st := be.state(b)
	failed := false
	err := be.forBuild(st).buildBatch(ctx, b, st, batch, func(u runner.ComponentUpdate) {
		failed = failed || u.State == runner.ComponentFailed || u.State == runner.ComponentCanceled
		report(u)
	})
	if err != nil || failed {
		be.endSession(ctx, st)
	}
	return err
}

func (be *Backend) buildBatch(ctx context.Context, b *runner.Build, st *buildState, batch *runner.Batch, report func(runner.ComponentUpdate)) error {
	reused, reuseKnown := st.takeReused(b, batch.Number)
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
		if c.SRPM != "" {
			// MBS: "A source starting with cli-build/ is used as already
			// uploaded": the client uploaded the SRPM to the hub.
			if reason := refuseUpload(c.SRPM); reason != "" {
				report(runner.ComponentUpdate{Key: c.Key, State: runner.ComponentFailed, Reason: reason, Time: be.now()})
				continue
			}
			j.src = c.SRPM
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
	var fresh []*job
	for _, j := range jobs {
		if j.taskID != 0 {
			resumed = true
			be.log.Info("koji: re-attached to task", "nsvc", b.NSVC(), "component", j.c.Key, "task", j.taskID)
			report(runner.ComponentUpdate{Key: j.c.Key, State: runner.ComponentBuilding, LogPath: be.taskLogPath(j.taskID),
				TaskID: int64(j.taskID), Time: be.now()})
			continue
		}
		if j.c.Key == runner.MacrosComponent && j.src == "" {
			if j.src, err = be.uploadMacros(ctx, b, st); err != nil {
				return fmt.Errorf("koji: batch %d of %s: module-build-macros: %w", batch.Number, b.NSVC(), err)
			}
		}
		fresh = append(fresh, j)
	}
	if batch.Number == 1 {
		st.dropMacros() // resumed: the macros build was submitted before
	}
	if err := be.submitAll(ctx, b, st, fresh, report); err != nil {
		return fmt.Errorf("koji: batch %d of %s: %w", batch.Number, b.NSVC(), err)
	}

	pending, err := be.watch(ctx, jobs, report)
	if err != nil {
		return fmt.Errorf("koji: batch %d of %s: %w", batch.Number, b.NSVC(), err)
	}
	complete := len(jobs) == len(batch.Components) // else: refused components
	for _, j := range jobs {
		complete = complete && j.nvr != ""
	}
	if !complete {
		// A component failed: no tagging, the module fails. The builds
		// that did complete are still reported.
		if err := be.fetchRPMs(ctx, pending, report); err != nil {
			return fmt.Errorf("koji: batch %d of %s: %w", batch.Number, b.NSVC(), err)
		}
		return nil
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
	// Reused components (runner.Reuser) are tagged with the batch's own
	// builds; Reuse found out whether they are tagged already.
	jobs = append(jobs, reused...)
	resumed = resumed || !reuseKnown
	last := len(b.Batches) > 0 && b.Batches[len(b.Batches)-1].Number == batch.Number
	macrosBatch := batch.Number == 1 && len(jobs) == 1 && jobs[0].c.Key == runner.MacrosComponent
	if err := be.tagBatch(ctx, st, jobs, resumed, macrosBatch, pending, report, !last); err != nil {
		return fmt.Errorf("koji: batch %d of %s: %w", batch.Number, b.NSVC(), err)
	}
	be.log.Info("koji: batch done", "nsvc", b.NSVC(), "batch", batch.Number, "builds", len(jobs))
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

// refuseUpload returns why p may not be built as an SRPM uploaded to the
// hub, or "": it must be a clean relative path under cli-build/ naming a
// .src.rpm (package api checks the same at submit).
func refuseUpload(p string) string {
	if !strings.HasPrefix(p, "cli-build/") || !strings.HasSuffix(p, ".src.rpm") || path.Clean(p) != p || strings.Contains(p, "\\") {
		return fmt.Sprintf("SRPM %q is not a Koji upload path (cli-build/…/name-version-release.src.rpm); it was not submitted to Koji", p)
	}
	return ""
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

// submitAll records the intents of jobs, submits them with one build call
// each, all in one multiCall (a single job: a plain call), and records the
// tasks. The request is never repeated blindly: after a transport error
// (the hub may have created some tasks) the backend looks for the tasks
// and submits only the jobs still without one.
func (be *Backend) submitAll(ctx context.Context, b *runner.Build, st *buildState, jobs []*job, report func(runner.ComponentUpdate)) error {
	if len(jobs) == 0 {
		return nil
	}
	for _, j := range jobs {
		if err := be.opts.Intents.RecordIntent(ctx, b.ID, j.c.Key, j.src); err != nil {
			return fmt.Errorf("submit %s: record intent: %w", j.c.Key, err)
		}
	}
	var faulted error
	pending := jobs
	const attempts = 3
	for attempt := 1; len(pending) > 0; attempt++ {
		calls := make([]MultiCallEntry, len(pending))
		for i, j := range pending {
			args := []any{j.src, st.target, buildOpts(b, st, j.c.Key)}
			if be.opts.Priority != 0 {
				args = append(args, KW{"priority": be.opts.Priority})
			}
			calls[i] = MultiCallEntry{Method: "build", Args: args}
		}
		res, err := be.multiOnce(ctx, calls)
		if err != nil {
			var f *Fault
			if errors.As(err, &f) || ctx.Err() != nil || attempt >= attempts {
				return be.recordSubmitted(ctx, b, jobs, report, fmt.Errorf("submit %s: %w", pending[0].c.Key, err))
			}
			be.log.Warn("koji: build submission failed; looking for the tasks before retrying",
				"components", len(pending), "attempt", attempt, "error", err.Error())
			if ferr := be.rediscover(ctx, b, st, pending); ferr != nil {
				return be.recordSubmitted(ctx, b, jobs, report, errors.Join(err, ferr))
			}
			var still []*job
			for _, j := range pending {
				if j.taskID == 0 {
					still = append(still, j)
				} else {
					j.sent = time.Now()
				}
			}
			pending = still
			continue
		}
		sent := time.Now()
		for i, j := range pending {
			if f := res[i].Fault; f != nil {
				if faulted == nil {
					faulted = fmt.Errorf("submit %s: koji: build: %w", j.c.Key, f)
				}
				continue
			}
			var id int
			if err := res[i].Value.Decode(&id); err != nil {
				return be.recordSubmitted(ctx, b, jobs, report, fmt.Errorf("submit %s: %w", j.c.Key, err))
			}
			j.taskID, j.sent = id, sent
		}
		pending = nil
	}
	return be.recordSubmitted(ctx, b, jobs, report, faulted)
}

// recordSubmitted records the tasks jobs got and reports them building; it
// returns err, or the first recording error.
func (be *Backend) recordSubmitted(ctx context.Context, b *runner.Build, jobs []*job, report func(runner.ComponentUpdate), err error) error {
	for _, j := range jobs {
		if j.taskID == 0 {
			continue
		}
		if rerr := be.opts.Intents.RecordTask(ctx, b.ID, j.c.Key, j.taskID); rerr != nil {
			return errors.Join(err, fmt.Errorf("submit %s: record task %d: %w", j.c.Key, j.taskID, rerr))
		}
		be.log.Info("koji: submitted", "nsvc", b.NSVC(), "component", j.c.Key, "task", j.taskID, "src", j.src)
		report(runner.ComponentUpdate{Key: j.c.Key, State: runner.ComponentBuilding, LogPath: be.taskLogPath(j.taskID),
			TaskID: int64(j.taskID), Time: be.now()})
	}
	return err
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

// buildRow is a listBuilds row. The hub's listBuilds rows carry the build's
// id as "build_id" only (getBuild and listTagged have "id" too).
type buildRow struct {
	ID      int    `json:"build_id"`
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
// reports each one's end. It returns the jobs whose task closed in the last
// poll, with their builds known but their RPMs not yet fetched nor their
// completion reported: the caller fetches them with its next request.
func (be *Backend) watch(ctx context.Context, jobs []*job, report func(runner.ComponentUpdate)) ([]*job, error) {
	p := be.newPoller()
	byTask := map[int]*job{}
	var open []int
	for _, j := range jobs {
		byTask[j.taskID] = j
		open = append(open, j.taskID)
	}
	var pending []*job
	for changed := true; len(open) > 0; {
		var due time.Time
		for _, id := range open {
			due = earliest(due, be.est.due(kindBuild, byTask[id].sent))
		}
		if err := p.wait(ctx, changed, due); err != nil {
			return nil, err
		}
		infos, err := be.taskInfos(ctx, open)
		if err != nil {
			return nil, err
		}
		var closed, ended, still []int
		for _, id := range open {
			switch in := infos[id]; {
			case in.State == taskClosed:
				closed = append(closed, id)
				be.est.observe(kindBuild, in.took())
			case in.done():
				ended = append(ended, id)
			default:
				still = append(still, id)
			}
		}
		changed = len(closed)+len(ended) > 0
		if changed {
			built, err := be.collect(ctx, byTask, closed, ended, infos, report)
			if err != nil {
				return nil, err
			}
			if len(still) > 0 {
				if err := be.fetchRPMs(ctx, built, report); err != nil {
					return nil, err
				}
			} else {
				pending = built
			}
		}
		open = still
	}
	return pending, nil
}

// collect handles finished tasks in one multiCall: the build of each closed
// one (returned, for its RPMs), Koji's failure text of each failed one
// (reported).
func (be *Backend) collect(ctx context.Context, byTask map[int]*job, closed, ended []int, infos map[int]taskInfo, report func(runner.ComponentUpdate)) ([]*job, error) {
	var calls []MultiCallEntry
	for _, id := range closed {
		calls = append(calls, MultiCallEntry{Method: "listBuilds", Args: []any{KW{"taskID": id}}})
	}
	for _, id := range ended {
		calls = append(calls, MultiCallEntry{Method: "getTaskResult", Args: []any{id}})
	}
	res, err := be.c.MultiCall(ctx, calls)
	if err != nil {
		return nil, err
	}
	var built []*job
	for i, id := range closed {
		j := byTask[id]
		var rows []buildRow
		if res[i].Fault != nil {
			return nil, fmt.Errorf("koji: listBuilds for task %d: %w", id, res[i].Fault)
		}
		if err := res[i].Value.Decode(&rows); err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			report(runner.ComponentUpdate{Key: j.c.Key, State: runner.ComponentFailed, Time: be.now(), TaskID: int64(id),
				Reason: fmt.Sprintf("%s: koji task %d closed but produced no build", j.c.Key, id)})
			j.done = true
			continue
		}
		if rows[0].ID <= 0 {
			// listBuildRPMs(0) answers [] rather than a fault: a build
			// without its id would silently have no RPMs.
			return nil, fmt.Errorf("koji: listBuilds for task %d: row without build_id", id)
		}
		j.build, j.nvr = rows[0], rows[0].NVR
		built = append(built, j)
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
			TaskID: int64(id), Reason: fmt.Sprintf("%s: koji build task %d failed: %s", j.c.Key, id, text)}
		if state == taskCanceled {
			u.State, u.Reason = runner.ComponentCanceled, fmt.Sprintf("%s: koji build task %d was canceled", j.c.Key, id)
		}
		report(u)
	}
	return built, nil
}

// rpmCall is the listBuildRPMs call of a job whose build is known.
func (j *job) rpmCall() MultiCallEntry {
	return MultiCallEntry{Method: "listBuildRPMs", Args: []any{j.build.ID}}
}

// fetchRPMs lists the RPMs of jobs' builds in one multiCall and reports the
// jobs complete.
func (be *Backend) fetchRPMs(ctx context.Context, jobs []*job, report func(runner.ComponentUpdate)) error {
	if len(jobs) == 0 {
		return nil
	}
	calls := make([]MultiCallEntry, len(jobs))
	for i, j := range jobs {
		calls[i] = j.rpmCall()
	}
	res, err := be.c.MultiCall(ctx, calls)
	if err != nil {
		return err
	}
	for i, j := range jobs {
		if err := be.reportComplete(j, res[i], report); err != nil {
			return err
		}
	}
	return nil
}

// reportComplete reports a job complete with the RPMs of r, the answer to
// its rpmCall.
func (be *Backend) reportComplete(j *job, r MultiCallResult, report func(runner.ComponentUpdate)) error {
	if r.Fault != nil {
		return fmt.Errorf("koji: listBuildRPMs %d: %w", j.build.ID, r.Fault)
	}
	var rows []rpmRow
	if err := r.Value.Decode(&rows); err != nil {
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
	bd := j.build
	j.done = true
	logPath := ""
	if be.opts.TopURL != "" {
		logPath = fmt.Sprintf("%s/packages/%s/%s/%s/data/logs/", be.opts.TopURL, bd.Name, bd.Version, bd.Release)
	}
	report(runner.ComponentUpdate{Key: j.c.Key, State: runner.ComponentComplete, NVR: bd.NVR, RPMs: nevras,
		LogPath: logPath, TaskID: int64(j.taskID), Time: be.now()})
	return nil
}

func (st *buildState) addAux(ids ...int) {
	st.mu.Lock()
	for _, id := range ids {
		st.aux[id] = true
	}
	st.mu.Unlock()
}

func (st *buildState) removeAux(ids ...int) {
	st.mu.Lock()
	for _, id := range ids {
		delete(st.aux, id)
	}
	st.mu.Unlock()
}

type repoReqInfo struct {
	ID        int      `json:"id"`
	Active    bool     `json:"active"`
	CreateTS  *float64 `json:"create_ts"`
	UpdateTS  *float64 `json:"update_ts"`
	TaskID    *int     `json:"task_id"`
	TaskState *int     `json:"task_state"`
	Tries     int      `json:"tries"`
}

// progress is what changes while the hub works a repo request: its task,
// the task's state and the number of tries.
func (r repoReqInfo) progress() string {
	s := fmt.Sprint(r.Tries)
	if r.TaskID != nil {
		s += fmt.Sprintf(" task %d", *r.TaskID)
	}
	if r.TaskState != nil {
		s += fmt.Sprintf(" state %d", *r.TaskState)
	}
	return s
}

// working reports whether a builder works the request's task now.
func (r repoReqInfo) working() bool {
	return r.TaskState != nil && (*r.TaskState == taskOpen || *r.TaskState == taskAssigned)
}

// took is how long the hub took to fulfil the request, -1 if unknown.
func (r repoReqInfo) took() time.Duration {
	if r.CreateTS == nil || r.UpdateTS == nil || *r.UpdateTS < *r.CreateTS {
		return -1
	}
	return time.Duration((*r.UpdateTS - *r.CreateTS) * float64(time.Second))
}

// tagBatch tags the batch's builds into the build tag and, except
// module-build-macros (build-time only), into the module tag, all in one
// multiCall that also carries the RPM listings of pending (builds whose
// completion is not reported yet) and, for the macros batch, the addition
// of module-build-macros to the build tag's groups. It then watches the
// tagBuild tasks; with waitRepo, as soon as those into the build tag
// closed, it requests the build tag's repo (repo.request, or newRepo on
// hubs before 1.35) and watches it in the same polls as the remaining
// tagBuild tasks. It returns when everything is done.
//
// A repo request that makes no progress (no task, or one no builder
// works, unchanged) for half of RepoTimeout, or that ends without a repo,
// gets one newRepo fallback; the first of the two to give a repo ends the
// wait. If the fallback fails too, or nothing gives a repo within
// RepoTimeout, the error names what was waited on.
//
// Builds known to be tagged already (j.inBuildTag, j.inTag: reused builds,
// whose tags Reuse looked up) are not tagged again. When the batch was
// resumed from an earlier run it first asks which builds are tagged
// already (builds made by this run cannot be), so tagging stays idempotent
// without listing whole tags on every batch. A tagBuild that fails, in the
// call or in its task, because the build is in the tag already counts as
// done.
func (be *Backend) tagBatch(ctx context.Context, st *buildState, jobs []*job, resumed, macrosBatch bool, pending []*job, report func(runner.ComponentUpdate), waitRepo bool) error {
	if resumed {
		res, err := be.multi(ctx, []MultiCallEntry{
			{Method: "listTagged", Args: []any{st.buildTag}},
			{Method: "listTagged", Args: []any{st.tag}},
		})
		if err != nil {
			return fmt.Errorf("tag: %w", err)
		}
		for i := range res {
			var rows []buildRow
			if err := res[i].Value.Decode(&rows); err != nil {
				return fmt.Errorf("tag: %w", err)
			}
			for _, r := range rows {
				for _, j := range jobs {
					if j.nvr == r.NVR {
						if i == 0 {
							j.inBuildTag = true
						} else {
							j.inTag = true
						}
					}
				}
			}
		}
	}
	var calls []MultiCallEntry
	for _, j := range jobs {
		if !j.inBuildTag {
			calls = append(calls, MultiCallEntry{Method: "tagBuild", Args: []any{st.buildTag, j.nvr}})
		}
	}
	nBuildTag := len(calls)
	for _, j := range jobs {
		if j.c.Key != runner.MacrosComponent && !j.inTag {
			calls = append(calls, MultiCallEntry{Method: "tagBuild", Args: []any{st.tag, j.nvr}})
		}
	}
	nTag := len(calls)
	if macrosBatch {
		// As MBS: every later buildroot (and SRPM buildroot) installs the
		// macros package.
		for _, g := range []string{"build", "srpm-build"} {
			calls = append(calls, MultiCallEntry{Method: "groupPackageListAdd", Args: []any{st.buildTag, g, runner.MacrosComponent}})
		}
	}
	nGroup := len(calls)
	for _, j := range pending {
		calls = append(calls, j.rpmCall())
	}
	var res []MultiCallResult
	if len(calls) > 0 {
		var err error
		if res, err = be.c.MultiCall(ctx, calls); err != nil {
			return fmt.Errorf("tag: %w", err)
		}
	}
	sent := time.Now()
	var open []int
	gate := map[int]bool{} // tagBuild tasks into the build tag: the repo waits for them
	for i := range nTag {
		r := res[i]
		if r.Fault != nil {
			if r.Fault.Code == TagError && strings.Contains(r.Fault.String, "already tagged") {
				continue // a concurrent or earlier run tagged it
			}
			return fmt.Errorf("tag: koji: tagBuild %v: %w", calls[i].Args, r.Fault)
		}
		var id int
		if err := r.Value.Decode(&id); err != nil {
			return fmt.Errorf("tag: %w", err)
		}
		open = append(open, id)
		if i < nBuildTag {
			gate[id] = true
		}
	}
	st.addAux(open...)
	defer st.removeAux(slices.Clone(open)...)
	for i := nTag; i < nGroup; i++ {
		if f := res[i].Fault; f != nil {
			return fmt.Errorf("add %s to groups: koji: groupPackageListAdd: %w", runner.MacrosComponent, f)
		}
	}
	for i, j := range pending {
		if err := be.reportComplete(j, res[nGroup+i], report); err != nil {
			return err
		}
	}

	newAPI := false
	if waitRepo {
		var err error
		if newAPI, err = be.hubHasRepoRequests(ctx); err != nil {
			return fmt.Errorf("repo: %w", err)
		}
	}
	p := be.newPoller()
	repoRequested, repoReady := !waitRepo, !waitRepo
	reqID, repoTask := 0, 0
	var repoSent, repoWarned time.Time
	warnEvery := min(repoWarnEvery, be.opts.RepoTimeout/4)
	// The newRepo fallback of a repo request: fallback is its task (0
	// until started), reqEnded whether the request ended without a repo;
	// lastProgress is when the request last changed (reqSeen).
	fallback, reqEnded := 0, false
	var lastProgress time.Time
	reqSeen := ""
	stallAfter := be.opts.RepoTimeout / 2
	for changed := true; ; {
		if !repoRequested && len(gate) == 0 {
			// Everything of this batch is in the build tag: the repo's
			// event is after the tagging.
			repoRequested, changed = true, true
			if newAPI {
				var r struct {
					Repo    map[string]any `json:"repo"`
					Request *repoReqInfo   `json:"request"`
				}
				if err := callInto(ctx, be.c, &r, "repo.request", st.buildTag, KW{"min_event": "last"}); err != nil {
					return fmt.Errorf("repo: %w", err)
				}
				switch {
				case r.Repo != nil:
					repoReady = true
				case r.Request == nil:
					return errors.New("repo: koji: repo.request answered neither a repo nor a request")
				default:
					reqID = r.Request.ID
					reqSeen = r.Request.progress()
				}
			} else {
				if err := callInto(ctx, be.c, &repoTask, "newRepo", st.buildTag); err != nil {
					return fmt.Errorf("repo: %w", err)
				}
				st.addAux(repoTask)
				defer st.removeAux(repoTask)
			}
			repoSent = time.Now()
			lastProgress = repoSent
		}
		if reqID != 0 && !repoReady && fallback == 0 && time.Now().Before(repoSent.Add(be.opts.RepoTimeout)) &&
			(reqEnded || time.Since(lastProgress) >= stallAfter) {
			// The request is stuck: ask for the repo directly, once.
			why := fmt.Sprintf("made no progress for %s", time.Since(lastProgress).Round(time.Millisecond))
			if reqEnded {
				why = "ended without a repo"
			}
			be.log.Warn("koji: repo request "+why+"; falling back to newRepo", "tag", st.buildTag, "request", reqID)
			if err := callInto(ctx, be.c, &fallback, "newRepo", st.buildTag); err != nil {
				return fmt.Errorf("repo: koji: repo request %d for %s %s, and newRepo failed: %w", reqID, st.buildTag, why, err)
			}
			repoTask, changed = fallback, true
			st.addAux(fallback)
			defer st.removeAux(fallback)
		}
		if len(open) == 0 && repoReady && repoTask == 0 {
			return nil
		}
		due := time.Time{}
		if len(open) > 0 {
			due = be.est.due(kindTag, sent)
		}
		if repoRequested && !repoReady {
			due = earliest(due, be.est.due(kindRepo, repoSent))
			// Poll once more right at the deadline, then give up.
			if deadline := repoSent.Add(be.opts.RepoTimeout); time.Now().Before(deadline) {
				due = earliest(due, deadline)
			} else {
				return be.repoTimedOut(ctx, st, reqID, fallback, repoTask, newAPI, reqEnded)
			}
			if reqID != 0 && fallback == 0 {
				due = earliest(due, lastProgress.Add(stallAfter))
			}
			if waited := time.Since(repoSent); waited >= warnEvery && time.Since(repoWarned) >= warnEvery {
				repoWarned = time.Now()
				be.log.Warn("koji: still waiting for the build tag's repo", "tag", st.buildTag, "request", reqID, "task", repoTask,
					"waited", waited.Round(time.Second), "timeout", be.opts.RepoTimeout)
			}
		}
		if err := p.wait(ctx, changed, due); err != nil {
			return err
		}
		ids := slices.Clone(open)
		if repoTask != 0 {
			ids = append(ids, repoTask)
		}
		calls := taskInfoCalls(ids)
		pollReq := reqID != 0 && !repoReady && !reqEnded
		if pollReq {
			calls = append(calls, MultiCallEntry{Method: "repo.checkRequest", Args: []any{reqID}})
		}
		var res []MultiCallResult
		var err error
		if len(ids) == 0 {
			// Only the repo request is open: a plain call.
			var v Value
			if v, err = be.c.Call(ctx, "repo.checkRequest", reqID); err == nil {
				res = []MultiCallResult{{Value: v}}
			}
		} else {
			res, err = be.multi(ctx, calls)
		}
		if err != nil {
			return fmt.Errorf("tag: %w", err)
		}
		be.polls.Add(1)
		infos, err := decodeTaskInfos(ids, res)
		if err != nil {
			return err
		}
		changed = false
		var still []int
		for _, id := range ids {
			in := infos[id]
			if !in.done() {
				if id != repoTask {
					still = append(still, id)
				}
				continue
			}
			changed = true
			if in.State != taskClosed {
				err := be.taskFailure(ctx, in)
				if id == fallback {
					be.log.Warn("koji: the newRepo fallback failed too", "tag", st.buildTag, "request", reqID, "task", id)
					return fmt.Errorf("repo: koji: no repo of %s: repo request %d (repo.request) %s, and the newRepo fallback (task %d) failed: %w",
						st.buildTag, reqID, reqState(reqEnded), id, err)
				}
				if id == repoTask || !alreadyTagged(err) {
					return fmt.Errorf("tag: %w", err)
				}
				// A real hub checks in the task, not in the call: an
				// earlier or concurrent run tagged the build meanwhile.
				be.log.Info("koji: build was tagged already", "task", id)
				delete(gate, id)
				continue
			}
			if id == repoTask {
				be.est.observe(kindRepo, in.took())
				repoTask, repoReady = 0, true
			} else {
				be.est.observe(kindTag, in.took())
				delete(gate, id)
			}
		}
		open = still
		if pollReq && !repoReady {
			var c struct {
				Repo    map[string]any `json:"repo"`
				Request repoReqInfo    `json:"request"`
			}
			if err := res[len(ids)].Value.Decode(&c); err != nil {
				return fmt.Errorf("repo: %w", err)
			}
			switch {
			case c.Repo != nil:
				repoReady, changed = true, true
				repoTask = 0 // a fallback still running is not waited for
				be.est.observe(kindRepo, c.Request.took())
			case !c.Request.Active:
				reqEnded, changed = true, true
				if fallback != 0 {
					be.log.Warn("koji: repo request ended without a repo; waiting for the newRepo fallback", "tag", st.buildTag, "request", reqID, "task", fallback)
				}
			default:
				if p := c.Request.progress(); p != reqSeen || c.Request.working() {
					reqSeen, lastProgress = p, time.Now()
				}
			}
		}
	}
}

// reqState says how a repo request that gave no repo ended.
func reqState(ended bool) string {
	if ended {
		return "ended without a repo"
	}
	return "made no progress"
}

// repoTimedOut is the error of a repo wait that reached RepoTimeout. The
// newRepo task rida started for the wait (the fallback, or on hubs before
// 1.35 the wait's own task) is cancelled, so no task of a failed build is
// left open on the hub; a repo request belongs to kojira and is left.
func (be *Backend) repoTimedOut(ctx context.Context, st *buildState, reqID, fallback, repoTask int, newAPI, reqEnded bool) error {
	what := fmt.Sprintf("repo request %d (repo.request) is still open (is kojira running on the hub?)", reqID)
	switch {
	case !newAPI:
		what = fmt.Sprintf("newRepo task %d was still open (does a builder take createrepo tasks?)%s", repoTask, be.cancelRepoTask(ctx, st, repoTask))
	case fallback != 0:
		what = fmt.Sprintf("repo request %d (repo.request) %s (is kojira running on the hub?), and its newRepo fallback, task %d, was still open (does a builder take createrepo tasks?)%s",
			reqID, reqState(reqEnded), fallback, be.cancelRepoTask(ctx, st, fallback))
	}
	be.log.Warn("koji: gave up waiting for the build tag's repo", "tag", st.buildTag, "request", reqID, "task", repoTask, "timeout", be.opts.RepoTimeout)
	return fmt.Errorf("repo: koji: no repo of %s within %s (backend.koji.repo_timeout): %s", st.buildTag, be.opts.RepoTimeout, what)
}

// cancelRepoTask cancels newRepo task id after a repo wait gave up, and
// says how that went for the error's text.
func (be *Backend) cancelRepoTask(ctx context.Context, st *buildState, id int) string {
	if id == 0 {
		return ""
	}
	if _, err := be.c.Call(ctx, "cancelTask", id); err != nil {
		be.log.Warn("koji: could not cancel the newRepo task of a repo wait that gave up", "tag", st.buildTag, "task", id, "err", err)
		return fmt.Sprintf("; cancelling it failed: %v", err)
	}
	return "; rida cancelled it"
}

// uploadMacros uploads the module-build-macros SRPM (generated while
// Prepare ran, or now) and returns its hub path
// "cli-build/<dir>/<file>.src.rpm".
func (be *Backend) uploadMacros(ctx context.Context, b *runner.Build, st *buildState) (string, error) {
	var srpm string
	var cleanup func()
	var err error
	if m := st.takeMacros(); m != nil {
		select {
		case <-m.done:
		case <-ctx.Done():
			go func() { <-m.done; m.release() }()
			return "", ctx.Err()
		}
		srpm, cleanup, err = m.path, m.cleanup, m.err
	} else {
		srpm, cleanup, err = be.macrosSRPM(ctx, b)
	}
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

// startMacros starts generating the module-build-macros SRPM in the
// background when batch 1 will need it, so that rpmbuild runs while
// Prepare talks to the hub.
func (be *Backend) startMacros(ctx context.Context, b *runner.Build, st *buildState) {
	need := false
	for _, batch := range b.Batches {
		for _, c := range batch.Components {
			if c.Key == runner.MacrosComponent && c.State != runner.ComponentComplete && c.State != runner.ComponentReused {
				need = true
			}
		}
	}
	if !need {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.macros != nil {
		return
	}
	m := &macrosSRPM{done: make(chan struct{})}
	st.macros = m
	go func() {
		defer close(m.done)
		m.path, m.cleanup, m.err = be.macrosSRPM(context.WithoutCancel(ctx), b)
	}()
}

// takeMacros returns the SRPM generated in the background, if any, and
// forgets it.
func (st *buildState) takeMacros() *macrosSRPM {
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.macros
	st.macros = nil
	return m
}

// dropMacros removes an SRPM generated in the background and not used.
func (st *buildState) dropMacros() {
	if m := st.takeMacros(); m != nil {
		go func() { <-m.done; m.release() }()
	}
}

func (m *macrosSRPM) release() {
	if m.err == nil && m.cleanup != nil {
		m.cleanup()
	}
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
