package control

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Service's Prometheus series.
type metrics struct {
	alerts       *prometheus.CounterVec // raised, by kind
	active       *prometheus.GaugeVec   // active now, by kind
	drains       *prometheus.CounterVec // drain and undrain requests, by op and result
	serving      prometheus.Gauge
	utilisation  prometheus.Gauge
	target       prometheus.Gauge
	sourceErrors prometheus.Counter
}

// Values of floodgate_control_drains_total's result label (op is drain or undrain).
const (
	resultOK          = "ok"
	resultInvalid     = "invalid"
	resultUnknown     = "unknown_gateway"
	resultNotLive     = "not_live"
	resultUnreachable = "unreachable"
	resultStateError  = "state_error"
	resultClosed      = "closed"
	resultError       = "error"
	// resultDenied: no admin token, a wrong one, or not a JSON request.
	resultDenied = "denied"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_control_alerts_total",
			Help: "Alerts raised, by kind."}, []string{"kind"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "floodgate_control_active_alerts",
			Help: "Alerts raised and not yet resolved, by kind."}, []string{"kind"}),
		drains: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_control_drains_total",
			Help: "Drain and undrain requests, by op and result."}, []string{"op", "result"}),
		serving: prometheus.NewGauge(prometheus.GaugeOpts{Name: "floodgate_control_serving_gateways",
			Help: "Live gateways that are not draining."}),
		utilisation: prometheus.NewGauge(prometheus.GaugeOpts{Name: "floodgate_control_fleet_utilisation",
			Help: "Connections over the serving fleet's max_conns."}),
		target: prometheus.NewGauge(prometheus.GaugeOpts{Name: "floodgate_control_recommended_gateways",
			Help: "The fleet size recommended now."}),
		sourceErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_control_source_errors_total",
			Help: "Failed reads of the gateway table."}),
	}
	for _, c := range []prometheus.Collector{m.alerts, m.active, m.drains, m.serving, m.utilisation, m.target, m.sourceErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("control metrics: %w", err)
		}
	}
	for _, k := range kinds() {
		m.alerts.WithLabelValues(string(k))
		m.active.WithLabelValues(string(k))
	}
	return m, nil
}
