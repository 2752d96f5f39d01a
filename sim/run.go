// Package sim runs scenario files: it raises a small data centre in network
// namespaces (or on loopback addresses), starts the stack and the load agents in
// their hosts, waits for health, releases the traffic phases at one shared instant,
// injects the timed faults, collects everything into the run folder (agent
// histograms, scraped metrics, process resources, control's alerts, every
// process's log), stops everything and tears the hosts down — on success, on
// Ctrl-C, and on a harness error — and hands the folder to reports for the verdict.
package sim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/netns"
	"github.com/floodgate/floodgate/runfolder"
	"github.com/floodgate/floodgate/scenario"
	"golang.org/x/sys/unix"
)

// Options configures a run.
type Options struct {
	Scenario *scenario.Scenario
	Dir      string // the run folder; created
	Binary   string // the floodgate binary to run in the hosts
	// Mode overrides the scenario's mode ("" keeps it).
	Mode   string
	Logger *slog.Logger
	// Progress, if set, is told the summed agent progress every second.
	Progress func(Progress)
	// Profile, if set, takes CPU profiles in one phase (Profile); the first
	// agent then gets an admin listener for its own.
	Profile *Profile
}

// Progress is the run's state as the runner sees it.
type Progress struct {
	Phase      string
	Clients    int64
	Active     int64
	Sent       uint64
	Delivered  uint64
	Lost       uint64
	Failed     uint64
	Reconnects uint64
	// Duplicates, Phantom and Misdelivered must stay 0 (loadgen.Counts).
	Duplicates, Phantom, Misdelivered uint64
}

// runner is one run.
type runner struct {
	opts   Options
	sc     *scenario.Scenario
	dir    string
	log    *slog.Logger
	net    *netns.Net
	keyset runKeys // generated for this run; each process gets only what it needs
	clock  clock   // when the traffic starts and the faults fire and heal

	mu       sync.Mutex
	info     runfolder.RunInfo
	procs    []*proc
	byName   map[string]*proc // the live process of each name
	stopping bool
	gateways int // gateways started so far (gw-1 … gw-N)
	hosts    []string
	coreAddr string
	snaps    map[string]loadgen.Snapshot // each agent's latest progress
	readers  sync.WaitGroup              // readAgent goroutines: the run ends once they have written every line
	http     *http.Client

	netFaults []*netFault    // network faults in force
	netHealed bool           // the run is ending: every network fault has been healed
	silenced  map[string]int // hosts blackholed now (count of blackholes), not scraped

	redis       redisLayout // the Redis deployment, when a backend uses Redis
	redisScrape redisScraper
	secretFiles []string // plans holding the token key, outside the run folder: removed at teardown
}

// Ports every host uses (hosts have their own addresses, so these never collide).
const (
	portGateway      = 7000
	portGatewayAdmin = 7001
	portGatewayLink  = 7002
	portGatewayWS    = 7003 // the WebSocket port (PROTOCOL.md §2.1), on every gateway
	portIpconf       = 7100
	portIpconfAdmin  = 7101
	portState        = 7200
	portStateAdmin   = 7201
	portRouter       = 7300
	portRouterAdmin  = 7301
	portMsg          = 7400
	portMsgAdmin     = 7401
	portControl      = 7500
	portControlAdmin = 7501
	portAgentAdmin   = 7601 // the profiled agent's (Options.Profile)
	portRedis        = 6379
)

