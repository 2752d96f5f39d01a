package main

import (
	"io"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
	"github.com/floodgate/floodgate/gateway/control"
	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/internal/units"
)

func runControl(args []string, stdout, stderr io.Writer) int {
	r := newRole("control", defControlAdmin)
	fs := r.fs
	var (
		listen         = fs.String("listen", defControl, "HTTP address of the control API (/v1/...) and /healthz: keep it private")
		stateAddr      = fs.String("state", defState, "state service link address")
		softFraction   = fs.Float64("soft-fraction", 0.9, "over_soft_limit when conns exceed this fraction of max_conns")
		workerQueueMax = fs.Int("worker-queue-max", 1000, "congestion when a gateway's worker queue exceeds this")
		clearRatio     = fs.Float64("clear-ratio", 0.9, "a load alert resolves at this fraction of its threshold")
		highWater      = fs.Float64("high-water", 0.75, "fleet utilisation above which scaling out is recommended")
		lowWater       = fs.Float64("low-water", 0.3, "fleet utilisation below which scaling in is recommended")
		minGateways    = fs.Int("min-gateways", 2, "smallest fleet ever recommended")
		sustain        = fs.Duration("sustain", 30*time.Second, "how long utilisation must stay past a watermark before a recommendation")
		ringSize       = fs.Int("alerts-kept", 1024, "alert events kept for GET /v1/alerts")
		drainTimeout   = fs.Duration("drain-timeout", 5*time.Second, "bound on reaching a gateway for a drain")
		drainBatch     = fs.Int("drain-batch", 500, "default clients kicked per drain interval")
		drainInterval  = fs.Duration("drain-interval", time.Second, "default time between drain batches")
		drainRetry     = fs.Duration("drain-retry-after", 0, "fixed delay added to drained clients' reconnect hint (each also gets a random share of the batch interval)")
		drainBatchMax  = fs.Int("drain-batch-max", 10000, "largest batch a drain request may ask for (400 beyond)")
		drainIntMin    = fs.Duration("drain-interval-min", 10*time.Millisecond, "shortest interval a drain request may ask for (400 below)")
		drainRetryMax  = fs.Duration("drain-retry-after-max", 10*time.Minute, "longest retry_after a drain request may ask for (400 beyond)")
		poll           = fs.Duration("poll", 500*time.Millisecond, "how often the gateway table is read")
		shutdownWait   = fs.Duration("shutdown-timeout", 5*time.Second, "bound on finishing in-flight requests at SIGTERM")
		outboundMax    = units.Size(64 << 20)
	)
	fs.Var(&outboundMax, "outbound-queued-max", "congestion when a gateway's queued outbound bytes exceed this")
	kf := registerKeys(fs, clusterKey, adminToken)
	return r.main(args, stdout, stderr, func(e env) (serving, error) {
		if *stateAddr == "" {
			return serving{}, usagef("-state is required")
		}
		held, err := kf.load(clusterKey, adminToken)
		if err != nil {
			return serving{}, usageError{err}
		}
		cfg := control.Config{
			SoftFraction: *softFraction, OutboundQueuedMax: int64(outboundMax), WorkerQueueMax: *workerQueueMax,
			ClearRatio: *clearRatio, HighWater: *highWater, LowWater: *lowWater, MinGateways: *minGateways,
			Sustain: *sustain, RingSize: *ringSize, LinkSecret: held.cluster, AdminToken: held.admin, DrainTimeout: *drainTimeout,
			DrainDefaults: gwlink.DrainRequest{Batch: *drainBatch, Interval: *drainInterval, RetryAfter: *drainRetry},
			DrainBatchMax: *drainBatchMax, DrainIntervalMin: *drainIntMin, DrainRetryAfterMax: *drainRetryMax,
			PollInterval: *poll, Registerer: e.reg, Logger: e.log,
		}
		store, closeStore, err := dialState("control", *stateAddr, held.cluster, e.reg, e.log) // in ipconf.go
		if err != nil {
			return serving{}, err
		}
		svc, err := control.New(store, cfg)
		if err != nil {
			closeStore()
			return serving{}, usageError{err}
		}
		sv, err := serveHTTP(e, *listen, admin.API(svc.Handler(), svc.Health), *shutdownWait, svc.Run)
		if err != nil {
			svc.Close()
			closeStore()
			return serving{}, err
		}
		sv.health = svc.Health
		sv.close = func() { svc.Close(); closeStore() }
		return sv, nil
	})
}
