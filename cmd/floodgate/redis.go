package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/floodgate/floodgate/internal/redisconn"
	"github.com/redis/go-redis/v9"
)

// openRedis opens the Redis deployment cfg describes (see redisconn) for a role's
// store, once it answers within 5s (every primary, on a Cluster), and returns it
// with the check behind the role's /healthz. It routes go-redis's own log lines
// (connection trouble, failovers) to log: go-redis has one process-wide logger, and a
// process opens Redis for one role, so setting it here sets it once.
func openRedis(ctx context.Context, cfg *redisconn.Config, log *slog.Logger) (redis.UniversalClient, func() error, error) {
	redis.SetLogger(redisLogger{log.With("component", "go-redis")})
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

// redisLogger routes go-redis's log lines into slog as warnings.
type redisLogger struct{ log *slog.Logger }

// Printf implements go-redis's internal.Logging.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
