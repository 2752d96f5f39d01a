package bench

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		n, k int
		want []int
	}{{10, 3, []int{4, 3, 3}}, {100_000, 7, []int{14286, 14286, 14286, 14286, 14286, 14285, 14285}}, {2, 2, []int{1, 1}}} {
		if got := split(tt.n, tt.k); !slices.Equal(got, tt.want) {
			t.Errorf("split(%d, %d) = %v, want %v", tt.n, tt.k, got, tt.want)
		}
	}
	if ceilDiv(50_000, 15_000) != 4 || ceilDiv(100_000, 15_000) != 7 || ceilDiv(1000, 15_000) != 1 {
		t.Error("ceilDiv")
	}
}

func TestSourceIPs(t *testing.T) {
	seen := map[string]bool{}
	// Start near the end of the space to cover the wrap-around.
	s := newSourceIPs(sourceSpace*3 - 300)
	for range 600 {
		a := s.take()
		b := a.As4()
		if b[0] != 127 || b[1] == 0 || b[1] == 255 || b[3] == 0 || b[3] == 255 {
			t.Fatalf("address %v outside 127.[1-254].x.[1-254]", a)
		}
		if seen[a.String()] {
			t.Fatalf("address %v handed out twice", a)
		}
		seen[a.String()] = true
	}
	if a, b := newSourceIPs(1).take(), newSourceIPs(2).take(); a == b {
		t.Errorf("seeds 1 and 2 both start at %v", a)
	}
}

func TestCases(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Servers = []string{"gnet", "floodgate", wsServer}
	h := &harness{cfg: cfg}
	var got []string
	for _, test := range Tests() {
		for _, c := range h.cases(test) {
			got = append(got, strings.Join([]string{test, c.spec.label(), count(float64(c.conns))}, " "))
		}
	}
	want := []string{
		"idle gnet v2 50,000", "idle floodgate (dynamic) 50,000", "idle floodgate-ws (dynamic) 50,000",
		"idle gnet v2 100,000", "idle floodgate (dynamic) 100,000", "idle floodgate-ws (dynamic) 100,000",
		"echo gnet v2 1,000", "echo floodgate (dynamic) 1,000", "echo floodgate (always) 1,000",
		"echo gnet v2 10,000", "echo floodgate (dynamic) 10,000", "echo floodgate (always) 10,000",
		"pipelined floodgate (dynamic) 50", "pipelined floodgate (always) 50",
	}
	if !slices.Equal(got, want) {
		t.Errorf("cases:\n got %q\nwant %q", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Floodgate = os.Args[0]
	cfg.Peer = "/nonexistent/peer"
	cfg.Servers = []string{"floodgate"} // no peer needed
	if err := cfg.validate(); err != nil {
		t.Errorf("floodgate only: %v", err)
	}
	cfg.Servers = []string{"floodgate", wsServer}
	if err := cfg.validate(); err != nil {
		t.Errorf("floodgate over TCP and WebSocket: %v", err)
	}
	cfg.Servers = []string{"floodgate", "nope"}
	cfg.Sizes = []int{8}
	err := cfg.validate()
	if err == nil || !strings.Contains(err.Error(), `unknown server "nope"`) || !strings.Contains(err.Error(), "message size 8") {
		t.Errorf("validate = %v", err)
	}
}

// TestChildLifecycle runs a real child: its READY line is read, stop ends it, and
// nothing is left running.
func TestChildLifecycle(t *testing.T) {
	p := &procs{logDir: t.TempDir()}
	ctx := context.Background()
	c, err := p.start(ctx, "sleeper", true, "/bin/sh", "-c", `echo "READY sleeper 127.0.0.1:1"; echo to-the-log >&2; exec sleep 60`)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.ready(ctx, 10*time.Second)
	if err != nil || len(f) != 3 || f[2] != "127.0.0.1:1" {
		t.Fatalf("ready = %q, %v", f, err)
	}
	pid := c.pid()
	p.shutdown() // sleep ignores the stop line: SIGTERM ends it
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("child %d still running after shutdown", pid)
	}
	if err := c.exitedEarly(); err == nil {
		t.Error("exitedEarly after stop = nil")
	}
	log, err := os.ReadFile(filepath.Join(p.logDir, "sleeper.log"))
	if err != nil || !strings.Contains(string(log), "to-the-log") {
		t.Errorf("log = %q, %v", log, err)
	}
	if _, err := c.line(ctx, time.Second); err == nil {
		t.Error("line after exit succeeded")
	}
}
