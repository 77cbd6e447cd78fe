// Package testlog holds what tests of several packages use to read the
// logs of code under test: a log sink that goroutines may share.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that a logger's goroutines and a test may use
// at once. Its zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
