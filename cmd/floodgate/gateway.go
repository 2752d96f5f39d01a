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
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/internal/units"
)

func runGateway(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	var (
		id           = fs.String("id", "gw-1", "gateway id, in metrics and logs")
		listen       = fs.String("listen", "127.0.0.1:7000", "client listen address (ip:port)")
		adminAddr    = fs.String("admin", "127.0.0.1:7001", "admin address for /metrics, /healthz, pprof (empty: off)")
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
		stateAddr    = fs.String("state", "", "state service link address: join the full stack (with -msg); empty: single gateway")
		msgAddr      = fs.String("msg", "", "msg service link address (with -state)")
		linkAddr     = fs.String("link", "127.0.0.1:0", "this gateway's link address for router pushes and control drains (with -state)")
		leaseTTL     = fs.Duration("lease-ttl", 3*time.Second, "the gateway's lease in the state service: its sessions die within this of a crash")
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
	var sec secretFlags
	sec.register(fs)
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
		ID: *id, Reactor: rc, Heartbeat: *heartbeat, MaxFrame: maxFrame.Int(), Echo: *echo, Logger: log,
	}
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
	var cl *cluster.Cluster
	if !*echo {
		secret, err := sec.load()
		if err != nil {
			fmt.Fprintln(stderr, "gateway:", err)
			return 2
		}
		if cfg.Signer, err = proto.NewSigner(secret); err != nil {
			fmt.Fprintln(stderr, "gateway:", err)
			return 2
		}
		switch {
		case *stateAddr == "" && *msgAddr == "":
			cfg.Backend = node.NewLocal(msg.NewMemory(*inbox))
		case *stateAddr == "" || *msgAddr == "":
			fmt.Fprintln(stderr, "gateway: -state and -msg go together")
			return 2
		default:
			st, err := state.Dial(state.ClientConfig{Addr: *stateAddr, Secret: secret, Name: *id, Logger: log, Registry: reg})
			if err != nil {
				fmt.Fprintln(stderr, "gateway:", err)
				return 2
			}
			defer st.Close()
			ms, err := msg.Dial(msg.ClientConfig{Addr: *msgAddr, Secret: secret, Name: *id, Logger: log, Registry: reg})
			if err != nil {
				fmt.Fprintln(stderr, "gateway:", err)
				return 2
			}
			defer ms.Close()
			cl, err = cluster.New(cluster.Config{ID: *id, LinkAddr: *linkAddr, AdminAddr: adminURL, Secret: secret,
				State: st, Msgs: ms, LeaseTTL: *leaseTTL, Registry: reg, Logger: log})
			if err != nil {
				log.Error("gateway failed to start", "err", err)
				return 1
			}
			cfg.Backend = cl
			if *workers == 0 {
				// Handlers here wait on network calls (a LOGIN on state and msg): the
				// pool must be wide enough to overlap those waits in a reconnect storm.
				cfg.Reactor.Workers = 64
			}
		}
	}
	cfg.Registry = reg
	n, err := node.New(cfg)
	if err != nil {
		log.Error("gateway failed to start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cl != nil {
		// Hold the lease (and serve the link) before taking clients: a LOGIN must be
		// able to register. The cluster outlives the node's shutdown a moment, so the
		// node's KICK SHUTDOWNs go out before the lease is released.
		cctx, cstop := context.WithCancel(context.Background())
		cdone := make(chan struct{})
		go func() { cl.Run(cctx, n.Reactor().Addr().String()); close(cdone) }()
		defer func() { cstop(); <-cdone }()
		select {
		case <-cl.Ready():
		case <-ctx.Done():
			return 0
		}
	}
	// One machine-readable line on stdout for harnesses; everything else is logged.
	fmt.Fprintf(stdout, "READY gateway %s %s\n", n.Reactor().Addr(), adminURL)
	if err := n.Run(ctx); err != nil {
		log.Error("gateway stopped with an error", "err", err)
		return 1
	}
	return 0
}
