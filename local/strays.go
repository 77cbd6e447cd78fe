package local

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// killStrays kills processes whose working directory lies inside dir and
// returns how many it signalled. A build resumed after rida was killed may
// find the interrupted batch's builds still running there: rpmbuild itself
// dies with rida (Pdeathsig), but its shell children are re-parented and
// would go on writing into the work tree the resumed batch rebuilds. Under
// bubblewrap (--die-with-parent) there are none. Linux only: elsewhere
// there is no /proc and nothing is done.
func killStrays(dir string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || (cwd != dir && !strings.HasPrefix(cwd, dir+string(filepath.Separator))) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}
