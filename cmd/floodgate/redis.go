package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/floodgate/floodgate/internal/redisconn"
	"github.com/redis/go-redis/v9"
)

// openRedis opens the Redis deployment cfg names (redisconn.Register's flags) for a
// role: it routes go-redis's own log lines into log, waits up to 5s for Redis to
// answer (every primary, on a Cluster), so that a misconfigured process fails at
// start rather than at its first request, and returns the client with a health
// check for /healthz (redisconn.Ping within a second). The caller closes the client.
func openRedis(ctx context.Context, cfg *redisconn.Config, log *slog.Logger) (redis.UniversalClient, func() error, error) {
	// go-redis has one process-wide logger; the process that opens Redis routes it.
	redis.SetLogger(redisLog{log.With("component", "go-redis")})
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rdb, err := redisconn.Open(octx, *cfg)
	if err != nil {
		return nil, nil, err
	}
	health := func() error {
		hctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := redisconn.Ping(hctx, rdb); err != nil {
			return fmt.Errorf("redis %s: %w", cfg, err)
		}
		return nil
	}
	return rdb, health, nil
}

// redisLog routes go-redis's log lines (connection trouble) into slog as warnings.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
