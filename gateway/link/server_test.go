package link

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/poll"
	"github.com/floodgate/floodgate/internal/promtest"
	"github.com/prometheus/client_golang/prometheus"
)

// flakyListener is a net.Listener whose Accept fails with the injected errors, in
// order, before it passes through to the real listener; it records when each
// injected error was returned.
type flakyListener struct {
	net.Listener
	mu       sync.Mutex
	errs     []error
	returned []time.Time
	forever  error // if set, returned by every Accept once errs is empty
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 || l.forever != nil {
		err := l.forever
		if len(l.errs) > 0 {
			err, l.errs = l.errs[0], l.errs[1:]
		}
		l.returned = append(l.returned, time.Now())
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func (l *flakyListener) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.returned...)
}

// recordingHandler is a slog.Handler that keeps the messages it is given.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}

// count returns how many records had the message msg.
func (h *recordingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// acceptErr wraps errno as the net package does for a failed accept.
func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// serveOn runs a Server on ln until the test ends; the returned channel receives
// Serve's result.
func serveOn(t *testing.T, ln net.Listener, mutate ...func(*ServerConfig)) (*Server, context.CancelFunc, <-chan error) {
	t.Helper()
	cfg := ServerConfig{Secret: secret, Handler: echoHandler, Logger: quiet()}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := NewServer(cfg, ln)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		done <- s.Serve(ctx)
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
	})
	return s, cancel, done
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestAcceptBackoffDoublesFrom5msTo1s(t *testing.T) {
	var got []time.Duration
	b := time.Duration(0)
	for range 10 {
		b = nextAcceptBackoff(b)
		got = append(got, b)
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("backoff sequence %v, want %v ms", got, want)
		}
	}
}

// Finding: one accept error (EMFILE) ended Serve, and state, msg and router exited
// with it. Every error but a closed listener is now survived: the server keeps
// serving, counts the errors, and backs off on those that retrying cannot fix.
func TestServeSurvivesAcceptErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		backoff bool // the server waits before the next Accept
	}{
		{"EMFILE", acceptErr(syscall.EMFILE), true},
		{"ENFILE", acceptErr(syscall.ENFILE), true},
		{"ENOBUFS", acceptErr(syscall.ENOBUFS), true},
		{"ENOMEM", acceptErr(syscall.ENOMEM), true},
		{"unclassified", errors.New("accept: something odd"), true},
		{"ECONNABORTED", acceptErr(syscall.ECONNABORTED), false},
		{"EPROTO", acceptErr(syscall.EPROTO), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 4
			ln := &flakyListener{Listener: listenLoopback(t)}
			for range n {
				ln.errs = append(ln.errs, tc.err)
			}
			logs := &recordingHandler{}
			s, _, done := serveOn(t, ln, func(c *ServerConfig) { c.Logger = slog.New(logs) })
			c := dialClient(t, s.Addr())
			waitUp(t, c)
			if got, err := c.Call(context.Background(), 1, []byte("x")); err != nil || string(got) != "1:x" {
				t.Fatalf("call after %d accept errors: %q %v", n, got, err)
			}
			select {
			case err := <-done:
				t.Fatalf("Serve returned after accept errors: %v", err)
			default:
			}
			if st := s.Stats(); st.AcceptErrors != n {
				t.Fatalf("AcceptErrors = %d, want %d", st.AcceptErrors, n)
			}
			wantLogs := 0
			if tc.backoff {
				wantLogs = 1 // once per streak, however long
			}
			if got := logs.count("link accept failing; backing off"); got != wantLogs {
				t.Fatalf("%d accept-failure log lines for a streak of %d errors, want %d", got, n, wantLogs)
			}
			if got := logs.count("link accepting again"); got != wantLogs {
				t.Fatalf("%d recovery log lines, want %d", got, wantLogs)
			}
			at := ln.times()
			for i := 1; i < len(at); i++ {
				gap := at[i].Sub(at[i-1])
				if want := 5 * time.Millisecond << (i - 1); tc.backoff && gap < want {
					t.Fatalf("accept retried %v after error %d, want a back-off of at least %v", gap, i, want)
				}
			}
		})
	}
}

