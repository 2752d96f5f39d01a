package node

import (
	"context"
	"errors"
	"time"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
)

// Session identifies one login of a user on this gateway.
type Session struct {
	UID uint64
	ID  uint64 // unique per gateway, across its restarts (seeded from the clock)
}

// ErrRegistered is wrapped by a Backend.Login error that came after the session was
// registered in the directory (see Backend.Login).
var ErrRegistered = errors.New("login failed after the session was registered")

// Gateway is what a Backend may ask of the gateway it serves; *Node implements it.
type Gateway interface {
	// Deliver offers m to session conn of m.To (conn 0: whatever session m.To has
	// here). It reports whether the gateway took it for that session: written to its
	// connection or queued for it — or the session is logging in (its SYNC after
	// LOGIN_OK will fetch m from the store) or closing (its next login SYNCs). false
	// means no such session is here: the route was stale.
	Deliver(m *msg.Message, conn uint64) bool
	// Replace kicks session conn of uid with KICK REPLACED: a newer login took over.
	// A session still logging in is refused its LOGIN_OK instead. It reports whether
	// the session was here.
	Replace(uid, conn uint64) bool
	// Notice sends session conn of uid an unprompted SYNC_END carrying w, so that its
	// client fetches what it may have missed (after a re-registration); false if the
	// session is not here.
	Notice(uid, conn uint64, w msg.Window) bool
	// Stats returns the connection engine's counters.
	Stats() reactor.Stats
	// Sessions returns the number of logged-in sessions.
	Sessions() int
	// EachSession calls fn for every logged-in session (fn must not block).
	EachSession(fn func(Session))
	// Drain moves clients away in paced batches of KICK DRAIN (see gwlink), and
	// turns logins away until Undrain.
	Drain(req gwlink.DrainRequest) gwlink.DrainStatus
	Undrain() gwlink.DrainStatus
	// Isolate moves every client away over about `over` with KICK DRAIN / ISOLATED,
	// and turns logins away until Rejoin: the gateway is cut off from the session
	// directory while other gateways are not. It reports whether it started.
	Isolate(over time.Duration) bool
	Rejoin()
}

// AsyncAcker is implemented by a Backend whose Ack may return without waiting for
// the store (it hands the acknowledgement on and logs its outcome itself), so that
// Ack's ctx goes unused: the gateway then builds no deadline per PUSH_ACK.
type AsyncAcker interface {
	// AcksAsync reports whether Ack returns without waiting.
	AcksAsync() bool
}

// Backend is the rest of the IM stack as a gateway sees it: the session directory,
// the message store and the router. The single-gateway Local backend keeps it all in
// this process; the IM-stack services plug in behind the same interface (package
// cluster). Methods may block briefly (they run on workers), except Logout, which
// runs from connection teardown and must not block, and Send, which must return at
// once and answer through its callback.
type Backend interface {
	// Attach tells the backend which gateway it serves. New calls it once, before
	// the gateway accepts connections.
	Attach(g Gateway)
	// Login records s as uid's current session and returns the user's inbox window.
	// An older session of the user elsewhere is kicked first (REPLACED); if s itself
	// is replaced while Login runs, the backend calls Gateway.Replace for it, and
	// the gateway refuses its LOGIN_OK.
	//
	// An error that wraps ErrRegistered says the session was registered before the
	// login failed: the directory no longer names the user's older session here
	// either, so the gateway retires that one too.
	Login(ctx context.Context, s Session) (msg.Window, error)
	// Logout forgets s if it is still the user's current session (compare and delete).
	Logout(s Session)
	// Send stores m from uid `from` and calls done exactly once: with the message id
	// once it is stored; with an error wrapping msg.ErrNotStored (or
	// msg.ErrNoRecipient) when it certainly is not; or with any other error when the
	// outcome could not be learned in time (the gateway then ends the connection:
	// an ERROR would claim "not stored"). A retry of an unknown outcome uses the same
	// client message id, so it never stores twice. m, payload included, is valid only
	// during the call; closed reports whether the client's connection is gone (then
	// retrying serves nobody). done may run on another goroutine and must not block.
	// trace is nil for an untraced message; for a traced one (SEND_TRACED) it holds
	// the gateway_in stamp, is the backend's from then on, and travels with the
	// message as its msg.Message.Trace.
	Send(from uint64, m *proto.Send, trace *msg.Trace, closed func() bool, done func(msgID uint64, err error))
	// Ack acknowledges uid's messages through seq of the store incarnation epoch.
	Ack(ctx context.Context, uid, seq, epoch uint64) error
	// Sync returns uid's messages after seq `after`, in order, at most limit, and the
	// inbox window.
	Sync(ctx context.Context, uid, after uint64, limit int) ([]msg.Message, msg.Window, error)
}

// Local is the single-gateway Backend: sessions live only in this gateway's table and
// messages in an in-process msg.Store, so users on this gateway reach each other and
// offline users catch up by SYNC. Cross-gateway routing needs the IM-stack services.
type Local struct {
	store msg.Store
	gw    Gateway
}

// NewLocal returns a Local backend over store.
func NewLocal(store msg.Store) *Local { return &Local{store: store} }

// Attach implements Backend.
func (l *Local) Attach(g Gateway) { l.gw = g }

// Login implements Backend.
func (l *Local) Login(ctx context.Context, s Session) (msg.Window, error) {
	return l.store.Window(ctx, s.UID)
}

// Logout implements Backend: the gateway's own session table is the directory.
func (l *Local) Logout(Session) {}

// Send implements Backend: store first (in-process, so the outcome is always
// known), then push to the recipient if connected here. A traced message is
// stamped stored after the append and routed just before the push: this backend
// is its own router.
func (l *Local) Send(from uint64, s *proto.Send, trace *msg.Trace, _ func() bool, done func(uint64, error)) {
	m := &msg.Message{From: from, To: s.To, ClientTS: s.ClientTS, Payload: s.Payload, ClientMsgID: s.ClientMsgID, Trace: trace}
	if err := l.store.Append(context.Background(), m); err != nil {
		done(0, err)
		return
	}
	if trace != nil {
		trace.Stored = time.Now().UnixNano()
		trace.Routed = time.Now().UnixNano()
	}
	l.gw.Deliver(m, 0)
	done(m.ID, nil)
}

// Ack implements Backend.
func (l *Local) Ack(ctx context.Context, uid, seq, epoch uint64) error {
	return l.store.Ack(ctx, uid, seq, epoch)
}

// Sync implements Backend.
func (l *Local) Sync(ctx context.Context, uid, after uint64, limit int) ([]msg.Message, msg.Window, error) {
	return l.store.Range(ctx, uid, after, limit)
}
