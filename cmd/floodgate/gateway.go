package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
	"github.com/floodgate/floodgate/gateway/cluster"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/internal/units"
)

func runGateway(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	var (
		id           = fs.String("id", "gw-1", "gateway id, in metrics and logs")
		listen       = fs.String("listen", defGateway, "client listen address (ip:port): the public port")
		wsListen     = fs.String("ws-listen", "", "WebSocket listen address (ip:port): the same client protocol for browsers, and the chat page at /chat (empty: off)")
		adminAddr    = fs.String("admin", defGatewayAdmin, "admin address for /metrics, /healthz, pprof and /debug/memstats: keep it private (empty: off)")
		maxConns     = fs.Int("max-conns", 0, "connection limit (0: derived from RLIMIT_NOFILE)")
		epollers     = fs.Int("epollers", 0, "epoll loops (0: GOMAXPROCS)")
		listeners    = fs.Int("accept-loops", 0, "accept loops, one SO_REUSEPORT listener each (0: GOMAXPROCS)")
		workers      = fs.Int("workers", 0, "worker goroutines for deferred frames (0: 4×GOMAXPROCS alone, 64 in the full stack, where LOGIN, SEND and SYNC wait on state and msg)")
		acceptRate   = fs.Float64("accept-rate", 0, "admissions per second across accept loops (0: unlimited)")
		heartbeat    = fs.Duration("heartbeat", 30*time.Second, "PING interval announced to clients")
		idle         = fs.Duration("idle-timeout", 0, "close connections silent this long (0: 3×heartbeat)")
		shutdownWait = fs.Duration("shutdown-timeout", 5*time.Second, "bound on the graceful close at SIGTERM")
		echo         = fs.Bool("echo", false, "answer every frame with itself (reactor benchmark mode; no login)")
		inbox        = fs.Int("inbox", 1024, "messages kept per user until acknowledged (single-gateway store)")
		stateAddr    = fs.String("state", "", "state service link address, "+defState+" by default where state runs: join the full stack (with -msg); empty: single gateway")
		msgAddr      = fs.String("msg", "", "msg service link address, "+defMsg+" by default where msg runs (with -state)")
		linkAddr     = fs.String("link", defGatewayLink, "this gateway's link address for router pushes and control drains (with -state): keep it private")
		leaseTTL     = fs.Duration("lease-ttl", 3*time.Second, "the gateway's lease in the state service: its sessions die within this of a crash")
		isolateOver  = fs.Duration("isolate-over", 5*time.Second, "cut off from the state service while other gateways are not, move every client to them over this long")
		maxFrame     = units.Size(proto.DefaultMaxFrame)
		highWater    = units.Size(64 << 10)
		hardCap      = units.Size(1 << 20)
		sndbuf       units.Size
		rcvbuf       units.Size
		readiness    = fs.String("write-readiness", "dynamic", "EPOLLOUT use: dynamic (armed while output is queued) or always")
	)
	fs.Var(&maxFrame, "max-frame", "largest frame accepted and announced")
	fs.Var(&highWater, "write-high-water", "queued output per connection that pauses its reading")
	fs.Var(&hardCap, "write-hard-cap", "queued output per connection that kicks it as SLOW")
	fs.Var(&sndbuf, "sndbuf", "SO_SNDBUF per connection (0: kernel autotuning)")
	fs.Var(&rcvbuf, "rcvbuf", "SO_RCVBUF per connection (0: kernel autotuning)")
	kf := registerKeys(fs, tokenKey, clusterKey)
	var lim limitFlags
	lim.register(fs)
	log, done, code := parseLogged(fs, args, stderr)
	if done {
		return code
	}
	rc := reactor.Config{
		Addr: *listen, MaxConns: *maxConns, Epollers: *epollers, Listeners: *listeners, Workers: *workers,
		AcceptRate: *acceptRate, IdleTimeout: *idle, ShutdownTimeout: *shutdownWait,
		WriteHighWater: highWater.Int(), WriteHardCap: hardCap.Int(),
		SocketSendBuffer: sndbuf.Int(), SocketRecvBuffer: rcvbuf.Int(),
	}
	switch *readiness {
	case "dynamic":
		rc.WriteReadiness = reactor.WriteDynamic
	case "always":
		rc.WriteReadiness = reactor.WriteAlways
	default:
		fmt.Fprintf(stderr, "gateway: -write-readiness %q: want dynamic or always\n", *readiness)
		return 2
	}
	cfg := node.Config{
		ID: *id, Reactor: rc, WSAddr: *wsListen, Heartbeat: *heartbeat, MaxFrame: maxFrame.Int(), Echo: *echo, Logger: log,
	}
	// Keys before anything listens. An echo gateway (no login) needs none, a lone
	// gateway only the token key to verify LOGIN tokens, one in the full stack
	// also the cluster key for its links.
	alone := *stateAddr == "" && *msgAddr == ""
	if !alone && (*stateAddr == "" || *msgAddr == "") {
		fmt.Fprintln(stderr, "gateway: -state and -msg go together")
		return 2
	}
	var held heldKeys
	if !*echo {
		need := []keyKind{tokenKey, clusterKey}
		if alone {
			need = need[:1]
		}
		var err error
		if held, err = kf.load(need...); err != nil {
			fmt.Fprintln(stderr, "gateway:", err)
			return 2
		}
		if cfg.Signer, err = proto.NewSigner(held.token); err != nil {
			fmt.Fprintln(stderr, "gateway:", err)
			return 2
		}
	}
	lim.apply(&cfg)
	reg := admin.NewRegistry()
	// The admin server comes first so the gateway table can carry its real address.
	adminURL := "-"
	if *adminAddr != "" {
		srv, err := admin.Start(*adminAddr, admin.Handler(reg, nil), log)
		if err != nil {
			log.Error("gateway failed to start", "err", err)
			return 1
		}
		defer srv.Close(time.Second)
		adminURL = srv.Addr()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var n *node.Node
	run := func(ctx context.Context) error { return n.Run(ctx) }
	if !*echo {
		if alone {
			cfg.Backend = node.NewLocal(msg.NewMemory(*inbox))
		} else {
			gw, err := cluster.NewGateway(cluster.GatewayConfig{Node: cfg, ID: *id, StateAddr: *stateAddr, MsgAddr: *msgAddr,
				LinkAddr: *linkAddr, AdminAddr: adminURL, Secret: held.cluster, LeaseTTL: *leaseTTL, IsolateOver: *isolateOver,
				Registry: reg, Logger: log})
			if err != nil {
				log.Error("gateway failed to start", "err", err)
				return 1
			}
			n = gw.Node()
			// Hold the lease (and serve the link) before taking clients: a LOGIN must
			// be able to register. READY is printed once it is held.
			errc := make(chan error, 1)
			go func() { errc <- gw.Run(ctx) }()
			run = func(context.Context) error { return <-errc }
			select {
			case <-gw.Ready():
			case err := <-errc:
				if err != nil {
					log.Error("gateway stopped with an error", "err", err)
					return 1
				}
				return 0
			}
		}
	}
	if n == nil {
		cfg.Registry = reg
		var err error
		if n, err = node.New(cfg); err != nil {
			log.Error("gateway failed to start", "err", err)
			return 1
		}
	}
	if ws := n.WSAddr(); ws != "" {
		log.Info("WebSocket port listening", "addr", ws)
	}
	// One machine-readable line on stdout for harnesses; everything else is logged.
	fmt.Fprintf(stdout, "READY gateway %s %s\n", n.Reactor().Addr(), adminURL)
	if err := run(ctx); err != nil {
		log.Error("gateway stopped with an error", "err", err)
		return 1
	}
	return 0
}