// Run executes a scenario. The returned info is what run.json holds; the verdict
// is reports' business (reports.Build on the folder).
func Run(ctx context.Context, opts Options) (*runfolder.RunInfo, error) {
	r := newRunner(opts, realClock{})
	if err := prepareDir(r.dir, r.log); err != nil {
		return nil, err
	}
	for _, d := range []string{r.dir, filepath.Join(r.dir, runfolder.DirLogs), filepath.Join(r.dir, runfolder.DirHlog)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	r.describe()
	err := r.run(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		r.info.HarnessError = err.Error()
	}
	r.info.Interrupted = ctx.Err() != nil
	r.info.Ended = time.Now()
	if werr := writeJSON(filepath.Join(r.dir, runfolder.FileRun), &r.info); werr != nil && err == nil {
		err = werr
	}
	return &r.info, err
}

// newRunner is a runner for opts that reads the time from clk.
func newRunner(opts Options, clk clock) *runner {
	r := &runner{opts: opts, sc: opts.Scenario, dir: opts.Dir, log: opts.Logger, clock: clk, byName: map[string]*proc{},
		silenced: map[string]int{}, snaps: map[string]loadgen.Snapshot{},
		http: &http.Client{Timeout: 5 * time.Second, Transport: plainTransport()}}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r
}

// describe fills the run's metadata.
func (r *runner) describe() {
	sc := r.sc
	src, _ := os.ReadFile(sc.File)
	os.WriteFile(filepath.Join(r.dir, runfolder.FileScenario), src, 0o644)
	sum := sha256.Sum256(src)
	var uts unix.Utsname
	unix.Uname(&uts)
	var rl unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	commit, _ := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	r.info = runfolder.RunInfo{
		Scenario: sc.Name, ScenarioFile: sc.File, ScenarioHash: hex.EncodeToString(sum[:]), Seed: sc.Seed,
		Commit: strings.TrimSpace(string(commit)), Kernel: unix.ByteSliceToString(uts.Release[:]),
		CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), NofileHard: rl.Max, Started: time.Now(),
		Agents: sc.Topology.Agents, Clients: int64(sc.Clients.Count),
	}
}

// run is one run from preflight to teardown: it builds the hosts, starts the
// stack and the agents, releases the traffic and waits for the agents to end.
// Whatever it started is stopped and torn down before it returns, whether it
// ends normally, on a harness error or with ctx.
func (r *runner) run(ctx context.Context) error {
	sc := r.sc
	mode := resolveMode(netns.Mode(r.opts.Mode), sc.Mode, netns.CanNetns)
	if !r.preflight(mode) {
		return nil // invalid, not a harness error
	}
	r.keyset = newRunKeys()
	r.hosts = hostsFor(sc)
	id := runID()
	r.info.HostsRun = id
	n, err := netns.Build(ctx, netns.Spec{Run: id, Hosts: r.hosts, Mode: mode, Logger: r.log})
	if err != nil {
		return fmt.Errorf("test hosts: %w", err)
	}
	r.net = n
	defer r.teardown()
	r.coreAddr = n.Host("core").Addr.String()
	if r.redis, err = r.redisLayout(); err != nil {
		return err
	}
	if err := r.startStack(ctx); err != nil {
		return err
	}
	collectCtx, stopCollect := context.WithCancel(context.Background())
	var collectors sync.WaitGroup
	collectors.Go(func() { r.collect(collectCtx) })
	defer func() { stopCollect(); collectors.Wait() }()

	agents, err := r.connectAgents(ctx)
	if err != nil {
		return err
	}
	start := r.release(agents)
	faultsDone := r.scheduleFaults(ctx, start)
	var profiled <-chan struct{} = closed()
	if r.opts.Profile != nil {
		profiled = r.profile(ctx)
	}
	if sc.Autoscale != nil {
		go r.autoscale(ctx, start, r.info.TrafficEnd)
	}
	if err := r.awaitAgents(ctx, agents); err != nil {
		return err
	}
	<-faultsDone
	<-profiled
	return r.agentsSucceeded(agents)
}

// resolveMode is the run's mode: the option's, else the scenario's unless it
// says auto, else namespaces when canNetns allows them and loopback otherwise.
func resolveMode(opt netns.Mode, scenarioMode string, canNetns func() error) netns.Mode {
	mode := opt
	if mode == "" && scenarioMode != "auto" {
		mode = netns.Mode(scenarioMode)
	}
	if mode == "" {
		mode = netns.ModeNetns
		if canNetns() != nil {
			mode = netns.ModeLoopback
		}
	}
	return mode
}

