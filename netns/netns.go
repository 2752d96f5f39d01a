// Package netns builds test hosts on one machine: a Linux bridge, one network
// namespace per host joined to it by a veth pair, addresses from the benchmarking
// range 198.18.0.0/15, loopback up, and each host's ephemeral port range widened. It
// runs commands inside hosts, and tears everything down — processes, veths (deleted
// explicitly: they can outlive their namespace for a while), the bridge, the
// namespaces — on every exit path; Clean removes what a killed run left.
//
// In netns mode a Net also applies network faults to its hosts — Partition, Loss,
// Bandwidth, Blackhole — each healed on its own, all gone with the namespaces.
//
// Without root the same topology maps to distinct loopback addresses 127.x.y.z in
// the root namespace ("loopback" mode): smaller, but everything still runs.
//
// Every name carries a per-run prefix, so two runs never collide and leftovers are
// recognisable: namespaces are "fg-<run>-<host>", links "fg<run>b" (bridge) and
// "fg<run>v<n>" (veths; interface names are limited to 15 bytes).
package netns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Mode says how hosts are realised.
type Mode string

// Modes.
const (
	ModeNetns    Mode = "netns"    // a namespace per host on a bridge
	ModeLoopback Mode = "loopback" // distinct 127.x.y.z addresses in the root namespace
)

// Benchmark is the address range test hosts use (RFC 2544): nothing here ever sends
// to any other.
var Benchmark = netip.MustParsePrefix("198.18.0.0/15")

// Spec describes a topology.
type Spec struct {
	// Run is the per-run identifier in every name: 1–6 lower-case letters or digits.
	Run   string
	Hosts []string // host names: lower-case letters, digits and '-', unique
	// Mode: ModeNetns needs root (CAP_NET_ADMIN); empty picks netns when possible.
	Mode   Mode
	Logger *slog.Logger
}

// Host is one test host.
type Host struct {
	Name string
	Addr netip.Addr // where its services listen and from where its clients connect
	ns   string     // namespace name; empty in loopback mode
	veth string     // root-side veth; empty in loopback mode
}

// Net is a built topology.
type Net struct {
	Mode   Mode
	Run    string
	Subnet netip.Prefix // the hosts' subnet (netns mode)
	Bridge string       // bridge name (netns mode)
	// Gateway is the bridge's own address, through which the root namespace (the
	// harness) reaches the hosts (netns mode).
	Gateway netip.Addr
	hosts   map[string]*Host
	order   []string
	log     *slog.Logger

	mu     sync.Mutex
	procs  map[*exec.Cmd]struct{}
	down   bool
	faults int // network faults applied so far: numbers their tables
}

// Host returns a host by name (nil if unknown).
func (n *Net) Host(name string) *Host { return n.hosts[name] }

// Hosts returns the hosts in spec order.
func (n *Net) Hosts() []*Host {
	out := make([]*Host, len(n.order))
	for i, name := range n.order {
		out[i] = n.hosts[name]
	}
	return out
}

func validName(s string, max int, dash bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || dash && r == '-') {
			return false
		}
	}
	return true
}

// CanNetns reports whether namespaces can be used here, and why not.
func CanNetns() error {
	if os.Geteuid() != 0 {
		return errors.New("not root: network namespaces need CAP_NET_ADMIN")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the ip command (iproute2) is not installed")
	}
	return nil
}

// Build creates the topology. On error, whatever was created is torn down.
func Build(ctx context.Context, spec Spec) (*Net, error) {
	if !validName(spec.Run, 6, false) {
		return nil, fmt.Errorf("netns: run id %q: want 1–6 lower-case letters or digits", spec.Run)
	}
	if len(spec.Hosts) == 0 || len(spec.Hosts) > 250 {
		return nil, fmt.Errorf("netns: %d hosts: want 1–250", len(spec.Hosts))
	}
	log := spec.Logger
	if log == nil {
		log = slog.Default()
	}
	n := &Net{Run: spec.Run, hosts: map[string]*Host{}, log: log.With("run", spec.Run), procs: map[*exec.Cmd]struct{}{}}
	for _, h := range spec.Hosts {
		if !validName(h, 20, true) {
			return nil, fmt.Errorf("netns: host name %q: want lower-case letters, digits and '-', at most 20", h)
		}
		if n.hosts[h] != nil {
			return nil, fmt.Errorf("netns: host %q twice", h)
		}
		n.hosts[h] = &Host{Name: h}
		n.order = append(n.order, h)
	}
	switch spec.Mode {
	case "":
		spec.Mode = ModeNetns
		if err := CanNetns(); err != nil {
			n.log.Info("network namespaces unavailable; using loopback addresses", "why", err)
			spec.Mode = ModeLoopback
		}
	case ModeNetns:
		if err := CanNetns(); err != nil {
			return nil, fmt.Errorf("netns: %w", err)
		}
	case ModeLoopback:
	default:
		return nil, fmt.Errorf("netns: unknown mode %q", spec.Mode)
	}
	n.Mode = spec.Mode
	if n.Mode == ModeLoopback {
		n.assignLoopback()
		return n, nil
	}
	if err := n.build(ctx); err != nil {
		n.Teardown()
		return nil, err
	}
	return n, nil
}

// assignLoopback gives each host 127.<a>.<b>.1 derived from the run id, distinct per
// host; the whole 127/8 is local, so nothing needs configuring.
func (n *Net) assignLoopback() {
	seed := runHash(n.Run)
	for i, name := range n.order {
		n.hosts[name].Addr = netip.AddrFrom4([4]byte{127, byte(1 + seed%200), byte(1 + i), 1})
	}
}

