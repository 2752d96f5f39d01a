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
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the programs run inside hosts.
const roleEnv = "NETNS_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "echo": // a TCP echo server on $ADDR; prints READY
		ln, err := net.Listen("tcp", os.Getenv("ADDR"))
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Println("READY")
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(0)
			}
			go io.Copy(c, c)
		}
	case "dial": // dial $ADDR from $FROM, echo a line, print it
		d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(os.Getenv("FROM"))}}
		c, err := d.Dial("tcp", os.Getenv("ADDR"))
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Fprintln(c, "hello")
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Print("GOT ", line)
		os.Exit(0)
	case "build-and-wait": // build a topology for run $RUN, print READY, tear down on SIGINT
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		n, err := Build(ctx, Spec{Run: os.Getenv("RUN"), Hosts: []string{"a", "b"}, Mode: ModeNetns, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		if os.Getenv("FAULTS") == "1" { // leave rules for Clean to find
			_, err1 := n.Blackhole(ctx, "a")
			_, err2 := n.Bandwidth(ctx, "b", 1_000_000)
			_, err3 := n.Partition(ctx, []string{"a"}, []string{"b"}, true)
			if err := errors.Join(err1, err2, err3); err != nil {
				fmt.Println("ERR", err)
				os.Exit(1)
			}
		}
		fmt.Println("READY")
		<-ctx.Done()
		if err := n.Teardown(); err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if err := CanNetns(); err != nil {
		if os.Getenv("FLOODGATE_REQUIRE_NETNS") == "1" {
			t.Fatalf("network namespaces unavailable and FLOODGATE_REQUIRE_NETNS=1: %v", err)
		}
		t.Skipf("skipping: %v (run as root with iproute2 for the namespace tests)", err)
	}
}

// runID makes a run id unique to this test process.
func runID(tag string) string { return fmt.Sprintf("%s%05x", tag, os.Getpid()&0xfffff) }

func self(ctx context.Context, n *Net, h *Host, role string, env ...string) *exec.Cmd {
	cmd := n.Command(ctx, h, os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), roleEnv+"="+role), env...)
	return cmd
}

func waitLine(t *testing.T, r io.Reader, want string) string {
	t.Helper()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, want) {
		t.Fatalf("waiting for %q: got %q, %v", want, line, err)
	}
	return line
}

func assertNoLeftovers(t *testing.T, run string) {
	t.Helper()
	nss, lks := Leftovers(context.Background(), run)
	if len(nss)+len(lks) > 0 {
		t.Fatalf("left behind: namespaces %v, links %v", nss, lks)
	}
}

