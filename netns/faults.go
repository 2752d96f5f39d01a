package netns

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strings"
	"sync"
)

// Network faults (netns mode only). Every rule lives inside the hosts' own
// namespaces, never in the root namespace:
//
//   - Drops (partition, loss, blackhole) are nftables rules in one "netdev" table
//     per fault and host, named "fg_<run>_<n>", whose two base chains hook the
//     ingress and egress of the host's eth0. A netdev drop happens below the IP
//     stack, so it is silent to both ends, like a packet lost on the wire: the
//     sender gets no EPERM (an inet output-hook drop would return one to local
//     senders), and nobody sends a RST or an ICMP error. Each fault has its own
//     table, so overlapping faults heal independently.
//   - Shaping (bandwidth) is a tbf qdisc at the root of the host's eth0 (traffic
//     from the host) and of its root-side veth (traffic to the host).
//
// Nothing survives the topology: deleting a namespace deletes its nftables tables
// and qdiscs with it, and deleting the root-side veth deletes its qdisc, so
// Teardown and Clean (which delete both) remove every fault, healed or not.

// ErrNeedsNetns is returned when a network fault is asked of a loopback-mode
// topology: loopback hosts share the root namespace and have no link to fault.
var ErrNeedsNetns = errors.New("network faults need netns mode (run as root): loopback hosts share one namespace and have no link of their own")

// CanFault reports whether network faults can be applied here, and why not: netns
// mode's needs plus the nft (nftables) and tc (iproute2) commands.
func CanFault() error {
	if err := CanNetns(); err != nil {
		return err
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return errors.New("the nft command is not installed (apt-get install nftables)")
	}
	if _, err := exec.LookPath("tc"); err != nil {
		return errors.New("the tc command (iproute2) is not installed")
	}
	return nil
}

// LossResolution is the granularity of Loss: rates are whole multiples of 0.01%
// (numgen random mod 10000).
const LossResolution = 1e-4

// Bandwidth bounds: a tbf below 1 KB/s cannot pass a full-size packet within its
// queue bound; above 10 GB/s it shapes nothing a veth carries here.
const (
	MinBandwidth = 1_000
	MaxBandwidth = 10_000_000_000
)

// Shaping parameters of Bandwidth's tbf: the bucket holds 10 ms of the rate (at
// least 4 KiB, so a few full-size packets pass back to back), and a packet that
// would wait more than 50 ms in the queue is dropped, like at a real bottleneck
// with a short buffer; TCP reads the drops as congestion and settles at the rate.
const (
	tbfBurstTime = 10 // milliseconds of the rate the bucket holds
	tbfMinBurst  = 4 << 10
	tbfLatencyMS = 50
)

// TBFBurst is the bucket size Bandwidth gives a rate of bytesPerSec.
func TBFBurst(bytesPerSec int64) int64 {
	return max(bytesPerSec*tbfBurstTime/1000, tbfMinBurst)
}

// Fault is one network fault in force. Heal removes it; a Fault nobody heals
// goes with the namespaces at Teardown.
type Fault struct {
	// Kind is partition, loss, bandwidth or blackhole.
	Kind string
	// Hosts are the hosts whose links carry the fault's rules.
	Hosts []string

	n      *Net
	table  string   // the nftables table in each host (drops)
	shaped []string // "ns dev" pairs and root-side devs with a tbf (bandwidth)

	once sync.Once
	err  error
}

// Heal removes the fault's rules from every host. It is idempotent and safe after
// Teardown (rules already gone with their namespace are not an error).
func (f *Fault) Heal() error {
	f.once.Do(func() { f.err = f.n.remove(context.Background(), f) })
	return f.err
}

