// Package stack runs the whole IM stack — state, msg, router, ipconf, control and
// gateways — in one process on loopback, each component on its own listeners and
// talking to the others over the same internal links and HTTP APIs as when they run
// as separate processes. It is `floodgate up` and the integration tests' harness.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
	"github.com/floodgate/floodgate/gateway/cluster"
	"github.com/floodgate/floodgate/gateway/control"
	"github.com/floodgate/floodgate/gateway/ipconf"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/gateway/router"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/internal/keys"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Config configures a stack.
type Config struct {
	Host string // address every component binds (port 0); default 127.0.0.1
	// Keys are the stack's secrets (SECURITY.md): each left nil is generated.
	// Given ones must be at least keys.MinLen bytes and pairwise different.
	Keys     Keys
	Gateways int // default 2
	// LeaseTTL is each gateway's lease; default 3s.
	LeaseTTL time.Duration
	// Heartbeat is announced to clients; default 30s.
	Heartbeat time.Duration
	Inbox     int // messages per user kept until acked; default 1024
	// Gateway tweaks each gateway's reactor configuration (Addr is set by the stack).
	Gateway func(i int, rc *reactor.Config)
	// Rates are the gateways' client rate limits; nil: node.DefaultRates().
	Rates *node.Rates
	// Pages are what the gateways' WebSocket ports serve to a plain GET
	// (node.Config.Pages): the chat page.
	Pages  map[string][]byte
	Logger *slog.Logger
}

// Keys are a stack's three secrets, each given only to the components that
// need it.
type Keys struct {
	// Token signs LOGIN tokens: the gateways verify them with it, and whoever
	// mints tokens for the stack's clients needs it too.
	Token []byte
	// Cluster authenticates every internal link (state, msg, router, the
	// gateways' links, ipconf's and control's state clients).
	Cluster []byte
	// Admin is the bearer token of control's POST /v1/drain and /v1/undrain.
	Admin []byte
}

// Addrs are where the running components listen.
type Addrs struct {
	State, Msg, Router string // link addresses
	Ipconf, Control    string // HTTP base URLs
	Admin              string // one admin server for the process: /metrics, pprof
	Gateways           []Gateway
}

// Gateway is one gateway's addresses: its client port, its WebSocket port (which
// also serves the browser chat page at /chat) and its link.
type Gateway struct {
	ID, Addr, WS, Link string
}

// Stack is a running stack.
type Stack struct {
	Addrs
	// Keys are the keys in use, the generated ones included.
	Keys     Keys
	cfg      Config
	log      *slog.Logger
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	gwCancel map[string]context.CancelFunc
	gwDone   map[string]chan struct{}
	errs     []error
	reg      *prometheus.Registry
	// gwRegs holds each running gateway's own registry (a restart replaces it:
	// the same names register again). The admin /metrics gathers them beside
	// reg, each series labelled gateway=<id>.
	gwRegs  map[string]*prometheus.Registry
	closers []func()
}

