package promtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestValueFindsTheSeriesByLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"service", "reason"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h"})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("state", "busy").Add(3)
	c.WithLabelValues("router", "busy").Add(5)
	g.Set(7)
	h.Observe(1)
	h.Observe(2)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"c_total", []string{"service", "router"}, 5},
		{"c_total", []string{"service", "state", "reason", "busy"}, 3},
		{"c_total", []string{"service", "msg"}, -1},
		{"g", nil, 7},
		{"h", nil, 2},
		{"absent", nil, -1},
	}
	for _, tt := range tests {
		if got := Value(t, reg, tt.name, tt.labels...); got != tt.want {
			t.Errorf("Value(%s, %v) = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}
