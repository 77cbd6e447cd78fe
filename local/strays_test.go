package local_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rida-build/rida/local"
)

// TestBackend_Prepare_KillsStraysOfAnEarlierProcess: a build directory left
// by a rida that died still has a build running in it (a re-parented shell
// of the interrupted batch); a new backend adopting the build kills it
// before building the batch again.
func TestBackend_Prepare_KillsStraysOfAnEarlierProcess(t *testing.T) {
	work := t.TempDir()
	build := newBuild(300, nil)
	first := mustNew(t, local.Options{WorkDir: work, Sandbox: local.SandboxOff, Logger: discardLogger()})
	if err := first.Prepare(t.Context(), build); err != nil {
		t.Fatal(err)
	}
	stray := exec.Command("sleep", "300")
	stray.Dir = filepath.Join(first.BuildDir(build), "work")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- stray.Wait() }()
	t.Cleanup(func() { _ = stray.Process.Kill() })

	// An unrelated process elsewhere is left alone.
	bystander := exec.Command("sleep", "300")
	bystander.Dir = os.TempDir()
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bystander.Process.Kill(); _ = bystander.Wait() })

	second := mustNew(t, local.Options{WorkDir: work, Sandbox: local.SandboxOff, Logger: discardLogger()})
	if err := second.Prepare(t.Context(), build); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stray build process is still running after Prepare")
	}
	if err := syscall.Kill(bystander.Process.Pid, 0); err != nil {
		t.Errorf("a process outside the build directory is gone: %v", err)
	}
}
