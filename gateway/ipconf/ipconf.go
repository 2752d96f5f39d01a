// Package ipconf is Floodgate's HTTPDNS: it tells clients which gateways to
// connect to, best first, with weights, a heartbeat hint and a reconnect backoff.
//
// It follows the gateway table (leases and load reports, from the state service)
// and advertises every gateway whose lease is live and that is not draining. Each
// gateway is scored from its smoothed load — remaining capacity, penalised by its
// accept rate and CPU (score.go) — and weighted by its share of the total score.
// The best TopK are shuffled per request by weighted random choice, so a
// reconnect storm spreads out instead of landing on one node, and the rest follow
// as fallbacks.
//
// A table that loses more than half of the live fleet at once is more likely a
// fault on the reporting side (a partitioned or restarted state store) than a
// real mass death, and believing it would herd every client onto the survivors.
// So the vanished gateways stay advertised for Config.FreezeFor and answers say
// "frozen": true. Gateways that lapse or drain one at a time drop out at once.
package ipconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
)

// Source yields the gateway table: every gateway known, live or not.
// *state.Client (like every state.Store) satisfies it.
type Source interface {
	Gateways(ctx context.Context) ([]state.Gateway, error)
}

// Service computes and serves the gateway list. Feed it tables with Update (for
// example from the state client's Watch) or Run (polling a Source), and serve
// Handler. It is safe for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	current atomic.Pointer[view] // nil until the first table is applied

	mu          sync.Mutex // serialises Update and guards the fields below
	load        map[string]*smoothed
	good        *view           // the last table accepted without a freeze
	goodLive    map[string]bool // ids whose lease was live in it (draining or not)
	frozenSince time.Time       // start of the current freeze; zero when not frozen
	lastApplied time.Time

	rngMu sync.Mutex // guards cfg.Rand, which is not safe for concurrent use
}

// New returns a Service with no table yet: until the first Update it answers 503.
func New(cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("component", "ipconf"), load: map[string]*smoothed{}}
	if s.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	return s, nil
}

// Update applies a snapshot of the gateway table (every gateway, live or not).
// Its signature fits the state client's Watch callback.
func (s *Service) Update(gws []state.Gateway) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.lastApplied = now
	live, draining, cands := s.scan(gws, now)

	lost := 0
	for id := range s.goodLive {
		if !live[id] {
			lost++
		}
	}
	if 2*lost > len(s.goodLive) {
		if s.frozenSince.IsZero() {
			s.frozenSince = now
			s.log.Warn("mass gateway loss: freezing the list", "lost", lost, "of", len(s.goodLive), "for", s.cfg.FreezeFor)
		}
		if now.Sub(s.frozenSince) < s.cfg.FreezeFor {
			s.publish(newView(s.withVanished(cands, live, draining), true, now))
			return
		}
		s.log.Warn("freeze period over: accepting the smaller fleet", "live", len(live))
	} else if !s.frozenSince.IsZero() {
		s.log.Info("fleet recovered: freeze lifted", "live", len(live))
	}
	s.frozenSince = time.Time{}
	s.good, s.goodLive = newView(cands, false, now), live
	s.publish(s.good)
}

// scan folds the live gateways' load reports into their averages (forgetting the
// others) and returns the ids with a live lease, the ids marked draining, and the
// gateways to advertise — live, not draining, with a client address — scored.
func (s *Service) scan(gws []state.Gateway, now time.Time) (live, draining map[string]bool, cands []entry) {
	live, draining = make(map[string]bool, len(gws)), map[string]bool{}
	cands = make([]entry, 0, len(gws))
	for i := range gws {
		g := &gws[i]
		if g.Draining {
			draining[g.ID] = true
		}
		if !g.Live(now) {
			continue
		}
		live[g.ID] = true
		sm := s.load[g.ID]
		if sm == nil {
			sm = &smoothed{}
			s.load[g.ID] = sm
		}
		sm.fold(g, now, s.cfg.Window)
		if !g.Draining && g.Addr != "" {
			cands = append(cands, entry{ID: g.ID, Addr: g.Addr, WS: g.WSAddr, Score: s.cfg.score(sm)})
		}
	}
	for id := range s.load {
		if !live[id] {
			delete(s.load, id) // bounded by the live fleet; a returning gateway starts afresh
		}
	}
	return live, draining, cands
}

// withVanished adds to cands, with their last scores, the gateways of the last
// good list that are not live now — except those now marked draining, which were
// withdrawn on purpose. Gateways live now keep their current scores.
func (s *Service) withVanished(cands []entry, live, draining map[string]bool) []entry {
	for _, e := range s.good.entries {
		if !live[e.ID] && !draining[e.ID] {
			cands = append(cands, entry{ID: e.ID, Addr: e.Addr, WS: e.WS, Score: e.Score})
		}
	}
	return cands
}

func (s *Service) publish(v *view) {
	s.current.Store(v)
	s.metrics.advertised.Set(float64(len(v.entries)))
	frozen := 0.0
	if v.frozen {
		frozen = 1
	}
	s.metrics.frozen.Set(frozen)
}

// Run reads the table from src every Config.PollInterval and applies it, until ctx
// ends; then it returns nil. A failed read keeps the current list (it is logged
// and counted); Health reports a list that has gone stale.
func (s *Service) Run(ctx context.Context, src Source) error {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := s.poll(ctx, src); err != nil && ctx.Err() == nil {
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

func (s *Service) poll(ctx context.Context, src Source) error {
	ctx, cancel := context.WithTimeout(ctx, 4*s.cfg.PollInterval)
	defer cancel()
	gws, err := src.Gateways(ctx)
	if err != nil {
		return fmt.Errorf("ipconf: gateway table: %w", err)
	}
	s.Update(gws)
	return nil
}

// Health fails until the first table is applied and whenever none has been for
// Config.StaleAfter.
func (s *Service) Health() error {
	s.mu.Lock()
	last := s.lastApplied
	s.mu.Unlock()
	if last.IsZero() {
		return errors.New("ipconf: no gateway table yet")
	}
	if age := s.cfg.Now().Sub(last); age > s.cfg.StaleAfter {
		return fmt.Errorf("ipconf: gateway table is %v old", age.Round(time.Millisecond))
	}
	return nil
}
