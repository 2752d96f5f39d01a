package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/internal/redisconn"
)

func runMsg(args []string, stdout, stderr io.Writer) int {
	r := newRole("msg", defMsgAdmin)
	fs := r.fs
	var (
		id      = fs.String("id", "msg-1", "this process's name, in logs and to the router")
		listen  = fs.String("listen", defMsg, "link address gateways call (ip:port): keep it private")
		backend = fs.String("backend", "memory", "message store and what it can lose: memory (everything, at exit), "+
			"redis (acknowledged once the Redis primary holds it: up to ~1s of messages when the primary's host crashes with appendfsync everysec, "+
			"and what was not yet replicated on a Sentinel or Cluster failover) or "+
			"redis-replicated (acknowledged only once a replica holds it too: WAIT 1 -replica-timeout; nothing acknowledged is lost on a failover, "+
			"but with a single replica SENDs go unacknowledged after one until a replica attaches to the new primary)")
		redisPrefix    = fs.String("redis-prefix", "fg:msg:", "prefix of every Redis key of the store, without '{' or '}', for the redis backends")
		replicaTimeout = fs.Duration("replica-timeout", msg.DefaultReplicaTimeout, "with -backend redis-replicated: how long an append waits for a replica to confirm it "+
			"(at most 1s); a SEND not confirmed in time is not acknowledged, and its sender's retry is deduplicated")
		inbox      = fs.Int("inbox", msg.DefaultQuotaMessages, "per-recipient quota: unacknowledged messages kept; a SEND beyond it is refused RECIPIENT_FULL")
		inboxBytes = fs.Int64("inbox-bytes", msg.DefaultQuotaBytes, "per-recipient quota: payload bytes of unacknowledged messages; a SEND beyond it is refused RECIPIENT_FULL")
		retention  = fs.Duration("retention", msg.DefaultRetention, "how long a message is kept, acknowledged or not; older ones are dropped and empty inboxes deleted")
		dedupe     = fs.Duration("dedupe-window", msg.DefaultDedupeWindow, "how long a message's (recipient, sender, client message id) is remembered, so that a retried SEND stores nothing")
		router     = fs.String("router", "", "router link address to deliver stored messages through, "+defRouter+" by default where the router runs (empty: none; they reach recipients only through SYNC)")
		resendMin  = fs.Duration("resend-min", 2*time.Second, "pause before a message the router has not settled is sent to it again; doubles up to -resend-max")
		resendMax  = fs.Duration("resend-max", 30*time.Second, "longest pause between resends of a message the router has not settled")
		reconnect  = fs.Duration("router-reconnect-max", 500*time.Millisecond, "longest pause between attempts to reach the router (every unsettled message is replayed once it is back)")
		workers    = fs.Int("workers", 64, "with a Redis backend, calls served side by side (in order per user); the memory store serves each connection's calls in turn")
	)
	redisCfg := redisconn.Register(fs)
	kf := registerKeys(fs, clusterKey)
	return r.main(args, stdout, stderr, func(e env) (serving, error) {
		if *inbox <= 0 || *inboxBytes <= 0 || *retention <= 0 {
			return serving{}, usagef("-inbox %d, -inbox-bytes %d, -retention %v: want positive values", *inbox, *inboxBytes, *retention)
		}
		if *dedupe <= 0 || *resendMin <= 0 || *resendMax < *resendMin || *reconnect <= 0 {
			return serving{}, usagef("-dedupe-window %v, -resend-min %v, -resend-max %v, -router-reconnect-max %v: want positive durations, resend-max >= resend-min",
				*dedupe, *resendMin, *resendMax, *reconnect)
		}
		switch *backend {
		case backendMemory, backendRedis, backendRedisReplicated:
		default:
			return serving{}, usagef("-backend %q: want memory, redis or redis-replicated", *backend)
		}
		if *replicaTimeout <= 0 || *replicaTimeout > time.Second {
			// WAIT blocks the connection that long, and the Redis client's read timeout is 2s.
			return serving{}, usagef("-replica-timeout %v: want a positive duration of at most 1s", *replicaTimeout)
		}
		if *backend != backendMemory {
			if err := msg.CheckRedisPrefix(*redisPrefix); err != nil {
				return serving{}, usagef("-redis-prefix: %w", err)
			}
			if err := redisCfg.Validate(); err != nil {
				return serving{}, usageError{err}
			}
		}
		held, err := kf.load(clusterKey)
		if err != nil {
			return serving{}, usageError{err}
		}
		log := e.log.With("id", *id)
		opts := []msg.StoreOption{msg.WithDedupeWindow(*dedupe), msg.WithQuotaBytes(*inboxBytes), msg.WithRetention(*retention)}
		if *backend == backendRedisReplicated {
			opts = append(opts, msg.WithReplicas(1, *replicaTimeout))
		}
		store, health, closeStore, err := openMsgStore(*backend, redisCfg, *redisPrefix, *inbox, log, opts...)
		if err != nil {
			return serving{}, err
		}
		// The memory store answers in microseconds: its calls are served on each
		// connection's reader. Redis is a round trip away: side by side.
		storeWorkers := 0
		if *backend != backendMemory {
			storeWorkers = *workers
		}
		srv, err := msg.NewServer(msg.ServerConfig{Addr: *listen, Secret: held.cluster, Store: store, Router: *router, Name: *id,
			Delivery: msg.DeliveryConfig{ResendMin: *resendMin, ResendMax: *resendMax, ReconnectMax: *reconnect},
			Logger:   log, Registry: e.reg, Workers: storeWorkers})
		if err != nil {
			closeStore()
			return serving{}, err
		}
		log.Info("msg store", "backend", *backend, "redis", redisDesc(*backend, redisCfg), "inbox", *inbox, "inbox_bytes", *inboxBytes, "retention", *retention, "router", *router)
		return serving{addr: srv.Addr(), health: health, run: srv.Serve, close: closeStore}, nil
	})
}

// The -backend values.
const (
	backendMemory          = "memory"
	backendRedis           = "redis"
	backendRedisReplicated = "redis-replicated"
)

// redisDesc names the Redis deployment a backend uses, for the log ("-" for memory).
func redisDesc(backend string, cfg *redisconn.Config) string {
	if backend == backendMemory {
		return "-"
	}
	return cfg.String()
}

// openMsgStore opens the -backend store, returning it with its health check (nil:
// always healthy) and what closes it. A Redis that does not answer within 5s is an
// error (openRedis), so a misconfigured process fails at start rather than at the
// first message.
func openMsgStore(backend string, cfg *redisconn.Config, prefix string, perUser int, log *slog.Logger, opts ...msg.StoreOption) (msg.Store, func() error, func(), error) {
	if backend == backendMemory {
		return msg.NewMemory(perUser, opts...), nil, func() {}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rdb, health, err := openRedis(ctx, cfg, log)
	if err != nil {
		return nil, nil, nil, err
	}
	store, err := msg.NewRedis(rdb, prefix, perUser, opts...)
	if err == nil {
		err = store.Ping(ctx)
	}
	if err != nil {
		rdb.Close()
		return nil, nil, nil, fmt.Errorf("redis %s: %w", cfg, err)
	}
	return store, health, func() { rdb.Close() }, nil
}
