package state

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// serverMetrics are the state server's metrics, prefix floodgate_state_. They count
// what passes through this server: with several servers on one Redis, sum them.
// Label values are resolved once here, so the hot path only increments.
type serverMetrics struct {
	registrations map[string]prometheus.Counter // ok, lease_lost, error
	// reregistrations: ok, lease_lost, replaced, error
	reregistrations map[string]prometheus.Counter
	kicks           map[string]prometheus.Counter // sent, unreachable
	unregisters     map[string]prometheus.Counter // deleted, stale, error
	lookups         map[string]prometheus.Counter // hit, miss, invalid, error
	acquires        prometheus.Counter
	renewals        map[string]prometheus.Counter // ok, lease_lost, error
	releases        prometheus.Counter
	lapses          prometheus.Counter
	reclaimed       prometheus.Counter
	liveGateways    prometheus.Gauge
	watchers        prometheus.Gauge
}

func counterMap(reg prometheus.Registerer, name, help, label string, values ...string) map[string]prometheus.Counter {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	reg.MustRegister(v)
	m := make(map[string]prometheus.Counter, len(values))
	for _, s := range values {
		m[s] = v.WithLabelValues(s)
	}
	return m
}

func counter(reg prometheus.Registerer, name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	reg.MustRegister(c)
	return c
}

func gauge(reg prometheus.Registerer, name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	reg.MustRegister(g)
	return g
}

// newServerMetrics registers the metrics on reg (nil: a private registry, so the
// server needs no nil checks). floodgate_state_sessions is registered only if store
// is a SessionCounter; it asks the store at scrape time (for Redis one pipeline of
// one SCARD per bucket and live gateway).
func newServerMetrics(reg prometheus.Registerer, store Store) *serverMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &serverMetrics{
		registrations: counterMap(reg, "floodgate_state_registrations_total",
			"Session registrations, by result.", "result", "ok", "lease_lost", "error"),
		reregistrations: counterMap(reg, "floodgate_state_reregistrations_total",
			"Sessions registered again after a lease loss or reconnection, by result: replaced means a newer login had taken over.",
			"result", "ok", "lease_lost", "replaced", "error"),
		kicks: counterMap(reg, "floodgate_state_replacement_kicks_total",
			"Logins that replaced a session on another gateway, by whether that gateway was told to kick it and the login waited for its answer (sent), was told without the login waiting because its lease had ended (lease_ended), or was not connected (unreachable).",
			"result", "sent", "lease_ended", "unreachable"),
		unregisters: counterMap(reg, "floodgate_state_unregisters_total",
			"Session unregisters, by result: deleted, or stale (the stored session was a newer one or none).",
			"result", "deleted", "stale", "error"),
		lookups: counterMap(reg, "floodgate_state_lookups_total",
			"Session lookups, by result: hit, miss (no session), invalid (its gateway's lease is dead).",
			"result", "hit", "miss", "invalid", "error"),
		acquires: counter(reg, "floodgate_state_lease_acquires_total", "Gateway leases acquired."),
		renewals: counterMap(reg, "floodgate_state_lease_renewals_total",
			"Gateway lease renewals, by result.", "result", "ok", "lease_lost", "error"),
		releases: counter(reg, "floodgate_state_lease_releases_total", "Gateway leases released (clean shutdowns)."),
		lapses: counter(reg, "floodgate_state_lease_lapses_total",
			"Gateway leases seen to lapse unrenewed (gateway deaths); a release through another state server counts here."),
		reclaimed: counter(reg, "floodgate_state_sessions_reclaimed_total",
			"Dead sessions reclaimed by periodic sweeps (lazy reclaims by lookups are not counted)."),
		liveGateways: gauge(reg, "floodgate_state_gateways_live", "Gateways with a live lease, as of the last poll."),
		watchers:     gauge(reg, "floodgate_state_watchers", "Connections watching the gateway table."),
	}
	if sc, ok := store.(SessionCounter); ok {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "floodgate_state_sessions",
			Help: "Sessions under live leases (NaN if the store did not answer).",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n, err := sc.Sessions(ctx)
			if err != nil {
				return math.NaN()
			}
			return float64(n)
		}))
	}
	return m
}

// result picks the label for an operation's outcome.
func result(err error, ok string) string {
	switch {
	case err == nil:
		return ok
	case errors.Is(err, ErrLeaseLost):
		return "lease_lost"
	case errors.Is(err, ErrReplaced):
		return "replaced"
	}
	return "error"
}
