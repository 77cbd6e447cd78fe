package koji

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rida-build/rida/runner"
)

// Koji build states (getBuild's "state").
const (
	buildBuilding = 0
	buildComplete = 1
	buildDeleted  = 2
	buildFailed   = 3
	buildCanceled = 4
)

var buildStateNames = map[int]string{buildBuilding: "BUILDING", buildComplete: "COMPLETE",
	buildDeleted: "DELETED", buildFailed: "FAILED", buildCanceled: "CANCELED"}

// reusedBuild is a reused component waiting for its batch's BuildBatch to
// tag it, with what Reuse learnt of the module's tags.
type reusedBuild struct {
	batch      int
	nvr        string
	inBuildTag bool // already tagged into the -build tag
	inTag      bool // already tagged into the module tag
}

var _ runner.Reuser = (*Backend)(nil)

// Reuse takes over the Koji build of a component from an earlier module
// build, as MBS does: nothing is rebuilt, the earlier build (c.NVR) is
// tagged into this module build's build tag and module tag. Reuse checks,
// in one multiCall, that the build exists and is COMPLETE and whether it is
// in the module's tags already (a build resumed after a crash may have
// tagged it); the tagging itself is left to BuildBatch of the component's
// batch, which does it in the same multiCall as the batch's own tagging, so
// that one build-tag repo regeneration covers the whole batch. The
// runner calls Reuse before BuildBatch for each reused component of a batch,
// and BuildBatch even when nothing of the batch is left to build.
//
// c.ReusedLocation (the earlier build's module tag) is not needed: Koji
// NVRs are unique.
func (be *Backend) Reuse(ctx context.Context, b *runner.Build, c *runner.Component) (err error) {
	st := be.state(b)
	defer func() {
		if err != nil && !errors.Is(err, runner.ErrReuseUnavailable) {
			be.endSession(ctx, st) // the runner ends the build
		}
	}()
	be = be.forBuild(st)
	if c.NVR == "" {
		return fmt.Errorf("koji: reuse %s from build %d: the component has no NVR", c.Key, c.ReusedFrom)
	}
	name, ok := nvrName(c.NVR)
	if !ok {
		return fmt.Errorf("koji: reuse %s from build %d: %q is not an NVR", c.Key, c.ReusedFrom, c.NVR)
	}
	res, err := be.multi(ctx, []MultiCallEntry{
		{Method: "getBuild", Args: []any{c.NVR}},
		{Method: "listTagged", Args: []any{st.buildTag, KW{"package": name}}},
		{Method: "listTagged", Args: []any{st.tag, KW{"package": name}}},
	})
	if err != nil {
		return fmt.Errorf("koji: reuse %s from build %d: %w", c.Key, c.ReusedFrom, err)
	}
	var info *struct {
		ID    int    `json:"id"`
		NVR   string `json:"nvr"`
		State int    `json:"state"`
	}
	if err := res[0].Value.Decode(&info); err != nil {
		return fmt.Errorf("koji: reuse %s: getBuild: %w", c.Key, err)
	}
	switch {
	case info == nil:
		return fmt.Errorf("koji: reuse %s from build %d: build %s does not exist in Koji: %w", c.Key, c.ReusedFrom, c.NVR, runner.ErrReuseUnavailable)
	case info.State != buildComplete:
		state := buildStateNames[info.State]
		if state == "" {
			state = fmt.Sprintf("in state %d", info.State)
		}
		return fmt.Errorf("koji: reuse %s from build %d: build %s is %s, not COMPLETE: %w", c.Key, c.ReusedFrom, c.NVR, state, runner.ErrReuseUnavailable)
	}
	r := &reusedBuild{batch: c.Batch, nvr: c.NVR}
	for i, in := range []*bool{&r.inBuildTag, &r.inTag} {
		var rows []buildRow
		if err := res[1+i].Value.Decode(&rows); err != nil {
			return fmt.Errorf("koji: reuse %s: listTagged: %w", c.Key, err)
		}
		for _, row := range rows {
			if row.NVR == c.NVR {
				*in = true
			}
		}
	}
	st.mu.Lock()
	if st.reused == nil {
		st.reused = map[string]*reusedBuild{}
	}
	st.reused[c.Key] = r
	st.mu.Unlock()
	be.log.Info("koji: reusing build", "nsvc", b.NSVC(), "component", c.Key, "nvr", c.NVR,
		"from", c.ReusedFrom, "in_build_tag", r.inBuildTag, "in_module_tag", r.inTag)
	return nil
}

// takeReused returns and forgets the reused components of batch, as jobs
// with an NVR to tag. known is false when a reused component of the batch
// was not seen by Reuse (its tagging state must be looked up).
func (st *buildState) takeReused(b *runner.Build, batch int) (jobs []*job, known bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	known = true
	for _, full := range b.Batches {
		if full.Number != batch {
			continue
		}
		for _, c := range full.Components {
			if c.State != runner.ComponentReused || c.NVR == "" {
				continue
			}
			j := &job{c: c, nvr: c.NVR}
			if r, ok := st.reused[c.Key]; ok && r.nvr == c.NVR {
				j.inBuildTag, j.inTag = r.inBuildTag, r.inTag
			} else {
				known = false
			}
			delete(st.reused, c.Key)
			jobs = append(jobs, j)
		}
	}
	return jobs, known
}

// nvrName returns the name part of name-version-release.
func nvrName(nvr string) (string, bool) {
	i := strings.LastIndexByte(nvr, '-')
	if i <= 0 {
		return "", false
	}
	j := strings.LastIndexByte(nvr[:i], '-')
	if j <= 0 || i-j < 2 || i == len(nvr)-1 {
		return "", false
	}
	return nvr[:j], true
}

// alreadyTagged reports whether err is a tagBuild task that failed because
// the build was in the tag already (a real hub checks this when the task
// runs, so a build tagged by an earlier run fails the task, not the call).
func alreadyTagged(err error) bool {
	var te *TaskError
	return errors.As(err, &te) && te.Method == "tagBuild" && te.State == "FAILED" && strings.Contains(te.Reason, "already tagged")
}