// A cancelled context ends Serve promptly even in the middle of a back-off, and
// Serve then returns nil.
func TestServeStopsDuringBackoff(t *testing.T) {
	ln := &flakyListener{Listener: listenLoopback(t), forever: acceptErr(syscall.EMFILE)}
	s, cancel, done := serveOn(t, ln)
	poll.True(t, 5*time.Second, "a back-off of 160ms or more", func() bool { return s.Stats().AcceptErrors >= 6 })
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("Serve took %v to stop", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not stop during a back-off")
	}
}

// A listener closed by someone else ends Serve with an error that says so.
func TestServeEndsWhenItsListenerIsClosed(t *testing.T) {
	ln := listenLoopback(t)
	_, _, done := serveOn(t, ln)
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve returned %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return when its listener closed")
	}
}

// stalledConn opens a raw connection to addr and reads the server's hello, so that
// the server has a handshake under way on it; false if the server closed it first.
func stalledConn(t *testing.T, addr string) (net.Conn, bool) {
	t.Helper()
	return stalledConnFrom(t, netip.MustParseAddr("127.0.0.1"), addr)
}

// stalledConnFrom is stalledConn from the loopback address src.
func stalledConnFrom(t *testing.T, src netip.Addr, addr string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	hello := make([]byte, len(magic)+nonceSize)
	if _, err := io.ReadFull(nc, hello); err != nil {
		return nc, false
	}
	return nc, true
}

// spreadSource is the loopback source address of the i-th of many connections,
// spread so that none exceeds the per-address handshake cap.
func spreadSource(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + i/DefaultMaxHandshakesPerIP)})
}

// Finding: handshakes in progress were uncapped. With the default cap of 64 held by
// stalled connections, the next connection is closed at once without a hello, and
// once the stalled ones go a real peer connects again.
func TestHandshakesOverTheCapAreClosedAtOnce(t *testing.T) {
	s, _ := startServer(t, echoHandler)
	stalled := make([]net.Conn, 0, DefaultMaxHandshakes)
	for i := range DefaultMaxHandshakes {
		nc, ok := stalledConnFrom(t, spreadSource(i), s.Addr())
		if !ok {
			t.Fatalf("handshake %d of %d refused under the cap", i+1, DefaultMaxHandshakes)
		}
		stalled = append(stalled, nc)
	}
	for i := range 3 {
		start := time.Now()
		if _, ok := stalledConnFrom(t, netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}), s.Addr()); ok {
			t.Fatalf("a handshake over the cap of %d was started", DefaultMaxHandshakes)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("the connection over the cap was closed after %v, not at once", d)
		}
	}
	if st := s.Stats(); st.RefusedBusy != 3 || st.Handshaking != DefaultMaxHandshakes {
		t.Fatalf("stats %+v, want 3 refused busy and %d handshaking", st, DefaultMaxHandshakes)
	}
	for _, nc := range stalled {
		nc.Close()
	}
	poll.True(t, 5*time.Second, "the stalled handshakes to end", func() bool { return s.Stats().Handshaking == 0 })
	c := dialClient(t, s.Addr())
	waitUp(t, c)
	if _, err := c.Call(context.Background(), 1, nil); err != nil {
		t.Fatal(err)
	}
}

// One address cannot take more than MaxHandshakesPerIP of the handshake slots: its
// next connection is closed at once, while another address is still served.
func TestHandshakesFromOneAddressAreCapped(t *testing.T) {
	s, _ := startServer(t, echoHandler, func(c *ServerConfig) { c.MaxHandshakesPerIP = 2 })
	hog := netip.MustParseAddr("127.0.0.7")
	for i := range 2 {
		if _, ok := stalledConnFrom(t, hog, s.Addr()); !ok {
			t.Fatalf("handshake %d from %v refused under its cap", i+1, hog)
		}
	}
	if _, ok := stalledConnFrom(t, hog, s.Addr()); ok {
		t.Fatalf("a third handshake from %v was started", hog)
	}
	if _, ok := stalledConnFrom(t, netip.MustParseAddr("127.0.0.8"), s.Addr()); !ok {
		t.Fatal("another address was refused")
	}
	if st := s.Stats(); st.RefusedBusyIP != 1 || st.RefusedBusy != 0 || st.Handshaking != 3 {
		t.Fatalf("stats %+v, want 1 refused for its address and 3 handshaking", st)
	}
	c := dialClient(t, s.Addr()) // from 127.0.0.1
	waitUp(t, c)
}

