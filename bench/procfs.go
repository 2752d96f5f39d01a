package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on every
// Linux architecture Go supports (the kernel's internal HZ does not show through).
const clockTicks = 100

// parseVmRSS returns VmRSS, in bytes, from the text of /proc/PID/status.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want \"<n> kB\"", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS line in /proc/PID/status")
}

// procCPU is CPU time of one or more processes, all threads.
type procCPU struct {
	User   time.Duration // utime: the process's own code
	System time.Duration // stime: the kernel on its behalf (syscalls, the TCP stack)
}

// Total returns user plus system time.
func (c procCPU) Total() time.Duration { return c.User + c.System }

func (c procCPU) add(o procCPU) procCPU { return procCPU{c.User + o.User, c.System + o.System} }
func (c procCPU) sub(o procCPU) procCPU { return procCPU{c.User - o.User, c.System - o.System} }

// ticks converts USER_HZ ticks to a duration.
func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTicks }

// parseCPU returns utime and stime, all threads, from the text of /proc/PID/stat. The
// second field, the command name in parentheses, may itself hold spaces and
// parentheses, so the fields are counted from the last ')'.
func parseCPU(stat []byte) (procCPU, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return procCPU{}, fmt.Errorf("/proc/PID/stat %q: no command name", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return procCPU{}, fmt.Errorf("/proc/PID/stat: %d fields after the command name, want at least 13", len(f))
	}
	var t [2]uint64
	for j, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return procCPU{}, fmt.Errorf("/proc/PID/stat utime/stime: %w", err)
		}
		t[j] = n
	}
	return procCPU{User: ticks(t[0]), System: ticks(t[1])}, nil
}

// machineCPU is the machine's CPU time, all CPUs, from /proc/stat.
type machineCPU struct {
	Busy  time.Duration // user, nice, system, irq, softirq
	Steal time.Duration // taken by the hypervisor
}

// parseMachineCPU reads the aggregate "cpu" line of /proc/stat: user nice system idle
// iowait irq softirq steal ... in USER_HZ ticks.
func parseMachineCPU(stat []byte) (machineCPU, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return machineCPU{}, fmt.Errorf("/proc/stat: first line %q is not the cpu total", line)
	}
	var t [8]uint64
	for i := range t {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return machineCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
		t[i] = n
	}
	return machineCPU{Busy: ticks(t[0] + t[1] + t[2] + t[5] + t[6]), Steal: ticks(t[7])}, nil
}

// readMachineCPU reads the machine's CPU time.
func readMachineCPU() (machineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, fmt.Errorf("reading machine CPU time: %w", err)
	}
	return parseMachineCPU(b)
}

// busyCores measures how many CPUs the machine keeps busy over d.
func busyCores(ctx context.Context, d time.Duration) (float64, error) {
	a, err := readMachineCPU()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := sleep(ctx, d); err != nil {
		return 0, err
	}
	b, err := readMachineCPU()
	if err != nil {
		return 0, err
	}
	return (b.Busy - a.Busy).Seconds() / time.Since(t0).Seconds(), nil
}

// rss reads a process's resident set size in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading RSS: %w", err)
	}
	return parseVmRSS(b)
}

// cpuTime reads a process's CPU time.
func cpuTime(pid int) (procCPU, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procCPU{}, fmt.Errorf("reading CPU time: %w", err)
	}
	return parseCPU(b)
}

// cpuSnapshot is the CPU time of the machine, of the servers and of the clients, at one
// instant; the difference of two is what each spent in between.
type cpuSnapshot struct {
	Machine machineCPU
	Server  procCPU // summed over the server processes
	Clients procCPU // summed over the client processes
}

// takeCPU reads a cpuSnapshot.
func takeCPU(servers, clients []int) (cpuSnapshot, error) {
	var s cpuSnapshot
	var err error
	if s.Machine, err = readMachineCPU(); err != nil {
		return s, err
	}
	for _, group := range []struct {
		pids []int
		sum  *procCPU
	}{{servers, &s.Server}, {clients, &s.Clients}} {
		for _, pid := range group.pids {
			c, err := cpuTime(pid)
			if err != nil {
				return s, err
			}
			*group.sum = group.sum.add(c)
		}
	}
	return s, nil
}

