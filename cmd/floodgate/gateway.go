package main

import (
	"io"
	"time"

	"github.com/floodgate/floodgate/gateway/cluster"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/gateway/webchat"
	"github.com/floodgate/floodgate/internal/units"
)

func runGateway(args []string, stdout, stderr io.Writer) int {
	r := newRole("gateway", defGatewayAdmin)
	fs := r.fs
	var (
		id           = fs.String("id", "gw-1", "gateway id, in metrics and logs")
		listen       = fs.String("listen", defGateway, "client listen address (ip:port): the public port")
		wsListen     = fs.String("ws-listen", "", "WebSocket listen address (ip:port): the same client protocol for browsers, and the chat page at /chat (empty: off)")
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
	return r.main(args, stdout, stderr, func(e env) (serving, error) {
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
			return serving{}, usagef("-write-readiness %q: want dynamic or always", *readiness)
		}
		cfg := node.Config{
			ID: *id, Reactor: rc, WSAddr: *wsListen, Pages: map[string][]byte{"/chat": webchat.Page()},
			Heartbeat: *heartbeat, MaxFrame: maxFrame.Int(), Echo: *echo, Registry: e.reg, Logger: e.log,
		}
		// Keys before anything listens. An echo gateway (no login) needs none, a lone
		// gateway only the token key to verify LOGIN tokens, one in the full stack
		// also the cluster key for its links.
		alone := *stateAddr == "" && *msgAddr == ""
		if !alone && (*stateAddr == "" || *msgAddr == "") {
			return serving{}, usagef("-state and -msg go together")
		}
		var held heldKeys
		if !*echo {
			need := []keyKind{tokenKey, clusterKey}
			if alone {
				need = need[:1]
			}
			var err error
			if held, err = kf.load(need...); err != nil {
				return serving{}, usageError{err}
			}
			if cfg.Signer, err = proto.NewSigner(held.token); err != nil {
				return serving{}, usageError{err}
			}
		}
		lim.apply(&cfg)
		var sv serving
		var n *node.Node
		switch {
		case *echo || alone:
			if !*echo {
				cfg.Backend = node.NewLocal(msg.NewMemory(*inbox))
			}
			var err error
			if n, err = node.New(cfg); err != nil {
				return serving{}, err
			}
			sv.run = n.Run
		default:
			gw, err := cluster.NewGateway(cluster.GatewayConfig{Node: cfg, ID: *id, StateAddr: *stateAddr, MsgAddr: *msgAddr,
				LinkAddr: *linkAddr, AdminAddr: e.adminURL, Secret: held.cluster, LeaseTTL: *leaseTTL, IsolateOver: *isolateOver,
				Registry: e.reg, Logger: e.log})
			if err != nil {
				return serving{}, err
			}
			// Hold the lease (and serve the link) before taking clients: a LOGIN must
			// be able to register. READY waits for it.
			n, sv.run, sv.ready = gw.Node(), gw.Run, gw.Ready()
		}
		if ws := n.WSAddr(); ws != "" {
			e.log.Info("WebSocket port listening", "addr", ws)
		}
		sv.addr = n.Reactor().Addr().String()
		return sv, nil
	})
}
