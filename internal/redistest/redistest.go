// Package redistest starts a throwaway redis-server on loopback for tests: its own
// port, its own directory, no persistence, killed when the test ends.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a running redis-server.
type Server struct {
	Addr string
	cmd  *exec.Cmd
}

// Start runs redis-server for the duration of t. Without the binary the test is
// skipped, except where FLOODGATE_REQUIRE_REDIS=1 (as in CI, which installs it), where
// it fails.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if requireRedis() {
			t.Fatalf("redis-server not found and FLOODGATE_REQUIRE_REDIS=1 (install the redis-server package)")
		}
		t.Skip("redis-server not installed; .ci/run installs it (Debian package redis-server)")
	}
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "yes",
		"--logfile", filepath.Join(dir, "redis.log"), "--daemonize", "no")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	t.Cleanup(s.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(s.Addr) == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer PING within 10s", s.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// Restart kills the server and starts it again on the same port (data is lost: no
// persistence), for tests of reconnection.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	args := s.cmd.Args
	s.stop()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server restart: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for ping(s.Addr) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not come back on %s", s.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ping(addr string) error {
	nc, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Second))
	if _, err := nc.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
