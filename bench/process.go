package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a child has to exit after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// child is a process the harness started: its stdout is read line by line, its stderr
// goes to a log file.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser // nil unless asked for
	lines  chan string    // stdout, closed at EOF
	exited chan struct{}  // closed once Wait has returned
	err    error          // Wait's result, valid after exited
	cancel context.CancelFunc
}

// procs tracks every child of a run, so that none outlives it.
type procs struct {
	logDir string
	mu     sync.Mutex
	all    []*child
}

// start runs argv as a child named name. The child is in its own process group (a
// terminal's Ctrl-C reaches the harness only, which then stops it) and gets SIGKILL if
// the harness dies (PDEATHSIG). Cancelling ctx, or stop, sends SIGTERM, then SIGKILL
// after stopGrace.
func (p *procs) start(ctx context.Context, name string, withStdin bool, argv ...string) (*child, error) {
	logf, err := os.Create(filepath.Join(p.logDir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	defer logf.Close() // the child has its own copy
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = outW, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	c := &child{name: name, cmd: cmd, lines: make(chan string, 16), exited: make(chan struct{}), cancel: cancel}
	if withStdin {
		if c.stdin, err = cmd.StdinPipe(); err != nil {
			cancel()
			outR.Close()
			outW.Close()
			return nil, fmt.Errorf("starting %s: %w", name, err)
		}
	}
	err = cmd.Start()
	outW.Close() // the child holds the write end now
	if err != nil {
		cancel()
		outR.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p.mu.Lock()
	p.all = append(p.all, c)
	p.mu.Unlock()
	go c.readLines(outR)
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// readLines forwards stdout lines until EOF, dropping them once the child has exited
// and nobody reads any more.
func (c *child) readLines(r *os.File) {
	defer r.Close()
	defer close(c.lines)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		select {
		case c.lines <- sc.Text():
		case <-c.exited:
			return
		}
	}
}

// pid returns the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// line returns the child's next stdout line, waiting at most timeout.
func (c *child) line(ctx context.Context, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l, ok := <-c.lines:
		if !ok {
			<-c.exited
			return "", fmt.Errorf("%s exited (%v) before answering; see its log", c.name, c.err)
		}
		return l, nil
	case <-t.C:
		return "", fmt.Errorf("%s: no answer within %v", c.name, timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// ready waits for the child's `READY ...` line and returns its fields.
func (c *child) ready(ctx context.Context, timeout time.Duration) ([]string, error) {
	l, err := c.line(ctx, timeout)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(l)
	if len(f) < 2 || f[0] != "READY" {
		return nil, fmt.Errorf("%s: want a READY line, got %q", c.name, l)
	}
	return f, nil
}

// send writes one JSON line to the child's stdin.
func (c *child) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing to %s: %w", c.name, err)
	}
	return nil
}

// receive decodes the child's next stdout line into v.
func (c *child) receive(ctx context.Context, timeout time.Duration, v any) error {
	l, err := c.line(ctx, timeout)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(l), v); err != nil {
		return fmt.Errorf("%s: bad line %.200q: %w", c.name, l, err)
	}
	return nil
}

// stop ends the child: a client is asked to stop over stdin and given linger time; then
// SIGTERM, then SIGKILL after stopGrace. It returns once the process is gone.
func (c *child) stop(linger time.Duration) {
	if c.stdin != nil {
		c.send(command{Cmd: "stop"}) //nolint:errcheck // it may be gone already
		c.stdin.Close()
		t := time.NewTimer(linger)
		select {
		case <-c.exited:
		case <-t.C:
		}
		t.Stop()
	}
	c.cancel()
	<-c.exited // bounded: exec kills it stopGrace after the cancel
}

// exitedEarly reports an error if the child has already exited.
func (c *child) exitedEarly() error {
	select {
	case <-c.exited:
		return fmt.Errorf("%s exited early (%v); see its log", c.name, c.err)
	default:
		return nil
	}
}

// stopAll stops every child, all at once, and waits for them.
func (p *procs) stopAll(cs []*child, linger time.Duration) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { c.stop(linger) })
	}
	wg.Wait()
	p.mu.Lock()
	p.all = slices.DeleteFunc(p.all, func(c *child) bool { return slices.Contains(cs, c) })
	p.mu.Unlock()
}

// shutdown stops every child still running.
func (p *procs) shutdown() {
	p.mu.Lock()
	all := append([]*child(nil), p.all...)
	p.mu.Unlock()
	p.stopAll(all, time.Second)
}