// runHash is a small stable hash of the run id, used to pick address blocks.
func runHash(run string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(run); i++ {
		h = (h ^ uint32(run[i])) * 16777619
	}
	return h
}

func (n *Net) build(ctx context.Context) error {
	subnet, err := pickSubnet(ctx, n.Run)
	if err != nil {
		return err
	}
	n.Subnet = subnet
	base := subnet.Addr().As4()
	n.Gateway = netip.AddrFrom4([4]byte{base[0], base[1], base[2], 1})
	n.Bridge = "fg" + n.Run + "b"
	steps := [][]string{
		{"link", "add", n.Bridge, "type", "bridge"},
		{"addr", "add", n.Gateway.String() + "/24", "dev", n.Bridge},
		{"link", "set", n.Bridge, "up"},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return err
		}
	}
	for i, name := range n.order {
		h := n.hosts[name]
		h.ns = "fg-" + n.Run + "-" + name
		h.veth = fmt.Sprintf("fg%sv%d", n.Run, i)
		h.Addr = netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(10 + i)})
		peer := h.veth + "p"
		steps := [][]string{
			{"netns", "add", h.ns},
			{"link", "add", h.veth, "type", "veth", "peer", "name", peer},
			{"link", "set", peer, "netns", h.ns},
			{"link", "set", h.veth, "master", n.Bridge},
			{"link", "set", h.veth, "up"},
			{"-n", h.ns, "link", "set", "lo", "up"},
			{"-n", h.ns, "link", "set", peer, "name", "eth0"},
			{"-n", h.ns, "addr", "add", h.Addr.String() + "/24", "dev", "eth0"},
			{"-n", h.ns, "link", "set", "eth0", "up"},
			{"-n", h.ns, "route", "add", "default", "via", n.Gateway.String()},
		}
		for _, s := range steps {
			if err := ip(ctx, s...); err != nil {
				return fmt.Errorf("host %s: %w", name, err)
			}
		}
		if err := n.tuneHost(ctx, h); err != nil {
			return fmt.Errorf("host %s: %w", name, err)
		}
	}
	n.log.Info("test hosts up", "mode", n.Mode, "hosts", len(n.order), "subnet", n.Subnet, "bridge", n.Bridge)
	return nil
}

// hostSysctls are set in every host namespace: many connections per host need a wide
// ephemeral port range and deep accept queues (a connect storm otherwise overflows
// the backlog and SYN retries at 1 s and 3 s make connect times bimodal).
var hostSysctls = [][2]string{
	{"net.ipv4.ip_local_port_range", "1024 65535"},
	{"net.core.somaxconn", "65535"},
	{"net.ipv4.tcp_max_syn_backlog", "65535"},
	{"net.ipv4.tcp_tw_reuse", "1"},
}

func (n *Net) tuneHost(ctx context.Context, h *Host) error {
	for _, kv := range hostSysctls {
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", h.ns, "sysctl", "-q", "-w", kv[0]+"="+kv[1]).CombinedOutput()
		if err != nil {
			return fmt.Errorf("sysctl %s in %s: %v: %s", kv[0], h.ns, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// pickSubnet chooses a free /24 in 198.18.0.0/15 for the run, derived from its id
// and probed against the addresses already configured.
func pickSubnet(ctx context.Context, run string) (netip.Prefix, error) {
	out, err := exec.CommandContext(ctx, "ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("ip addr show: %w", err)
	}
	used := string(out)
	h := runHash(run)
	for i := uint32(0); i < 512; i++ {
		k := (h + i) % 512
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, byte(18 + k/256), byte(k % 256), 0}), 24)
		probe := fmt.Sprintf(" %d.%d.%d.", 198, 18+k/256, k%256)
		if !strings.Contains(used, probe) {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("netns: no free /24 left in 198.18.0.0/15")
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Command prepares name with args to run inside host h. The process gets its own
// process group and SIGKILL if the harness dies (Pdeathsig), and Teardown kills it.
// Start it with Net.Start.
func (n *Net) Command(ctx context.Context, h *Host, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if n.Mode == ModeNetns {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, name, args...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Start starts cmd (from Command) and tracks it for Teardown.
func (n *Net) Start(cmd *exec.Cmd) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return errors.New("netns: torn down")
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	n.procs[cmd] = struct{}{}
	return nil
}

// Forget stops tracking cmd (after the caller has waited for it).
func (n *Net) Forget(cmd *exec.Cmd) {
	n.mu.Lock()
	delete(n.procs, cmd)
	n.mu.Unlock()
}

// Teardown kills every process started in the hosts and deletes the namespaces,
// veths and bridge. It is idempotent and keeps going past errors, which it joins.
func (n *Net) Teardown() error {
	n.mu.Lock()
	n.down = true
	procs := n.procs
	n.procs = map[*exec.Cmd]struct{}{}
	n.mu.Unlock()
	for cmd := range procs {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	if n.Mode != ModeNetns {
		return nil
	}
	var errs []error
	ctx := context.Background()
	for _, name := range n.order {
		h := n.hosts[name]
		if h.ns == "" {
			continue
		}
		errs = append(errs, killNamespace(ctx, h.ns))
		if linkExists(ctx, h.veth) {
			errs = append(errs, ip(ctx, "link", "del", h.veth))
		}
		if nsExists(ctx, h.ns) {
			errs = append(errs, ip(ctx, "netns", "del", h.ns))
		}
	}
	if n.Bridge != "" && linkExists(ctx, n.Bridge) {
		errs = append(errs, ip(ctx, "link", "del", n.Bridge))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	n.log.Info("test hosts torn down")
	return nil
}
