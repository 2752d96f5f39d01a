package msg

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Request results, as the "result" label: ok; rejected, the caller's fault (a
// malformed body, uid 0); failed, the store's.
const (
	resultOK = iota
	resultRejected
	resultFailed
	numResults
)

// serverMetrics are a Server's metrics, prefix floodgate_msg_. Label values are
// resolved once here, so a request only increments and observes.
type serverMetrics struct {
	requests [MethodWindow + 1][numResults]prometheus.Counter // by method number
	latency  [MethodWindow + 1]prometheus.Observer
	replayed prometheus.Counter
}

func newServerMetrics(reg prometheus.Registerer, store Store, sink Sink) *serverMetrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_msg_requests_total",
		Help: "Requests served, by method (append, ack, range, window) and result (ok, rejected, failed)."},
		[]string{"method", "result"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "floodgate_msg_request_duration_seconds",
		Help:    "Time to serve a request, store included, by method.",
		Buckets: prometheus.ExponentialBuckets(10e-6, 2, 18)}, // 10µs .. 1.3s
		[]string{"method"})
	replayed := prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_msg_replayed_total",
		Help: "Messages returned by range requests."})
	reg.MustRegister(requests, latency, replayed)
	if ec, ok := store.(EvictionCounter); ok {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "floodgate_msg_evictions_total",
			Help: "Unacknowledged messages evicted because their recipient's window was full."},
			func() float64 { return float64(ec.Evictions()) }))
	}
	if dc, ok := store.(DedupeCounter); ok {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "floodgate_msg_deduplicated_total",
			Help: "Appends that found their message already stored (a retry with the same client message id) and stored nothing."},
			func() float64 { return float64(dc.Deduplicated()) }))
	}
	if sc, ok := store.(StoredCounter); ok {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_msg_stored_messages",
			Help: "Messages retained in all inboxes (for Redis: the store-wide count as of this process's latest write)."},
			func() float64 { return float64(sc.Stored()) }))
	}
	if dc, ok := sink.(DropCounter); ok {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "floodgate_msg_route_dropped_total",
			Help: "Stored messages not forwarded to the router because it was unreachable (they stay stored)."},
			func() float64 { return float64(dc.Dropped()) }))
	}
	if c, ok := sink.(Connector); ok {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_msg_router_connected",
			Help: "1 while the link to the router is up (stored messages are forwarded), else 0."},
			func() float64 {
				if c.Connected() {
					return 1
				}
				return 0
			}))
	}
	m := &serverMetrics{replayed: replayed}
	for method := MethodAppend; method <= MethodWindow; method++ {
		name := MethodName(method)
		for r, result := range [numResults]string{"ok", "rejected", "failed"} {
			m.requests[method][r] = requests.WithLabelValues(name, result)
		}
		m.latency[method] = latency.WithLabelValues(name)
	}
	return m
}

// observe records one request of a known method (MethodName(method) != "").
func (m *serverMetrics) observe(method uint16, d time.Duration, result int) {
	m.requests[method][result].Inc()
	m.latency[method].Observe(d.Seconds())
}
