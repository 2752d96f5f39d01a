// Package live serves a running scenario's progress while it runs: a small page
// that redraws itself every second, the same figures as JSON, and a Prometheus
// endpoint, so a run can be watched from a browser or scraped into the dashboards
// that watch the stack (`floodgate scenario run -live ADDR`).
//
// It only reads what the runner reports (sim.Progress, about once a second): it
// never slows the run down, and a viewer that goes away costs nothing.
package live

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/floodgate/floodgate/sim"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// history is how many samples the page's chart shows (one a second).
const history = 300

//go:embed page.html
var page []byte

// Sample is one progress report as /progress.json serves it.
type Sample struct {
	T            time.Time `json:"t"`
	Phase        string    `json:"phase"`
	Clients      int64     `json:"clients"`
	Active       int64     `json:"active"`
	Sent         uint64    `json:"sent"`
	Delivered    uint64    `json:"delivered"`
	Lost         uint64    `json:"lost"`
	Failed       uint64    `json:"failed"`
	Reconnects   uint64    `json:"reconnects"`
	Duplicates   uint64    `json:"duplicates"`
	Phantom      uint64    `json:"phantom"`
	Misdelivered uint64    `json:"misdelivered"`
}

// Server keeps the latest progress and the recent history.
type Server struct {
	scenario string
	mu       sync.Mutex
	samples  []Sample // oldest first, at most history
	reg      *prometheus.Registry
}

// New returns a Server for the named scenario.
func New(scenario string) *Server {
	s := &Server{scenario: scenario, reg: prometheus.NewRegistry()}
	s.register()
	return s
}

// Update records a progress report (sim.Options.Progress).
func (s *Server) Update(p sim.Progress) {
	smp := Sample{T: time.Now(), Phase: p.Phase, Clients: p.Clients, Active: p.Active, Sent: p.Sent, Delivered: p.Delivered,
		Lost: p.Lost, Failed: p.Failed, Reconnects: p.Reconnects, Duplicates: p.Duplicates, Phantom: p.Phantom,
		Misdelivered: p.Misdelivered}
	s.mu.Lock()
	if len(s.samples) == history {
		copy(s.samples, s.samples[1:])
		s.samples = s.samples[:history-1]
	}
	s.samples = append(s.samples, smp)
	s.mu.Unlock()
}

// last returns the latest sample (zero before the first).
func (s *Server) last() Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return Sample{}
	}
	return s.samples[len(s.samples)-1]
}

// register exposes the latest sample as floodgate_run_* series: counters for the
// message and reconnect totals, gauges for the clients, and an info series naming
// the scenario and the phase.
func (s *Server) register() {
	counter := func(name, help string, v func(Sample) uint64) {
		s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(s.last())) }))
	}
	gauge := func(name, help string, v func(Sample) int64) {
		s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return float64(v(s.last())) }))
	}
	counter("floodgate_run_sent_total", "Messages the load agents sent.", func(x Sample) uint64 { return x.Sent })
	counter("floodgate_run_delivered_total", "Messages delivered to their recipients (first receipts).", func(x Sample) uint64 { return x.Delivered })
	counter("floodgate_run_lost_total", "Acknowledged messages not delivered by their deadline.", func(x Sample) uint64 { return x.Lost })
	counter("floodgate_run_failed_total", "Messages never acknowledged by their deadline.", func(x Sample) uint64 { return x.Failed })
	counter("floodgate_run_reconnects_total", "Client reconnections.", func(x Sample) uint64 { return x.Reconnects })
	counter("floodgate_run_wrong_total", "Duplicates, phantom and misdelivered messages: must stay 0.",
		func(x Sample) uint64 { return x.Duplicates + x.Phantom + x.Misdelivered })
	gauge("floodgate_run_clients", "Clients the scenario runs.", func(x Sample) int64 { return x.Clients })
	gauge("floodgate_run_active", "Clients connected and logged in now.", func(x Sample) int64 { return x.Active })
	s.reg.MustRegister(phaseCollector{s: s,
		desc: prometheus.NewDesc("floodgate_run_phase", "The phase running now (value 1).", []string{"scenario", "phase"}, nil)})
}

// phaseCollector exports floodgate_run_phase{scenario, phase} = 1 for the phase
// running now.
type phaseCollector struct {
	s    *Server
	desc *prometheus.Desc
}

func (c phaseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c phaseCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, c.s.scenario, c.s.last().Phase)
}

// Handler serves / (the page), /progress.json ({scenario, samples}) and /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("GET /progress.json", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, err := json.Marshal(struct {
			Scenario string   `json:"scenario"`
			Samples  []Sample `json:"samples"`
		}{s.scenario, s.samples})
		s.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	return mux
}

// Serve listens on addr and serves Handler until ctx ends; ready receives the
// bound address (addr may name port 0) once it listens.
func (s *Server) Serve(ctx context.Context, addr string, ready func(string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("live view: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	if ready != nil {
		ready(ln.Addr().String())
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("live view: %w", err)
	}
	return nil
}
