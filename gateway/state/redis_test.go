package state_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/gateway/state/statetest"
	"github.com/floodgate/floodgate/internal/redisconn"
	"github.com/floodgate/floodgate/internal/redistest"
	"github.com/floodgate/floodgate/internal/shardtag"
	"github.com/redis/go-redis/v9"
)

// redisClient returns a client of srv, closed when t ends.
func redisClient(t testing.TB, srv *redistest.Server) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// newRedis returns a store on rdb, failing t if cfg is refused.
func newRedis(t testing.TB, rdb redis.UniversalClient, cfg state.RedisConfig) *state.Redis {
	t.Helper()
	r, err := state.NewRedis(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// deployment is a running Redis deployment of one mode.
type deployment struct {
	cfg      redisconn.Config
	sentinel *redistest.Sentinel // sentinel mode only
	cluster  *redistest.Cluster  // cluster mode only
}

// startDeployment starts a deployment of mode for the duration of t: one server, a
// primary and replica under three sentinels, or a cluster of 3 shards with a replica
// each.
func startDeployment(t *testing.T, mode string) deployment {
	t.Helper()
	switch mode {
	case redisconn.Sentinel:
		d := redistest.StartSentinel(t)
		return deployment{cfg: redisconn.Config{Mode: mode, Addrs: d.SentinelAddrs, Master: d.Master}, sentinel: d}
	case redisconn.Cluster:
		c := redistest.StartCluster(t, 3, 1)
		return deployment{cfg: redisconn.Config{Mode: mode, Addrs: c.Addrs}, cluster: c}
	}
	return deployment{cfg: redisconn.Config{Mode: mode, Addrs: []string{redistest.Start(t).Addr}}}
}

// open returns a client of the deployment, as the commands open one, closed when t
// ends.
func (d deployment) open(t *testing.T) redis.UniversalClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rdb, err := redisconn.Open(ctx, d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// The store on each deployment: the shared suite (on a Cluster it also shows that no
// script is refused CROSSSLOT or for an undeclared key), the cross-slot race, and
// what only that mode has: spread over shards, failover.
func TestRedisDeployments(t *testing.T) {
	for _, mode := range []string{redisconn.Single, redisconn.Sentinel, redisconn.Cluster} {
		t.Run(mode, func(t *testing.T) {
			d := startDeployment(t, mode)
			rdb := d.open(t)
			t.Run("suite", func(t *testing.T) {
				var n atomic.Int64
				statetest.Run(t, func(t *testing.T) state.Store {
					return newRedis(t, rdb, state.RedisConfig{Prefix: fmt.Sprintf("suite%d:", n.Add(1))})
				})
			})
			t.Run("RegisterRacingALeaseLossLeavesNoLiveSession", func(t *testing.T) {
				testRegisterRacingLeaseLoss(t, rdb)
			})
			switch mode {
			case redisconn.Cluster:
				t.Run("SessionsSpreadOverEveryShard", func(t *testing.T) { testSpread(t, d, rdb) })
			case redisconn.Sentinel:
				t.Run("FailoverKeepsReplicatedSessions", func(t *testing.T) { testFailover(t, d, rdb) })
			}
		})
	}
}

// testRegisterRacingLeaseLoss stages the race the split between the lease's slot and
// the sessions' slots allows: two registrations pass their lease check, the lease
// is released, a sweep runs, and only then do their writes land. Neither session is
// ever returned by Lookup, the one Lookup does not reclaim is reclaimed by the next
// sweep, and nothing of the dead epoch is left.
func testRegisterRacingLeaseLoss(t *testing.T, rdb redis.UniversalClient) {
	ctx := t.Context()
	r := newRedis(t, rdb, state.RedisConfig{Prefix: "race:"})
	e, err := r.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register(ctx, state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e}); err != nil {
		t.Fatal(err)
	}
	checked, proceed := make(chan struct{}), make(chan struct{})
	state.SetLeaseCheckedHook(r, func() { checked <- struct{}{}; <-proceed })
	errs := make(chan error, 2)
	for _, uid := range []uint64{2, 3} {
		go func() {
			_, err := r.Register(context.Background(), state.Session{UID: uid, Gateway: "gw-a", Conn: uid, Epoch: e})
			errs <- err
		}()
	}
	for range 2 {
		select {
		case <-checked:
		case <-time.After(10 * time.Second):
			t.Fatal("the registrations did not reach their lease check")
		}
	}
	if err := r.Release(ctx, "gw-a", e); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Sweep(ctx); n != 1 || err != nil { // uid 1; the racing writes have not landed
		t.Fatalf("sweep before the racing writes reclaimed %d (%v), want 1", n, err)
	}
	close(proceed)
	for range 2 {
		select {
		case err := <-errs:
			if err != nil { // it counts as done just before the lease ended
				t.Fatalf("racing register: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the racing registrations did not finish")
		}
	}
	for _, uid := range []uint64{1, 2} {
		if ses, ok, err := r.Lookup(ctx, uid); ok || err != nil {
			t.Fatalf("lookup %d after its lease was released: %+v %v %v, want absent", uid, ses, ok, err)
		}
	}
	if n, err := r.Sessions(ctx); n != 0 || err != nil {
		t.Fatalf("sessions %d (%v), want 0", n, err)
	}
	if n, err := r.Sweep(ctx); n != 1 || err != nil { // uid 3: the dead epoch is walked again
		t.Fatalf("sweep after the racing writes reclaimed %d (%v), want 1", n, err)
	}
	if _, st, err := r.Probe(ctx, 3); st != state.LookupMiss || err != nil {
		t.Fatalf("probe of the swept session: %v %v, want a miss", st, err)
	}
}

// testSpread registers many users on a 3-shard Cluster: each shard's primary gains
// within 20% of the mean number of keys.
func testSpread(t *testing.T, d deployment, rdb redis.UniversalClient) {
	const users = 3000
	ctx := t.Context()
	primaries := make([]*redis.Client, len(d.cluster.Shards))
	for i, sh := range d.cluster.Shards {
		primaries[i] = redis.NewClient(&redis.Options{Addr: sh.Primary})
		defer primaries[i].Close()
	}
	dbsize := func() []int64 {
		out := make([]int64, len(primaries))
		for i, p := range primaries {
			n, err := p.DBSize(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			out[i] = n
		}
		return out
	}
	before := dbsize()
	r := newRedis(t, rdb, state.RedisConfig{Prefix: "spread:"})
	e, err := r.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for uid := uint64(w) + 1; uid <= users; uid += 8 {
				if _, err := r.Register(ctx, state.Session{UID: uid, Gateway: "gw-a", Conn: uid, Epoch: e}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := r.Sessions(ctx); n != users || err != nil {
		t.Fatalf("sessions %d (%v), want %d", n, err, users)
	}
	after := dbsize()
	var sum int64
	gained := make([]int64, len(after))
	for i := range after {
		gained[i] = after[i] - before[i]
		sum += gained[i]
	}
	mean := float64(sum) / float64(len(gained))
	for i, g := range gained {
		if f := float64(g); f < 0.8*mean || f > 1.2*mean {
			t.Errorf("shard %s gained %d keys, mean %.0f: outside 20%% (all: %v)", d.cluster.Shards[i].Primary, g, mean, gained)
		}
	}
	t.Logf("keys gained per shard for %d sessions: %v", users, gained)
}

// testFailover registers sessions through a state server, waits until the replica
// has them, SIGKILLs the primary, and checks that after Sentinel's failover the same
// server and store find every session and keep serving. It logs how long calls
// failed.
func testFailover(t *testing.T, d deployment, rdb redis.UniversalClient) {
	const users = 200
	ctx := t.Context()
	r := newRedis(t, rdb, state.RedisConfig{Prefix: "failover:"})
	srv, _ := startServer(t, state.ServerConfig{Store: r, Workers: 16})
	c := dial(t, srv.Addr())
	e, err := c.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for uid := uint64(1); uid <= users; uid++ {
		if _, err := c.Register(ctx, state.Session{UID: uid, Gateway: "gw-a", Conn: uid, Epoch: e}); err != nil {
			t.Fatal(err)
		}
	}
	// WAIT counts the replication of this connection's writes: write a marker on the
	// connection that WAITs; the stream is ordered, so everything before it is there.
	var acked *redis.Cmd
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "failover:marker", 1, 0)
		acked = p.Do(ctx, "WAIT", 1, 5000)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := acked.Int64(); err != nil || n < 1 {
		t.Fatalf("WAIT 1: %d replicas, %v", n, err)
	}

	// A gateway with the default lease (3s, renewed every second, each call given a
	// third of the TTL, as gateway/cluster does) renews across the failover; the log
	// says whether its lease survived.
	const ttl = 3 * time.Second
	er, err := c.Acquire(ctx, state.Gateway{ID: "gw-renewing"}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	renewals := make(chan string, 1)
	go func() { // six renewals: the kill, the failover and a few seconds after
		var outcomes []string
		defer func() { renewals <- strings.Join(outcomes, " ") }()
		tick := time.NewTicker(ttl / 3)
		defer tick.Stop()
		for range 6 {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			rctx, cancel := context.WithTimeout(ctx, ttl/3)
			err := c.Renew(rctx, "gw-renewing", er, state.Load{}, ttl)
			cancel()
			switch {
			case err == nil:
				outcomes = append(outcomes, "ok")
			case errors.Is(err, state.ErrLeaseLost):
				outcomes = append(outcomes, "LOST")
				return
			default:
				outcomes = append(outcomes, "error")
			}
		}
	}()

	// Look a user up every 10ms through the server (each call given 250ms), from the
	// kill until a lookup and a registration succeed after it.
	type probe struct {
		at time.Duration
		ok bool
	}
	var probes []probe
	killed := time.Now()
	d.sentinel.Primary.Kill()
	var regOK time.Duration
	next := uint64(users + 1)
	for deadline := killed.Add(60 * time.Second); regOK == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no successful lookup and registration within 60s of the kill; probes %v", probes)
		}
		cctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		at := time.Since(killed)
		ses, ok, err := c.Lookup(cctx, 1)
		probes = append(probes, probe{at, err == nil && ok && ses.Epoch == e})
		if err == nil && ok {
			if _, err := c.Register(cctx, state.Session{UID: next, Gateway: "gw-a", Conn: next, Epoch: e}); err == nil {
				regOK = time.Since(killed)
			}
		}
		cancel()
	}
	var firstFail, lastFail time.Duration = -1, -1
	for _, p := range probes {
		if !p.ok {
			if firstFail < 0 {
				firstFail = p.at
			}
			lastFail = p.at
		}
	}
	d.sentinel.WaitFailover(t, 30*time.Second)
	select { // an observation, not a check: whether the lease survives depends on timing
	case r := <-renewals:
		t.Logf("failover: renewals of a %v lease every %v from before the kill: %s", ttl, ttl/3, r)
	case <-time.After(30 * time.Second):
		t.Fatal("the renewals did not end")
	}
	t.Logf("failover: lookups started from %v to %v after the kill failed (%d probes); first registration ok %v after it",
		firstFail, lastFail, len(probes), regOK)

	for uid := uint64(1); uid <= users; uid++ {
		if ses, ok, err := c.Lookup(ctx, uid); err != nil || !ok || ses.Epoch != e {
			t.Fatalf("uid %d after the failover: %+v %v %v", uid, ses, ok, err)
		}
	}
	if err := c.Renew(ctx, "gw-a", e, state.Load{}, time.Minute); err != nil {
		t.Fatalf("renew after the failover: %v", err)
	}
	e2, err := c.Acquire(ctx, state.Gateway{ID: "gw-b"}, time.Minute)
	if err != nil || e2 <= e {
		t.Fatalf("acquire after the failover: epoch %d (%v), want above %d", e2, err, e)
	}
	if err := c.Release(ctx, "gw-a", e); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Sweep(ctx); n != users+1 || err != nil {
		t.Fatalf("sweep after the failover reclaimed %d (%v), want %d", n, err, users+1)
	}
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
	tags := shardtag.New()
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
			r := newRedis(t, rdb, state.RedisConfig{Prefix: prefix, SweepBatch: 7}) // many script runs per sweep
			ea, _ := r.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
			eb, _ := r.Acquire(ctx, state.Gateway{ID: "gw-b"}, time.Minute)
			for uid := range uint64(1000) {
				if _, err := r.Register(ctx, state.Session{UID: uid + 1, Gateway: "gw-a", Conn: uid, Epoch: ea}); err != nil {
					t.Fatal(err)
				}
			}
			for uid := range uint64(10) { // ten users move to gw-b
				if _, err := r.Register(ctx, state.Session{UID: uid + 1, Gateway: "gw-b", Conn: uid, Epoch: eb}); err != nil {
					t.Fatal(err)
				}
			}
			if n, _ := r.Sessions(ctx); n != 1000 {
				t.Fatalf("%d valid sessions, want 1000", n)
			}
			if err := tc.end(ctx, r, ea); err != nil {
				t.Fatal(err)
			}
			if n, _ := r.Sessions(ctx); n != 10 {
				t.Fatalf("%d valid sessions after gw-a's lease ended, want 10", n)
			}
			if n, err := r.Sweep(ctx); n != 990 || err != nil {
				t.Fatalf("sweep reclaimed %d (%v), want 990", n, err)
			}
			if n, _ := r.Sweep(ctx); n != 0 {
				t.Fatalf("second sweep reclaimed %d", n)
			}
			// The dead epoch stays queued (garbage) for the grace after its death.
			want := []string{"{gw}epoch", "{gw}garbage", "{gw}gw:gw-a", "{gw}gw:gw-b", "{gw}gws", "{gw}lease:gw-b"}
			if tc.name == "new epoch" {
				want = append(want, "{gw}lease:gw-a")
			}
			for uid := range uint64(10) {
				tag := tags.UserTag(uid + 1)
				want = append(want, fmt.Sprintf("%ss:%d", tag, uid+1))
				if idx := fmt.Sprintf("%sidx:gw-b:%d", tag, eb); !slices.Contains(want, idx) {
					want = append(want, idx)
				}
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
	r := newRedis(t, rdb, state.RedisConfig{Prefix: "lazy:"})
	e, _ := r.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
	r.Register(ctx, state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e})
	r.Release(ctx, "gw-a", e)
	if _, st, _ := r.Probe(ctx, 1); st != state.LookupInvalid {
		t.Fatalf("probe after release: %v", st)
	}
	if got := keys(t, rdb, "lazy:"); slices.ContainsFunc(got, func(k string) bool {
		return strings.Contains(k, "}s:") || strings.Contains(k, "}idx:")
	}) {
		t.Fatalf("the dead session is still stored: %q", got)
	}
}

// A gateway record written before records had a WebSocket address (by an older
// gateway during a rolling upgrade) is listed, live, without one.
func TestRedisListsARecordWithoutAWebSocketField(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	rdb := redisClient(t, srv)
	r := newRedis(t, rdb, state.RedisConfig{Prefix: "old:"})
	e, err := r.Acquire(ctx, state.Gateway{ID: "gw-a", Addr: "127.0.0.1:7000", WSAddr: "127.0.0.1:7080"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.HDel(ctx, "old:{gw}gw:gw-a", "ws").Result(); err != nil || n != 1 {
		t.Fatalf("removing the record's ws field: %d removed, %v", n, err)
	}
	gws, err := r.Gateways(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(gws) != 1 || gws[0].Epoch != e || !gws[0].Live(time.Now()) || gws[0].Addr != "127.0.0.1:7000" || gws[0].WSAddr != "" {
		t.Fatalf("listed %+v, want gw-a live under epoch %d at 127.0.0.1:7000 without a WebSocket address", gws, e)
	}
}

// Two prefixes on one server are two independent stores.
func TestRedisPrefixesIsolate(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	rdb := redisClient(t, srv)
	a := newRedis(t, rdb, state.RedisConfig{Prefix: "a:"})
	b := newRedis(t, rdb, state.RedisConfig{Prefix: "b:"})
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

// A prefix with a brace would make Cluster hash the prefix, not the store's tags.
func TestRedisRefusesBracedPrefixes(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never contacted
	defer rdb.Close()
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{
		{"", true}, {"fg:state:", true}, {"{fg}:", false}, {"fg{", false}, {"fg}", false},
	} {
		_, err := state.NewRedis(rdb, state.RedisConfig{Prefix: tc.prefix})
		if (err == nil) != tc.ok {
			t.Errorf("prefix %q: err %v, want ok %v", tc.prefix, err, tc.ok)
		}
	}
}

// Redis loses its data (a restart without persistence): epochs still increase, so
// no peer can mistake a new lease for one it cached before; the client reconnects.
func TestRedisEpochsSurviveDataLoss(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	r := newRedis(t, redisClient(t, srv), state.RedisConfig{})
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

// A server that forgot the scripts (a restart, a promoted replica: the script cache
// is not replicated) runs them again from their source, pipelined ones included.
func TestRedisRunsScriptsAfterTheCacheIsFlushed(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	rdb := redisClient(t, srv)
	r := newRedis(t, rdb, state.RedisConfig{Prefix: "flush:"})
	e, _ := r.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
	if _, err := r.Register(ctx, state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name string
		run  func() error
	}{
		{"register", func() error {
			_, err := r.Register(ctx, state.Session{UID: 2, Gateway: "gw-a", Conn: 2, Epoch: e})
			return err
		}},
		{"reregister batch", func() error {
			errs, err := r.ReregisterBatch(ctx, []state.Session{{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e},
				{UID: 3, Gateway: "gw-a", Conn: 3, Epoch: e}})
			return errors.Join(append(errs, err)...)
		}},
		{"release", func() error { return r.Release(ctx, "gw-a", e) }},
		{"sweep", func() error {
			if n, err := r.Sweep(ctx); err != nil || n != 3 {
				return fmt.Errorf("reclaimed %d (%v), want 3", n, err)
			}
			return nil
		}},
	} {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := step.run(); err != nil {
			t.Fatalf("%s after SCRIPT FLUSH: %v", step.name, err)
		}
	}
}
