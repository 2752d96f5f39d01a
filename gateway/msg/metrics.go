package msg

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Request results, as the "result" label: ok; rejected, the caller's fault (a
// malformed body, uid 0) or the recipient's quota; failed, the store's.
const (
	resultOK = iota
	resultRejected
	resultFailed
	numResults
)

// serverMetrics are a Server's metrics, prefix floodgate_msg_. Label values are
// resolved once here, so a request only increments and observes.
type serverMetrics struct {
	requests [MethodWindows + 1][numResults]prometheus.Counter // by method number
	latency  [MethodWindows + 1]prometheus.Observer
	replayed prometheus.Counter
}

func newServerMetrics(reg prometheus.Registerer, store Store) *serverMetrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_msg_requests_total",
		Help: "Requests served, by method (append, ack, range, window, windows) and result (ok; rejected: the caller's fault, uid 0, or the recipient's quota; failed)."},
		[]string{"method", "result"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "floodgate_msg_request_duration_seconds",
		Help:    "Time to serve a request, store included, by method.",
		Buckets: prometheus.ExponentialBuckets(10e-6, 2, 18)}, // 10µs .. 1.3s
		[]string{"method"})
	replayed := prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_msg_replayed_total",
		Help: "Messages returned by range requests."})
	reg.MustRegister(requests, latency, replayed)
	if lc, ok := store.(LimitCounter); ok {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "floodgate_msg_quota_refusals_total",
				Help: "Appends refused because the recipient's unacknowledged messages would exceed its quota (messages or bytes); the sender is told RECIPIENT_FULL."},
				func() float64 { return float64(lc.Refused()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "floodgate_msg_expired_total",
				Help: "Messages dropped unacknowledged because they outlived the retention period (acknowledged ones are not counted)."},
				func() float64 { return float64(lc.Expired()) }))
	}
	if ic, ok := store.(InboxCounter); ok {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "floodgate_msg_inboxes_deleted_total",
				Help: "Inboxes deleted because nothing was retained in them any more (everything acknowledged or expired)."},
				func() float64 { return float64(ic.DeletedInboxes()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_msg_inboxes",
				Help: "Inboxes in the store (for Redis: as of this process's latest sweep, plus those its appends created since)."},
				func() float64 { return float64(ic.Inboxes()) }))
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
	m := &serverMetrics{replayed: replayed}
	for method := MethodAppend; method <= MethodWindows; method++ {
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

// Why a message stopped being tracked for delivery, as the "reason" label: the
// router settled it; the recipient acknowledged it; the store no longer holds it
// (expired, acknowledged meanwhile, or lost with the inbox's incarnation).
const (
	untrackedSettled = iota
	untrackedAcked
	untrackedGone
	numUntracked
)

// deliveryMetrics are the delivery tracker's metrics, prefix floodgate_msg_.
type deliveryMetrics struct {
	redeliveries, replays prometheus.Counter
	queueFull, unsent     prometheus.Counter
	settleLatency         prometheus.Observer
	untracked             [numUntracked]prometheus.Counter
}

func newDeliveryMetrics(reg prometheus.Registerer) *deliveryMetrics {
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	untracked := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_msg_untracked_total",
		Help: "Messages no longer tracked for delivery, by reason: settled (by the router), acked (by the recipient), gone (no longer in the store)."},
		[]string{"reason"})
	settle := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "floodgate_msg_settle_seconds",
		Help:    "From storing a message to the router settling it (delivered to a live session, or the recipient offline).",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 20)}) // 50µs .. 26s
	reg.MustRegister(untracked, settle)
	m := &deliveryMetrics{
		redeliveries: counter("floodgate_msg_redeliveries_total",
			"Unsettled messages sent to the router again after their resend pause."),
		replays: counter("floodgate_msg_replays_total",
			"Unsettled messages sent to the router again because the link to it came (back) up, or the process started with them."),
		queueFull: counter("floodgate_msg_route_queue_full_total",
			"Stored messages that found the queue to the router full (they are resent from the store)."),
		unsent: counter("floodgate_msg_route_unsent_total",
			"Route notifications the link to the router failed to take (replayed when it is back)."),
		settleLatency: settle,
	}
	for r, reason := range [numUntracked]string{"settled", "acked", "gone"} {
		m.untracked[r] = untracked.WithLabelValues(reason)
	}
	return m
}

// registerDeliveryGauges registers the gauges read from t and its router link.
func registerDeliveryGauges(reg prometheus.Registerer, t *tracker) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_msg_pending_messages",
			Help: "Stored messages the router has not settled yet (tracked for resending)."},
			func() float64 { n, _ := t.pending(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_msg_pending_users",
			Help: "Users with at least one message the router has not settled yet."},
			func() float64 { _, n := t.pending(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_msg_router_connected",
			Help: "1 while the link to the router is up (stored messages are routed; pending ones were replayed), else 0."},
			func() float64 {
				if t.link.Connected() {
					return 1
				}
				return 0
			}),
	)
}