// preflight checks the machine for the run in mode and records the findings;
// false means the run is invalid (each failed check is in Invalid).
func (r *runner) preflight(mode netns.Mode) bool {
	sc := r.sc
	perAgent := (int(sc.Clients.Count) + sc.Topology.Agents - 1) / sc.Topology.Agents
	perGateway := int(sc.Components.Gateway.MaxConns)
	r.info.Preflight = netns.Preflight(mode, int(sc.Clients.Count), max(perAgent, perGateway))
	if sc.NetworkFaults() {
		r.info.Preflight = append(r.info.Preflight, netns.FaultCheck(mode))
	}
	r.info.Mode = mode
	failed := netns.Failed(r.info.Preflight)
	for _, c := range failed {
		r.info.Invalid = append(r.info.Invalid, fmt.Sprintf("preflight: %s = %s: %s", c.Name, c.Value, c.Advice))
	}
	return len(failed) == 0
}

// hostsFor names the run's hosts: core, one per gateway the run may ever start
// (the topology's, those scale-out faults add, up to the autoscaler's maximum),
// one per agent, the flood agent's, and the Redis hosts.
func hostsFor(sc *scenario.Scenario) []string {
	hosts := []string{"core"}
	maxGw := sc.Topology.Gateways
	for _, ph := range sc.Phases {
		for _, f := range ph.Faults {
			maxGw += f.ScaleOut
		}
	}
	if sc.Autoscale != nil {
		maxGw = max(maxGw, sc.Autoscale.Max)
	}
	for i := 1; i <= maxGw; i++ {
		hosts = append(hosts, fmt.Sprintf("gw-%d", i))
	}
	for i := 0; i < sc.Topology.Agents; i++ {
		hosts = append(hosts, fmt.Sprintf("cl-%d", i))
	}
	hosts = append(hosts, "cl-flood")
	return append(hosts, sc.Topology.RedisHosts()...)
}

// waitReaders waits, at most d, for the agents' progress readers to write their
// last lines (their processes have exited, so their output is ending).
func (r *runner) waitReaders(d time.Duration) {
	done := make(chan struct{})
	go func() { r.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		r.log.Warn("agents' progress still being read at teardown; progress.jsonl may lack their last lines")
	}
}

// teardown ends what run started: it heals the network faults, stops every
// process, closes the Redis scrapes, removes Redis's scratch folder and the
// plans that hold the run's token key, and tears the hosts down.
func (r *runner) teardown() {
	r.healAllNet() // first: a process stopping may still talk to a peer
	r.stopAll(5 * time.Second)
	r.waitReaders(5 * time.Second)
	r.redisScrape.close()
	os.RemoveAll(r.redisDir())
	r.mu.Lock()
	secrets := r.secretFiles
	r.mu.Unlock()
	for _, f := range secrets {
		os.Remove(f)
	}
	if err := r.net.Teardown(); err != nil {
		r.log.Error("teardown", "err", err)
	}
}

// startStack starts the core services and the topology's gateways and waits
// until ipconf advertises them all.
func (r *runner) startStack(ctx context.Context) error {
	if err := r.startCore(ctx); err != nil {
		return err
	}
	for i := 1; i <= r.sc.Topology.Gateways; i++ {
		if _, err := r.startGateway(ctx, i); err != nil {
			return err
		}
	}
	return r.waitAdvertised(ctx, r.sc.Topology.Gateways)
}

// connectAgents starts the agents and waits until their users are connected,
// recording the connect window.
func (r *runner) connectAgents(ctx context.Context) ([]*proc, error) {
	connectStart := time.Now()
	agents, err := r.startAgents(ctx)
	if err != nil {
		return nil, err
	}
	established, err := r.waitEstablished(ctx, agents)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.info.Connecting = runfolder.ConnectWindow{Start: connectStart, End: time.Now(), Established: established}
	r.mu.Unlock()
	return agents, nil
}

