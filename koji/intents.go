package koji

import (
	"context"
	"maps"
	"sync"
)

// Intent is what the backend recorded about one component of a build
// before and after submitting it to Koji.
type Intent struct {
	// Src is the source handed to the hub's build call: an SCM URL
	// "git+https://...#<commit>" or an uploaded "cli-build/.../x.src.rpm".
	Src string
	// TaskID is the Koji build task, 0 if the submission was not confirmed
	// (the process may have died between the hub's answer and the record).
	TaskID int
}

// IntentStore makes submissions crash-safe: the backend records an intent
// before it calls build and the task id after, and on a restart re-attaches
// to recorded (or rediscovered) tasks instead of submitting again.
//
// Implementations must make each write durable before returning and be
// safe for concurrent use.
type IntentStore interface {
	// RecordIntent records that componentKey of build buildID is about to
	// be submitted with src. It overwrites an earlier intent for the key
	// and clears its task id.
	RecordIntent(ctx context.Context, buildID int64, componentKey, src string) error
	// RecordTask records the Koji task of componentKey.
	RecordTask(ctx context.Context, buildID int64, componentKey string, taskID int) error
	// Tasks returns the intents of build buildID by component key (an
	// empty map when there are none).
	Tasks(ctx context.Context, buildID int64) (map[string]Intent, error)
}

// MemoryIntentStore is an IntentStore in memory, for tests and for runs
// that need no crash safety. The zero value is ready to use.
type MemoryIntentStore struct {
	mu sync.Mutex
	m  map[int64]map[string]Intent
}

var _ IntentStore = (*MemoryIntentStore)(nil)

// RecordIntent implements IntentStore.
func (s *MemoryIntentStore) RecordIntent(_ context.Context, buildID int64, key, src string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[int64]map[string]Intent{}
	}
	if s.m[buildID] == nil {
		s.m[buildID] = map[string]Intent{}
	}
	s.m[buildID][key] = Intent{Src: src}
	return nil
}

// RecordTask implements IntentStore.
func (s *MemoryIntentStore) RecordTask(_ context.Context, buildID int64, key string, taskID int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[int64]map[string]Intent{}
	}
	if s.m[buildID] == nil {
		s.m[buildID] = map[string]Intent{}
	}
	in := s.m[buildID][key]
	in.TaskID = taskID
	s.m[buildID][key] = in
	return nil
}

// Tasks implements IntentStore.
func (s *MemoryIntentStore) Tasks(_ context.Context, buildID int64) (map[string]Intent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := maps.Clone(s.m[buildID])
	if out == nil {
		out = map[string]Intent{}
	}
	return out, nil
}
