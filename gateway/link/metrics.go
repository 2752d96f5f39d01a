package link

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CallObserver returns a ClientConfig.Observe hook that records call latency in the
// histogram floodgate_link_call_seconds{peer, method}, registered on reg or reused
// if another client registered it already: every link client of a process shares
// one definition. methods lists the client's methods with their label names. Calls
// that got an answer count, remote errors included; calls that failed locally or on
// a broken connection do not (they measure nothing about the peer).
func CallObserver(reg prometheus.Registerer, peer string, methods map[uint16]string) (func(uint16, time.Duration, error), error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "floodgate_link_call_seconds",
		Help:    "Latency of calls on internal links, by peer service and method.",
		Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16), // 25µs … 0.8s
	}, []string{"peer", "method"})
	if err := reg.Register(h); err != nil {
		var are prometheus.AlreadyRegisteredError
		existing, ok := h, false
		if errors.As(err, &are) {
			existing, ok = are.ExistingCollector.(*prometheus.HistogramVec)
		}
		if !ok {
			return nil, fmt.Errorf("link: registering floodgate_link_call_seconds: %w", err)
		}
		h = existing
	}
	obs := make(map[uint16]prometheus.Observer, len(methods))
	for m, name := range methods {
		obs[m] = h.WithLabelValues(peer, name)
	}
	return func(m uint16, d time.Duration, err error) {
		var re *RemoteError
		if o := obs[m]; o != nil && (err == nil || errors.As(err, &re)) {
			o.Observe(d.Seconds())
		}
	}, nil
}

// serverMetrics are a Server's counters, kept in Prometheus vectors that every server
// of a process registering on the same Registry shares (each has its own service
// label value), and mirrored in atomics for Stats.
type serverMetrics struct {
	acceptErrors prometheus.Counter
	handshaking  prometheus.Gauge
	peers        prometheus.Gauge
	refusedVec   *prometheus.CounterVec
	service      string
	stats        struct {
		acceptErrors, busy, busyIP, auth, peerCap atomic.Uint64
		handshaking, peers                        atomic.Int64
	}
}

// ServerStats is a snapshot of a Server's counters.
type ServerStats struct {
	AcceptErrors  uint64 // Accept calls that failed (the server backed off or retried)
	RefusedBusy   uint64 // connections closed at accept: MaxHandshakes were under way
	RefusedBusyIP uint64 // connections closed at accept: MaxHandshakesPerIP from that address were under way
	RefusedAuth   uint64 // handshakes that failed or timed out
	RefusedPeers  uint64 // authenticated peers closed: MaxPeers were connected
	Handshaking   int64  // handshakes under way now
	Peers         int64  // authenticated peers connected now
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() ServerStats {
	st := &s.m.stats
	return ServerStats{AcceptErrors: st.acceptErrors.Load(), RefusedBusy: st.busy.Load(), RefusedBusyIP: st.busyIP.Load(),
		RefusedAuth: st.auth.Load(), RefusedPeers: st.peerCap.Load(),
		Handshaking: st.handshaking.Load(), Peers: st.peers.Load()}
}

func newServerMetrics(reg prometheus.Registerer, service string) (*serverMetrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	acc, err := registerShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "floodgate_link_server_accept_errors_total",
		Help: "Accept errors on internal link listeners (each is followed by a back-off or a retry).",
	}, []string{"service"}))
	if err != nil {
		return nil, err
	}
	refused, err := registerShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "floodgate_link_server_refused_total",
		Help: "Connections an internal link listener closed: busy (MaxHandshakes under way), busy_ip (MaxHandshakesPerIP from the address under way), auth (handshake failed or timed out), peers (MaxPeers connected).",
	}, []string{"service", "reason"}))
	if err != nil {
		return nil, err
	}
	hs, err := registerShared(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "floodgate_link_server_handshakes",
		Help: "Handshakes under way on internal link listeners.",
	}, []string{"service"}))
	if err != nil {
		return nil, err
	}
	peers, err := registerShared(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "floodgate_link_server_peers",
		Help: "Authenticated peers connected to internal link listeners.",
	}, []string{"service"}))
	if err != nil {
		return nil, err
	}
	return &serverMetrics{refusedVec: refused, service: service, acceptErrors: acc.WithLabelValues(service),
		handshaking: hs.WithLabelValues(service), peers: peers.WithLabelValues(service)}, nil
}

func (m *serverMetrics) acceptError() {
	m.acceptErrors.Inc()
	m.stats.acceptErrors.Add(1)
}

// handshakes moves the handshakes-under-way gauge by d (+1 or -1).
func (m *serverMetrics) handshakes(d int64) {
	m.handshaking.Add(float64(d))
	m.stats.handshaking.Add(d)
}

// peerCount moves the connected-peers gauge by d (+1 or -1).
func (m *serverMetrics) peerCount(d int64) {
	m.peers.Add(float64(d))
	m.stats.peers.Add(d)
}

// refused counts a connection closed for reason (busy, auth or peers).
func (m *serverMetrics) refused(reason string) {
	m.refusedVec.WithLabelValues(m.service, reason).Inc()
	switch reason {
	case "busy":
		m.stats.busy.Add(1)
	case "busy_ip":
		m.stats.busyIP.Add(1)
	case "auth":
		m.stats.auth.Add(1)
	case "peers":
		m.stats.peerCap.Add(1)
	}
}

// registerShared registers c on reg, or returns the collector of the same
// definition registered before (by another server of the process).
func registerShared[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("link: registering server metrics: %w", err)
	}
	return c, nil
}
