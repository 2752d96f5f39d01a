package netns

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Check is one preflight finding.
type Check struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	OK    bool   `json:"ok"`
	// Fatal checks make a run invalid; the others are advice.
	Fatal  bool   `json:"fatal"`
	Advice string `json:"advice,omitempty"`
}

// Preflight inspects the machine for a run that needs conns connections in total,
// with at most perProcess in any one process, in the given mode.
func Preflight(mode Mode, conns, perProcess int) []Check {
	var cs []Check
	add := func(c Check) { cs = append(cs, c) }

	if mode == ModeNetns {
		err := CanNetns()
		add(Check{Name: "network namespaces", Value: errString(err, "available"), OK: err == nil, Fatal: true,
			Advice: "run as root with iproute2 installed, or use loopback mode"})
	}
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
		ok := rl.Max >= uint64(perProcess)+256
		add(Check{Name: "RLIMIT_NOFILE (hard)", Value: strconv.FormatUint(rl.Max, 10), OK: ok, Fatal: true,
			Advice: fmt.Sprintf("one process needs %d descriptors; use more, smaller processes", perProcess+256)})
	}
	if v, err := readInt("/proc/sys/fs/file-max"); err == nil {
		// Every connection costs two descriptors on this machine (client and server end).
		need := int64(2*conns) + 10000
		add(Check{Name: "fs.file-max", Value: strconv.FormatInt(v, 10), OK: v >= need, Fatal: true,
			Advice: fmt.Sprintf("needs at least %d (sysctl -w fs.file-max=...)", need)})
	}
	if v, err := readInt("/proc/sys/net/netfilter/nf_conntrack_max"); err == nil {
		// Bridged traffic passes the root namespace's conntrack when br_netfilter is on.
		count, _ := readInt("/proc/sys/net/netfilter/nf_conntrack_count")
		need := count + int64(conns) + 10000
		add(Check{Name: "nf_conntrack_max", Value: fmt.Sprintf("%d (in use %d)", v, count), OK: v >= need,
			Advice: fmt.Sprintf("a full table drops new connections; needs at least %d", need)})
	}
	if v, err := readInt("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil && mode == ModeNetns {
		add(Check{Name: "bridge-nf-call-iptables", Value: strconv.FormatInt(v, 10), OK: true,
			Advice: advice(v == 1, "bridged test traffic is tracked by conntrack and filtered by iptables (a realism caveat; 0 avoids the cost)")})
	}
	if v, err := readInt("/proc/sys/net/ipv4/neigh/default/gc_thresh3"); err == nil && mode == ModeNetns {
		add(Check{Name: "neigh gc_thresh3", Value: strconv.FormatInt(v, 10), OK: v >= 256,
			Advice: "caps neighbour entries on the bridge"})
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		val := strings.Join(f, "-")
		ok := true
		if mode == ModeLoopback && len(f) == 2 {
			lo, _ := strconv.Atoi(f[0])
			hi, _ := strconv.Atoi(f[1])
			// In loopback mode every client connection from one source address to one
			// gateway address draws on this range.
			ok = hi-lo >= perProcess
		}
		add(Check{Name: "ip_local_port_range (root)", Value: val, OK: ok,
			Advice: advice(mode == ModeNetns, "hosts widen their own range; this is the root namespace's")})
	}
	if v, err := readInt("/proc/sys/net/core/somaxconn"); err == nil {
		add(Check{Name: "somaxconn (root)", Value: strconv.FormatInt(v, 10), OK: v >= 4096 || mode == ModeNetns,
			Advice: "listen backlogs are capped by it; hosts raise their own"})
	}
	return cs
}

// FaultCheck is the preflight check of a run with network faults: it needs netns
// mode, nft and tc (CanFault).
func FaultCheck(mode Mode) Check {
	err := CanFault()
	if err == nil && mode != ModeNetns {
		err = fmt.Errorf("this run is in %s mode", mode)
	}
	return Check{Name: "network faults", Value: errString(err, "available"), OK: err == nil, Fatal: true,
		Advice: "the scenario has network faults (partition, loss, bandwidth, blackhole): they need netns mode, as root, with nftables installed (apt-get install nftables)"}
}

// Failed returns the fatal checks that failed.
func Failed(cs []Check) []Check {
	var out []Check
	for _, c := range cs {
		if c.Fatal && !c.OK {
			out = append(out, c)
		}
	}
	return out
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func errString(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}

func advice(show bool, s string) string {
	if show {
		return s
	}
	return ""
}
