package node

import (
	"sync"
	"sync/atomic"

	"github.com/floodgate/floodgate/gateway/reactor"
)

// session is one login: from LOGIN until its LOGIN_OK it is pending (the backend
// is registering it), then it is the Conn's context and its user's current session
// here. Before LOGIN a connection has none, so an unauthenticated connection costs
// nothing here.
type session struct {
	uid uint64
	id  uint64
	c   *reactor.Conn
	// replaced is set (under the shard lock) when a newer login took over while this
	// one was pending: it must not get its LOGIN_OK.
	replaced bool
	// version is the protocol version its LOGIN announced: proto.VersionTrace
	// opts in to SEND_TRACED and PUSH_TRACED. Set before the session is shared.
	version uint8
	// inflight counts SENDs not answered yet (the per-connection cap).
	inflight atomic.Int32
	// gate is the session's SEND rate (handled on workers, one frame at a time).
	gate sendTAT
	// handled counts the frames handled on this connection (LOGIN is 1), and
	// readAtOK is how many had been read when LOGIN_OK was sent. The connection's
	// callbacks never overlap, so neither needs synchronisation.
	handled, readAtOK uint32
}

// sentBeforeLoginOK numbers the frame being handled and reports whether it had
// already been read when LOGIN_OK was sent: then the client sent it before it could
// have seen LOGIN_OK (pipelined behind its LOGIN), a violation the protocol names
// NOT_LOGGED_IN. Frames reach the handler in the order read, so the frame's number
// is its position in the stream.
func (s *session) sentBeforeLoginOK() bool {
	s.handled++
	return s.handled <= s.readAtOK
}

const sessionShards = 64

// sessions maps uid → current session, and pending logins by session id, sharded
// by uid to keep lock hold times short under login storms. A session moves from
// pending to current under its shard's lock, so a kick (Replace) that races with
// the login finds it in exactly one place.
type sessions struct {
	shards [sessionShards]struct {
		mu      sync.Mutex
		m       map[uint64]*session // uid → current session
		pending map[uint64]*session // session id → pending login
	}
	n atomic.Int64
}

func newSessions() *sessions {
	t := &sessions{}
	for i := range t.shards {
		t.shards[i].m = make(map[uint64]*session)
		t.shards[i].pending = make(map[uint64]*session)
	}
	return t
}

// begin records s as a pending login.
func (t *sessions) begin(s *session) {
	sh := &t.shards[s.uid%sessionShards]
	sh.mu.Lock()
	sh.pending[s.id] = s
	sh.mu.Unlock()
}

// abandon forgets a pending login that failed.
func (t *sessions) abandon(s *session) {
	sh := &t.shards[s.uid%sessionShards]
	sh.mu.Lock()
	delete(sh.pending, s.id)
	sh.mu.Unlock()
}

// promote makes pending s its user's current session and returns the one it
// replaced, if any (the caller kicks it). ok is false if s was replaced while
// pending: s does not become current, yet the current session is still taken out
// and returned. It was registered before s (a user's logins on one gateway are
// serialised), so the directory moved past it when s registered — a replacement on
// the same gateway, for which the directory sends no kick, trusting this gateway to
// retire it here. Leaving it current would leave the user two live sessions: it
// here, and whichever newer one replaced s on another gateway.
func (t *sessions) promote(s *session) (old *session, ok bool) {
	sh := &t.shards[s.uid%sessionShards]
	sh.mu.Lock()
	delete(sh.pending, s.id)
	old = sh.m[s.uid]
	switch {
	case s.replaced:
		if old != nil {
			delete(sh.m, s.uid)
		}
	default:
		sh.m[s.uid] = s
	}
	sh.mu.Unlock()
	switch {
	case s.replaced && old != nil:
		t.n.Add(-1)
	case !s.replaced && old == nil:
		t.n.Add(1)
	}
	return old, !s.replaced
}

// retire abandons pending s after a failed login that may have registered it: the
// directory may then have moved past the user's current session here (see promote),
// so that one is taken out too and returned for the caller to kick.
func (t *sessions) retire(s *session) (old *session) {
	sh := &t.shards[s.uid%sessionShards]
	sh.mu.Lock()
	delete(sh.pending, s.id)
	old = sh.m[s.uid]
	if old != nil {
		delete(sh.m, s.uid)
	}
	sh.mu.Unlock()
	if old != nil {
		t.n.Add(-1)
	}
	return old
}

// replace takes session id of uid out: a current one is removed and returned (the
// caller kicks it); a pending one is marked replaced. found reports whether it was
// here in either form.
func (t *sessions) replace(uid, id uint64) (cur *session, found bool) {
	sh := &t.shards[uid%sessionShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s := sh.m[uid]; s != nil && s.id == id {
		delete(sh.m, uid)
		t.n.Add(-1)
		return s, true
	}
	if p := sh.pending[id]; p != nil && p.uid == uid {
		p.replaced = true
		return nil, true
	}
	return nil, false
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

// target finds where to deliver to uid's session id (id 0: the current one): the
// current session, or pending true for a login in progress.
func (t *sessions) target(uid, id uint64) (s *session, pending bool) {
	sh := &t.shards[uid%sessionShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s := sh.m[uid]; s != nil && (id == 0 || s.id == id) {
		return s, false
	}
	if p := sh.pending[id]; id != 0 && p != nil && p.uid == uid {
		return nil, true
	}
	return nil, false
}

// each calls fn for every current session (under each shard's lock: fn must not block).
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
