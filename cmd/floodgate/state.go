package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/internal/redisconn"
)

func runState(args []string, stdout, stderr io.Writer) int {
	r := newRole("state", defStateAdmin)
	fs := r.fs
	var (
		listen      = fs.String("listen", defState, "link address for gateways, routers, ipconf and control: keep it private")
		backend     = fs.String("backend", "memory", "session and lease store: memory (this process) or redis (-redis-mode single, sentinel or cluster)")
		redisPrefix = fs.String("redis-prefix", "floodgate:state:", "prefix of every Redis key, with -backend redis (no '{' or '}': the store adds hash tags)")
		retention   = fs.Duration("retention", time.Hour, "how long a dead gateway stays listed")
		poll        = fs.Duration("poll", 100*time.Millisecond, "how often to check leases for lapses to push to watchers")
		workers     = fs.Int("workers", 64, "with -backend redis, store calls served side by side (in order per user and per gateway); the memory store serves each connection's calls in turn")
	)
	redisCfg := redisconn.Register(fs)
	kf := registerKeys(fs, clusterKey)
	return r.main(args, stdout, stderr, func(e env) (serving, error) {
		held, err := kf.load(clusterKey)
		if err != nil {
			return serving{}, usageError{err}
		}
		switch *backend {
		case "memory":
		case "redis":
			if err := redisCfg.Validate(); err != nil {
				return serving{}, usageError{err}
			}
			if err := state.CheckRedisPrefix(*redisPrefix); err != nil {
				return serving{}, usageError{err}
			}
		default:
			return serving{}, usagef("-backend %q: want memory or redis", *backend)
		}
		store, health, closeStore, err := openStateStore(context.Background(), *backend, redisCfg, *redisPrefix, *retention, e.log)
		if err != nil {
			return serving{}, err
		}
		// The memory store answers in microseconds: its calls are served on each
		// connection's reader. Redis is a round trip away: side by side.
		storeWorkers := 0
		if *backend == "redis" {
			storeWorkers = *workers
		}
		srv, err := state.NewServer(state.ServerConfig{
			Addr: *listen, Secret: held.cluster, Store: store, Logger: e.log, Registry: e.reg, Poll: *poll, Workers: storeWorkers,
		})
		if err != nil {
			closeStore()
			return serving{}, err
		}
		if *backend == "redis" {
			e.log.Info("state store", "backend", *backend, "redis", redisCfg.String(), "prefix", *redisPrefix)
		} else {
			e.log.Info("state store", "backend", *backend)
		}
		return serving{addr: srv.Addr(), health: health, run: srv.Serve, close: closeStore}, nil
	})
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