// A connection costs at most the handshake deadline however it stalls: before the
// magic, after it, or trickling a byte at a time (the deadline runs from accept, not
// from the last byte).
func TestStalledHandshakeEndsAtTheDeadline(t *testing.T) {
	const ttl = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		send func(nc net.Conn)
	}{
		{"silent", func(net.Conn) {}},
		{"magic then silence", func(nc net.Conn) { nc.Write([]byte(magic)) }},
		{"magic, nonce and a long name length, then silence", func(nc net.Conn) {
			nc.Write(append(append([]byte(magic), make([]byte, nonceSize)...), 255))
		}},
		{"a well-formed hello trickled a byte per 10ms", func(nc net.Conn) {
			hello := appendClientHello(nil, secret, make([]byte, nonceSize), make([]byte, nonceSize), string(make([]byte, maxNameLen)))
			go func() {
				for _, c := range hello { // 324 bytes: 3s, ten times the deadline
					if _, err := nc.Write([]byte{c}); err != nil {
						return
					}
					time.Sleep(10 * time.Millisecond) // the trickle's pace
				}
			}()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := startServer(t, echoHandler, func(c *ServerConfig) { c.HandshakeTimeout = ttl })
			start := time.Now()
			nc, ok := stalledConn(t, s.Addr())
			if !ok {
				t.Fatal("no hello")
			}
			tc.send(nc)
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			var err error
			for range 64 {
				if _, err = nc.Read(buf); err != nil {
					break
				}
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the server never closed the stalled connection")
			}
			// Before the deadline would mean the bytes were refused, which is not what
			// this case is about; much after it, that the deadline did not hold.
			if d := time.Since(start); d < ttl-20*time.Millisecond || d > ttl+time.Second {
				t.Fatalf("closed after %v, deadline %v", d, ttl)
			}
			poll.True(t, 5*time.Second, "the handshake slot to be released", func() bool {
				st := s.Stats()
				return st.Handshaking == 0 && st.RefusedAuth == 1
			})
		})
	}
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A connection in its handshake does not get a peer's 64 KiB read buffer: 64 of them
// stalled cost well under 16 KiB of heap each (they cost over 64 KiB each before).
func TestHandshakingConnectionsHoldNoLargeBuffers(t *testing.T) {
	s, _ := startServer(t, echoHandler)
	before := heapInUse()
	for i := range DefaultMaxHandshakes {
		if _, ok := stalledConnFrom(t, spreadSource(i), s.Addr()); !ok {
			t.Fatal("handshake refused under the cap")
		}
	}
	after := heapInUse()
	per := (int64(after) - int64(before)) / DefaultMaxHandshakes
	t.Logf("heap per handshaking connection (both ends): %d bytes", per)
	if per > 16<<10 {
		t.Fatalf("%d bytes of heap per handshaking connection, want < 16 KiB", per)
	}
}

// Authenticated peers over MaxPeers are closed and counted; the peers already
// connected keep working, and a refused client gets in once a place is free.
func TestPeersOverTheCapAreRefused(t *testing.T) {
	s, _ := startServer(t, echoHandler, func(c *ServerConfig) { c.MaxPeers = 2 })
	a, b := dialClient(t, s.Addr()), dialClient(t, s.Addr())
	waitUp(t, a)
	waitUp(t, b)
	third := dialClient(t, s.Addr())
	poll.True(t, 5*time.Second, "the third peer to be refused", func() bool { return s.Stats().RefusedPeers >= 1 })
	if n := len(s.Peers()); n != 2 {
		t.Fatalf("%d peers connected, cap 2", n)
	}
	for _, c := range []*Client{a, b} {
		if _, err := c.Call(context.Background(), 1, nil); err != nil {
			t.Fatalf("a peer under the cap: %v", err)
		}
	}
	a.Close()
	waitUp(t, third)
	if _, err := third.Call(context.Background(), 1, nil); err != nil {
		t.Fatal(err)
	}
}

// The environment variable that turns a test binary into the descriptor-exhaustion
// helper of TestListenerSurvivesDescriptorExhaustion.
const exhaustHelperEnv = "FLOODGATE_LINK_EXHAUST_HELPER"