// releaseDelay is how far ahead of now the traffic's start is set: time for
// every agent to read its start line.
const releaseDelay = 2 * time.Second

// release sets the traffic's start and the phases' windows, tells every agent
// the start, and returns it.
func (r *runner) release(agents []*proc) time.Time {
	start := r.clock.Now().Add(releaseDelay)
	r.mu.Lock()
	r.info.TrafficStart = start
	r.info.Phases = phaseWindows(start, r.sc.Phases)
	r.info.TrafficEnd = start.Add(r.sc.Duration())
	r.mu.Unlock()
	line, _ := json.Marshal(map[string]time.Time{"start": start})
	for _, a := range agents {
		fmt.Fprintf(a.stdin, "%s\n", line)
	}
	r.log.Info("traffic starts", "at", start.Format(time.RFC3339Nano), "phases", len(r.sc.Phases), "duration", r.sc.Duration())
	return start
}

// phaseWindows lays the phases end to end from start.
func phaseWindows(start time.Time, phases []scenario.Phase) []runfolder.PhaseWindow {
	var ws []runfolder.PhaseWindow
	at := start
	for _, ph := range phases {
		ws = append(ws, runfolder.PhaseWindow{Name: ph.Name, Start: at, End: at.Add(ph.Duration.D())})
		at = at.Add(ph.Duration.D())
	}
	return ws
}

// agentGrace is how long after the traffic's end (and the messages' deadline)
// the runner waits for the agents before it calls the run failed.
const agentGrace = 2 * time.Minute

// awaitAgents waits for every agent to exit. The agents end by themselves once
// the last phase is over and the last messages have reached their deadline.
func (r *runner) awaitAgents(ctx context.Context, agents []*proc) error {
	r.mu.Lock()
	wait := time.Until(r.info.TrafficEnd) + r.sc.Clients.Deadline.D() + agentGrace
	r.mu.Unlock()
	finished := time.After(wait)
	for _, a := range agents {
		select {
		case <-a.exited:
		case <-finished:
			return fmt.Errorf("agent %s did not finish within %v of the start", a.name, wait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// agentsSucceeded returns an error naming the first agent that exited with a
// non-zero code.
func (r *runner) agentsSucceeded(agents []*proc) error {
	for _, a := range agents {
		r.mu.Lock()
		cause := r.info.Processes[a.info].ExitCause
		code := r.info.Processes[a.info].ExitCode
		r.mu.Unlock()
		if code != 0 {
			return fmt.Errorf("agent %s exited with %d (%s); see logs/%s.log", a.name, code, cause, a.name)
		}
	}
	return nil
}

// closed returns a channel that is already closed.
func closed() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// plainTransport is the runner's HTTP transport: without compression. Go's
// client asks for gzip by default, and every process would then compress its
// /metrics page for each scrape, every second: CPU the harness takes from the
// system it measures (it showed as compress/flate in the gateways' profiles).
// The pages cross only the test hosts' bridge.
func plainTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = true
	return t
}

// runID is a fresh 6-character run id for host names.
func runID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	b[0] = alphabet[int(b[0])%26] // a letter first
	return string(b)
}

func hostPort(h *netns.Host, port int) string {
	return net.JoinHostPort(h.Addr.String(), fmt.Sprint(port))
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// prepareDir makes dir ready for a new run. The runner appends to its raw files as
// it goes (metrics, processes, logs), so an earlier run left in the same folder
// would be read as part of this one — its processes' CPU added to these, its
// samples merged into these percentiles. An earlier run folder (it holds run.json)
// is therefore removed; a folder holding anything else is refused rather than
// emptied, since it is not the runner's to delete.
func prepareDir(dir string, log *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("run folder: %w", err)
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, runfolder.FileRun)); err != nil {
		return fmt.Errorf("run folder %s is not empty and holds no %s: refusing to mix a run into it (choose another -out)", dir, runfolder.FileRun)
	}
	log.Info("replacing the earlier run in the folder", "dir", dir)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("run folder: removing the earlier run: %w", err)
	}
	return nil
}
