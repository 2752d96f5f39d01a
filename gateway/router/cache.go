package router

import (
	"sync"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
)

const cacheShards = 64

// routeCache remembers where users are. An entry is only as good as its gateway's
// epoch: the router tracks each gateway's live epoch from the state service's watch,
// and an entry whose epoch is not the live one of its gateway is treated as absent.
// So a gateway death invalidates all of its routes at once, without a scan. A TTL
// bounds how long any entry is trusted, and a gateway answering NOT_HERE (the user
// moved) removes the entry at once.
type routeCache struct {
	ttl    time.Duration
	max    int // entries per shard before the shard is reset
	shards [cacheShards]struct {
		mu sync.Mutex
		m  map[uint64]cacheEntry
	}
}

type cacheEntry struct {
	s       state.Session
	expires time.Time
}

func newRouteCache(ttl time.Duration, maxEntries int) *routeCache {
	c := &routeCache{ttl: ttl, max: max(maxEntries/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]cacheEntry)
	}
	return c
}

// get returns uid's cached session if it has not expired; the caller still checks
// its epoch against the gateway's live one.
func (c *routeCache) get(uid uint64, now time.Time) (state.Session, bool) {
	sh := &c.shards[uid%cacheShards]
	sh.mu.Lock()
	e, ok := sh.m[uid]
	sh.mu.Unlock()
	if !ok || now.After(e.expires) {
		return state.Session{}, false
	}
	return e.s, true
}

func (c *routeCache) put(s state.Session, now time.Time) {
	sh := &c.shards[s.UID%cacheShards]
	sh.mu.Lock()
	if len(sh.m) >= c.max {
		clear(sh.m) // crude but bounded: a full shard starts over and refills on demand
	}
	sh.m[s.UID] = cacheEntry{s: s, expires: now.Add(c.ttl)}
	sh.mu.Unlock()
}

// drop removes uid's entry if it is still s (a newer entry is kept).
func (c *routeCache) drop(s state.Session) {
	sh := &c.shards[s.UID%cacheShards]
	sh.mu.Lock()
	if e, ok := sh.m[s.UID]; ok && e.s == s {
		delete(sh.m, s.UID)
	}
	sh.mu.Unlock()
}

func (c *routeCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