// Up starts every component and returns once all are serving and every gateway
// holds its lease.
func Up(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Gateways <= 0 {
		cfg.Gateways = 2
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 3 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 30 * time.Second
	}
	if cfg.Inbox <= 0 {
		cfg.Inbox = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, k := range []*[]byte{&cfg.Keys.Token, &cfg.Keys.Cluster, &cfg.Keys.Admin} {
		if *k == nil {
			*k = keys.Generate()
		}
	}
	if err := keys.Validate(keys.Named{Name: "token key", Key: cfg.Keys.Token},
		keys.Named{Name: "cluster key", Key: cfg.Keys.Cluster}, keys.Named{Name: "admin token", Key: cfg.Keys.Admin}); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s := &Stack{Keys: cfg.Keys, cfg: cfg, log: cfg.Logger, cancel: cancel, reg: admin.NewRegistry(),
		gwCancel: map[string]context.CancelFunc{}, gwDone: map[string]chan struct{}{}, gwRegs: map[string]*prometheus.Registry{}}
	if err := s.start(ctx, runCtx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Stack) any() string { return net.JoinHostPort(s.cfg.Host, "0") }

// run runs f until the stack stops, recording its error.
func (s *Stack) run(name string, f func(context.Context) error, ctx context.Context) {
	s.wg.Go(func() {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			s.mu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
			s.mu.Unlock()
			s.log.Error("component stopped", "component", name, "err", err)
		}
	})
}

func (s *Stack) start(ctx, runCtx context.Context) error {
	cfg, log := s.cfg, s.log
	// state
	st, err := state.NewServer(state.ServerConfig{Addr: s.any(), Secret: cfg.Keys.Cluster, Store: state.NewMemory(state.MemoryConfig{}),
		Logger: log.With("component", "state"), Registry: s.reg})
	if err != nil {
		return err
	}
	s.State = st.Addr()
	s.run("state", st.Serve, runCtx)
	stateClient := func(name string) (*state.Client, error) {
		c, err := state.Dial(state.ClientConfig{Addr: s.State, Secret: cfg.Keys.Cluster, Name: name, Logger: log.With("component", name)})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, c.Close)
		return c, c.WaitConnected(ctx) // dependents start with a working link
	}
	// router
	rst, err := stateClient("router")
	if err != nil {
		return err
	}
	rt, err := router.New(router.Config{Addr: s.any(), Secret: cfg.Keys.Cluster, State: rst, Registry: s.reg, Logger: log})
	if err != nil {
		return err
	}
	rst.Watch(rt.SetGateways)
	s.Router = rt.Addr()
	s.run("router", rt.Serve, runCtx)
	// msg, delivering through the router (the same defaults as `floodgate msg`)
	ms, err := msg.NewServer(msg.ServerConfig{Addr: s.any(), Secret: cfg.Keys.Cluster, Store: msg.NewMemory(cfg.Inbox),
		Router: s.Router, Name: "msg", Logger: log.With("component", "msg"), Registry: s.reg})
	if err != nil {
		return err
	}
	s.Msg = ms.Addr()
	s.run("msg", ms.Serve, runCtx)
	// ipconf and control, following the gateway table
	ist, err := stateClient("ipconf")
	if err != nil {
		return err
	}
	ip, err := ipconf.New(ipconf.Config{Heartbeat: cfg.Heartbeat, Registerer: s.reg, Logger: log})
	if err != nil {
		return err
	}
	s.run("ipconf", func(ctx context.Context) error { return ip.Run(ctx, ist) }, runCtx)
	if s.Ipconf, err = s.serveHTTP(runCtx, "ipconf", admin.API(ip.Handler(), ip.Health)); err != nil {
		return err
	}
	cst, err := stateClient("control")
	if err != nil {
		return err
	}
	ctl, err := control.New(cst, control.Config{LinkSecret: cfg.Keys.Cluster, AdminToken: cfg.Keys.Admin, Registerer: s.reg, Logger: log})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, ctl.Close)
	s.run("control", ctl.Run, runCtx)
	if s.Control, err = s.serveHTTP(runCtx, "control", admin.API(ctl.Handler(), ctl.Health)); err != nil {
		return err
	}
	if s.Admin, err = s.serveHTTP(runCtx, "admin", s.adminHandler()); err != nil {
		return err
	}
	// gateways
	for i := 1; i <= cfg.Gateways; i++ {
		if _, err := s.StartGateway(ctx, fmt.Sprintf("gw-%d", i)); err != nil {
			return err
		}
	}
	return nil
}

// adminHandler is admin.Handler for the whole process: its /metrics gathers the
// shared registry (state, msg, router, ipconf, control, Go and process) and every
// running gateway's registry, whose series carry the label gateway=<id>, as
// Prometheus would label separate gateway processes by target.
func (s *Stack) adminHandler() http.Handler {
	mux := admin.DebugHandler()
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		s.mu.Lock()
		gs := prometheus.Gatherers{s.reg}
		for id, reg := range s.gwRegs {
			gs = append(gs, labelled{reg, id})
		}
		s.mu.Unlock()
		return gs.Gather()
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.Handle("GET /healthz", admin.Health(nil))
	return mux
}

