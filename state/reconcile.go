package state

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Reconciled says what ReconcileRunning did to one running request.
type Reconciled struct {
	Key       string
	RequestID uint64
	// Action is "requeued" (no build record: a file written by a rida
	// that recorded the build after StartNext) or "finished" (every build
	// of it had ended: a file written by a rida that finished the request
	// after the build's end).
	Action string
	Result RequestResult
}

// ReconcileRunning repairs, at start-up, what a crash between two
// transactions could leave in a file written by an earlier rida (StartNext
// now makes the build record, and FinishBuild finishes the request, in the
// same transaction): a running request with no module build goes back to
// pending (merged into the stream's pending request, if any), and a running
// request whose builds all ended is finished with the worst of their
// outcomes (errored, failed, canceled, succeeded). Without it the
// stream would never build again, since StartNext skips a stream with a
// running request. A running request with an unfinished build is left to
// the runner's recovery. One transaction; it reads the queue's entries
// (start-up only, never on a hot path).
func (s *Store) ReconcileRunning(ctx context.Context) ([]Reconciled, error) {
	var out []Reconciled
	err := s.update(ctx, "ReconcileRunning", func(tx *bolt.Tx) error {
		type slot struct {
			key string
			e   queueEntry
		}
		var running []slot
		err := tx.Bucket(bucketQueue).ForEach(func(k, v []byte) error {
			var e queueEntry
			if _, err := getJSON(tx.Bucket(bucketQueue), k, &e); err != nil {
				return err
			}
			if e.Running != 0 {
				running = append(running, slot{string(k), e})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, sl := range running {
			r, err := getRequest(tx, sl.e.Running)
			if err != nil {
				return err
			}
			builds, err := requestBuilds(tx, r)
			if err != nil {
				return err
			}
			if len(builds) == 0 {
				if _, err := s.requeueRunning(tx, sl.key); err != nil {
					return err
				}
				out = append(out, Reconciled{Key: sl.key, RequestID: r.ID, Action: "requeued"})
				continue
			}
			result, reason, open := requestOutcome(builds)
			if open {
				continue
			}
			if _, err := s.finishRequest(tx, sl.key, result, reason); err != nil {
				return err
			}
			out = append(out, Reconciled{Key: sl.key, RequestID: r.ID, Action: "finished", Result: result})
		}
		return nil
	})
	return out, wrap("ReconcileRunning", err)
}

// requestOutcome is the result of a request whose builds are builds: the
// worst of theirs, or open when one has not ended.
func requestOutcome(builds []ModuleBuild) (result RequestResult, reason string, open bool) {
	rank := map[RequestResult]int{ResultSucceeded: 0, ResultCanceled: 1, ResultFailed: 2, ResultErrored: 3}
	kind := map[FailureKind]RequestResult{FailureBuild: ResultFailed, FailureInfra: ResultErrored, FailureCanceled: ResultCanceled}
	result = ResultSucceeded
	for _, b := range builds {
		if !b.State.Terminal() {
			return "", "", true
		}
		r := ResultSucceeded
		if b.State == ModuleStateFailed {
			r = ResultErrored
			if k, ok := kind[b.FailureKind]; ok {
				r = k
			}
		}
		if reason == "" || rank[r] > rank[result] {
			result, reason = r, fmt.Sprintf("build %d: %s", b.ID, b.StateReason)
		}
	}
	return result, reason, false
}

// FinishBuild stores mb (a final state, or done) and, when every build of
// its request has then ended and the request is the stream's running one,
// finishes the request with the worst of their outcomes, in one
// transaction: no crash can leave a stream with an ended build and a
// request still running. It returns the build as stored and the request
// when it was finished (nil otherwise).
func (s *Store) FinishBuild(ctx context.Context, mb ModuleBuild) (*ModuleBuild, *BuildRequest, error) {
	var (
		stored *ModuleBuild
		req    *BuildRequest
	)
	err := s.update(ctx, "FinishBuild", func(tx *bolt.Tx) error {
		var err error
		if stored, err = s.putModuleBuild(tx, mb); err != nil {
			return err
		}
		if stored.RequestID == 0 || !stored.State.Terminal() {
			return nil
		}
		key := RequestKey(stored.Name, stored.Stream)
		entry, err := getQueueEntry(tx, key)
		if err != nil || entry.Running != stored.RequestID {
			return err // requeued (restart) or already finished
		}
		r, err := getRequest(tx, stored.RequestID)
		if err != nil {
			return err
		}
		builds, err := requestBuilds(tx, r)
		if err != nil {
			return err
		}
		result, reason, open := requestOutcome(builds)
		if open {
			return nil
		}
		req, err = s.finishRequest(tx, key, result, reason)
		return err
	})
	return stored, req, wrap("FinishBuild", err)
}
