package main

import (
	"io"
	"time"

	"github.com/floodgate/floodgate/gateway/router"
	"github.com/floodgate/floodgate/gateway/state"
)

func runRouter(args []string, stdout, stderr io.Writer) int {
	r := newRole("router", defRouterAdmin)
	fs := r.fs
	var (
		listen      = fs.String("listen", defRouter, "link address where the msg service feeds stored messages: keep it private")
		stateAddr   = fs.String("state", defState, "state service link address")
		cacheTTL    = fs.Duration("cache-ttl", 30*time.Second, "how long a cached route is trusted at most")
		lookups     = fs.Int("max-lookups", 256, "concurrent state lookups")
		retryWindow = fs.Duration("retry-window", 60*time.Second, "how long a message is retried (failed lookups, unreachable gateways, NOT_HERE; pauses up to 1s) before it is left to msg's resends")
		pushTimeout = fs.Duration("push-timeout", 2*time.Second, "how long a push waits for the gateway's answer before the gateway counts as unreachable")
		maxInFlight = fs.Int("max-inflight", 1<<18, "messages being routed at most; beyond it the oldest is dropped unsettled (msg resends it)")
		maxBytes    = fs.Int64("max-inflight-bytes", 256<<20, "payload bytes of the messages being routed at most; beyond it the oldest is dropped unsettled")
	)
	kf := registerKeys(fs, clusterKey)
	return r.main(args, stdout, stderr, func(e env) (serving, error) {
		if *retryWindow <= 0 || *pushTimeout <= 0 || *maxInFlight <= 0 || *maxBytes <= 0 {
			return serving{}, usagef("-retry-window %v, -push-timeout %v, -max-inflight %d, -max-inflight-bytes %d: want all positive",
				*retryWindow, *pushTimeout, *maxInFlight, *maxBytes)
		}
		held, err := kf.load(clusterKey)
		if err != nil {
			return serving{}, usageError{err}
		}
		st, err := state.Dial(state.ClientConfig{Addr: *stateAddr, Secret: held.cluster, Name: "router", Logger: e.log, Registry: e.reg})
		if err != nil {
			return serving{}, err
		}
		rt, err := router.New(router.Config{Addr: *listen, Secret: held.cluster, State: st, CacheTTL: *cacheTTL,
			MaxLookups: *lookups, RetryWindow: *retryWindow, PushTimeout: *pushTimeout,
			MaxInFlight: *maxInFlight, MaxInFlightBytes: *maxBytes, Registry: e.reg, Logger: e.log})
		if err != nil {
			st.Close()
			return serving{}, err
		}
		st.Watch(rt.SetGateways)
		return serving{addr: rt.Addr(), run: rt.Serve, close: func() { st.Close() }}, nil
	})
}