// Partition drops the IPv4 traffic between the hosts of side a and those of side
// b. Both ways: a's packets to b and b's to a are dropped (at a's hosts' ingress
// and egress). One way: only a's packets to b are dropped (at a's egress); b's
// reach a, so a TCP connect either way fails but UDP from b arrives. The sides must
// be disjoint. Traffic with other hosts and with the harness passes.
func (n *Net) Partition(ctx context.Context, a, b []string, oneWay bool) (*Fault, error) {
	as, err := n.faultHosts(a)
	if err != nil {
		return nil, err
	}
	bs, err := n.faultHosts(b)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, h := range bs {
		for _, x := range as {
			if x == h {
				return nil, fmt.Errorf("netns: partition: %s is on both sides", h.Name)
			}
		}
		addrs = append(addrs, h.Addr.String())
	}
	set := "{ " + strings.Join(addrs, ", ") + " }"
	in := "ip saddr " + set + " drop;"
	if oneWay {
		in = ""
	}
	return n.applyDrops(ctx, "partition", as, in, "ip daddr "+set+" drop;")
}

// Loss drops a share rate (0 < rate ≤ 1, in steps of LossResolution) of the
// packets on host's link, each way independently: a packet sent from host and
// answered is lost with probability 1-(1-rate)².
func (n *Net) Loss(ctx context.Context, host string, rate float64) (*Fault, error) {
	k := int(math.Round(rate / LossResolution))
	if k < 1 || k > 10000 {
		return nil, fmt.Errorf("netns: loss rate %v: want %v to 1", rate, LossResolution)
	}
	hs, err := n.faultHosts([]string{host})
	if err != nil {
		return nil, err
	}
	rule := fmt.Sprintf("numgen random mod 10000 < %d drop;", k)
	return n.applyDrops(ctx, "loss", hs, rule, rule)
}

// Blackhole makes host vanish from the network: every packet in and out of its
// eth0 (ARP included) is dropped silently, so peers see neither FIN nor RST nor
// ICMP — only silence, as from a dead machine. Its processes keep running.
func (n *Net) Blackhole(ctx context.Context, host string) (*Fault, error) {
	hs, err := n.faultHosts([]string{host})
	if err != nil {
		return nil, err
	}
	return n.applyDrops(ctx, "blackhole", hs, "drop;", "drop;")
}

// Bandwidth limits host's link to bytesPerSec each way with a tbf qdisc (bucket
// TBFBurst, queue bound 50 ms): on eth0 inside the host for what it sends, on
// the root-side veth for what it receives. A host has at most one bandwidth
// fault at a time.
func (n *Net) Bandwidth(ctx context.Context, host string, bytesPerSec int64) (*Fault, error) {
	if bytesPerSec < MinBandwidth || bytesPerSec > MaxBandwidth {
		return nil, fmt.Errorf("netns: bandwidth %d B/s: want %d to %d", bytesPerSec, int64(MinBandwidth), int64(MaxBandwidth))
	}
	hs, err := n.faultHosts([]string{host})
	if err != nil {
		return nil, err
	}
	h := hs[0]
	f := &Fault{Kind: "bandwidth", Hosts: []string{h.Name}, n: n}
	tbf := []string{"root", "tbf", "rate", fmt.Sprintf("%dbit", bytesPerSec*8),
		"burst", fmt.Sprint(TBFBurst(bytesPerSec)), "latency", fmt.Sprintf("%dms", tbfLatencyMS)}
	for _, dev := range []struct{ ns, dev string }{{h.ns, "eth0"}, {"", h.veth}} {
		if err := tc(ctx, dev.ns, append([]string{"qdisc", "add", "dev", dev.dev}, tbf...)...); err != nil {
			n.remove(ctx, f)
			if strings.Contains(err.Error(), "Exclusivity flag on") || strings.Contains(err.Error(), "File exists") {
				return nil, fmt.Errorf("netns: host %s already has a bandwidth limit: %w", h.Name, err)
			}
			return nil, err
		}
		f.shaped = append(f.shaped, dev.ns+" "+dev.dev)
	}
	n.log.Info("network fault", "kind", f.Kind, "host", h.Name, "bytes_per_sec", bytesPerSec)
	return f, nil
}

