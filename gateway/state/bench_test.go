package state_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/internal/redistest"
)

// benchStores are the backends the hot-call benchmarks run on.
func benchStores(b *testing.B) []struct {
	name string
	open func(b *testing.B) state.Store
} {
	return []struct {
		name string
		open func(b *testing.B) state.Store
	}{
		{"memory", func(*testing.B) state.Store { return state.NewMemory(state.MemoryConfig{}) }},
		{"client", func(b *testing.B) state.Store { return benchClient(b, state.NewMemory(state.MemoryConfig{})) }},
		{"redis", func(b *testing.B) state.Store {
			return newRedis(b, redisClient(b, redistest.Start(b)), state.RedisConfig{})
		}},
	}
}

// benchClient serves store and returns a connected client; both end with b.
func benchClient(b *testing.B, store state.Store) *state.Client {
	b.Helper()
	srv, err := state.NewServer(state.ServerConfig{Addr: "127.0.0.1:0", Secret: testSecret, Store: store, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	c, err := state.Dial(state.ClientConfig{Addr: srv.Addr(), Secret: testSecret, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkRegister registers sessions from parallel goroutines (a gateway's logins).
func BenchmarkRegister(b *testing.B) {
	for _, bs := range benchStores(b) {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			e, err := s.Acquire(b.Context(), state.Gateway{ID: "gw"}, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			var uid atomic.Uint64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					u := uid.Add(1)
					if _, err := s.Register(context.Background(), state.Session{UID: u, Gateway: "gw", Conn: u, Epoch: e}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkLookup looks up 10k registered users from parallel goroutines (a
// router's cache misses).
func BenchmarkLookup(b *testing.B) {
	const users = 10_000
	for _, bs := range benchStores(b) {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			e, _ := s.Acquire(b.Context(), state.Gateway{ID: "gw"}, time.Hour)
			for u := range uint64(users) {
				s.Register(b.Context(), state.Session{UID: u + 1, Gateway: "gw", Conn: u, Epoch: e})
			}
			var n atomic.Uint64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, ok, err := s.Lookup(context.Background(), n.Add(1)%users+1); err != nil || !ok {
						b.Errorf("lookup: %v %v", ok, err)
						return
					}
				}
			})
		})
	}
}
