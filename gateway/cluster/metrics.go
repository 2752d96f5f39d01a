package cluster

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	leaseAcquired, leaseLost, leaseErrors prometheus.Counter
	reregistered, caughtUp                prometheus.Counter
	logoutDropped, logoutFailed           prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, labels prometheus.Labels, epoch *atomic.Uint64) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
	}
	m := &metrics{
		leaseAcquired: c("floodgate_gateway_lease_acquired_total", "Leases acquired (the first, and after each loss)."),
		leaseLost:     c("floodgate_gateway_lease_lost_total", "Lease renewals refused because the lease had lapsed or been superseded."),
		leaseErrors:   c("floodgate_gateway_lease_errors_total", "Lease calls that failed (state unreachable)."),
		reregistered:  c("floodgate_gateway_sessions_reregistered_total", "Sessions registered again under a new lease."),
		caughtUp:      c("floodgate_gateway_caught_up_pushes_total", "Unacknowledged messages pushed again to sessions registered again under a new lease."),
		logoutDropped: c("floodgate_gateway_logout_dropped_total", "Unregistrations dropped because the queue was full."),
		logoutFailed:  c("floodgate_gateway_logout_failed_total", "Unregistrations that failed."),
	}
	reg.MustRegister(m.leaseAcquired, m.leaseLost, m.leaseErrors, m.reregistered, m.caughtUp, m.logoutDropped, m.logoutFailed,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_gateway_lease_epoch",
			Help: "The epoch of the lease held now (0: none).", ConstLabels: labels},
			func() float64 { return float64(epoch.Load()) }))
	return m
}
