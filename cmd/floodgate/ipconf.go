package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
	"github.com/floodgate/floodgate/gateway/ipconf"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus"
)

func runIpconf(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ipconf", flag.ContinueOnError)
	var (
		listen       = fs.String("listen", defIpconf, "public HTTP address: GET /v1/gateways and /healthz, nothing else")
		adminAddr    = fs.String("admin", defIpconfAdmin, "admin address for /metrics, /healthz, pprof and /debug/memstats: keep it private (empty: off)")
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
	log, done, code := parseLogged(fs, args, stderr)
	if done {
		return code
	}
	if *stateAddr == "" {
		fmt.Fprintln(stderr, "ipconf: -state is required")
		return 2
	}
	held, err := kf.load(clusterKey)
	if err != nil {
		fmt.Fprintln(stderr, "ipconf:", err)
		return 2
	}
	reg := admin.NewRegistry()
	svc, err := ipconf.New(ipconf.Config{
		TopK: *topK, FreezeFor: *freeze, Window: *window, AcceptRateFull: *acceptFull, CPUFull: *cpuFull,
		Heartbeat: *heartbeat, Backoff: ipconf.Backoff{Base: *backoffBase, Max: *backoffMax, Jitter: *backoffJit},
		PollInterval: *poll, Registerer: reg, Logger: log,
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	store, closeStore, err := dialState("ipconf", *stateAddr, held.cluster, reg, log)
	if err != nil {
		log.Error("ipconf failed to start", "err", err)
		return 1
	}
	defer closeStore()
	// The public listener serves the gateway list only; metrics and the debug
	// endpoints (pprof, the GC-forcing memstats) live on the private admin one.
	return serveService(service{name: "ipconf", addr: *listen, api: admin.API(svc.Handler(), svc.Health),
		adminAddr: *adminAddr, admin: admin.Handler(reg, svc.Health),
		follow: func(ctx context.Context) error { return svc.Run(ctx, store) }, wait: *shutdownWait}, stdout, log)
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

// service is a process that follows the state table and serves an HTTP API:
// ipconf or control.
type service struct {
	name      string
	addr      string       // the API listener's address
	api       http.Handler // what it serves: the API and /healthz, no debug endpoints
	adminAddr string       // the admin listener's address (empty: none)
	admin     http.Handler // what that serves: metrics, health, pprof
	follow    func(context.Context) error
	wait      time.Duration // bound on finishing in-flight requests at the signal
}

// serveService runs svc: it serves the API and admin handlers on their own
// listeners, runs follow until SIGINT or SIGTERM, prints
// "READY <name> <api-addr> <admin-addr or ->" on stdout once listening, and at
// the signal drains both HTTP servers within wait and waits for follow to return.
func serveService(svc service, stdout io.Writer, log *slog.Logger) int {
	srv, err := admin.Start(svc.addr, svc.api, log)
	if err != nil {
		log.Error(svc.name+" failed to start", "err", err)
		return 1
	}
	adminURL := "-"
	var adm *admin.Server
	if svc.adminAddr != "" {
		if adm, err = admin.Start(svc.adminAddr, svc.admin, log); err != nil {
			srv.Close(svc.wait)
			log.Error(svc.name+" failed to start", "err", err)
			return 1
		}
		adminURL = adm.Addr()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	followed := make(chan error, 1)
	go func() { followed <- svc.follow(ctx) }()
	// One machine-readable line on stdout for harnesses; everything else is logged.
	fmt.Fprintf(stdout, "READY %s %s %s\n", svc.name, srv.Addr(), adminURL)
	<-ctx.Done()
	name := svc.name
	log.Info(name + " stopping")
	code := 0
	if err := srv.Close(svc.wait); err != nil {
		log.Error(name+" HTTP server stopped with an error", "err", err)
		code = 1
	}
	if adm != nil {
		if err := adm.Close(svc.wait); err != nil {
			log.Error(name+" admin server stopped with an error", "err", err)
			code = 1
		}
	}
	if err := <-followed; err != nil {
		log.Error(name+" stopped with an error", "err", err)
		code = 1
	}
	return code
}
