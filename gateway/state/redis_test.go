package state_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/gateway/state/statetest"
	"github.com/floodgate/floodgate/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// redisClient returns a client of srv, closed when t ends.
func redisClient(t testing.TB, srv *redistest.Server) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestRedisStore(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	statetest.Run(t, func(t *testing.T) state.Store {
		// One server for the whole suite: each store has its own prefix.
		return state.NewRedis(redisClient(t, srv), state.RedisConfig{Prefix: fmt.Sprintf("suite%d:", n.Add(1))})
	})
}

// keys lists the keys under prefix, without it, sorted.
func keys(t *testing.T, rdb *redis.Client, prefix string) []string {
	t.Helper()
	all, err := rdb.Keys(t.Context(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for i := range all {
		all[i] = strings.TrimPrefix(all[i], prefix)
	}
	slices.Sort(all)
	return all
}

// Each way a lease ends leaves garbage that Sweep removes completely, touching
// neither the live gateway's sessions nor the users who moved to it.
func TestRedisSweepLeavesNoGarbage(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct {
		name string
		end  func(ctx context.Context, r *state.Redis, epoch uint64) error
	}{
		{"lapse", func(ctx context.Context, r *state.Redis, e uint64) error {
			if err := r.Renew(ctx, "gw-a", e, state.Load{}, 100*time.Millisecond); err != nil {
				return err
			}
			// Poll Redis's own view (Gateway.Live is an estimate on this host's clock).
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				n, err := r.Sessions(ctx)
				if err != nil {
					return err
				}
				if n == 10 {
					return nil
				}
			}
			return fmt.Errorf("lease did not lapse")
		}},
		{"release", func(ctx context.Context, r *state.Redis, e uint64) error { return r.Release(ctx, "gw-a", e) }},
		{"new epoch", func(ctx context.Context, r *state.Redis, _ uint64) error {
			_, err := r.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			rdb := redisClient(t, srv)
			prefix := "sweep-" + strings.ReplaceAll(tc.name, " ", "-") + ":"
			r := state.NewRedis(rdb, state.RedisConfig{Prefix: prefix, SweepBatch: 7}) // many script runs per sweep
			ea, _ := r.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
			eb, _ := r.Acquire(ctx, state.Gateway{ID: "gw-b"}, time.Minute)
			for uid := range uint64(100) {
				if _, err := r.Register(ctx, state.Session{UID: uid + 1, Gateway: "gw-a", Conn: uid, Epoch: ea}); err != nil {
					t.Fatal(err)
				}
			}
			for uid := range uint64(10) { // ten users move to gw-b
				if _, err := r.Register(ctx, state.Session{UID: uid + 1, Gateway: "gw-b", Conn: uid, Epoch: eb}); err != nil {
					t.Fatal(err)
				}
			}
			if n, _ := r.Sessions(ctx); n != 100 {
				t.Fatalf("%d valid sessions, want 100", n)
			}
			if err := tc.end(ctx, r, ea); err != nil {
				t.Fatal(err)
			}
			if n, _ := r.Sessions(ctx); n != 10 {
				t.Fatalf("%d valid sessions after gw-a's lease ended, want 10", n)
			}
			if n, err := r.Sweep(ctx); n != 90 || err != nil {
				t.Fatalf("sweep reclaimed %d (%v), want 90", n, err)
			}
			if n, _ := r.Sweep(ctx); n != 0 {
				t.Fatalf("second sweep reclaimed %d", n)
			}
			want := []string{"epoch", "gw:gw-a", "gw:gw-b", "gws", fmt.Sprintf("idx:gw-b:%d", eb), "lease:gw-b"}
			if tc.name == "new epoch" {
				want = append(want, "lease:gw-a")
			}
			for uid := range 10 {
				want = append(want, fmt.Sprintf("s:%d", uid+1))
			}
			slices.Sort(want)
			if got := keys(t, rdb, prefix); !slices.Equal(got, want) {
				t.Fatalf("keys after the sweep:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestRedisLookupReclaimsDeadSessions(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	rdb := redisClient(t, srv)
	r := state.NewRedis(rdb, state.RedisConfig{Prefix: "lazy:"})
	e, _ := r.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
	r.Register(ctx, state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e})
	r.Release(ctx, "gw-a", e)
	if _, st, _ := r.Probe(ctx, 1); st != state.LookupInvalid {
		t.Fatalf("probe after release: %v", st)
	}
	if got := keys(t, rdb, "lazy:"); slices.ContainsFunc(got, func(k string) bool {
		return strings.HasPrefix(k, "s:") || strings.HasPrefix(k, "idx:")
	}) {
		t.Fatalf("the dead session is still stored: %q", got)
	}
}

// Two prefixes on one server are two independent stores.
func TestRedisPrefixesIsolate(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	rdb := redisClient(t, srv)
	a := state.NewRedis(rdb, state.RedisConfig{Prefix: "a:"})
	b := state.NewRedis(rdb, state.RedisConfig{Prefix: "b:"})
	e, _ := a.Acquire(ctx, state.Gateway{ID: "gw"}, time.Minute)
	if _, err := a.Register(ctx, state.Session{UID: 1, Gateway: "gw", Conn: 1, Epoch: e}); err != nil {
		t.Fatal(err)
	}
	if gws, _ := b.Gateways(ctx); len(gws) != 0 {
		t.Fatalf("b lists a's gateways: %+v", gws)
	}
	if _, ok, _ := b.Lookup(ctx, 1); ok {
		t.Fatal("b finds a's session")
	}
	if _, err := b.Register(ctx, state.Session{UID: 1, Gateway: "gw", Conn: 1, Epoch: e}); err == nil {
		t.Fatal("b accepted a registration under a's lease")
	}
}

// Redis loses its data (a restart without persistence): epochs still increase, so
// no peer can mistake a new lease for one it cached before; the client reconnects.
func TestRedisEpochsSurviveDataLoss(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	r := state.NewRedis(redisClient(t, srv), state.RedisConfig{})
	var last uint64
	for range 3 {
		e, _ := r.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
		last = e
	}
	srv.Restart(t)
	e, err := r.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
	if err != nil {
		t.Fatalf("acquire after the restart: %v", err)
	}
	if e <= last {
		t.Fatalf("epoch %d after the data loss, want above %d", e, last)
	}
}
