// Package control watches the gateway fleet and acts on it: it raises and
// resolves alerts (a gateway down, over its soft connection limit, congested),
// drains gateways on request (withdraw from ipconf, then move clients off in paced
// batches) and recommends scaling the fleet out or in.
//
// It follows the gateway table from the state service, either by polling (Run) or
// by being handed snapshots (Update, which fits the state client's Watch).
package control

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/state"
)

// Store is what control needs of the state service. Every state.Store,
// *state.Client included, satisfies it.
type Store interface {
	// Gateways returns every gateway known, live or not.
	Gateways(ctx context.Context) ([]state.Gateway, error)
	// SetDraining marks a gateway draining (ipconf stops advertising it) or not;
	// state.ErrUnknownGateway for a gateway never registered.
	SetDraining(ctx context.Context, id string, draining bool) error
}

// Service is the control plane. It is safe for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	store   Store
	metrics *metrics

	mu          sync.Mutex // guards everything below
	gws         map[string]*tracked
	events      *ring
	scale       scaler
	rec         Recommendation
	lastApplied time.Time
	links       map[string]*gatewayLink // by gateway id, created by Drain
	closed      bool
}

// gatewayLink is the link client to one gateway's LinkAddr.
type gatewayLink struct {
	addr string
	c    *link.Client
}

// New returns a Service over store. Close releases its link connections.
func New(store Store, cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, log: cfg.Logger.With("component", "control"), store: store,
		gws: map[string]*tracked{}, events: newRing(cfg.RingSize), links: map[string]*gatewayLink{},
		rec: Recommendation{Action: ActionNone, Reason: "no gateway table yet"},
	}
	if s.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	return s, nil
}

// Update applies a snapshot of the gateway table (every gateway, live or not):
// alerts are raised and resolved, the recommendation is re-evaluated and link
// clients of gateways that went away are closed. Its signature fits the state
// client's Watch callback.
func (s *Service) Update(gws []state.Gateway) {
	var stale []*link.Client
	defer func() { // after unlocking: Close waits for the client's goroutine
		for _, c := range stale {
			c.Close()
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.lastApplied = now

	var f fleet
	present := make(map[string]bool, len(gws))
	for _, g := range gws {
		present[g.ID] = true
		t := s.gws[g.ID]
		if t == nil {
			t = &tracked{active: map[Kind]bool{}}
			s.gws[g.ID] = t
		}
		s.cfg.observe(t, g, now, s.emitter(t, g.ID, now))
		f.add(t)
	}
	for id, t := range s.gws {
		if present[id] {
			continue
		}
		s.cfg.vanish(t, s.emitter(t, id, now))
		if !t.active[KindGatewayDown] {
			delete(s.gws, id) // kept while down, so its return resolves the alert
		}
	}
	for id, l := range s.links {
		if t := s.gws[id]; t == nil || !t.live || t.g.LinkAddr != l.addr {
			stale = append(stale, l.c)
			delete(s.links, id)
		}
	}
	s.rec = s.cfg.recommend(&s.scale, now, f.serving, f.conns, f.capacity)
	s.updateGauges()
}

// fleet sums the figures the recommendation works from.
type fleet struct {
	serving         int   // live and not draining
	conns, capacity int64 // conns of every live gateway; max_conns of the serving ones
}

func (f *fleet) add(t *tracked) {
	if !t.live {
		return
	}
	f.conns += int64(max(t.g.Load.Conns, 0))
	if !t.draining() {
		f.serving++
		f.capacity += int64(max(t.g.Load.MaxConns, 0))
	}
}

// updateGauges sets the gauges from the current state. Called with s.mu held.
func (s *Service) updateGauges() {
	s.metrics.serving.Set(float64(s.rec.Gateways))
	s.metrics.utilisation.Set(s.rec.Utilisation)
	s.metrics.target.Set(float64(s.rec.Target))
	active := map[Kind]int{}
	for _, t := range s.gws {
		for k, on := range t.active {
			if on {
				active[k]++
			}
		}
	}
	for _, k := range kinds() {
		s.metrics.active.WithLabelValues(string(k)).Set(float64(active[k]))
	}
}

// emitter returns the emit function observe and vanish report through: it
// records a raise only if the alert is not active and a resolve only if it is,
// keeps the event, logs it and counts it. Called with s.mu held.
func (s *Service) emitter(t *tracked, id string, now time.Time) func(Kind, string, bool) {
	return func(k Kind, detail string, resolved bool) {
		if t.active[k] != resolved {
			return
		}
		t.active[k] = !resolved
		e := s.events.add(Event{Time: now, Kind: k, Gateway: id, Detail: detail, Resolved: resolved})
		if resolved {
			s.log.Info("alert resolved", "seq", e.Seq, "kind", k, "gateway", id, "detail", detail)
			return
		}
		s.metrics.alerts.WithLabelValues(string(k)).Inc()
		s.log.Warn("alert", "seq", e.Seq, "kind", k, "gateway", id, "detail", detail)
	}
}

// Alerts returns the kept events with seq > after, oldest first; the seq of the
// newest event (0 if none); and whether events after `after` were already
// dropped from the bounded ring.
func (s *Service) Alerts(after uint64) (events []Event, last uint64, truncated bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	events, truncated = s.events.since(after)
	return events, s.events.last(), truncated
}

// Recommendation returns the scaling recommendation from the latest table.
func (s *Service) Recommendation() Recommendation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec
}

// Run reads the table from the store every Config.PollInterval and applies it,
// until ctx ends; then it returns nil. A failed read is logged and counted.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := s.poll(ctx); err != nil && ctx.Err() == nil {
			s.metrics.sourceErrors.Inc()
			s.log.Warn("reading the gateway table failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Service) poll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 4*s.cfg.PollInterval)
	defer cancel()
	gws, err := s.store.Gateways(ctx)
	if err != nil {
		return fmt.Errorf("control: gateway table: %w", err)
	}
	s.Update(gws)
	return nil
}

// Health fails until the first table is applied and whenever none has been for
// ten poll intervals.
func (s *Service) Health() error {
	s.mu.Lock()
	last := s.lastApplied
	s.mu.Unlock()
	if last.IsZero() {
		return fmt.Errorf("control: no gateway table yet")
	}
	if age := s.cfg.Now().Sub(last); age > 10*s.cfg.PollInterval {
		return fmt.Errorf("control: gateway table is %v old", age.Round(time.Millisecond))
	}
	return nil
}

// Close closes the link clients; later drains fail with ErrClosed.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	links := s.links
	s.links = map[string]*gatewayLink{}
	s.mu.Unlock()
	for _, l := range links {
		l.c.Close()
	}
}
