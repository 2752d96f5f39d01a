package router

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	received     prometheus.Counter
	deduplicated prometheus.Counter
	routed       map[string]prometheus.Counter
	settles      map[string]prometheus.Counter
	cacheHit     prometheus.Counter
	cacheMiss    prometheus.Counter
	reroutes     prometheus.Counter
	pushTimeouts prometheus.Counter
	// lookupRetries counts state lookups repeated after a failure.
	lookupRetries prometheus.Counter
	latency       prometheus.Histogram
}

// routeResults are the outcomes of routing one message: delivered and offline are
// settled; the others are left to the msg service's resends.
var routeResults = []string{"delivered", "offline", "not_here", "unreachable", "error", "dropped"}

// settleResults are what became of a settle: sent to its msg connection, failed
// (that connection is gone), or dropped (the settle queue was full).
var settleResults = []string{"sent", "failed", "dropped"}

func newMetrics(reg prometheus.Registerer, r *Router) *metrics {
	routed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_router_routed_total",
		Help: "Messages the router finished with, by outcome: delivered (to a live session) and offline are settled " +
			"back to msg; not_here, unreachable and error were given up after the retry window, dropped pushed out of " +
			"the full in-flight set: msg resends those."}, []string{"result"})
	settles := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_router_settles_total",
		Help: "Settles for the msg service, by result: sent, failed (its connection was gone), dropped (queue full)."},
		[]string{"result"})
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_router_cache_total",
		Help: "Route cache lookups, by result."}, []string{"result"})
	m := &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_router_received_total",
			Help: "Route notifications received from the msg service (resends and replays included)."}),
		deduplicated: prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_router_deduplicated_total",
			Help: "Route notifications for a message already being routed (a resend or replay), not routed twice."}),
		routed:    map[string]prometheus.Counter{},
		settles:   map[string]prometheus.Counter{},
		cacheHit:  cache.WithLabelValues("hit"),
		cacheMiss: cache.WithLabelValues("miss"),
		reroutes: prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_router_reroutes_total",
			Help: "Messages routed again after NOT_HERE or an unreachable gateway."}),
		pushTimeouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_router_push_timeouts_total",
			Help: "Pushes the gateway did not answer in time (counted as unreachable)."}),
		lookupRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_router_lookup_retries_total",
			Help: "State lookups repeated after a failure (the state service down or restarting)."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "floodgate_router_route_seconds",
			Help:    "From receiving a stored message to the gateway's delivery answer.",
			Buckets: prometheus.ExponentialBuckets(20e-6, 2, 16)}),
	}
	for _, res := range routeResults {
		m.routed[res] = routed.WithLabelValues(res)
	}
	for _, res := range settleResults {
		m.settles[res] = settles.WithLabelValues(res)
	}
	reg.MustRegister(routed, settles, cache, m.received, m.deduplicated, m.reroutes, m.pushTimeouts, m.lookupRetries, m.latency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_router_cache_entries",
			Help: "Routes cached now."}, func() float64 { return float64(r.cache.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_router_live_gateways",
			Help: "Live gateways the router holds links to."}, func() float64 { return float64(r.liveGateways()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_router_lookups_inflight",
			Help: "State lookups under way."}, func() float64 { return float64(len(r.sem)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_router_inflight_messages",
			Help: "Messages being routed (bounded by -max-inflight)."}, func() float64 { n, _ := r.inFlight(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_router_inflight_bytes",
			Help: "Payload bytes of the messages being routed (bounded by -max-inflight-bytes)."},
			func() float64 { _, b := r.inFlight(); return float64(b) }),
	)
	return m
}
