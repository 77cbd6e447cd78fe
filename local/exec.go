package local

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// command returns a command that runs in its own process group; cancelling
// ctx kills the whole group (rpmbuild's shell scripts and their children,
// or bwrap and everything inside the sandbox), not only the direct child.
func command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	// Pdeathsig: if rida itself dies (SIGKILL), the child dies too instead
	// of building on while the restarted rida redoes the batch.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		// Negative pid: the process group led by the child.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if err == syscall.ESRCH {
			return os.ErrProcessDone
		}
		return err
	}
	// If a killed group leaves a pipe open, stop waiting for it.
	cmd.WaitDelay = 10 * time.Second
	return cmd
}
