package sim

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/poll"
	"github.com/floodgate/floodgate/netns"
	"github.com/floodgate/floodgate/runfolder"
	"github.com/floodgate/floodgate/scenario"
)

// settle bounds how long a test waits for a state the runner reaches by itself
// (a goroutine recording an event, a signal taking effect).
const settle = 10 * time.Second

// fakeClock is a clock that moves only when the test advances it. Timers whose
// time has come fire inside Advance, in time order; a timer armed for a time
// already past fires at once.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

// fakeTimer is one armed After or AfterFunc.
type fakeTimer struct {
	at time.Time
	ch chan time.Time // After's
	fn func()         // AfterFunc's
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.arm(fakeTimer{ch: ch}, d)
	return ch
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) { c.arm(fakeTimer{fn: f}, d) }

func (c *fakeClock) arm(t fakeTimer, d time.Duration) {
	c.mu.Lock()
	t.at = c.now.Add(d)
	if d > 0 {
		c.timers = append(c.timers, t)
		c.mu.Unlock()
		return
	}
	now := c.now
	c.mu.Unlock()
	t.fire(now)
}

func (t fakeTimer) fire(now time.Time) {
	if t.ch != nil {
		t.ch <- now
	} else {
		t.fn()
	}
}

// AdvanceTo moves the clock to to and fires the timers due by then, in time
// order (simultaneous ones in the order they were armed).
func (c *fakeClock) AdvanceTo(to time.Time) {
	c.mu.Lock()
	if to.Before(c.now) {
		c.mu.Unlock()
		panic(fmt.Sprintf("fake clock moved back from %v to %v", c.now, to))
	}
	c.now = to
	var due, rest []fakeTimer
	for _, t := range c.timers {
		if t.at.After(to) {
			rest = append(rest, t)
		} else {
			due = append(due, t)
		}
	}
	c.timers = rest
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b fakeTimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.fire(to)
	}
}

// pending is how many timers are armed and not yet due.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// waitPending waits until n timers are armed: the runner's goroutines have
// armed theirs, so advancing the clock reaches them.
func (c *fakeClock) waitPending(t *testing.T, n int) {
	t.Helper()
	poll.Until(t, settle, fmt.Sprintf("%d timers armed", n), func() (bool, string) {
		got := c.pending()
		return got == n, fmt.Sprintf("%d armed", got)
	})
}

// mustParse parses a scenario (its file named after it) or fails the test.
func mustParse(t *testing.T, src string) *scenario.Scenario {
	t.Helper()
	first, _, _ := strings.Cut(src, "\n")
	name := strings.TrimSpace(strings.TrimPrefix(first, "name:"))
	s, err := scenario.Parse(name+".yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestRunner is a runner for scenario src with its hosts built in loopback
// mode and its run folder in a temporary directory, reading the time from clk.
// At the end of the test it tears down as a run does: every process it started
// is stopped.
func newTestRunner(t *testing.T, src string, clk clock) *runner {
	t.Helper()
	s := mustParse(t, src)
	r := newRunner(Options{Scenario: s, Dir: t.TempDir(), Binary: "/nonexistent", Logger: slog.New(slog.DiscardHandler)}, clk)
	for _, d := range []string{runfolder.DirLogs, runfolder.DirHlog} {
		if err := os.MkdirAll(filepath.Join(r.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.keyset = newRunKeys()
	r.hosts = hostsFor(s)
	n, err := netns.Build(context.Background(), netns.Spec{Run: runID(), Hosts: r.hosts, Mode: netns.ModeLoopback,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r.net = n
	t.Cleanup(r.teardown)
	return r
}

// startSleeper starts a process that does nothing for a minute under name and
// role on the core host, as the live process of that name.
func startSleeper(t *testing.T, r *runner, name, role string) *proc {
	t.Helper()
	return startShell(t, r, name, role, "exec sleep 60")
}

// startShell starts sh -c script under name and role on the core host, as the
// live process of that name.
func startShell(t *testing.T, r *runner, name, role, script string) *proc {
	t.Helper()
	p, err := r.start(context.Background(), spec{name: name, role: role, host: r.net.Host("core"), bin: "sh", args: []string{"-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	r.setLive(p)
	return p
}

// procState is a process's state letter from /proc/<pid>/stat (T: stopped), or
// "gone".
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "gone"
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) == 0 {
		return "gone"
	}
	return f[0]
}

// faultEvents is a copy of the run's fault events.
func (r *runner) faultEvents() []runfolder.FaultEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.info.Faults)
}

// waitFaults waits until the run has recorded n fault events.
func waitFaults(t *testing.T, r *runner, n int) []runfolder.FaultEvent {
	t.Helper()
	poll.Until(t, settle, fmt.Sprintf("%d faults recorded", n), func() (bool, string) {
		got := r.faultEvents()
		return len(got) == n, fmt.Sprintf("%+v", got)
	})
	return r.faultEvents()
}
