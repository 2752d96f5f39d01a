package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus"
)

// GatewayConfig configures a whole gateway in the full stack.
type GatewayConfig struct {
	// Node configures the client side (reactor, heartbeat, limits, Signer). Its ID,
	// Backend, Registry and Logger are set from here; Reactor.Workers defaults to 64
	// (handlers wait on state and msg: the pool must overlap those waits).
	Node node.Config
	// ID names the gateway in the directory, metrics and logs.
	ID string
	// StateAddr and MsgAddr are the link addresses of the state and msg services.
	StateAddr, MsgAddr string
	// LinkAddr is where the gateway's own link listens (router pushes, control
	// drains); AdminAddr is advertised in the gateway table.
	LinkAddr, AdminAddr string
	Secret              []byte
	LeaseTTL            time.Duration // see Config
	KickWait            time.Duration // see Config
	IsolateOver         time.Duration // see Config
	SendTimeout         time.Duration // see Config
	Registry            prometheus.Registerer
	Logger              *slog.Logger
}

// Gateway is one gateway of the full stack, assembled in one place for every
// command that runs one: its links to the state and msg services, its cluster
// backend (lease, registrations, takeovers) and its node (the client side).
type Gateway struct {
	node *node.Node
	cl   *Cluster
	st   *state.Client
	ms   *msg.Client
	log  *slog.Logger
}

// NewGateway dials the state and msg services (the links come up in the
// background) and binds the gateway's listeners; Run serves.
func NewGateway(cfg GatewayConfig) (*Gateway, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ID == "" || cfg.StateAddr == "" || cfg.MsgAddr == "" {
		return nil, errors.New("cluster: GatewayConfig needs ID, StateAddr and MsgAddr")
	}
	g := &Gateway{log: cfg.Logger}
	// The state link's callbacks reach the cluster, which needs the link to exist
	// first: they go through g, set below before any connection can deliver one.
	var clMu sync.Mutex
	cluster := func() *Cluster { clMu.Lock(); defer clMu.Unlock(); return g.cl }
	st, err := state.Dial(state.ClientConfig{Addr: cfg.StateAddr, Secret: cfg.Secret, Name: cfg.ID, Logger: cfg.Logger,
		Registry: cfg.Registry,
		OnKick: func(prev, by state.Session) {
			if c := cluster(); c != nil {
				c.Kick(prev, by)
			}
		},
		OnKicked: func(prev, by state.Session) {
			if c := cluster(); c != nil {
				c.Kicked(prev, by)
			}
		},
		OnReconnect: func() {
			if c := cluster(); c != nil {
				c.Resync()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("gateway %s: %w", cfg.ID, err)
	}
	ms, err := msg.Dial(msg.ClientConfig{Addr: cfg.MsgAddr, Secret: cfg.Secret, Name: cfg.ID, Logger: cfg.Logger,
		Registry: cfg.Registry})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("gateway %s: %w", cfg.ID, err)
	}
	g.st, g.ms = st, ms
	cl, err := New(Config{ID: cfg.ID, LinkAddr: cfg.LinkAddr, AdminAddr: cfg.AdminAddr, Secret: cfg.Secret,
		State: st, Msgs: ms, LeaseTTL: cfg.LeaseTTL, KickWait: cfg.KickWait, SendTimeout: cfg.SendTimeout, IsolateOver: cfg.IsolateOver,
		Registry: cfg.Registry, Logger: cfg.Logger})
	if err != nil {
		g.closeLinks()
		return nil, err
	}
	clMu.Lock()
	g.cl = cl
	clMu.Unlock()
	nc := cfg.Node
	nc.ID, nc.Backend, nc.Registry, nc.Logger = cfg.ID, cl, cfg.Registry, cfg.Logger
	if nc.Reactor.Workers == 0 {
		nc.Reactor.Workers = 64
	}
	if g.node, err = node.New(nc); err != nil {
		g.closeLinks()
		return nil, err
	}
	return g, nil
}

// Node returns the gateway's client side (its reactor has the client address).
func (g *Gateway) Node() *node.Node { return g.node }

// LinkAddr returns the bound address of the gateway's link listener.
func (g *Gateway) LinkAddr() string { return g.cl.LinkAddr() }

// Ready is closed once the gateway holds its first lease and serves clients.
func (g *Gateway) Ready() <-chan struct{} { return g.cl.Ready() }

// Run holds the lease, then serves clients, until ctx ends; then it closes every
// client connection with KICK SHUTDOWN, and only after that releases the lease and
// closes its links, so the kicks go out while the directory still routes here. A
// gateway stopped before its first lease never serves a client.
func (g *Gateway) Run(ctx context.Context) error {
	defer g.closeLinks()
	cctx, cstop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	addrs := ClientAddrs{Addr: g.node.Reactor().Addr().String(), WSAddr: g.node.WSAddr()}
	wg.Go(func() { g.cl.Run(cctx, addrs) })
	defer func() { cstop(); wg.Wait() }()
	select {
	case <-g.cl.Ready():
	case <-ctx.Done():
		return nil
	}
	if err := g.node.Run(ctx); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}

func (g *Gateway) closeLinks() {
	g.st.Close()
	g.ms.Close()
}
