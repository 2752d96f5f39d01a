package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Servers returns the servers the harness knows. floodgate-ws is Floodgate's echo
// gateway reached over its WebSocket port (-ws-listen) instead of raw TCP.
func Servers() []string { return []string{"floodgate", wsServer, "netstd", "gnet", "nbio"} }

// wsServer is the server name of Floodgate's gateway over its WebSocket port.
const wsServer = "floodgate-ws"

// isFloodgate reports whether server is Floodgate's gateway (over TCP or WebSocket)
// rather than a comparison peer.
func isFloodgate(server string) bool { return server == "floodgate" || server == wsServer }

// runsTest reports whether the harness runs server in test: floodgate-ws, whose load
// client only opens WebSocket connections and holds them, runs the idle test only;
// the pipelined test is Floodgate's over TCP alone.
func runsTest(server, test string) bool {
	switch {
	case server == wsServer:
		return test == "idle"
	case test == "pipelined":
		return server == "floodgate"
	}
	return true
}

// Tests returns the tests the harness knows, in the order it runs them.
func Tests() []string { return []string{"idle", "echo", "pipelined"} }

// Config configures a benchmark run. DefaultConfig gives the full `make bench`.
type Config struct {
	Out       string   // output directory: reactor.json, reactor.md, logs/
	Floodgate string   // the floodgate binary (servers and load clients)
	Peer      string   // the bench/peers binary (netstd, gnet, nbio)
	Servers   []string // subset of floodgate, floodgate-ws, netstd, gnet, nbio
	Tests     []string // subset of idle, echo, pipelined

	IdleConns []int // idle: connection counts
	EchoConns []int // echo: connection counts
	Sizes     []int // echo: message sizes, whole frame on the wire
	Warmup    time.Duration
	Duration  time.Duration // the measurement window

	// PerProcess caps the connections of one server or client process: the file
	// limit (20k here, not raisable) is why there are several.
	PerProcess  int
	EchoClients int // load-client processes in echo runs, one epoller each
	// Rounds repeats the echo and pipelined tests, each round running every case
	// once; a row reports its median round.
	Rounds int

	// The pipelined test: Floodgate only, both EPOLLOUT strategies. PipeSockBuf is
	// the SO_SNDBUF of the server's sockets and the SO_RCVBUF of the clients': small
	// buffers on both ends make the server's writes hit EAGAIN.
	PipeConns, PipeDepth, PipeMsgBytes, PipeSockBuf int

	Logger *slog.Logger // progress; default slog.Default()
}

// DefaultConfig returns the full benchmark: every server and test, 50k and 100k idle
// connections, 1k and 10k echo connections × 64 B and 1 KiB, 2 s + 8 s windows.
func DefaultConfig() Config {
	return Config{
		Out:          "reports/out/bench",
		Peer:         "bench/peers/bin/peer",
		Servers:      Servers(),
		Tests:        Tests(),
		IdleConns:    []int{50_000, 100_000},
		EchoConns:    []int{1_000, 10_000},
		Sizes:        []int{64, 1024},
		Warmup:       2 * time.Second,
		Duration:     8 * time.Second,
		PerProcess:   15_000,
		EchoClients:  2,
		Rounds:       3,
		PipeConns:    50,
		PipeDepth:    64,
		PipeMsgBytes: 1024,
		PipeSockBuf:  4096,
	}
}