// since returns what was spent from a to s.
func (s cpuSnapshot) since(a cpuSnapshot) cpuSnapshot {
	return cpuSnapshot{
		Machine: machineCPU{Busy: s.Machine.Busy - a.Machine.Busy, Steal: s.Machine.Steal - a.Machine.Steal},
		Server:  s.Server.sub(a.Server),
		Clients: s.Clients.sub(a.Clients),
	}
}

// otherCores is the CPU the machine spent on anything but the servers and clients,
// in CPUs over a window of the given length.
func (s cpuSnapshot) otherCores(seconds float64) float64 {
	return max(s.Machine.Busy-s.Server.Total()-s.Clients.Total(), 0).Seconds() / seconds
}

// openFDs counts a process's open file descriptors.
func openFDs(pid int) (int, error) {
	d, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("counting fds: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("counting fds: %w", err)
	}
	return len(names), nil
}

// settleRule says when a series of RSS samples has stopped changing: over the last
// Window samples, taken Every apart, max−min is within Tolerance of the latest value
// or within Floor bytes, whichever is larger. Timeout bounds the wait.
type settleRule struct {
	Every     time.Duration
	Window    int
	Tolerance float64
	Floor     int64
	Timeout   time.Duration
}

// defaultSettle: a second without moving by more than 0.5% (or 64 KiB), at most 20 s.
func defaultSettle() settleRule {
	return settleRule{Every: 200 * time.Millisecond, Window: 6, Tolerance: 0.005, Floor: 64 << 10, Timeout: 20 * time.Second}
}

// settled reports whether the last Window samples satisfy the rule.
func (r settleRule) settled(samples []int64) bool {
	if len(samples) < r.Window {
		return false
	}
	last := samples[len(samples)-r.Window:]
	lo, hi := last[0], last[0]
	for _, v := range last {
		lo, hi = min(lo, v), max(hi, v)
	}
	return hi-lo <= max(r.Floor, int64(r.Tolerance*float64(last[len(last)-1])))
}

// settleRSS samples the RSS of every pid until each has settled, or the timeout; it
// returns each one's last sample and whether all settled.
func settleRSS(ctx context.Context, pids []int, rule settleRule) ([]int64, bool, error) {
	series := make([][]int64, len(pids))
	tick := time.NewTicker(rule.Every)
	defer tick.Stop()
	deadline := time.NewTimer(rule.Timeout)
	defer deadline.Stop()
	for {
		all := true
		last := make([]int64, len(pids))
		for i, pid := range pids {
			v, err := rss(pid)
			if err != nil {
				return nil, false, err
			}
			series[i] = append(series[i], v)
			last[i] = v
			all = all && rule.settled(series[i])
		}
		if all {
			return last, true, nil
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return last, false, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// httpGet fetches http://addr/path with a bounded wait.
func httpGet(ctx context.Context, addr, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Close = true // servers come and go: keep no idle connection to them
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s%s: %w", addr, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s%s: %w", addr, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s%s: %s", addr, path, resp.Status)
	}
	return body, nil
}

// memStats fetches a server's Go memory figures (taken after a forced GC).
func memStats(ctx context.Context, adminAddr string) (admin.MemStats, error) {
	var m admin.MemStats
	body, err := httpGet(ctx, adminAddr, "/debug/memstats")
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("memstats from %s: %w", adminAddr, err)
	}
	return m, nil
}

// parseMetrics sums, per metric name, the samples of a Prometheus text exposition
// whose names are in want, across labels. A sample line is `name[{labels}] value
// [timestamp]`.
func parseMetrics(text []byte, want ...string) map[string]float64 {
	out := make(map[string]float64, len(want))
	for line := range strings.Lines(string(text)) {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 && i < len(name) {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, rest, ok = line[:i], line[j+1:], true
		}
		if !ok || !slices.Contains(want, name) {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[name] += v
		}
	}
	return out
}
