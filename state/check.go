package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Check verifies, in one read transaction, that the file is structurally
// sound (bbolt's own check) and that records and indexes agree:
//   - every unplanned delivery has exactly one plan job, a planned one none;
//   - every plan job is in exactly the index its state says (available, or
//     leased with a worker and an expiry), and its delivery exists;
//   - every queue slot points at requests in the matching state and key, and
//     every pending/running request is in its key's slot; the pending index
//     and the content-key index match the requests;
//   - the component index is exactly the union of the module records;
//   - events are numbered densely from 1, module builds' last transition
//     matches their state;
//   - the module build indexes (by stream, state, request, identity, the
//     trees-kept and references indexes) hold exactly one entry per
//     record with the value the record gives, every build's request
//     exists, the streams' highest versions are at least their builds',
//     the stored build count is right, and no stored build's tree is
//     listed as a deleted build's (checkBuildIndexes);
//   - the upload index names exactly the upload directories of the stored
//     requests' SRPMs, each with its request (checkUploads);
//   - every status outbox entry that is not done is in the due index under
//     its next attempt, and the due index names nothing else.
//
// It returns a *CheckError listing every problem, or nil. Tests call it on
// cleanup; operators can run it through the CLI.
func (s *Store) Check() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			add("bbolt: %v", err)
		}
		if v := schemaVersion(tx); v != SchemaVersion {
			add("meta: schema version %d, want %d", v, SchemaVersion)
		}
		for _, name := range allBuckets() {
			if tx.Bucket(name) == nil {
				add("bucket %s missing", name)
			}
		}
		if len(problems) > 0 {
			return nil
		}
		checkPlanJobs(tx, add)
		checkRequests(tx, add)
		checkIndex(tx, add)
		checkEventsAndBuilds(tx, add)
		checkBuildIndexes(tx, add)
		checkUploads(tx, add)
		if n, want := count(tx, keyDeliveryCount), uint64(tx.Bucket(bucketDeliveries).Stats().KeyN); n != want {
			add("delivery count %d, the bucket holds %d", n, want)
		}
		checkOutbox(tx, add)
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: Check: %w", err)
	}
	if len(problems) > 0 {
		return &CheckError{Problems: problems}
	}
	return nil
}

type addFunc func(format string, args ...any)

func checkPlanJobs(tx *bolt.Tx, add addFunc) {
	jobsFor := map[uint64]int{}
	available := map[uint64]bool{}
	_ = tx.Bucket(bucketPlanAvailable).ForEach(func(k, _ []byte) error {
		available[binary.BigEndian.Uint64(k)] = true
		return nil
	})
	leased := map[string]bool{}
	_ = tx.Bucket(bucketPlanLeased).ForEach(func(k, _ []byte) error {
		leased[string(k)] = true
		return nil
	})
	_ = tx.Bucket(bucketPlanJobs).ForEach(func(k, v []byte) error {
		var j PlanJob
		if err := json.Unmarshal(v, &j); err != nil {
			add("plan job %x: %v", k, err)
			return nil
		}
		if j.ID != binary.BigEndian.Uint64(k) {
			add("plan job key %x holds id %d", k, j.ID)
		}
		jobsFor[j.DeliveryID]++
		if tx.Bucket(bucketDeliveries).Get(u64(j.DeliveryID)) == nil {
			add("plan job %d: delivery %d missing", j.ID, j.DeliveryID)
		}
		switch j.State {
		case PlanJobAvailable:
			if !available[j.ID] {
				add("plan job %d available but not in the available index", j.ID)
			}
			if j.LeasedBy != "" || !j.LeaseExpires.IsZero() {
				add("plan job %d available but carries a lease", j.ID)
			}
			delete(available, j.ID)
		case PlanJobLeased:
			if j.LeasedBy == "" || j.LeaseExpires.IsZero() {
				add("plan job %d leased without a lease holder or expiry", j.ID)
			}
			lk := string(leaseKey(j.LeaseExpires, j.ID))
			if !leased[lk] {
				add("plan job %d leased but not in the lease index", j.ID)
			}
			if available[j.ID] {
				add("plan job %d leased but also in the available index", j.ID)
				delete(available, j.ID)
			}
			delete(leased, lk)
		default:
			add("plan job %d: unknown state %q", j.ID, j.State)
		}
		return nil
	})
	for id := range available {
		add("available index names plan job %d, which is missing or not available", id)
	}
	for k := range leased {
		add("lease index entry %x names no leased job", k)
	}
	_ = tx.Bucket(bucketDeliveries).ForEach(func(k, v []byte) error {
		var d Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			add("delivery %x: %v", k, err)
			return nil
		}
		if d.ID != binary.BigEndian.Uint64(k) {
			add("delivery key %x holds id %d", k, d.ID)
		}
		if want := ContentKey(d.Forge, d.Repo, d.Ref, d.Before, d.After); d.ContentKey != want {
			add("delivery %d: content key %q, want %q", d.ID, d.ContentKey, want)
		}
		n := jobsFor[d.ID]
		switch {
		case d.PlannedAt.IsZero() && n != 1:
			add("delivery %d unplanned with %d plan jobs, want 1", d.ID, n)
		case !d.PlannedAt.IsZero() && n != 0:
			add("delivery %d planned but still has %d plan job(s)", d.ID, n)
		case !d.PlannedAt.IsZero() && d.Disposition == nil:
			add("delivery %d planned without a disposition", d.ID)
		}
		return nil
	})
}

