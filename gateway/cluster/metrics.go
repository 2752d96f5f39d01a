package cluster

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	leaseAcquired, leaseLost, leaseErrors     prometheus.Counter
	reregistered, reregisterReplaced, noticed prometheus.Counter
	logoutDropped, logoutFailed, sendRetries  prometheus.Counter
	ackFailed                                 prometheus.Counter
	takeovers                                 map[string]prometheus.Counter // confirmed, timeout, kicked_here
	isolation                                 map[string]prometheus.Counter // isolate, hold
}

func newMetrics(reg prometheus.Registerer, labels prometheus.Labels, epoch *atomic.Uint64, isolated *atomic.Bool) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
	}
	m := &metrics{
		leaseAcquired: c("floodgate_gateway_lease_acquired_total", "Leases acquired (the first, and after each loss)."),
		leaseLost:     c("floodgate_gateway_lease_lost_total", "Lease renewals refused because the lease had lapsed or been superseded."),
		leaseErrors:   c("floodgate_gateway_lease_errors_total", "Lease calls that failed (state unreachable)."),
		reregistered: c("floodgate_gateway_sessions_reregistered_total",
			"Sessions registered again (after a lease loss or a state reconnection) that nobody had replaced."),
		reregisterReplaced: c("floodgate_gateway_sessions_reregister_replaced_total",
			"Sessions found replaced by a newer login when registering again, and kicked (REPLACED)."),
		noticed: c("floodgate_gateway_window_notices_total",
			"Unprompted SYNC_ENDs sent to sessions registered again under a new lease."),
		logoutDropped: c("floodgate_gateway_logout_dropped_total", "Unregistrations dropped because the queue was full."),
		logoutFailed:  c("floodgate_gateway_logout_failed_total", "Unregistrations that failed."),
		sendRetries: c("floodgate_gateway_send_retries_total",
			"Appends retried (same client message id) because an earlier attempt's outcome was unknown."),
		ackFailed: c("floodgate_gateway_ack_failed_total",
			"Acknowledgements the message store did not confirm (harmless: a later SYNC replays what they covered)."),
		takeovers: map[string]prometheus.Counter{},
		isolation: map[string]prometheus.Counter{},
	}
	tk := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_gateway_takeovers_total",
		Help:        "Session takeovers across gateways: logins that saw the replaced session's kick confirmed or waited in vain (timeout), and sessions kicked here for a login elsewhere (kicked_here).",
		ConstLabels: labels}, []string{"result"})
	for _, r := range []string{"confirmed", "timeout", "kicked_here"} {
		m.takeovers[r] = tk.WithLabelValues(r)
	}
	iso := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_gateway_isolation_checks_total",
		Help:        "Decisions of a gateway cut off from the state service: move its clients away (isolate: a peer holds its lease, or none answers) or keep them (hold: no peer known, or none of those answering holds a lease).",
		ConstLabels: labels}, []string{"verdict"})
	for _, v := range []string{"isolate", "hold"} {
		m.isolation[v] = iso.WithLabelValues(v)
	}
	reg.MustRegister(tk, iso, m.leaseAcquired, m.leaseLost, m.leaseErrors, m.reregistered, m.reregisterReplaced, m.noticed,
		m.logoutDropped, m.logoutFailed, m.sendRetries, m.ackFailed,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_gateway_isolated",
			Help: "1 while the gateway is isolated (moving its clients away, refusing logins), else 0.", ConstLabels: labels},
			func() float64 {
				if isolated.Load() {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_gateway_lease_epoch",
			Help: "The epoch of the lease held now (0: none).", ConstLabels: labels},
			func() float64 { return float64(epoch.Load()) }))
	return m
}
