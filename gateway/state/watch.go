package state

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/prometheus/client_golang/prometheus"
)

// watchTable is the set of connections watching the gateway table.
//
// Every snapshot is sent by the one push loop, so each watcher receives snapshots in
// the order they were read and never an older table after a newer one.
type watchTable struct {
	gauge prometheus.Gauge
	kick  chan struct{} // wakes the push loop; capacity 1, so wakes coalesce
	mu    sync.Mutex
	peers map[*link.Peer]bool // true: owed a snapshot at once (new, or asked again)
	// released holds leases released through this server and not yet seen dead by
	// the push loop, which would otherwise count them as lapses.
	released map[string]uint64
}

func newWatchTable(g prometheus.Gauge) *watchTable {
	return &watchTable{gauge: g, kick: make(chan struct{}, 1),
		peers: map[*link.Peer]bool{}, released: map[string]uint64{}}
}

// wake makes the push loop poll now.
func (w *watchTable) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// add subscribes p and asks for a snapshot to it at once.
func (w *watchTable) add(p *link.Peer) {
	w.mu.Lock()
	w.peers[p] = true
	w.gauge.Set(float64(len(w.peers)))
	w.mu.Unlock()
	w.wake()
}

// remove unsubscribes p (its connection is gone).
func (w *watchTable) remove(p *link.Peer) {
	w.mu.Lock()
	delete(w.peers, p)
	w.gauge.Set(float64(len(w.peers)))
	w.mu.Unlock()
}

// targets returns every watcher if all, else those owed a snapshot, and clears the
// debts.
func (w *watchTable) targets(all bool) []*link.Peer {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*link.Peer
	for p, owed := range w.peers {
		if all || owed {
			out = append(out, p)
			w.peers[p] = false
		}
	}
	return out
}

// releasing marks (id, epoch) as being released (on) or not (off, after a failure).
func (w *watchTable) releasing(id string, epoch uint64, on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case on:
		w.released[id] = epoch
	case w.released[id] == epoch:
		delete(w.released, id)
	}
}

// wasReleased reports and forgets whether (id, epoch) was released through us.
func (w *watchTable) wasReleased(id string, epoch uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.released[id]; ok && e == epoch {
		delete(w.released, id)
		return true
	}
	return false
}

// leaseKey is what a watcher must hear about at once when it changes: who is live
// under which epoch, where, and whether draining. Loads are left out: they change
// with every renewal and ride on the periodic refresh.
type leaseKey struct {
	id, addr, linkAddr, adminAddr, wsAddr string
	epoch                                 uint64
	live, draining                        bool
}

func leaseKeys(gws []Gateway, now time.Time) []leaseKey {
	out := make([]leaseKey, len(gws))
	for i, g := range gws {
		out[i] = leaseKey{id: g.ID, addr: g.Addr, linkAddr: g.LinkAddr, adminAddr: g.AdminAddr, wsAddr: g.WSAddr,
			epoch: g.Epoch, live: g.Live(now), draining: g.Draining}
	}
	slices.SortFunc(out, func(a, b leaseKey) int { return cmp.Compare(a.id, b.id) })
	return out
}

// pushLoop polls the gateway table every Poll, and at once when woken (a lease
// operation through this server, or a new watcher). It pushes a snapshot to every
// watcher when the table's leaseKeys changed (a lapse, acquire, release, draining
// change, or a change made through another server) or Refresh has passed since the
// last full push; otherwise only to watchers owed one.
func (s *Server) pushLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	var prev []leaseKey
	var lastFull time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.w.kick:
		}
		gws, err := s.store.Gateways(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.warnLimited("state: reading the gateway table failed", "err", err)
			}
			continue
		}
		now := time.Now()
		byID := make(map[string]Gateway, len(gws))
		for _, g := range gws {
			byID[g.ID] = g
		}
		s.leases.Store(&byID)
		cur := leaseKeys(gws, now)
		s.observeLeases(prev, cur)
		full := !slices.Equal(prev, cur) || now.Sub(lastFull) >= s.cfg.Refresh
		prev = cur
		if full {
			lastFull = now
		}
		targets := s.w.targets(full)
		if len(targets) == 0 {
			continue
		}
		body := encodeSnapshot(gws, now)
		for _, p := range targets {
			p.Notify(MethodSnapshot, body) // fails only if p is going away
		}
	}
}

// leaseEnded reports whether gateway id's lease under epoch is known to have ended:
// the last table read shows that lease expired, or a newer epoch (epochs only
// grow). An older epoch in the table, or no table yet, is not known to be ended.
func (s *Server) leaseEnded(id string, epoch uint64) bool {
	t := s.leases.Load()
	if t == nil {
		return false
	}
	g, ok := (*t)[id]
	switch {
	case !ok:
		return false
	case g.Epoch > epoch:
		return true
	default:
		return g.Epoch == epoch && !g.Live(time.Now())
	}
}

// observeLeases counts lapses between two polls — leases live before and dead now
// under the same epoch, not released through this server — and sets the live gauge.
func (s *Server) observeLeases(prev, cur []leaseKey) {
	live := 0
	for _, k := range cur {
		if k.live {
			live++
		}
	}
	s.m.liveGateways.Set(float64(live))
	for _, p := range prev {
		if !p.live {
			continue
		}
		i, found := slices.BinarySearchFunc(cur, p.id, func(k leaseKey, id string) int { return cmp.Compare(k.id, id) })
		if !found || cur[i].live || cur[i].epoch != p.epoch {
			continue // forgotten (long dead), still live, or superseded by a new Acquire
		}
		if s.w.wasReleased(p.id, p.epoch) {
			continue
		}
		s.m.lapses.Inc()
		s.log.Info("gateway lease lapsed", "gateway", p.id, "epoch", p.epoch)
	}
}