func checkRequests(tx *bolt.Tx, add addFunc) {
	reqs := map[uint64]BuildRequest{}
	_ = tx.Bucket(bucketRequests).ForEach(func(k, v []byte) error {
		var r BuildRequest
		if err := json.Unmarshal(v, &r); err != nil {
			add("request %x: %v", k, err)
			return nil
		}
		if r.ID != binary.BigEndian.Uint64(k) {
			add("request key %x holds id %d", k, r.ID)
		}
		if r.Key != RequestKey(r.Module, r.Stream) {
			add("request %d: key %q does not match %s:%s", r.ID, r.Key, r.Module, r.Stream)
		}
		if r.State == RequestFinished && !r.Result.valid() {
			add("request %d finished without a valid result (%q)", r.ID, r.Result)
		}
		reqs[r.ID] = r
		return nil
	})
	inSlot := map[uint64]RequestState{}
	_ = tx.Bucket(bucketQueue).ForEach(func(k, v []byte) error {
		var e queueEntry
		if err := json.Unmarshal(v, &e); err != nil {
			add("queue %q: %v", k, err)
			return nil
		}
		if e.Running == 0 && e.Pending == 0 {
			add("queue %q: empty slot kept", k)
		}
		for _, p := range []struct {
			id    uint64
			state RequestState
		}{{e.Running, RequestRunning}, {e.Pending, RequestPending}} {
			if p.id == 0 {
				continue
			}
			r, ok := reqs[p.id]
			switch {
			case !ok:
				add("queue %q: %s request %d missing", k, p.state, p.id)
			case r.State != p.state:
				add("queue %q: %s slot holds request %d in state %s", k, p.state, p.id, r.State)
			case r.Key != string(k):
				add("queue %q: %s slot holds request %d of key %q", k, p.state, p.id, r.Key)
			}
			inSlot[p.id] = p.state
		}
		return nil
	})
	pendingIdx := map[uint64]bool{}
	_ = tx.Bucket(bucketQueuePending).ForEach(func(k, v []byte) error {
		id := binary.BigEndian.Uint64(k[1:])
		r, ok := reqs[id]
		switch {
		case !ok:
			add("pending index names missing request %d", id)
		case r.State != RequestPending:
			add("pending index names request %d in state %s", id, r.State)
		case !bytes.Equal(k, pendingKey(r.Kind, id)) || string(v) != r.Key:
			add("pending index entry for request %d has wrong priority or key", id)
		}
		pendingIdx[id] = true
		return nil
	})
	contentIdx := map[string]bool{}
	_ = tx.Bucket(bucketRequestsContent).ForEach(func(k, _ []byte) error {
		contentIdx[string(k)] = true
		return nil
	})
	for id, r := range reqs {
		if r.State != RequestFinished && inSlot[id] != r.State {
			add("request %d is %s but not in its key's slot", id, r.State)
		}
		if r.State == RequestPending && !pendingIdx[id] {
			add("request %d pending but not in the pending index", id)
		}
		for _, ck := range r.ContentKeys {
			k := string(contentIndexKey(ck, id))
			if !contentIdx[k] {
				add("request %d: content key %s not indexed", id, ck)
			}
			delete(contentIdx, k)
		}
	}
	for k := range contentIdx {
		add("content index entry %q names a request that does not list it", k)
	}
}

