package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needFaults skips a test that needs network faults where they cannot be applied,
// except under FLOODGATE_REQUIRE_NETNS=1 (CI), where that is a failure.
func needFaults(t *testing.T) {
	t.Helper()
	if err := CanFault(); err != nil {
		if os.Getenv("FLOODGATE_REQUIRE_NETNS") == "1" {
			t.Fatalf("network faults unavailable and FLOODGATE_REQUIRE_NETNS=1: %v", err)
		}
		t.Skipf("skipping: %v (run as root with iproute2 and nftables for the network fault tests)", err)
	}
}

// inHost runs fn on an OS thread switched into host h's namespace. Sockets fn
// opens belong to that namespace for their whole life; the thread is switched
// back (or, if that fails, never reused).
func inHost(h *Host, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return // the thread is still locked: it exits with the goroutine
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+h.ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", h.ns, err)
			return
		}
		err = fn()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// dialFrom connects from host from to addr (a socket in from's namespace).
func dialFrom(from *Host, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inHost(from, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	return c, err
}

// listenIn listens on network and addr inside host h.
func listenIn(t *testing.T, h *Host, network, addr string) (ln net.Listener, pc net.PacketConn) {
	t.Helper()
	err := inHost(h, func() (err error) {
		if network == "udp" {
			pc, err = net.ListenPacket("udp", addr)
		} else {
			ln, err = net.Listen("tcp", addr)
		}
		return err
	})
	if err != nil {
		t.Fatalf("listening in %s: %v", h.Name, err)
	}
	return ln, pc
}

// serveEcho echoes every connection on ln until it closes.
func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { io.Copy(c, c); c.Close() }()
	}
}

// echoOnce connects from host from to to's echo server and echoes a line within
// timeout.
func echoOnce(from, to *Host, timeout time.Duration) error {
	c, err := dialFrom(from, net.JoinHostPort(to.Addr.String(), "7000"), timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintln(c, "ping"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		return fmt.Errorf("echo: %q, %w", line, err)
	}
	return nil
}

func assertEchoWorks(t *testing.T, from, to *Host) {
	t.Helper()
	if err := echoOnce(from, to, 2*time.Second); err != nil {
		t.Fatalf("%s → %s: %v, want a working echo", from.Name, to.Name, err)
	}
}

// assertEchoTimesOut asserts that a connect from from to to meets silence (a
// timeout), not a refusal or a reset.
func assertEchoTimesOut(t *testing.T, from, to *Host) {
	t.Helper()
	err := echoOnce(from, to, 300*time.Millisecond)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s → %s: %v, want a timeout", from.Name, to.Name, err)
	}
}

