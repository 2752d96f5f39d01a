package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/internal/redisconn"
)

func runState(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("state", flag.ContinueOnError)
	var (
		listen      = fs.String("listen", defState, "link address for gateways, routers, ipconf and control: keep it private")
		adminAddr   = fs.String("admin", defStateAdmin, "admin address for /metrics, /healthz, pprof and /debug/memstats: keep it private (empty: off)")
		backend     = fs.String("backend", "memory", "session and lease store: memory (this process) or redis (-redis-mode single, sentinel or cluster)")
		redisPrefix = fs.String("redis-prefix", "floodgate:state:", "prefix of every Redis key, with -backend redis (no '{' or '}': the store adds hash tags)")
		retention   = fs.Duration("retention", time.Hour, "how long a dead gateway stays listed")
		poll        = fs.Duration("poll", 100*time.Millisecond, "how often to check leases for lapses to push to watchers")
		workers     = fs.Int("workers", 64, "with -backend redis, store calls served side by side (in order per user and per gateway); the memory store serves each connection's calls in turn")
	)
	redisCfg := redisconn.Register(fs)
	kf := registerKeys(fs, clusterKey)
	log, done, code := parseLogged(fs, args, stderr)
	if done {
		return code
	}
	held, err := kf.load(clusterKey)
	if err != nil {
		fmt.Fprintln(stderr, "state:", err)
		return 2
	}
	secret := held.cluster
	if *backend != "memory" && *backend != "redis" {
		fmt.Fprintf(stderr, "state: -backend %q: want memory or redis\n", *backend)
		return 2
	}
	if *backend == "redis" {
		if err := redisCfg.Validate(); err != nil {
			fmt.Fprintln(stderr, "state:", err)
			return 2
		}
		if err := state.CheckRedisPrefix(*redisPrefix); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	store, health, closeStore, err := openStateStore(ctx, *backend, redisCfg, *redisPrefix, *retention, log)
	if err != nil {
		log.Error("state failed to start", "err", err)
		return 1
	}
	defer closeStore()
	// The memory store answers in microseconds: its calls are served on each
	// connection's reader. Redis is a round trip away: side by side.
	storeWorkers := 0
	if *backend == "redis" {
		storeWorkers = *workers
	}
	reg := admin.NewRegistry()
	srv, err := state.NewServer(state.ServerConfig{
		Addr: *listen, Secret: secret, Store: store, Logger: log, Registry: reg, Poll: *poll, Workers: storeWorkers,
	})
	if err != nil {
		log.Error("state failed to start", "err", err)
		return 1
	}
	adminURL := "-"
	if *adminAddr != "" {
		a, err := admin.Start(*adminAddr, admin.Handler(reg, health), log)
		if err != nil {
			log.Error("state failed to start", "err", err)
			return 1
		}
		defer a.Close(time.Second)
		adminURL = a.Addr()
	}
	if *backend == "redis" {
		log.Info("state store", "backend", *backend, "redis", redisCfg.String(), "prefix", *redisPrefix)
	} else {
		log.Info("state store", "backend", *backend)
	}
	// One machine-readable line on stdout for harnesses; everything else is logged.
	fmt.Fprintf(stdout, "READY state %s %s\n", srv.Addr(), adminURL)
	if err := srv.Serve(ctx); err != nil {
		log.Error("state stopped with an error", "err", err)
		return 1
	}
	return 0
}

// openStateStore opens the -backend store. health backs /healthz (nil: always OK);
// closeStore releases the store's resources.
func openStateStore(ctx context.Context, backend string, redisCfg *redisconn.Config, prefix string, retention time.Duration,
	log *slog.Logger) (store state.Store, health func() error, closeStore func(), err error) {
	switch backend {
	case "memory":
		return state.NewMemory(state.MemoryConfig{Retention: retention}), nil, func() {}, nil
	case "redis":
		rdb, health, err := openRedis(ctx, redisCfg, log)
		if err != nil {
			return nil, nil, nil, err
		}
		r, err := state.NewRedis(rdb, state.RedisConfig{Prefix: prefix, Retention: retention})
		if err != nil {
			rdb.Close()
			return nil, nil, nil, err
		}
		return r, health, func() { rdb.Close() }, nil
	}
	return nil, nil, nil, fmt.Errorf("-backend %q: want memory or redis", backend)
}
