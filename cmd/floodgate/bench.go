package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/bench"
	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/internal/units"
)

// runBench runs the reactor benchmark, or (as `bench client`) one of its load-client
// processes, which only the harness starts.
func runBench(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "client" {
		return runBenchClient(args[1:], stdout, stderr)
	}
	def := bench.DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	self, _ := os.Executable()
	var (
		out       = fs.String("out", def.Out, "output directory for reactor.json, reactor.md and logs/")
		peer      = fs.String("peer", def.Peer, "the bench/peers binary (netstd, gnet, nbio)")
		floodgate = fs.String("floodgate", self, "the floodgate binary for servers and load clients")
		servers   = list(def.Servers, func(s string) (string, error) { return s, nil })
		tests     = list(def.Tests, func(s string) (string, error) { return s, nil })
		idleConns = list(def.IdleConns, strconv.Atoi)
		echoConns = list(def.EchoConns, strconv.Atoi)
		sizes     = list(def.Sizes, parseSize)
		warmup    = fs.Duration("warmup", def.Warmup, "echo: warm-up before each measurement window")
		duration  = fs.Duration("duration", def.Duration, "echo: measurement window")
		perProc   = fs.Int("per-process", def.PerProcess, "connections per server or client process at most (one process holds < 20k fds)")
		clients   = fs.Int("echo-clients", def.EchoClients, "load-client processes in echo runs (one epoller each)")
		rounds    = fs.Int("rounds", def.Rounds, "echo and pipelined: rounds over all servers; rows report the median round")
		pipeConns = fs.Int("pipe-conns", def.PipeConns, "pipelined: connections")
		pipeDepth = fs.Int("pipe-depth", def.PipeDepth, "pipelined: messages in flight per connection")
		pipeSize  = units.Size(def.PipeMsgBytes)
		pipeBuf   = units.Size(def.PipeSockBuf)
	)
	fs.Var(servers, "servers", "servers to run: "+strings.Join(bench.Servers(), ","))
	fs.Var(tests, "tests", "tests to run: "+strings.Join(bench.Tests(), ","))
	fs.Var(idleConns, "idle-conns", "idle: connection counts")
	fs.Var(echoConns, "echo-conns", "echo: connection counts")
	fs.Var(sizes, "sizes", "echo: message sizes, the whole frame on the wire (header included)")
	fs.Var(&pipeSize, "pipe-size", "pipelined: message size")
	fs.Var(&pipeBuf, "pipe-sockbuf", "pipelined: the server's SO_SNDBUF and the clients' SO_RCVBUF")
	log, done, code := parseLogged(fs, args, stderr)
	if done {
		return code
	}
	cfg := bench.Config{
		Out: *out, Floodgate: *floodgate, Peer: *peer,
		Servers: servers.v, Tests: tests.v, IdleConns: idleConns.v, EchoConns: echoConns.v, Sizes: sizes.v,
		Warmup: *warmup, Duration: *duration, PerProcess: *perProc, EchoClients: *clients, Rounds: *rounds,
		PipeConns: *pipeConns, PipeDepth: *pipeDepth, PipeMsgBytes: pipeSize.Int(), PipeSockBuf: pipeBuf.Int(),
		Logger: log,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	if _, err := bench.Run(ctx, cfg); err != nil {
		log.Error("bench failed", "err", err, "elapsed", time.Since(start).Round(time.Second))
		if errors.Is(err, context.Canceled) {
			return 130
		}
		return 1
	}
	log.Info("bench done", "out", *out, "elapsed", time.Since(start).Round(time.Second))
	return 0
}

// runBenchClient is a load-client process: internal to the harness, which drives it
// over stdin and stdout (see package bench).
func runBenchClient(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench client", flag.ContinueOnError)
	var (
		targets = list[netip.AddrPort](nil, netip.ParseAddrPort)
		src     = fs.String("src", "", "source address to dial from (empty: the kernel's choice)")
		conns   = fs.Int("conns", 0, "connections to open")
		window  = fs.Int("dial-window", 0, "connects in flight at once (0: default)")
		timeout = fs.Duration("connect-timeout", 0, "bound on establishing every connection (0: default)")
		rcvbuf  = units.Size(0)
		wsConns = fs.Bool("ws", false, "WebSocket connections: each sends the opening handshake and counts once upgraded (idle only)")
	)
	fs.Var(targets, "targets", "servers, ip:port, comma-separated; connections go round-robin")
	fs.Var(&rcvbuf, "rcvbuf", "SO_RCVBUF per connection (0: kernel autotuning)")
	log, done, code := parseLogged(fs, args, stderr)
	if done {
		return code
	}
	cfg := bench.ClientConfig{Targets: targets.v, Conns: *conns, DialWindow: *window, ConnectTimeout: *timeout,
		RecvBuffer: rcvbuf.Int(), WebSocket: *wsConns, Logger: log}
	if *src != "" {
		var err error
		if cfg.Source, err = netip.ParseAddr(*src); err != nil {
			fmt.Fprintln(stderr, "bench client: -src:", err)
			return exitcode.Failure
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.ServeClient(ctx, cfg, os.Stdin, stdout); err != nil {
		log.Error("bench client failed", "err", err)
		return 1
	}
	return 0
}

// listFlag is a comma-separated list flag.
type listFlag[T any] struct {
	v     []T
	parse func(string) (T, error)
}

func list[T any](def []T, parse func(string) (T, error)) *listFlag[T] {
	return &listFlag[T]{v: def, parse: parse}
}

// String implements flag.Value.
func (l *listFlag[T]) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(l.v))
	for i, v := range l.v {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value: the list replaces the default.
func (l *listFlag[T]) Set(s string) error {
	l.v = nil
	for f := range strings.SplitSeq(s, ",") {
		v, err := l.parse(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		l.v = append(l.v, v)
	}
	return nil
}

func parseSize(s string) (int, error) {
	n, err := units.ParseSize(s)
	return n.Int(), err
}
