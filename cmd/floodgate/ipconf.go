package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
	"github.com/floodgate/floodgate/gateway/ipconf"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus"
)

func runIpconf(args []string, stdout, stderr io.Writer) int {
	r := newRole("ipconf", defIpconfAdmin)
	fs := r.fs
	var (
		listen       = fs.String("listen", defIpconf, "public HTTP address: GET /v1/gateways and /healthz, nothing else")
		stateAddr    = fs.String("state", defState, "state service link address")
		topK         = fs.Int("top-k", 3, "best gateways shuffled by weighted random choice at the head of each answer")
		freeze       = fs.Duration("freeze", 30*time.Second, "how long gateways lost in a mass loss (over half the fleet at once) stay advertised")
		window       = fs.Duration("smoothing", 5*time.Second, "time constant of the per-gateway load smoothing")
		acceptFull   = fs.Float64("accept-rate-full", 1000, "gateway accept rate (per second) at which its storm penalty is full")
		cpuFull      = fs.Float64("cpu-full", 4, "gateway CPU use (cores) at which its CPU penalty is full")
		heartbeat    = fs.Duration("heartbeat", 30*time.Second, "heartbeat interval hinted to clients")
		backoffBase  = fs.Duration("backoff-base", ipconf.DefaultBackoffBase, "reconnect backoff base hinted to clients")
		backoffMax   = fs.Duration("backoff-max", ipconf.DefaultBackoffMax, "reconnect backoff cap hinted to clients")
		backoffJit   = fs.Float64("backoff-jitter", ipconf.DefaultBackoffJitter, "reconnect backoff jitter (0..1; 1 = full jitter) hinted to clients")
		poll         = fs.Duration("poll", 500*time.Millisecond, "how often the gateway table is read")
		shutdownWait = fs.Duration("shutdown-timeout", 5*time.Second, "bound on finishing in-flight requests at SIGTERM")
	)
	kf := registerKeys(fs, clusterKey)
	return r.main(args, stdout, stderr, func(e env) (serving, error) {
		if *stateAddr == "" {
			return serving{}, usagef("-state is required")
		}
		held, err := kf.load(clusterKey)
		if err != nil {
			return serving{}, usageError{err}
		}
		svc, err := ipconf.New(ipconf.Config{
			TopK: *topK, FreezeFor: *freeze, Window: *window, AcceptRateFull: *acceptFull, CPUFull: *cpuFull,
			Heartbeat: *heartbeat, Backoff: ipconf.Backoff{Base: *backoffBase, Max: *backoffMax, Jitter: *backoffJit},
			PollInterval: *poll, Registerer: e.reg, Logger: e.log,
		})
		if err != nil {
			return serving{}, usageError{err}
		}
		store, closeStore, err := dialState("ipconf", *stateAddr, held.cluster, e.reg, e.log)
		if err != nil {
			return serving{}, err
		}
		// The public listener serves the gateway list only; metrics and the debug
		// endpoints (pprof, the GC-forcing memstats) live on the private admin one.
		sv, err := serveHTTP(e, *listen, admin.API(svc.Handler(), svc.Health), *shutdownWait,
			func(ctx context.Context) error { return svc.Run(ctx, store) })
		if err != nil {
			closeStore()
			return serving{}, err
		}
		sv.health, sv.close = svc.Health, closeStore
		return sv, nil
	})
}

// dialState connects to the state service at addr as name, authenticating with
// the cluster secret, and returns the client with its close function. ipconf and
// control both use it; reg may receive the client's metrics.
//
// The services poll Gateways every -poll; the state client's Watch could push
// tables instead, but polling keeps ipconf and control simple and their view is at
// most one poll old.
func dialState(name, addr string, secret []byte, reg prometheus.Registerer, log *slog.Logger) (state.Store, func(), error) {
	c, err := state.Dial(state.ClientConfig{Addr: addr, Secret: secret, Name: name, Logger: log, Registry: reg})
	if err != nil {
		return nil, nil, fmt.Errorf("state client: %w", err)
	}
	return c, c.Close, nil
}

// serveHTTP starts an HTTP API on addr and returns the serving that runs follow
// until ctx ends, then drains the API server within wait: ipconf and control, which
// follow the state table and answer over HTTP.
func serveHTTP(e env, addr string, api http.Handler, wait time.Duration, follow func(context.Context) error) (serving, error) {
	srv, err := admin.Start(addr, api, e.log)
	if err != nil {
		return serving{}, err
	}
	run := func(ctx context.Context) error {
		err := follow(ctx)
		if cerr := srv.Close(wait); cerr != nil {
			err = errors.Join(err, fmt.Errorf("HTTP server: %w", cerr))
		}
		return err
	}
	return serving{addr: srv.Addr(), run: run}, nil
}