// faultHosts resolves names for a fault, refusing loopback mode.
func (n *Net) faultHosts(names []string) ([]*Host, error) {
	if n.Mode != ModeNetns {
		return nil, ErrNeedsNetns
	}
	n.mu.Lock()
	down := n.down
	n.mu.Unlock()
	if down {
		return nil, errors.New("netns: torn down")
	}
	if len(names) == 0 {
		return nil, errors.New("netns: a network fault needs at least one host")
	}
	var hs []*Host
	for _, name := range names {
		h := n.hosts[name]
		if h == nil {
			return nil, fmt.Errorf("netns: unknown host %q", name)
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// applyDrops loads one netdev table with the given ingress and egress rules
// (either may be empty) into each host's namespace.
func (n *Net) applyDrops(ctx context.Context, kind string, hs []*Host, in, out string) (*Fault, error) {
	n.mu.Lock()
	n.faults++
	seq := n.faults
	n.mu.Unlock()
	f := &Fault{Kind: kind, n: n, table: fmt.Sprintf("fg_%s_%d", n.Run, seq)}
	ruleset := dropTable(f.table, in, out)
	for _, h := range hs {
		if err := nft(ctx, h.ns, ruleset); err != nil {
			n.remove(ctx, f)
			return nil, fmt.Errorf("host %s: %w", h.Name, err)
		}
		f.Hosts = append(f.Hosts, h.Name)
	}
	n.log.Info("network fault", "kind", kind, "hosts", f.Hosts, "table", f.table)
	return f, nil
}

// dropTable is the nft script of one fault's table.
func dropTable(table, in, out string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table netdev %s {\n", table)
	fmt.Fprintf(&b, "  chain in { type filter hook ingress device \"eth0\" priority 0; policy accept; %s }\n", in)
	fmt.Fprintf(&b, "  chain out { type filter hook egress device \"eth0\" priority 0; policy accept; %s }\n", out)
	b.WriteString("}\n")
	return b.String()
}

// remove deletes f's rules from each host that has them. A namespace or device
// already gone took its rules with it.
func (n *Net) remove(ctx context.Context, f *Fault) error {
	var errs []error
	if f.table != "" {
		for _, name := range f.Hosts {
			h := n.hosts[name]
			if !nsExists(ctx, h.ns) {
				continue
			}
			if err := nft(ctx, h.ns, "delete table netdev "+f.table+"\n"); err != nil {
				errs = append(errs, fmt.Errorf("host %s: %w", name, err))
			}
		}
	}
	for _, s := range f.shaped {
		ns, dev, _ := strings.Cut(s, " ")
		if ns != "" && !nsExists(ctx, ns) || ns == "" && !linkExists(ctx, dev) {
			continue
		}
		if err := tc(ctx, ns, "qdisc", "del", "dev", dev, "root"); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netns: healing %s: %w", f.Kind, err)
	}
	n.log.Info("network fault healed", "kind", f.Kind, "hosts", f.Hosts)
	return nil
}

// nft runs an nft script inside namespace ns.
func nft(ctx context.Context, ns, script string) error {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %w: %s", ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// tc runs tc inside namespace ns ("" for the root namespace).
func tc(ctx context.Context, ns string, args ...string) error {
	full := append([]string{"tc"}, args...)
	if ns != "" {
		full = append([]string{"ip", "netns", "exec", ns}, full...)
	}
	if out, err := exec.CommandContext(ctx, full[0], full[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(full, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// FaultTables lists the Floodgate fault tables ("fg_…") in namespace ns, or in
// the root namespace when ns is "", as "family name".
func FaultTables(ctx context.Context, ns string) ([]string, error) {
	args := []string{"nft", "list", "tables"}
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	var ts []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line) // "table netdev fg_ab12_3"
		if len(f) == 3 && f[0] == "table" && strings.HasPrefix(f[2], "fg_") {
			ts = append(ts, f[1]+" "+f[2])
		}
	}
	return ts, nil
}