// Finding, on a real listener: a link server whose process runs out of descriptors
// keeps its listener and serves again once descriptors are free. The server runs in
// a child process (this test binary, re-executed) whose RLIMIT_NOFILE it lowers and
// then fills; this process dials it, which makes its accept fail with EMFILE, and the
// child frees its descriptors once the server has hit the error. The link handshake
// and a call must then succeed on the connection that waited in the backlog.
func TestListenerSurvivesDescriptorExhaustion(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("descriptor exhaustion is driven through Linux's RLIMIT_NOFILE")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestExhaustHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), exhaustHelperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var addr string
	var out []string
	for lines.Scan() {
		out = append(out, lines.Text())
		if a, ok := strings.CutPrefix(lines.Text(), "ADDR "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		cmd.Wait()
		t.Fatalf("the helper did not start:\n%s\n%s", strings.Join(out, "\n"), stderr.String())
	}
	c := dialClient(t, addr)
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	connErr := c.WaitConnected(cctx)
	var callErr error
	if connErr == nil {
		_, callErr = c.Call(cctx, 1, []byte("after EMFILE"))
	}
	stdin.Close() // the helper stops its server and reports
	for lines.Scan() {
		out = append(out, lines.Text())
	}
	werr := cmd.Wait()
	report := strings.Join(out, "\n")
	if connErr != nil || callErr != nil || werr != nil || !strings.Contains(report, "SERVE-OK") {
		t.Fatalf("connect: %v, call: %v, helper: %v\nhelper output:\n%s\n%s", connErr, callErr, werr, report, stderr.String())
	}
}

// TestExhaustHelperProcess is the child of TestListenerSurvivesDescriptorExhaustion;
// it does nothing in a normal run.
func TestExhaustHelperProcess(t *testing.T) {
	if os.Getenv(exhaustHelperEnv) != "1" {
		t.Skip("helper process only")
	}
	fail := func(format string, args ...any) {
		fmt.Printf("HELPER-FAILED "+format+"\n", args...)
		os.Exit(2)
	}
	s, err := Listen(ServerConfig{Addr: "127.0.0.1:0", Secret: secret, Handler: echoHandler, Logger: quiet()})
	if err != nil {
		fail("listen: %v", err)
	}
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		fail("%v", err)
	}
	lim := syscall.Rlimit{Cur: uint64(len(open) + 32), Max: uint64(len(open) + 32)}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		fail("getrlimit: %v", err)
	}
	lim.Max = old.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fail("setrlimit: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	var fillers []*os.File
	for range 1024 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				fail("filling descriptors: %v", err)
			}
			break
		}
		fillers = append(fillers, f)
	}
	fmt.Printf("ADDR %s\n", s.Addr())
	// The parent dials now; wait until the accept has failed (or Serve has given up).
	deadline := time.Now().Add(10 * time.Second)
	for acceptFailed(s) == 0 {
		select {
		case err := <-served:
			fail("Serve returned on descriptor exhaustion: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			fail("no accept error within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	for _, f := range fillers {
		f.Close()
	}
	fmt.Printf("FREED after %d accept errors\n", acceptFailed(s))
	io.Copy(io.Discard, os.Stdin) // until the parent is done
	cancel()
	if err := <-served; err != nil {
		fail("Serve: %v", err)
	}
	fmt.Println("SERVE-OK")
	os.Exit(0)
}

// acceptFailed returns how many accepts have failed on s.
func acceptFailed(s *Server) uint64 { return s.Stats().AcceptErrors }

// Servers of one process share a Registry: each counts under its own service label,
// and the second to register reuses the first's collectors.
func TestServerMetricsShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	lnA := &flakyListener{Listener: listenLoopback(t), errs: []error{acceptErr(syscall.EMFILE), acceptErr(syscall.EMFILE)}}
	a, _, _ := serveOn(t, lnA, func(c *ServerConfig) { c.Registry, c.Service = reg, "state" })
	b, _, _ := serveOn(t, listenLoopback(t), func(c *ServerConfig) { c.Registry, c.Service = reg, "router" })
	poll.True(t, 5*time.Second, "two accept errors", func() bool { return a.Stats().AcceptErrors == 2 })
	if _, ok := stalledConn(t, b.Addr()); !ok {
		t.Fatal("no hello")
	}
	poll.True(t, 5*time.Second, "a handshake under way", func() bool { return b.Stats().Handshaking == 1 })
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"floodgate_link_server_accept_errors_total", []string{"service", "state"}, 2},
		{"floodgate_link_server_accept_errors_total", []string{"service", "router"}, 0},
		{"floodgate_link_server_handshakes", []string{"service", "router"}, 1},
		{"floodgate_link_server_handshakes", []string{"service", "state"}, 0},
	} {
		if got := promtest.Value(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}
