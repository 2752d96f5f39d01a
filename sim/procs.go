package sim

import (
	"bufio"
	"context"
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

	"github.com/floodgate/floodgate/internal/keys"
	"github.com/floodgate/floodgate/netns"
	"github.com/floodgate/floodgate/runfolder"
)

// spec is how to start a process: which host, which floodgate subcommand (or
// other binary), and its arguments.
type spec struct {
	name, role string
	host       *netns.Host
	bin        string
	args       []string
	addr       string // its main address, for the report
	admin      string // its metrics address (host:port), if any
	ready      bool   // it prints a READY line when serving
}

// proc is one running process.
type proc struct {
	spec
	cmd    *exec.Cmd
	info   int // index in the runner's RunInfo.Processes
	ready  []string
	exited chan struct{}
	stdin  io.WriteCloser
	lines  chan string // its stdout after the READY line (agents' JSON)
	// outDone is closed once its stdout is read to the end: watch waits for it
	// before Wait, which closes the pipe (os/exec) and would cut the last lines.
	outDone chan struct{}
	mu      sync.Mutex
	expects string // why an exit is expected: "fault" or "stopped"; "" means unexpected
}

// expect marks the coming exit as caused by the runner.
func (p *proc) expect(cause string) {
	p.mu.Lock()
	if p.expects == "" {
		p.expects = cause
	}
	p.mu.Unlock()
}

func (p *proc) signal(sig syscall.Signal) {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// alive reports whether it has not exited.
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// start launches s in its host, logging its stderr to logs/<name>.log, and waits
// for its READY line if it has one.
func (r *runner) start(ctx context.Context, s spec) (*proc, error) {
	logf, err := os.OpenFile(filepath.Join(r.dir, runfolder.DirLogs, s.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "=== %s %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), s.bin, strings.Join(s.args, " "))
	cmd := r.net.Command(context.Background(), s.host, s.bin, s.args...)
	cmd.Env = processEnv(os.Environ(), r.keyset, s.role)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	p := &proc{spec: s, cmd: cmd, exited: make(chan struct{}), lines: make(chan string, 64), outDone: make(chan struct{})}
	if s.role == "agent" {
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			logf.Close()
			return nil, err
		}
	}
	if err := r.net.Start(cmd); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	r.mu.Lock()
	p.info = len(r.info.Processes)
	r.info.Processes = append(r.info.Processes, runfolder.ProcessInfo{Name: s.name, Role: s.role, Host: s.host.Name,
		Addr: s.addr, Admin: s.admin, PID: cmd.Process.Pid, Started: time.Now()})
	r.procs = append(r.procs, p)
	r.mu.Unlock()

	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		first := s.ready
		for sc.Scan() {
			if first {
				first = false
				ready <- strings.Fields(sc.Text())
				continue
			}
			if s.role == "agent" {
				p.lines <- sc.Text() // readAgent drains an agent's lines to the end
				continue
			}
			select { // nobody reads other roles' lines: never block their output
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
		close(p.outDone)
	}()
	go r.watch(p, logf)
	if !s.ready {
		return p, nil
	}
	select {
	case f := <-ready:
		if len(f) < 2 || f[0] != "READY" {
			return p, fmt.Errorf("%s: unexpected first line %q (see logs/%s.log)", s.name, strings.Join(f, " "), s.name)
		}
		p.ready = f
		return p, nil
	case <-p.exited:
		return p, fmt.Errorf("%s exited before it was ready (see logs/%s.log)", s.name, s.name)
	case <-time.After(60 * time.Second):
		return p, fmt.Errorf("%s not ready after 60s (see logs/%s.log)", s.name, s.name)
	case <-ctx.Done():
		return p, ctx.Err()
	}
}

// watch waits for p to exit and records how: an exit nobody asked for is
// reported as unexpected, never hidden.
func (r *runner) watch(p *proc, logf *os.File) {
	<-p.outDone // all of its output read (the process has exited or closed stdout)
	err := p.cmd.Wait()
	r.net.Forget(p.cmd)
	logf.Close()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	p.mu.Lock()
	cause := p.expects
	p.mu.Unlock()
	if cause == "" && p.role == "agent" && err == nil {
		cause = "finished" // agents end by themselves after the last phase
	}
	if cause == "" {
		cause = "unexpected"
	}
	r.mu.Lock()
	pi := &r.info.Processes[p.info]
	pi.Exited, pi.ExitCause, pi.ExitCode = time.Now(), cause, code
	if cause == "unexpected" && !r.stopping {
		r.info.Events = append(r.info.Events, runfolder.RunEvent{At: time.Now(), Kind: "unexpected_exit",
			Detail: fmt.Sprintf("%s (%s) exited by itself: %v; see logs/%s.log", p.name, p.role, err, p.name)})
		r.log.Warn("process exited unexpectedly", "process", p.name, "err", err)
	}
	r.mu.Unlock()
	close(p.exited)
}

// stopAll stops every process: agents and gateways first, then the core, each
// with SIGTERM and, after grace, SIGKILL.
func (r *runner) stopAll(grace time.Duration) {
	r.mu.Lock()
	r.stopping = true
	procs := append([]*proc(nil), r.procs...)
	r.mu.Unlock()
	order := []func(*proc) bool{
		func(p *proc) bool { return p.role == "agent" },
		func(p *proc) bool { return p.role == "gateway" },
		func(p *proc) bool { return p.role != "agent" && p.role != "gateway" },
	}
	for _, in := range order {
		var wave []*proc
		for _, p := range procs {
			if in(p) && p.alive() {
				p.expect("stopped")
				p.signal(syscall.SIGTERM)
				wave = append(wave, p)
			}
		}
		deadline := time.After(grace)
		for _, p := range wave {
			select {
			case <-p.exited:
			case <-deadline:
				p.signal(syscall.SIGKILL)
				<-p.exited
			}
		}
	}
}

// runKeys are a run's secrets (SECURITY.md), generated afresh for every run:
// the token key signs the agents' login tokens and the gateways verify them, the
// cluster key authenticates the internal links, the admin token opens control's
// drain.
type runKeys struct {
	token, cluster, admin string
}

func newRunKeys() runKeys {
	return runKeys{token: string(keys.Generate()), cluster: string(keys.Generate()), admin: string(keys.Generate())}
}

// processEnv is the environment of a process of role: base (the runner's own)
// without any key variable, plus exactly the keys role needs. Agents get none:
// their plan file carries the token key.
//
// GOMAXPROCS=1: a run packs ~20 processes onto a few cores; with more Ps each
// process keeps extra scheduler threads spinning for work it will not get,
// which measured as p99 165 ms → 83 ms in crash-failover's steady phase.
func processEnv(base []string, k runKeys, role string) []string {
	// The variables keys travel in, and the retired one.
	keyVars := []string{"FLOODGATE_TOKEN_KEY", "FLOODGATE_CLUSTER_KEY", "FLOODGATE_ADMIN_TOKEN", "FLOODGATE_SECRET"}
	env := make([]string, 0, len(base)+3)
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keyVars, name) {
			env = append(env, kv)
		}
	}
	switch role {
	case "gateway":
		env = append(env, "FLOODGATE_TOKEN_KEY="+k.token, "FLOODGATE_CLUSTER_KEY="+k.cluster)
	case "state", "msg", "router", "ipconf":
		env = append(env, "FLOODGATE_CLUSTER_KEY="+k.cluster)
	case "control":
		env = append(env, "FLOODGATE_CLUSTER_KEY="+k.cluster, "FLOODGATE_ADMIN_TOKEN="+k.admin)
	}
	return append(env, "GOMAXPROCS=1")
}