func (c *Config) validate() error {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var errs []error
	for _, s := range c.Servers {
		if !slices.Contains(Servers(), s) {
			errs = append(errs, fmt.Errorf("unknown server %q (want %s)", s, strings.Join(Servers(), ", ")))
		}
	}
	for _, t := range c.Tests {
		if !slices.Contains(Tests(), t) {
			errs = append(errs, fmt.Errorf("unknown test %q (want %s)", t, strings.Join(Tests(), ", ")))
		}
	}
	for _, s := range c.Sizes {
		if s < MinMsgBytes || s > MaxMsgBytes {
			errs = append(errs, fmt.Errorf("message size %d outside [%d, %d]", s, MinMsgBytes, MaxMsgBytes))
		}
	}
	if c.PipeMsgBytes < MinMsgBytes || c.PipeMsgBytes > MaxMsgBytes {
		errs = append(errs, fmt.Errorf("pipelined message size %d outside [%d, %d]", c.PipeMsgBytes, MinMsgBytes, MaxMsgBytes))
	}
	for _, n := range slices.Concat(c.IdleConns, c.EchoConns, []int{c.PerProcess, c.EchoClients, c.Rounds, c.PipeConns, c.PipeDepth}) {
		if n <= 0 {
			errs = append(errs, fmt.Errorf("counts must be positive, got %d", n))
			break
		}
	}
	if c.Warmup < 0 || c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("bad window: warmup %v, duration %v", c.Warmup, c.Duration))
	}
	if c.Floodgate == "" {
		errs = append(errs, errors.New("no floodgate binary"))
	}
	needPeer := slices.ContainsFunc(c.Servers, func(s string) bool { return !isFloodgate(s) }) &&
		slices.ContainsFunc(c.Tests, func(t string) bool { return t != "pipelined" })
	for _, bin := range []struct {
		path string
		need bool
	}{{c.Floodgate, true}, {c.Peer, needPeer}} {
		if bin.need {
			if _, err := os.Stat(bin.path); err != nil {
				errs = append(errs, fmt.Errorf("binary: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// Timeouts of the harness's waits.
const (
	startTimeout   = 15 * time.Second // a server's READY line
	connectTimeout = 90 * time.Second // a client's dials (the client bounds itself by less)
	acceptTimeout  = 60 * time.Second // the servers' side of the connections
	clientLinger   = 10 * time.Second // a client's graceful close before SIGTERM
	replyMargin    = 20 * time.Second // an echo report after the window
)

// harness is one run's state.
type harness struct {
	cfg    Config
	log    *slog.Logger
	procs  *procs
	ips    *sourceIPs
	report *Report
}

// Run runs the benchmark and writes reactor.json and reactor.md into cfg.Out (after
// every test, so an interrupted run still leaves what it measured). A row that failed
// carries its error and the run goes on; Run's error is for a run that could not
// start, was interrupted (ctx), or produced failed rows.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	logDir := filepath.Join(cfg.Out, "logs")
	if err := os.RemoveAll(logDir); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	seed := uint64(time.Now().UnixNano()) ^ uint64(os.Getpid())<<32
	h := &harness{cfg: cfg, log: cfg.Logger, procs: &procs{logDir: logDir}, ips: newSourceIPs(seed)}
	h.report = &Report{Meta: newMeta(ctx, cfg, seed)}
	defer h.procs.shutdown()

	err := h.runTests(ctx)
	m := &h.report.Meta
	m.FinishedUTC = time.Now().UTC()
	m.Seconds = round1(m.FinishedUTC.Sub(m.StartedUTC).Seconds())
	m.Interrupted = ctx.Err() != nil
	if werr := h.report.write(cfg.Out); werr != nil {
		return h.report, errors.Join(err, werr)
	}
	if err == nil {
		if failed := slices.IndexFunc(h.report.Results, func(r Result) bool { return r.Error != "" }); failed >= 0 {
			err = fmt.Errorf("bench: some rows failed, the first: %s %s %d: %s",
				h.report.Results[failed].Server, h.report.Results[failed].Test, h.report.Results[failed].Conns, h.report.Results[failed].Error)
		}
	}
	return h.report, err
}

// runTests runs each selected test: idle once per case, echo and pipelined in rounds
// (every case once per round, so that drift on the machine spreads over all servers
// alike), their rows reduced to the median round. The report is rewritten after every
// case.
func (h *harness) runTests(ctx context.Context) error {
	for _, test := range Tests() {
		if !slices.Contains(h.cfg.Tests, test) {
			continue
		}
		for _, s := range h.cfg.Servers {
			if s == wsServer && !runsTest(s, test) {
				h.log.Info("bench: floodgate-ws is measured in the idle test only (its load client holds WebSocket connections, it sends no messages); skipping it", "test", test)
			}
		}
		rounds := h.cfg.Rounds
		if test == "idle" {
			rounds = 1
		}
		base := len(h.report.Results)
		var runs []Result // every round's rows of this test
		for round := 1; round <= rounds; round++ {
			for _, c := range h.cases(test) {
				rows, err := h.runCase(ctx, test, c, round)
				if err != nil {
					return err
				}
				runs = append(runs, rows...)
				h.report.Results = append(h.report.Results[:base], medianRounds(runs)...)
				if err := h.report.write(h.cfg.Out); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// A case starts once the machine keeps fewer than quietCores CPUs busy (measured over
// a second), or after quietWait regardless, with a warning: a benchmark sharing the
// machine with a build measures the build.
const (
	quietCores = 0.3
	quietWait  = 30 * time.Second
)

// awaitQuiet waits, bounded by quietWait, for the machine to be nearly idle, and adds
// the time it waited to the report.
func (h *harness) awaitQuiet(ctx context.Context) error {
	start := time.Now()
	defer func() { h.report.Meta.QuietWaitSeconds += round1(max(time.Since(start).Seconds()-1, 0)) }()
	for i := 0; ; i++ {
		busy, err := busyCores(ctx, time.Second)
		switch {
		case err != nil:
			return err
		case busy <= quietCores:
			if i > 0 {
				h.log.Info("bench: the machine is quiet again", "waited", time.Since(start).Round(time.Second))
			}
			return nil
		case time.Since(start) >= quietWait:
			h.log.Warn("bench: the machine is still busy; measuring anyway (see other_cpu_cores)", "busy_cores", round3(busy))
			return nil
		case i == 0:
			h.log.Warn("bench: the machine is busy with something else; waiting", "busy_cores", round3(busy), "at_most", quietWait)
		}
	}
}

// runCase runs one case once. A failure becomes the rows' error; only an interrupted
// run (ctx) is returned.
func (h *harness) runCase(ctx context.Context, test string, c benchCase, round int) ([]Result, error) {
	if err := h.awaitQuiet(ctx); err != nil {
		return nil, err
	}
	h.log.Info("bench: start", "test", test, "server", c.spec.label(), "conns", c.conns, "round", round)
	started := time.Now()
	var rows []Result
	var err error
	if test == "idle" {
		var row Result
		row, err = h.idle(ctx, c.spec, c.conns)
		rows = []Result{row}
	} else {
		rows, err = h.echo(ctx, test, c)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		h.log.Error("bench: failed", "test", test, "server", c.spec.label(), "conns", c.conns, "err", err)
		rows = failed(rows, c, test, err)
	}
	for _, r := range rows {
		h.log.Info("bench: result", "test", test, "server", label(r), "conns", r.Conns, "round", round,
			"summary", summary(r), "elapsed", time.Since(started).Round(100*time.Millisecond))
	}
	return rows, nil
}

// benchCase is one server configuration under one test.
type benchCase struct {
	spec   serverSpec
	conns  int
	sizes  []int
	depth  int
	rcvbuf int // the clients' SO_RCVBUF; 0: kernel autotuning
}

// cases lists a test's cases in run order.
func (h *harness) cases(test string) []benchCase {
	cfg := h.cfg
	var out []benchCase
	switch test {
	case "idle":
		for _, n := range cfg.IdleConns {
			for _, s := range cfg.Servers {
				if runsTest(s, test) {
					out = append(out, benchCase{spec: serverSpec{name: s, variant: defaultVariant(s)}, conns: n})
				}
			}
		}
	case "echo":
		for _, n := range cfg.EchoConns {
			for _, s := range cfg.Servers {
				if !runsTest(s, test) {
					continue
				}
				for _, v := range variants(s) {
					out = append(out, benchCase{spec: serverSpec{name: s, variant: v}, conns: n, sizes: cfg.Sizes, depth: 1})
				}
			}
		}
	case "pipelined":
		if slices.Contains(cfg.Servers, "floodgate") {
			for _, v := range variants("floodgate") {
				out = append(out, benchCase{spec: serverSpec{name: "floodgate", variant: v, sndbuf: cfg.PipeSockBuf},
					conns: cfg.PipeConns, sizes: []int{cfg.PipeMsgBytes}, depth: cfg.PipeDepth, rcvbuf: cfg.PipeSockBuf})
			}
		}
	}
	return out
}

// failed completes the rows of a case that failed: one row per expected size, each
// carrying the error (rows measured before the failure keep their figures).
func failed(rows []Result, c benchCase, test string, err error) []Result {
	if test == "idle" {
		if len(rows) == 0 {
			rows = []Result{{Server: c.spec.name, Variant: c.spec.variant, Test: test, Conns: c.conns}}
		}
		rows[0].Error = err.Error()
		return rows
	}
	for len(rows) < len(c.sizes) {
		rows = append(rows, Result{Server: c.spec.name, Variant: c.spec.variant, Test: test, Conns: c.conns, Error: err.Error()})
	}
	return rows
}

// summary is a row's headline for the progress log.
func summary(r Result) string {
	switch {
	case r.Error != "":
		return "error: " + r.Error
	case r.IdleFigures != nil:
		return fmt.Sprintf("%.0f B RSS/conn, %.0f B heap/conn, established in %.1f s", r.RSSBytesPerConn, r.HeapBytesPerConn, r.EstablishSeconds)
	case r.EchoFigures != nil:
		return fmt.Sprintf("%d B: %.0f msgs/s, p50 %.0f µs, p99 %.0f µs, %.2f server CPU µs/msg",
			r.MsgBytes, r.MsgsPerSec, r.P50US, r.P99US, r.ServerCPUUSPerMsg)
	}
	return ""
}

// serverSpec is a server process configuration.
type serverSpec struct {
	name    string // floodgate, floodgate-ws, netstd, gnet, nbio
	variant string // Floodgate's -write-readiness; empty for the peers
	sndbuf  int    // Floodgate's -sndbuf; 0: kernel autotuning
}

func (s serverSpec) label() string { return label(Result{Server: s.name, Variant: s.variant}) }

// variants returns a server's variants: Floodgate's two EPOLLOUT strategies (over
// WebSocket the default one only: it runs the idle test alone, where no write queues).
func variants(server string) []string {
	switch server {
	case "floodgate":
		return []string{"dynamic", "always"}
	case wsServer:
		return []string{"dynamic"}
	}
	return []string{""}
}

func defaultVariant(server string) string { return variants(server)[0] }

// server is a running server process.
type server struct {
	*child
	addr  netip.AddrPort // where the load connects: floodgate-ws's WebSocket port
	admin string
}

// startServer starts one server process and waits for its READY line. Floodgate gets
// 2 epollers and gnet/nbio 2 loops; idle timers stay on (as in production) but far
// beyond the run. floodgate-ws is the same gateway with a WebSocket port as well, on
// a free port the harness picks (as for the peers), and the load goes there.
func (h *harness) startServer(ctx context.Context, spec serverSpec, name string) (*server, error) {
	var argv []string
	admin := "127.0.0.1:0"
	var wsAddr string
	if isFloodgate(spec.name) {
		argv = []string{h.cfg.Floodgate, "gateway", "-echo", "-listen", "127.0.0.1:0", "-admin", admin,
			"-epollers", "2", "-write-readiness", spec.variant, "-idle-timeout", "1h"}
		if spec.sndbuf > 0 {
			argv = append(argv, "-sndbuf", strconv.Itoa(spec.sndbuf))
		}
		if spec.name == wsServer {
			var err error
			if wsAddr, err = freePort(); err != nil {
				return nil, err
			}
			argv = append(argv, "-ws-listen", wsAddr)
		}
	} else {
		// The peers do not report their admin address: give them a free one.
		var err error
		if admin, err = freePort(); err != nil {
			return nil, err
		}
		argv = []string{h.cfg.Peer, "-server", spec.name, "-addr", "127.0.0.1:0", "-admin", admin, "-loops", "2"}
	}
	c, err := h.procs.start(ctx, name, false, argv...)
	if err != nil {
		return nil, err
	}
	f, err := c.ready(ctx, startTimeout)
	if err == nil && len(f) < 3 {
		err = fmt.Errorf("%s: short READY line %q", name, f)
	}
	if err != nil {
		h.procs.stopAll([]*child{c}, 0)
		return nil, err
	}
	s := &server{child: c, admin: admin}
	if s.addr, err = netip.ParseAddrPort(f[2]); err == nil && isFloodgate(spec.name) {
		if len(f) < 4 {
			err = fmt.Errorf("%s: no admin address in %q", name, f)
		} else {
			s.admin = f[3]
		}
	}
	if err == nil && wsAddr != "" {
		s.addr, err = netip.ParseAddrPort(wsAddr)
	}
	if err != nil {
		h.procs.stopAll([]*child{c}, 0)
		return nil, fmt.Errorf("%s: READY line %q: %w", name, f, err)
	}
	return s, nil
}

// startServers starts k processes of one server, one after another (so that the free
// ports handed to the peers cannot race each other).
func (h *harness) startServers(ctx context.Context, spec serverSpec, k int, prefix string) ([]*server, error) {
	var out []*server
	for i := range k {
		s, err := h.startServer(ctx, spec, fmt.Sprintf("%s-%s%d", prefix, spec.name, i+1))
		if err != nil {
			h.stopServers(out)
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (h *harness) stopServers(ss []*server) {
	cs := make([]*child, len(ss))
	for i, s := range ss {
		cs[i] = s.child
	}
	h.procs.stopAll(cs, 0)
}

// startClients starts client processes that together open conns connections,
// spread evenly over targets, each from its own source address, and waits for their
// connect reports. rcvbuf sets the clients' SO_RCVBUF (0: autotuning); websocket makes
// them WebSocket clients, whose connections count once upgraded.
func (h *harness) startClients(ctx context.Context, k, conns int, targets []netip.AddrPort, prefix string, rcvbuf int, websocket bool) ([]*child, []ConnectResult, error) {
	var cs []*child
	first := 0 // the global index of this client's first connection
	for i, n := range split(conns, k) {
		// Rotate the targets so that connection j of the whole load, whichever client
		// opens it, goes to targets[j % len]: the servers' loads differ by one at most.
		start := first % len(targets)
		first += n
		rotated := slices.Concat(targets[start:], targets[:start])
		addrs := make([]string, len(rotated))
		for j, t := range rotated {
			addrs[j] = t.String()
		}
		argv := []string{h.cfg.Floodgate, "bench", "client",
			"-targets", strings.Join(addrs, ","), "-src", h.ips.take().String(), "-conns", strconv.Itoa(n),
			"-connect-timeout", (connectTimeout - 10*time.Second).String(), "-rcvbuf", strconv.Itoa(rcvbuf)}
		if websocket {
			argv = append(argv, "-ws")
		}
		c, err := h.procs.start(ctx, fmt.Sprintf("%s-client%d", prefix, i+1), true, argv...)
		if err != nil {
			h.procs.stopAll(cs, 0)
			return nil, nil, err
		}
		cs = append(cs, c)
	}
	results := make([]ConnectResult, len(cs))
	for i, c := range cs {
		var r reply
		err := c.receive(ctx, connectTimeout, &r)
		if err == nil && r.Connect == nil {
			err = fmt.Errorf("%s: no connect report: %s", c.name, r.Error)
		}
		if err != nil {
			h.procs.stopAll(cs, clientLinger)
			return nil, nil, err
		}
		results[i] = *r.Connect
		h.log.Debug("bench: client connected", "client", c.name, "established", r.Connect.Established,
			"failed", r.Connect.Failed, "seconds", r.Connect.Seconds)
	}
	return cs, results, nil
}

// idle measures one server's memory per idle connection.
func (h *harness) idle(ctx context.Context, spec serverSpec, conns int) (Result, error) {
	row := Result{Server: spec.name, Variant: spec.variant, Test: "idle", Conns: conns}
	k := ceilDiv(conns, h.cfg.PerProcess)
	prefix := fmt.Sprintf("idle-%d", conns)
	servers, err := h.startServers(ctx, spec, k, prefix)
	if err != nil {
		return row, err
	}
	defer h.stopServers(servers)
	pids := make([]int, k)
	targets := make([]netip.AddrPort, k)
	baseFDs := make([]int, k)
	for i, s := range servers {
		pids[i], targets[i] = s.pid(), s.addr
		// Counted before the harness ever connects to the admin address, so that no
		// admin connection can be in the count.
		if baseFDs[i], err = openFDs(s.pid()); err != nil {
			return row, err
		}
	}
	empty, _, err := h.memory(ctx, servers, pids)
	if err != nil {
		return row, fmt.Errorf("empty: %w", err)
	}

	cpu0, err := takeCPU(pids, nil) // the clients do not exist yet: they start from zero
	if err != nil {
		return row, err
	}
	t0 := time.Now()
	clients, results, err := h.startClients(ctx, ceilDiv(conns, h.cfg.PerProcess), conns, targets, prefix, 0, spec.name == wsServer)
	if err != nil {
		return row, err
	}
	defer h.procs.stopAll(clients, clientLinger)
	var established int64
	var establish float64
	for _, r := range results {
		established += r.Established
		establish = max(establish, r.Seconds)
		if r.Failed+r.Pending > 0 {
			h.log.Warn("bench: connections missing", "failed", r.Failed, "pending", r.Pending, "first_error", r.FirstError)
		}
	}
	if established == 0 {
		return row, errors.New("no connection established")
	}
	serverConns, err := h.awaitAccepted(ctx, pids, baseFDs, established)
	if err != nil {
		return row, err
	}
	clientPids := make([]int, len(clients))
	for i, c := range clients {
		clientPids[i] = c.pid()
	}
	cpu1, err := takeCPU(pids, clientPids)
	if err != nil {
		return row, err
	}
	other := cpu1.since(cpu0).otherCores(time.Since(t0).Seconds())

	loaded, settled, err := h.memory(ctx, servers, pids)
	if err != nil {
		return row, fmt.Errorf("loaded: %w", err)
	}
	f, err := idleFigures(empty, loaded, established)
	if err != nil {
		return row, err
	}
	f.Established, f.ServerConns, f.ClientProcesses = established, serverConns, len(clients)
	f.EstablishSeconds, f.RSSSettled, f.EstablishOtherCores = round3(establish), settled, round3(other)
	row.IdleFigures = f
	if established < int64(conns) {
		return row, fmt.Errorf("only %d of %d connections established", established, conns)
	}
	return row, nil
}

// memory samples each server's heap (memstats collects first) and then its RSS once
// settled.
func (h *harness) memory(ctx context.Context, servers []*server, pids []int) ([]memSample, bool, error) {
	out := make([]memSample, len(servers))
	for i, s := range servers {
		if err := s.exitedEarly(); err != nil {
			return nil, false, err
		}
		m, err := memStats(ctx, s.admin)
		if err != nil {
			return nil, false, err
		}
		out[i].Heap = int64(m.HeapAlloc)
	}
	rss, settled, err := settleRSS(ctx, pids, defaultSettle())
	if err != nil {
		return nil, false, err
	}
	if !settled {
		h.log.Warn("bench: RSS still moving at the settle timeout; taking the last sample")
	}
	for i := range out {
		out[i].RSS = rss[i]
	}
	return out, settled, nil
}

// awaitAccepted waits until the servers hold want more sockets than at start (clients
// may count a connection as established while it waits in a listen backlog). It
// returns how many they gained.
func (h *harness) awaitAccepted(ctx context.Context, pids, base []int, want int64) (int64, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(acceptTimeout)
	defer deadline.Stop()
	for {
		var got int64
		for i, pid := range pids {
			n, err := openFDs(pid)
			if err != nil {
				return 0, err
			}
			got += int64(n - base[i])
		}
		if got >= want {
			return got, nil
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return got, fmt.Errorf("servers accepted %d of %d connections within %v", got, want, acceptTimeout)
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
}

// echo runs one server configuration through a closed-loop echo per message size, on
// the same connections.
func (h *harness) echo(ctx context.Context, test string, c benchCase) ([]Result, error) {
	spec, conns := c.spec, c.conns
	prefix := fmt.Sprintf("%s-%d", test, conns)
	servers, err := h.startServers(ctx, spec, 1, prefix)
	if err != nil {
		return nil, err
	}
	defer h.stopServers(servers)
	srv := servers[0]
	clients, results, err := h.startClients(ctx, min(h.cfg.EchoClients, conns), conns, []netip.AddrPort{srv.addr}, prefix, c.rcvbuf, spec.name == wsServer)
	if err != nil {
		return nil, err
	}
	defer h.procs.stopAll(clients, clientLinger)
	var established int64
	for _, r := range results {
		established += r.Established
	}
	if established < int64(conns) {
		return nil, fmt.Errorf("only %d of %d connections established (%s)", established, conns, results[0].FirstError)
	}

	var rows []Result
	for _, size := range c.sizes {
		f, err := h.echoRun(ctx, spec, srv, clients, size, c.depth)
		if err != nil {
			return rows, fmt.Errorf("%d B: %w", size, err)
		}
		f.SndBuf, f.RcvBuf = spec.sndbuf, c.rcvbuf
		rows = append(rows, Result{Server: spec.name, Variant: spec.variant, Test: test, Conns: conns, EchoFigures: f})
	}
	return rows, nil
}

// echoRun runs one message size: the clients run their windows while the harness
// reads the processes' CPU time (and Floodgate's counters) at the window's edges.
func (h *harness) echoRun(ctx context.Context, spec serverSpec, srv *server, clients []*child, size, depth int) (*EchoFigures, error) {
	cmd := command{Cmd: "echo", MsgBytes: size, Depth: depth, WarmupMS: h.cfg.Warmup.Milliseconds(), MeasureMS: h.cfg.Duration.Milliseconds()}
	for _, c := range clients {
		if err := c.send(cmd); err != nil {
			return nil, err
		}
	}
	clientPids := make([]int, len(clients))
	for i, c := range clients {
		clientPids[i] = c.pid()
	}
	sample := func() (cpu cpuSnapshot, counters map[string]float64, err error) {
		if cpu, err = takeCPU([]int{srv.pid()}, clientPids); err != nil || spec.name != "floodgate" {
			return cpu, nil, err
		}
		body, err := httpGet(ctx, srv.admin, "/metrics")
		if err != nil {
			return cpu, nil, err
		}
		return cpu, parseMetrics(body, reactorMetrics()...), nil
	}
	if err := sleep(ctx, h.cfg.Warmup); err != nil {
		return nil, err
	}
	cpu0, m0, err := sample()
	if err != nil {
		return nil, err
	}
	if err := sleep(ctx, h.cfg.Duration); err != nil {
		return nil, err
	}
	cpu1, m1, err := sample()
	if err != nil {
		return nil, err
	}
	parts := make([]EchoResult, len(clients))
	for i, c := range clients {
		var r reply
		if err := c.receive(ctx, replyMargin, &r); err != nil {
			return nil, err
		}
		if r.Echo == nil || r.Error != "" {
			return nil, fmt.Errorf("%s: %s", c.name, r.Error)
		}
		parts[i] = *r.Echo
	}
	f, err := echoFigures(parts, echoWindow{Seconds: h.cfg.Duration.Seconds(), CPU: cpu1.since(cpu0)})
	if err != nil {
		return nil, err
	}
	if m0 != nil {
		f.Reactor = reactorDelta(m0, m1)
	}
	return f, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// split divides n into k near-equal parts.
func split(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// freePort returns a loopback address whose port was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// sourceIPs hands out distinct loopback source addresses 127.a.b.c, with a in
// [1, 254] and c in [1, 254], starting at a point derived from a seed: consecutive runs
// use different addresses, so TIME_WAIT left by a previous run (60 s per 4-tuple)
// never blocks a port, and each client process has its own ephemeral port range.
type sourceIPs struct{ next uint64 }

// sourceSpace is the number of addresses sourceIPs cycles through.
const sourceSpace = 254 * 256 * 254

func newSourceIPs(seed uint64) *sourceIPs { return &sourceIPs{next: seed % sourceSpace} }

// take returns the next address.
func (s *sourceIPs) take() netip.Addr {
	i := s.next % sourceSpace
	s.next++
	c := i % 254
	b := i / 254 % 256
	a := i / (254 * 256)
	return netip.AddrFrom4([4]byte{127, byte(a + 1), byte(b), byte(c + 1)})
}

// newMeta describes the machine and settings of a run.
func newMeta(ctx context.Context, cfg Config, seed uint64) Meta {
	m := Meta{
		StartedUTC:      time.Now().UTC(),
		CPUs:            runtime.NumCPU(),
		GoVersion:       runtime.Version(),
		Servers:         cfg.Servers,
		Tests:           cfg.Tests,
		WarmupSeconds:   cfg.Warmup.Seconds(),
		MeasureSeconds:  cfg.Duration.Seconds(),
		MsgBytes:        "the whole frame on the wire, its 5-byte header (u32 length, u8 type) included",
		PerProcessConns: cfg.PerProcess,
		EchoClients:     cfg.EchoClients,
		Rounds:          cfg.Rounds,
		SourceSeed:      seed,
		Caveats: []string{
			fmt.Sprintf("Servers and load clients share this machine's %d CPUs: msgs/s is a property of the pair, not of the server alone;"+
				" server CPU µs/msg is the figure that is not diluted by the client.", runtime.NumCPU()),
			"Loopback TCP: no NIC, no interrupts, no wire latency; RTTs are mostly scheduling and syscalls.",
			"Floodgate runs 2 epollers, gnet and nbio 2 loops, netstd a goroutine per connection; everything at default GOMAXPROCS.",
			"RSS includes what the Go runtime has not yet returned to the OS; heap is the live heap after a forced GC." +
				" Kernel socket memory is in neither.",
			fmt.Sprintf("Each server runs alone (one after another), so the servers never compete with each other. Echo rows are the"+
				" median of %d rounds; idle rows are one run each. A case waits (at most %v) for the machine to be quiet"+
				" (under %.1f busy CPUs) before it starts; other_cpu_cores shows whether it stayed so.", cfg.Rounds, quietWait, quietCores),
			"server_user_us_per_msg is the server's own code; server_sys_us_per_msg is syscalls and the kernel's loopback TCP stack," +
				" which the server cannot avoid but can call less often.",
		},
	}
	if slices.Contains(cfg.Servers, wsServer) {
		m.Caveats = append(m.Caveats, "floodgate-ws is the same echo gateway reached over its WebSocket port (-ws-listen): its"+
			" connections count once the opening handshake's 101 has arrived, and its idle figures are taken exactly as the"+
			" TCP row's (Σ(loaded − empty) ÷ established). Its load client only holds connections, so it runs the idle test alone.")
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(gctx, "git", "rev-parse", "HEAD").Output(); err == nil {
		m.GitCommit = strings.TrimSpace(string(out))
	}
	return m
}
