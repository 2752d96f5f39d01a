package node

import (
	"sync"
	"sync/atomic"

	"github.com/floodgate/floodgate/gateway/reactor"
)

// session is one logged-in connection: the Conn's context from LOGIN_OK on. Before
// LOGIN a connection has none, so an unauthenticated connection costs nothing here.
type session struct {
	uid uint64
	id  uint64
	c   *reactor.Conn
}

const sessionShards = 64

// sessions maps uid → current session, sharded to keep lock hold times short under
// login storms.
type sessions struct {
	shards [sessionShards]struct {
		mu sync.Mutex
		m  map[uint64]*session
	}
	n atomic.Int64
}

func newSessions() *sessions {
	t := &sessions{}
	for i := range t.shards {
		t.shards[i].m = make(map[uint64]*session)
	}
	return t
}

// put makes s its user's current session and returns the one it replaced, if any.
func (t *sessions) put(s *session) (old *session) {
	sh := &t.shards[s.uid%sessionShards]
	sh.mu.Lock()
	old = sh.m[s.uid]
	sh.m[s.uid] = s
	sh.mu.Unlock()
	if old == nil {
		t.n.Add(1)
	}
	return old
}

// remove deletes s only if it is still its user's current session, so a late close
// of a replaced session cannot remove the session that replaced it.
func (t *sessions) remove(s *session) bool {
	sh := &t.shards[s.uid%sessionShards]
	sh.mu.Lock()
	ok := sh.m[s.uid] == s
	if ok {
		delete(sh.m, s.uid)
	}
	sh.mu.Unlock()
	if ok {
		t.n.Add(-1)
	}
	return ok
}

func (t *sessions) get(uid uint64) *session {
	sh := &t.shards[uid%sessionShards]
	sh.mu.Lock()
	s := sh.m[uid]
	sh.mu.Unlock()
	return s
}

// each calls fn for every session (under each shard's lock: fn must not block).
func (t *sessions) each(fn func(*session)) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, s := range sh.m {
			fn(s)
		}
		sh.mu.Unlock()
	}
}

func (t *sessions) len() int { return int(t.n.Load()) }