func checkIndex(tx *bolt.Tx, add addFunc) {
	want := map[string]string{}
	wantDeps := map[string]bool{}
	_ = tx.Bucket(bucketIndexModules).ForEach(func(k, v []byte) error {
		var rec indexRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			add("index module %q: %v", k, err)
			return nil
		}
		module, stream, _ := strings.Cut(string(k), "\x00")
		if len(rec.Components) == 0 && len(rec.BuildRequires) == 0 {
			add("index module %s:%s: empty record kept", module, stream)
		}
		for _, c := range rec.Components {
			want[string(componentIndexKey(c, module, stream))] = rec.ModuleRepo
		}
		for _, r := range rec.BuildRequires {
			wantDeps[r.Name+"\x00"+module+"\x00"+stream] = true
		}
		return nil
	})
	_ = tx.Bucket(bucketIndexDependents).ForEach(func(k, _ []byte) error {
		if !wantDeps[string(k)] {
			add("dependents index entry %q has no module record", k)
		}
		delete(wantDeps, string(k))
		return nil
	})
	for k := range wantDeps {
		add("module record buildrequirement %q missing from the dependents index", k)
	}
	_ = tx.Bucket(bucketIndexComponents).ForEach(func(k, v []byte) error {
		repo, ok := want[string(k)]
		switch {
		case !ok:
			add("component index entry %q has no module record", k)
		case repo != string(v):
			add("component index entry %q: module repo %q, record says %q", k, v, repo)
		}
		delete(want, string(k))
		return nil
	})
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add("module record component %q missing from the component index", k)
	}
}

func checkEventsAndBuilds(tx *bolt.Tx, add addFunc) {
	eb := tx.Bucket(bucketEvents)
	var next uint64 = 1
	if k, _ := eb.Cursor().First(); k != nil {
		// Retention prunes the oldest events: the log starts anywhere
		// but has no gap after that.
		next = binary.BigEndian.Uint64(k)
	}
	_ = eb.ForEach(func(k, v []byte) error {
		seq := binary.BigEndian.Uint64(k)
		if seq != next {
			add("event seq %d, want %d (gap or reorder)", seq, next)
		}
		next = seq + 1
		var ev Event
		if err := json.Unmarshal(v, &ev); err != nil || ev.Seq != seq {
			add("event %d: bad record (err %v, seq field %d)", seq, err, ev.Seq)
		}
		return nil
	})
	if k, _ := eb.Cursor().First(); k != nil && eb.Sequence() != next-1 {
		add("events: bucket sequence %d, last event %d", eb.Sequence(), next-1)
	}
	_ = tx.Bucket(bucketModuleBuilds).ForEach(func(k, v []byte) error {
		var mb ModuleBuild
		if err := json.Unmarshal(v, &mb); err != nil {
			add("module build %x: %v", k, err)
			return nil
		}
		switch {
		case mb.ID != binary.BigEndian.Uint64(k):
			add("module build key %x holds id %d", k, mb.ID)
		case !mb.State.Valid():
			add("module build %d: unknown state %d", mb.ID, mb.State)
		case len(mb.Transitions) == 0 || mb.Transitions[len(mb.Transitions)-1].State != mb.State:
			add("module build %d: state %s does not match its last transition", mb.ID, mb.State)
		}
		return nil
	})
}
