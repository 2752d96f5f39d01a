package ipconf

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Service's Prometheus series.
type metrics struct {
	requests     *prometheus.CounterVec // by HTTP status
	advertised   prometheus.Gauge
	frozen       prometheus.Gauge
	sourceErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_ipconf_requests_total",
			Help: "Gateway-list requests, by HTTP status."}, []string{"status"}),
		advertised: prometheus.NewGauge(prometheus.GaugeOpts{Name: "floodgate_ipconf_gateways",
			Help: "Gateways advertised now."}),
		frozen: prometheus.NewGauge(prometheus.GaugeOpts{Name: "floodgate_ipconf_frozen",
			Help: "1 while the list is frozen after a mass gateway loss."}),
		sourceErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_ipconf_source_errors_total",
			Help: "Failed reads of the gateway table."}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.advertised, m.frozen, m.sourceErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ipconf metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) request(status int) { m.requests.WithLabelValues(strconv.Itoa(status)).Inc() }
