package testbin

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/syncbuf"
)

// ReadyWithin bounds how long Start waits for a role's READY line.
const ReadyWithin = 20 * time.Second

// StopWithin bounds how long a role may take to exit after SIGTERM.
const StopWithin = 5 * time.Second

// Proc is a floodgate role a test started as a process.
type Proc struct {
	// Ready is its READY line's fields: READY <role> <addr> <admin addr or ->.
	Ready  []string
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	done   chan struct{} // closed once it has exited; then err holds Wait's result
	err    error
}

// Start runs `floodgate args...` with env added to the test's environment, in its
// own process group, and waits for its READY line: it fails t (with the process's
// stderr) if the line does not come within ReadyWithin, or is not a READY line of at
// least three fields. At the end of the test the process group gets SIGTERM, and
// SIGKILL if it has not exited within StopWithin.
func Start(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	return StartProgram(t, Floodgate(t), env, args...)
}

// StartProgram is Start for another program that prints a READY line of the same
// shape (READY <name> <addr> ...): a benchmark peer, or the test binary itself run
// as a child process.
func StartProgram(t testing.TB, bin string, env []string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Proc{cmd: cmd, stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		lines <- line
		io.Copy(io.Discard, r)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(StopWithin):
			p.signal(syscall.SIGKILL)
			<-p.done
		}
	})
	select {
	case line := <-lines:
		p.Ready = strings.Fields(line)
		if len(p.Ready) < 3 || p.Ready[0] != "READY" {
			t.Fatalf("%s: no READY line (got %q); stderr:\n%s", args[0], line, p.Stderr())
		}
	case <-time.After(ReadyWithin):
		t.Fatalf("%s: not ready after %v; stderr:\n%s", args[0], ReadyWithin, p.Stderr())
	}
	return p
}

// Addr is the role's main address from its READY line.
func (p *Proc) Addr() string { return p.Ready[2] }

// Admin is the role's admin address from its READY line ("-" when off).
func (p *Proc) Admin() string {
	if len(p.Ready) < 4 {
		return "-"
	}
	return p.Ready[3]
}

// Stderr returns what the process has written to stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// Kill SIGKILLs the process group (a crash) and waits for the exit.
func (p *Proc) Kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and fails t unless the process exits 0 within StopWithin.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("%s: exit after SIGTERM: %v; stderr:\n%s", p.Ready[1], p.err, p.Stderr())
		}
	case <-time.After(StopWithin):
		t.Fatalf("%s did not exit within %v of SIGTERM; stderr:\n%s", p.Ready[1], StopWithin, p.Stderr())
	}
}

// Signal sends sig to the process alone (not its group).
func (p *Proc) Signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

func (p *Proc) signal(sig syscall.Signal) { syscall.Kill(-p.cmd.Process.Pid, sig) }