// udpDelivered sends count datagrams from host from to to's port 7001 and returns
// how many arrived. The receiver's socket buffer holds them all, so an overflow
// never reads as loss.
func udpDelivered(t *testing.T, from, to *Host, count int) int {
	t.Helper()
	_, pc := listenIn(t, to, "udp", net.JoinHostPort(to.Addr.String(), "7001"))
	defer pc.Close()
	// A buffer for every datagram (SO_RCVBUFFORCE: root may exceed rmem_max), so
	// that a receiver descheduled for a while on a busy machine loses none.
	raw, err := pc.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) })
	if serr != nil {
		t.Fatalf("SO_RCVBUFFORCE: %v", serr)
	}
	var got int
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64)
		for {
			pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return // quiet for 300 ms after the last datagram: done
			}
			got++
		}
	})
	var conn net.Conn
	if err := inHost(from, func() (err error) {
		conn, err = net.Dial("udp", net.JoinHostPort(to.Addr.String(), "7001"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range count {
		conn.Write([]byte("datagram"))
		if i%50 == 49 {
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	return got
}

// transferTime sends size bytes from host from to a sink in host to and returns
// the time until the sink acknowledges the last byte.
func transferTime(t *testing.T, from, to *Host, size int) time.Duration {
	t.Helper()
	ln, _ := listenIn(t, to, "tcp", net.JoinHostPort(to.Addr.String(), "7002"))
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c)
		c.Write([]byte{1})
	}()
	c, err := dialFrom(from, net.JoinHostPort(to.Addr.String(), "7002"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("waiting for the sink: %v", err)
	}
	return time.Since(start)
}

// assertNoFaultRules asserts that no host of n and not the root namespace holds a
// fault table of n's run, and no tbf remains on the hosts' links.
func assertNoFaultRules(t *testing.T, n *Net) {
	t.Helper()
	ctx := context.Background()
	for _, h := range n.Hosts() {
		if ts, err := FaultTables(ctx, h.ns); err != nil || len(ts) > 0 {
			t.Fatalf("host %s: fault tables %v, %v", h.Name, ts, err)
		}
		for _, dev := range [][]string{{"ip", "netns", "exec", h.ns, "tc", "qdisc", "show", "dev", "eth0"}, {"tc", "qdisc", "show", "dev", h.veth}} {
			out, err := exec.Command(dev[0], dev[1:]...).CombinedOutput()
			if err != nil || strings.Contains(string(out), "tbf") {
				t.Fatalf("host %s: %v: %s %v", h.Name, dev, out, err)
			}
		}
	}
	assertRootHasNoTables(t, n.Run)
}

func assertRootHasNoTables(t *testing.T, run string) {
	t.Helper()
	ts, err := FaultTables(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range ts {
		if strings.HasPrefix(strings.Fields(tb)[1], "fg_"+run+"_") {
			t.Fatalf("the root namespace holds fault table %q", tb)
		}
	}
}

func mustFault(t *testing.T) func(*Fault, error) *Fault {
	return func(f *Fault, err error) *Fault {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
}

func mustHeal(t *testing.T, f *Fault) {
	t.Helper()
	if err := f.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := f.Heal(); err != nil { // idempotent
		t.Fatalf("second heal: %v", err)
	}
}

// Each fault kind, applied to hosts a, b and c, changes real traffic as it says,
// and healing it restores the traffic and leaves no rule behind; teardown leaves
// no rule, link or namespace.
func TestNetworkFaultsShapeRealTrafficAndHealCompletely(t *testing.T) {
	needFaults(t)
	ctx := context.Background()
	run := runID("f")
	n, err := Build(ctx, Spec{Run: run, Hosts: []string{"a", "b", "c"}, Mode: ModeNetns, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Teardown()
	a, b, c := n.Host("a"), n.Host("b"), n.Host("c")
	for _, h := range []*Host{a, b} {
		ln, _ := listenIn(t, h, "tcp", net.JoinHostPort(h.Addr.String(), "7000"))
		defer ln.Close()
		go serveEcho(ln)
	}
	must := mustFault(t)

	t.Run("partition both ways", func(t *testing.T) {
		f := must(n.Partition(ctx, []string{"a"}, []string{"b"}, false))
		assertEchoTimesOut(t, b, a)
		assertEchoTimesOut(t, a, b)
		assertEchoWorks(t, c, a) // other hosts are unaffected
		assertEchoWorks(t, c, b)
		mustHeal(t, f)
		assertEchoWorks(t, b, a)
		assertEchoWorks(t, a, b)
		assertNoFaultRules(t, n)
	})

	t.Run("partition one way", func(t *testing.T) {
		f := must(n.Partition(ctx, []string{"a"}, []string{"b"}, true))
		if got := udpDelivered(t, a, b, 50); got != 0 {
			t.Fatalf("a → b: %d of 50 datagrams arrived, want none", got)
		}
		if got := udpDelivered(t, b, a, 50); got != 50 {
			t.Fatalf("b → a: %d of 50 datagrams arrived, want all", got)
		}
		assertEchoTimesOut(t, b, a) // a's SYN-ACK is dropped
		mustHeal(t, f)
		if got := udpDelivered(t, a, b, 50); got != 50 {
			t.Fatalf("after the heal a → b: %d of 50 datagrams arrived, want all", got)
		}
		assertNoFaultRules(t, n)
	})

	t.Run("loss", func(t *testing.T) {
		// 25% of 1000: 750 expected, standard deviation 13.7; ±80 is almost 6σ.
		const count, rate = 1000, 0.25
		f := must(n.Loss(ctx, "a", rate))
		for _, dir := range [][2]*Host{{b, a}, {a, b}} { // a's ingress, then its egress
			got := udpDelivered(t, dir[0], dir[1], count)
			t.Logf("%s → %s with %v loss: %d of %d datagrams arrived", dir[0].Name, dir[1].Name, rate, got, count)
			if want := count * (1 - rate); float64(got) < want-80 || float64(got) > want+80 {
				t.Fatalf("%s → %s with 25%% loss: %d of %d arrived, want %v ± 80", dir[0].Name, dir[1].Name, got, count, want)
			}
		}
		mustHeal(t, f)
		if got := udpDelivered(t, b, a, count); got != count {
			t.Fatalf("after the heal: %d of %d arrived, want all", got, count)
		}
		assertNoFaultRules(t, n)
	})

	t.Run("bandwidth", func(t *testing.T) {
		const size, rate = 400_000, 1_000_000 // 0.4 s at the rate
		if d := transferTime(t, a, b, size); d > 150*time.Millisecond {
			t.Fatalf("unshaped transfer took %v: too slow to tell shaping apart", d)
		}
		f := must(n.Bandwidth(ctx, "a", rate))
		if _, err := n.Bandwidth(ctx, "a", rate); err == nil || !strings.Contains(err.Error(), "already has a bandwidth limit") {
			t.Fatalf("a second bandwidth limit on one host: %v, want a refusal", err)
		}
		want := time.Duration(float64(size-TBFBurst(rate)) / rate * float64(time.Second))
		for _, dir := range [][2]*Host{{a, b}, {b, a}} { // a's egress (eth0), then its ingress (root-side veth)
			d := transferTime(t, dir[0], dir[1], size)
			t.Logf("%s → %s: %d bytes in %v at %d B/s (ideal %v)", dir[0].Name, dir[1].Name, size, d, rate, want)
			if d < want*8/10 || d > want*2 {
				t.Fatalf("%s → %s took %v, want about %v", dir[0].Name, dir[1].Name, d, want)
			}
		}
		mustHeal(t, f)
		if d := transferTime(t, b, a, size); d > 150*time.Millisecond {
			t.Fatalf("after the heal the transfer took %v", d)
		}
		assertNoFaultRules(t, n)
	})

	t.Run("blackhole", func(t *testing.T) {
		ln, _ := listenIn(t, a, "tcp", net.JoinHostPort(a.Addr.String(), "7003"))
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			if s, err := ln.Accept(); err == nil {
				accepted <- s
			}
		}()
		cl, err := dialFrom(b, net.JoinHostPort(a.Addr.String(), "7003"), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var srv net.Conn
		select {
		case srv = <-accepted:
		case <-time.After(2 * time.Second):
			t.Fatal("no connection accepted")
		}
		f := must(n.Blackhole(ctx, "a"))
		srv.Close() // a's FIN goes nowhere
		cl.Write([]byte("into the void"))
		cl.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err = cl.Read(make([]byte, 1))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("the peer of a blackholed host read %v, want silence (a timeout), no FIN or RST", err)
		}
		assertEchoTimesOut(t, b, a)
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(a.Addr.String(), "7000"), 300*time.Millisecond); err == nil {
			c.Close()
			t.Fatal("the harness (root namespace) still reaches a blackholed host")
		}
		assertEchoWorks(t, c, b) // the rest of the network is fine
		mustHeal(t, f)
		assertEchoWorks(t, b, a) // a's processes kept running
		assertNoFaultRules(t, n)
	})

	t.Run("overlapping faults heal independently", func(t *testing.T) {
		loss := must(n.Loss(ctx, "a", 0.01))
		hole := must(n.Blackhole(ctx, "a"))
		if ts, _ := FaultTables(ctx, a.ns); len(ts) != 2 {
			t.Fatalf("tables in a: %v, want 2", ts)
		}
		assertEchoTimesOut(t, b, a)
		mustHeal(t, hole)
		if ts, _ := FaultTables(ctx, a.ns); len(ts) != 1 || !strings.HasSuffix(ts[0], loss.table) {
			t.Fatalf("after healing the blackhole, tables in a: %v, want only %s", ts, loss.table)
		}
		assertEchoWorks(t, b, a)
		mustHeal(t, loss)
		assertNoFaultRules(t, n)
	})

	t.Run("faults left in force go with teardown", func(t *testing.T) {
		must(n.Blackhole(ctx, "a"))
		must(n.Bandwidth(ctx, "b", 1_000_000))
		must(n.Partition(ctx, []string{"c"}, []string{"a", "b"}, false))
		if err := n.Teardown(); err != nil {
			t.Fatal(err)
		}
		assertNoLeftovers(t, run)
		assertRootHasNoTables(t, run)
		if _, err := n.Loss(ctx, "a", 0.1); err == nil {
			t.Fatal("a fault was applied after teardown")
		}
	})
}

func TestNetworkFaultsNeedNetnsModeAndValidArguments(t *testing.T) {
	lb, err := Build(context.Background(), Spec{Run: "lbf", Hosts: []string{"a", "b"}, Mode: ModeLoopback})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, apply := range map[string]func() (*Fault, error){
		"partition": func() (*Fault, error) { return lb.Partition(ctx, []string{"a"}, []string{"b"}, false) },
		"loss":      func() (*Fault, error) { return lb.Loss(ctx, "a", 0.1) },
		"bandwidth": func() (*Fault, error) { return lb.Bandwidth(ctx, "a", 1e6) },
		"blackhole": func() (*Fault, error) { return lb.Blackhole(ctx, "a") },
	} {
		if _, err := apply(); !errors.Is(err, ErrNeedsNetns) {
			t.Errorf("%s in loopback mode: %v, want ErrNeedsNetns", name, err)
		}
	}
	// Arguments are checked before anything is applied (n has no namespaces).
	n := &Net{Mode: ModeNetns, Run: "x", hosts: map[string]*Host{"a": {Name: "a"}, "b": {Name: "b"}}, log: slog.New(slog.DiscardHandler)}
	for name, apply := range map[string]func() (*Fault, error){
		"loss of 0":           func() (*Fault, error) { return n.Loss(ctx, "a", 0) },
		"loss below 0.01%":    func() (*Fault, error) { return n.Loss(ctx, "a", 0.00004) },
		"loss above 100%":     func() (*Fault, error) { return n.Loss(ctx, "a", 1.01) },
		"bandwidth too low":   func() (*Fault, error) { return n.Bandwidth(ctx, "a", 999) },
		"bandwidth too high":  func() (*Fault, error) { return n.Bandwidth(ctx, "a", 2e10) },
		"unknown host":        func() (*Fault, error) { return n.Blackhole(ctx, "z") },
		"overlapping sides":   func() (*Fault, error) { return n.Partition(ctx, []string{"a", "b"}, []string{"b"}, false) },
		"an empty side":       func() (*Fault, error) { return n.Partition(ctx, nil, []string{"b"}, false) },
		"unknown on one side": func() (*Fault, error) { return n.Partition(ctx, []string{"a"}, []string{"q"}, true) },
	} {
		if _, err := apply(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDropTableHooksBothDirectionsOfEth0(t *testing.T) {
	got := dropTable("fg_ab_1", "ip saddr { 198.18.0.10 } drop;", "")
	for _, want := range []string{
		"table netdev fg_ab_1 {",
		`chain in { type filter hook ingress device "eth0" priority 0; policy accept; ip saddr { 198.18.0.10 } drop; }`,
		`chain out { type filter hook egress device "eth0" priority 0; policy accept;  }`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, got)
		}
	}
	if TBFBurst(1_000_000) != 10_000 || TBFBurst(10_000) != 4096 {
		t.Errorf("burst: %d at 1 MB/s, %d at 10 kB/s", TBFBurst(1_000_000), TBFBurst(10_000))
	}
}
