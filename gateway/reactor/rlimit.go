package reactor

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// FileLimit is the process's RLIMIT_NOFILE after RaiseFileLimit.
type FileLimit struct {
	Soft, Hard uint64
	// Raised says whether the hard limit could be raised to the requested value.
	// Raising it needs CAP_SYS_RESOURCE; without it the hard limit is a fixed ceiling
	// and more connections need more processes.
	Raised bool
}

// RaiseFileLimit sets the soft RLIMIT_NOFILE to the hard limit, first trying to raise
// the hard limit to want when want is larger. The Go runtime already raises the soft
// limit at start-up, but restores the original for exec'd children (golang/go#59064),
// so every role sets it explicitly. An EPERM on raising the hard limit is not an error:
// the limit is what it is, and the result says so.
func RaiseFileLimit(want uint64) (FileLimit, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return FileLimit{}, fmt.Errorf("getrlimit(NOFILE): %w", err)
	}
	raised := want <= rl.Max
	if want > rl.Max && rl.Max != unix.RLIM_INFINITY {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: want, Max: want}); err == nil {
			rl = unix.Rlimit{Cur: want, Max: want}
			raised = true
		}
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return FileLimit{}, fmt.Errorf("setrlimit(NOFILE, %d): %w", rl.Cur, err)
		}
	}
	return FileLimit{Soft: rl.Cur, Hard: rl.Max, Raised: raised}, nil
}

// fdReserve is how many descriptors a process keeps for things other than client
// connections: epoll and event fds, listeners, internal links, the admin server, logs.
func fdReserve(soft uint64) uint64 { return max(256, soft/20) }

// ConnLimit returns the connection limit the file limit allows: the soft limit minus
// a reserve for the process's other descriptors.
func (l FileLimit) ConnLimit() int {
	r := fdReserve(l.Soft)
	if l.Soft <= r {
		return 1
	}
	return int(l.Soft - r)
}
