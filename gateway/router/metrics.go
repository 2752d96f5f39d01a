package router

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	received  prometheus.Counter
	routed    map[string]prometheus.Counter
	cacheHit  prometheus.Counter
	cacheMiss prometheus.Counter
	reroutes  prometheus.Counter
	// lookupRetries counts state lookups repeated after a failure.
	lookupRetries prometheus.Counter
	latency       prometheus.Histogram
}

// routeResults are the outcomes of routing one message.
var routeResults = []string{"delivered", "offline", "not_here", "unreachable", "error"}

func newMetrics(reg prometheus.Registerer, r *Router) *metrics {
	routed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_router_routed_total",
		Help: "Messages routed, by outcome (all but delivered stay stored for SYNC)."}, []string{"result"})
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_router_cache_total",
		Help: "Route cache lookups, by result."}, []string{"result"})
	m := &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_router_received_total",
			Help: "Stored messages received from the msg service."}),
		routed:    map[string]prometheus.Counter{},
		cacheHit:  cache.WithLabelValues("hit"),
		cacheMiss: cache.WithLabelValues("miss"),
		reroutes: prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_router_reroutes_total",
			Help: "Messages routed again after a gateway answered NOT_HERE."}),
		lookupRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_router_lookup_retries_total",
			Help: "State lookups repeated after a failure (the state service down or restarting)."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "floodgate_router_route_seconds",
			Help:    "From receiving a stored message to the gateway's delivery answer.",
			Buckets: prometheus.ExponentialBuckets(20e-6, 2, 16)}),
	}
	for _, res := range routeResults {
		m.routed[res] = routed.WithLabelValues(res)
	}
	reg.MustRegister(routed, cache, m.received, m.reroutes, m.lookupRetries, m.latency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_router_cache_entries",
			Help: "Routes cached now."}, func() float64 { return float64(r.cache.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_router_live_gateways",
			Help: "Live gateways the router holds links to."}, func() float64 { return float64(r.liveGateways()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_router_lookups_inflight",
			Help: "State lookups under way."}, func() float64 { return float64(len(r.sem)) }),
	)
	return m
}