// labelled gathers a gateway's registry and adds gateway=<id> to every series
// that lacks a gateway label (the reactor's and the links' series; node's and
// cluster's carry it already).
type labelled struct {
	reg *prometheus.Registry
	id  string
}

// Gather implements prometheus.Gatherer.
func (l labelled) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := l.reg.Gather()
	name := "gateway"
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			if slices.ContainsFunc(m.Label, func(lp *dto.LabelPair) bool { return lp.GetName() == name }) {
				continue // the gateway's own metrics label themselves
			}
			m.Label = append(m.Label, &dto.LabelPair{Name: &name, Value: &l.id})
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
	}
	return mfs, err
}

// serveHTTP serves h on a new listener until the stack stops; it returns the base URL.
func (s *Stack) serveHTTP(ctx context.Context, name string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", s.any())
	if err != nil {
		return "", fmt.Errorf("%s listener: %w", name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	s.wg.Go(func() { srv.Serve(ln) })
	s.wg.Go(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	return "http://" + ln.Addr().String(), nil
}

// StartGateway starts (or restarts) gateway id and waits until it holds its lease.
func (s *Stack) StartGateway(ctx context.Context, id string) (Gateway, error) {
	cfg, log := s.cfg, s.log.With("component", id)
	signer, err := proto.NewSigner(cfg.Keys.Token)
	if err != nil {
		return Gateway{}, err
	}
	reg := prometheus.NewRegistry()
	rc := reactor.Config{Addr: s.any(), ShutdownTimeout: 2 * time.Second}
	if cfg.Gateway != nil {
		cfg.Gateway(len(s.Gateways), &rc)
	}
	gw, err := cluster.NewGateway(cluster.GatewayConfig{
		Node: node.Config{Reactor: rc, WSAddr: s.any(), Pages: cfg.Pages, Heartbeat: cfg.Heartbeat, Signer: signer, Rates: cfg.Rates},
		ID:   id, StateAddr: s.State, MsgAddr: s.Msg, LinkAddr: s.any(), Secret: cfg.Keys.Cluster,
		LeaseTTL: cfg.LeaseTTL,
		Registry: reg, // per gateway: restarts re-register the same names
		Logger:   log,
	})
	if err != nil {
		return Gateway{}, err
	}
	gctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := gw.Run(gctx); err != nil {
			log.Error("gateway stopped", "err", err)
		}
	}()
	select {
	case <-gw.Ready():
	case <-ctx.Done():
		cancel()
		<-done
		return Gateway{}, ctx.Err()
	}
	g := Gateway{ID: id, Addr: gw.Node().Reactor().Addr().String(), WS: gw.Node().WSAddr(), Link: gw.LinkAddr()}
	s.mu.Lock()
	s.gwCancel[id], s.gwDone[id], s.gwRegs[id] = cancel, done, reg
	replaced := false
	for i := range s.Gateways {
		if s.Gateways[i].ID == id {
			s.Gateways[i], replaced = g, true
		}
	}
	if !replaced {
		s.Gateways = append(s.Gateways, g)
	}
	s.mu.Unlock()
	return g, nil
}

// StopGateway stops gateway id cleanly (KICK SHUTDOWN, lease released).
func (s *Stack) StopGateway(id string) error {
	s.mu.Lock()
	cancel, done := s.gwCancel[id], s.gwDone[id]
	delete(s.gwCancel, id)
	delete(s.gwDone, id)
	delete(s.gwRegs, id)
	s.mu.Unlock()
	if cancel == nil {
		return fmt.Errorf("stack: no running gateway %q", id)
	}
	cancel()
	<-done
	return nil
}

// Close stops everything and returns the errors components stopped with.
func (s *Stack) Close() error {
	s.mu.Lock()
	ids := make([]string, 0, len(s.gwCancel))
	for id := range s.gwCancel {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.StopGateway(id)
	}
	s.cancel()
	for _, c := range s.closers {
		c()
	}
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}
