package state

import (
	"context"
	"path/filepath"
	"testing"
)

func TestStore_KojiIntents_SurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rida.db")
	ctx := context.Background()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordKojiIntent(ctx, 7, "foo", "git+https://src/foo#abc"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordKojiTask(ctx, 7, "foo", 42); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordKojiIntent(ctx, 7, "bar", "git+https://src/bar#def"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordKojiIntent(ctx, 8, "foo", "other build"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.KojiIntents(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["foo"].TaskID != 42 || got["bar"].TaskID != 0 || got["bar"].Src != "git+https://src/bar#def" {
		t.Errorf("intents of build 7 = %+v", got)
	}
	// A new intent for a component clears its old task.
	if err := s.RecordKojiIntent(ctx, 7, "foo", "git+https://src/foo#new"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.KojiIntents(ctx, 7)
	if got["foo"].TaskID != 0 || got["foo"].Src != "git+https://src/foo#new" {
		t.Errorf("after a new intent: %+v", got["foo"])
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}