func TestHostsTalkAcrossTheBridgeAndTeardownIsComplete(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	run := runID("t")
	n, err := Build(ctx, Spec{Run: run, Hosts: []string{"core", "gw-1", "cl-1"}, Mode: ModeNetns, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Teardown()
	if !Benchmark.Contains(n.Subnet.Addr()) || !Benchmark.Contains(n.Host("gw-1").Addr) {
		t.Fatalf("addresses outside 198.18.0.0/15: subnet %v, gw-1 %v", n.Subnet, n.Host("gw-1").Addr)
	}
	gw := n.Host("gw-1")
	addr := net.JoinHostPort(gw.Addr.String(), "7000")
	srv := self(ctx, n, gw, "echo", "ADDR="+addr)
	out, _ := srv.StdoutPipe()
	if err := n.Start(srv); err != nil {
		t.Fatal(err)
	}
	waitLine(t, out, "READY")

	// From another host, with its own source address.
	cl := n.Host("cl-1")
	dialer := self(ctx, n, cl, "dial", "ADDR="+addr, "FROM="+cl.Addr.String())
	got, err := dialer.Output()
	if err != nil || !strings.Contains(string(got), "GOT hello") {
		t.Fatalf("host to host: %q %v", got, err)
	}
	// From the root namespace (the harness), through the bridge.
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("root to host: %v", err)
	}
	c.Close()
	// The host's port range was widened.
	pr, err := n.Command(ctx, cl, "cat", "/proc/sys/net/ipv4/ip_local_port_range").Output()
	if err != nil || !strings.HasPrefix(strings.Join(strings.Fields(string(pr)), " "), "1024 65535") {
		t.Fatalf("port range in host: %q %v", pr, err)
	}

	if err := n.Teardown(); err != nil {
		t.Fatal(err)
	}
	if err := n.Teardown(); err != nil { // idempotent
		t.Fatalf("second teardown: %v", err)
	}
	assertNoLeftovers(t, run)
	if err := srv.Wait(); err == nil {
		t.Fatal("the server inside the host survived teardown")
	}
}

// A harness interrupted mid-run tears down on SIGINT; one killed with SIGKILL leaves
// things behind, which Clean removes. Both had network faults in force: their rules
// go with the namespaces and veths.
func TestInterruptedAndKilledRunsLeaveNothing(t *testing.T) {
	needFaults(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			run := runID(map[syscall.Signal]string{syscall.SIGINT: "i", syscall.SIGKILL: "k"}[sig])
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), roleEnv+"=build-and-wait", "RUN="+run, "FAULTS=1")
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitLine(t, out, "READY")
			if nss, _ := Leftovers(context.Background(), run); len(nss) != 2 {
				t.Fatalf("the child built %d namespaces, want 2", len(nss))
			}
			cmd.Process.Signal(sig)
			cmd.Wait()
			if sig == syscall.SIGKILL {
				removed, err := Clean(context.Background(), run)
				if err != nil || len(removed) == 0 {
					t.Fatalf("Clean: %v, removed %v", err, removed)
				}
			}
			assertNoLeftovers(t, run)
			assertRootHasNoTables(t, run)
		})
	}
}

func TestLoopbackModeGivesDistinctLocalAddresses(t *testing.T) {
	n, err := Build(context.Background(), Spec{Run: "lb1", Hosts: []string{"core", "gw-1", "gw-2", "cl-1"}, Mode: ModeLoopback})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Teardown()
	seen := map[string]bool{}
	for _, h := range n.Hosts() {
		if !h.Addr.IsLoopback() || seen[h.Addr.String()] {
			t.Fatalf("host %s: address %v (not loopback or not distinct)", h.Name, h.Addr)
		}
		seen[h.Addr.String()] = true
		ln, err := net.Listen("tcp", net.JoinHostPort(h.Addr.String(), "0"))
		if err != nil {
			t.Fatalf("host %s cannot listen on %v: %v", h.Name, h.Addr, err)
		}
		ln.Close()
	}
}

func TestSpecValidation(t *testing.T) {
	for _, s := range []Spec{
		{Run: "", Hosts: []string{"a"}},
		{Run: "toolong7", Hosts: []string{"a"}},
		{Run: "Ab", Hosts: []string{"a"}},
		{Run: "ok", Hosts: nil},
		{Run: "ok", Hosts: []string{"a", "a"}},
		{Run: "ok", Hosts: []string{"Bad_Name"}},
		{Run: "ok", Hosts: []string{"a"}, Mode: "vm"},
	} {
		if _, err := Build(context.Background(), s); err == nil {
			t.Errorf("Build(%+v) accepted", s)
		}
	}
}

func TestLinkNamesFitAndAreRecognised(t *testing.T) {
	for _, l := range []string{"fgabc123b", "fgabc123v0", "fgabc123v249", "fgv1v12", "fgxb"} {
		if len(l) > 15 || !isOurLink(l) {
			t.Errorf("%q: len %d, recognised %v", l, len(l), isOurLink(l))
		}
	}
	for _, l := range []string{"eth0", "fgsomethinglong", "fg"} {
		if isOurLink(l) {
			t.Errorf("%q recognised as ours", l)
		}
	}
}

func TestPreflightReportsTheFileLimit(t *testing.T) {
	cs := Preflight(ModeLoopback, 1000, 19900)
	found := false
	for _, c := range cs {
		if c.Name == "RLIMIT_NOFILE (hard)" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no RLIMIT_NOFILE check in %+v", cs)
	}
	if len(Failed(Preflight(ModeLoopback, 10, 1<<30))) == 0 {
		t.Fatal("a per-process need far over the file limit was not fatal")
	}
}
