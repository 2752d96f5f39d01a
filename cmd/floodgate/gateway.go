package main

import (
	"flag"
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
	var f gatewayFlags
	f.register(r.fs)
	return r.main(args, stdout, stderr, f.build)
}

// gatewayFlags are the gateway command's flags.
type gatewayFlags struct {
	id, listen, wsListen     string
	heartbeat                time.Duration
	echo                     bool
	inbox                    int
	stateAddr, msgAddr, link string
	leaseTTL, isolateOver    time.Duration
	maxFrame                 units.Size
	engine                   engineFlags
	limits                   limitFlags
	keys                     *keyFlags
}

func (f *gatewayFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.id, "id", "gw-1", "gateway id, in metrics and logs")
	fs.StringVar(&f.listen, "listen", defGateway, "client listen address (ip:port): the public port")
	fs.StringVar(&f.wsListen, "ws-listen", "", "WebSocket listen address (ip:port): the same client protocol for browsers, and the chat page at /chat (empty: off)")
	fs.DurationVar(&f.heartbeat, "heartbeat", 30*time.Second, "PING interval announced to clients")
	fs.BoolVar(&f.echo, "echo", false, "answer every frame with itself (reactor benchmark mode; no login)")
	fs.IntVar(&f.inbox, "inbox", 1024, "messages kept per user until acknowledged (single-gateway store)")
	fs.StringVar(&f.stateAddr, "state", "", "state service link address, "+defState+" by default where state runs: join the full stack (with -msg); empty: single gateway")
	fs.StringVar(&f.msgAddr, "msg", "", "msg service link address, "+defMsg+" by default where msg runs (with -state)")
	fs.StringVar(&f.link, "link", defGatewayLink, "this gateway's link address for router pushes and control drains (with -state): keep it private")
	fs.DurationVar(&f.leaseTTL, "lease-ttl", 3*time.Second, "the gateway's lease in the state service: its sessions die within this of a crash")
	fs.DurationVar(&f.isolateOver, "isolate-over", 5*time.Second, "cut off from the state service while other gateways are not, move every client to them over this long")
	f.maxFrame = units.Size(proto.DefaultMaxFrame)
	fs.Var(&f.maxFrame, "max-frame", "largest frame accepted and announced")
	f.engine.register(fs)
	f.keys = registerKeys(fs, tokenKey, clusterKey)
	f.limits.register(fs)
}

// build makes the gateway the flags describe: an echo server, a lone gateway with
// its own store, or one joining the full stack (which serves once it holds its
// lease).
func (f *gatewayFlags) build(e env) (serving, error) {
	rc, err := f.engine.config(f.listen)
	if err != nil {
		return serving{}, err
	}
	cfg := node.Config{
		ID: f.id, Reactor: rc, WSAddr: f.wsListen, Pages: map[string][]byte{"/chat": webchat.Page()},
		Heartbeat: f.heartbeat, MaxFrame: f.maxFrame.Int(), Echo: f.echo, Registry: e.reg, Logger: e.log,
	}
	alone := f.stateAddr == "" && f.msgAddr == ""
	if !alone && (f.stateAddr == "" || f.msgAddr == "") {
		return serving{}, usagef("-state and -msg go together")
	}
	held, err := f.loadKeys(&cfg, alone)
	if err != nil {
		return serving{}, err
	}
	f.limits.apply(&cfg)
	var sv serving
	var n *node.Node
	if f.echo || alone {
		if !f.echo {
			cfg.Backend = node.NewLocal(msg.NewMemory(f.inbox))
		}
		if n, err = node.New(cfg); err != nil {
			return serving{}, err
		}
		sv.run = n.Run
	} else {
		gw, err := cluster.NewGateway(cluster.GatewayConfig{Node: cfg, ID: f.id, StateAddr: f.stateAddr, MsgAddr: f.msgAddr,
			LinkAddr: f.link, AdminAddr: e.adminURL, Secret: held.cluster, LeaseTTL: f.leaseTTL, IsolateOver: f.isolateOver,
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
}

// loadKeys loads the keys the gateway needs before anything listens, and sets
// cfg's token verifier: an echo gateway (no login) needs none, a lone gateway only
// the token key, one in the full stack also the cluster key for its links.
func (f *gatewayFlags) loadKeys(cfg *node.Config, alone bool) (heldKeys, error) {
	if f.echo {
		return heldKeys{}, nil
	}
	need := []keyKind{tokenKey, clusterKey}
	if alone {
		need = need[:1]
	}
	held, err := f.keys.load(need...)
	if err != nil {
		return held, usageError{err}
	}
	if cfg.Signer, err = proto.NewSigner(held.token); err != nil {
		return held, usageError{err}
	}
	return held, nil
}

// engineFlags are the gateway's connection-engine (reactor) flags.
type engineFlags struct {
	maxConns, epollers, listeners, workers int
	acceptRate                             float64
	idle, shutdownWait                     time.Duration
	highWater, hardCap, sndbuf, rcvbuf     units.Size
	readiness                              string
}

func (f *engineFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.maxConns, "max-conns", 0, "connection limit (0: derived from RLIMIT_NOFILE)")
	fs.IntVar(&f.epollers, "epollers", 0, "epoll loops (0: GOMAXPROCS)")
	fs.IntVar(&f.listeners, "accept-loops", 0, "accept loops, one SO_REUSEPORT listener each (0: GOMAXPROCS)")
	fs.IntVar(&f.workers, "workers", 0, "worker goroutines for deferred frames (0: 4×GOMAXPROCS alone, 64 in the full stack, where LOGIN, SEND and SYNC wait on state and msg)")
	fs.Float64Var(&f.acceptRate, "accept-rate", 0, "admissions per second across accept loops (0: unlimited)")
	fs.DurationVar(&f.idle, "idle-timeout", 0, "close connections silent this long (0: 3×heartbeat)")
	fs.DurationVar(&f.shutdownWait, "shutdown-timeout", 5*time.Second, "bound on the graceful close at SIGTERM")
	f.highWater, f.hardCap = units.Size(64<<10), units.Size(1<<20)
	fs.Var(&f.highWater, "write-high-water", "queued output per connection that pauses its reading")
	fs.Var(&f.hardCap, "write-hard-cap", "queued output per connection that kicks it as SLOW")
	fs.Var(&f.sndbuf, "sndbuf", "SO_SNDBUF per connection (0: kernel autotuning)")
	fs.Var(&f.rcvbuf, "rcvbuf", "SO_RCVBUF per connection (0: kernel autotuning)")
	fs.StringVar(&f.readiness, "write-readiness", "dynamic", "EPOLLOUT use: dynamic (armed while output is queued) or always")
}

// config is the reactor configuration for a client port on addr.
func (f *engineFlags) config(addr string) (reactor.Config, error) {
	rc := reactor.Config{
		Addr: addr, MaxConns: f.maxConns, Epollers: f.epollers, Listeners: f.listeners, Workers: f.workers,
		AcceptRate: f.acceptRate, IdleTimeout: f.idle, ShutdownTimeout: f.shutdownWait,
		WriteHighWater: f.highWater.Int(), WriteHardCap: f.hardCap.Int(),
		SocketSendBuffer: f.sndbuf.Int(), SocketRecvBuffer: f.rcvbuf.Int(),
	}
	switch f.readiness {
	case "dynamic":
		rc.WriteReadiness = reactor.WriteDynamic
	case "always":
		rc.WriteReadiness = reactor.WriteAlways
	default:
		return rc, usagef("-write-readiness %q: want dynamic or always", f.readiness)
	}
	return rc, nil
}
