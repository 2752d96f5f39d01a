package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
	"github.com/floodgate/floodgate/gateway/router"
	"github.com/floodgate/floodgate/gateway/state"
)

func runRouter(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	var (
		listen      = fs.String("listen", defRouter, "link address where the msg service feeds stored messages: keep it private")
		adminAddr   = fs.String("admin", defRouterAdmin, "admin address for /metrics, /healthz, pprof and /debug/memstats: keep it private (empty: off)")
		stateAddr   = fs.String("state", defState, "state service link address")
		cacheTTL    = fs.Duration("cache-ttl", 30*time.Second, "how long a cached route is trusted at most")
		lookups     = fs.Int("max-lookups", 256, "concurrent state lookups")
		retryWindow = fs.Duration("retry-window", 60*time.Second, "how long a message is retried (failed lookups, unreachable gateways, NOT_HERE; pauses up to 1s) before it is left to msg's resends")
		pushTimeout = fs.Duration("push-timeout", 2*time.Second, "how long a push waits for the gateway's answer before the gateway counts as unreachable")
		maxInFlight = fs.Int("max-inflight", 1<<18, "messages being routed at most; beyond it the oldest is dropped unsettled (msg resends it)")
		maxBytes    = fs.Int64("max-inflight-bytes", 256<<20, "payload bytes of the messages being routed at most; beyond it the oldest is dropped unsettled")
	)
	kf := registerKeys(fs, clusterKey)
	log, done, code := parseLogged(fs, args, stderr)
	if done {
		return code
	}
	if *retryWindow <= 0 || *pushTimeout <= 0 || *maxInFlight <= 0 || *maxBytes <= 0 {
		fmt.Fprintf(stderr, "router: -retry-window %v, -push-timeout %v, -max-inflight %d, -max-inflight-bytes %d: want all positive\n",
			*retryWindow, *pushTimeout, *maxInFlight, *maxBytes)
		return 2
	}
	held, err := kf.load(clusterKey)
	if err != nil {
		fmt.Fprintln(stderr, "router:", err)
		return 2
	}
	secret := held.cluster
	reg := admin.NewRegistry()
	st, err := state.Dial(state.ClientConfig{Addr: *stateAddr, Secret: secret, Name: "router", Logger: log, Registry: reg})
	if err != nil {
		fmt.Fprintln(stderr, "router:", err)
		return 2
	}
	defer st.Close()
	r, err := router.New(router.Config{Addr: *listen, Secret: secret, State: st, CacheTTL: *cacheTTL,
		MaxLookups: *lookups, RetryWindow: *retryWindow, PushTimeout: *pushTimeout,
		MaxInFlight: *maxInFlight, MaxInFlightBytes: *maxBytes, Registry: reg, Logger: log})
	if err != nil {
		log.Error("router failed to start", "err", err)
		return 1
	}
	st.Watch(r.SetGateways)
	adminURL := "-"
	if *adminAddr != "" {
		srv, err := admin.Start(*adminAddr, admin.Handler(reg, nil), log)
		if err != nil {
			log.Error("router failed to start", "err", err)
			return 1
		}
		defer srv.Close(time.Second)
		adminURL = srv.Addr()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "READY router %s %s\n", r.Addr(), adminURL)
	if err := r.Serve(ctx); err != nil {
		log.Error("router stopped with an error", "err", err)
		return 1
	}
	return 0
}
