// Package admin serves a component's admin endpoints: Prometheus metrics, health,
// pprof, and Go memory figures for benchmarks. Every Floodgate process mounts it on
// its admin address, a listener of its own that stays private (SECURITY.md); a
// service's API listener serves API instead.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MemStats is the JSON body of GET /debug/memstats. Sizes are bytes, taken right
// after a forced garbage collection, so HeapAlloc is the live heap.
type MemStats struct {
	HeapAlloc  uint64 `json:"heap_alloc"`  // runtime.MemStats.HeapAlloc
	HeapInuse  uint64 `json:"heap_inuse"`  // runtime.MemStats.HeapInuse
	HeapSys    uint64 `json:"heap_sys"`    // runtime.MemStats.HeapSys
	StackInuse uint64 `json:"stack_inuse"` // runtime.MemStats.StackInuse
	Sys        uint64 `json:"sys"`         // runtime.MemStats.Sys
	Goroutines uint64 `json:"goroutines"`  // runtime.NumGoroutine()
	NumGC      uint64 `json:"num_gc"`      // completed GC cycles, the forced one included
}

// ReadMemStats forces a garbage collection and returns the runtime's figures.
func ReadMemStats() MemStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return MemStats{
		HeapAlloc: m.HeapAlloc, HeapInuse: m.HeapInuse, HeapSys: m.HeapSys,
		StackInuse: m.StackInuse, Sys: m.Sys,
		Goroutines: uint64(runtime.NumGoroutine()), NumGC: uint64(m.NumGC),
	}
}

// DebugHandler serves GET /debug/memstats and /debug/pprof/..., registered on its
// own mux (not http.DefaultServeMux).
func DebugHandler() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/memstats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ReadMemStats()) //nolint:errcheck
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// NewRegistry returns a Prometheus registry holding the Go runtime and process
// collectors, for a component to add its own metrics to.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves /metrics from reg, /healthz from health (nil: always OK), and the
// debug endpoints. It belongs on a process's private admin listener only: pprof
// and the GC-forcing /debug/memstats are not for the public.
func Handler(reg *prometheus.Registry, health func() error) *http.ServeMux {
	mux := DebugHandler()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("GET /healthz", Health(health))
	return mux
}

// Health answers GET /healthz: "ok", or 503 with health's error (nil health:
// always OK).
func Health(health func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if health != nil {
			if err := health(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
}

// API serves a service's own routes (api, under /v1/) and GET /healthz, and
// nothing else: no metrics, no pprof, no memstats. It is what a service's API
// listener serves (ipconf's public one, control's), next to a Handler on the
// admin listener.
func API(api http.Handler, health func() error) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle("GET /healthz", Health(health))
	return mux
}

// Server is a running admin listener.
type Server struct {
	srv  *http.Server
	addr net.Addr
	done chan error
}

// Start listens on addr and serves h until Close.
func Start(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	s := &Server{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		addr: ln.Addr(),
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	log.Info("admin listening", "addr", s.addr.String())
	return s, nil
}

// Addr returns the bound address.
func (s *Server) Addr() string { return s.addr.String() }

// Close shuts the server down, waiting up to d for in-flight requests.
func (s *Server) Close(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	return <-s.done
}
