package node

import (
	"context"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
)

// Session identifies one login of a user on this gateway.
type Session struct {
	UID uint64
	ID  uint64 // unique per gateway process
}

// Pusher delivers a stored message to its recipient's connection on this gateway.
type Pusher interface {
	// Deliver writes m as a PUSH to m.To's session here; false if m.To has no
	// session here or its connection would not take it (the message stays stored
	// and reaches the user through SYNC).
	Deliver(m *msg.Message) bool
}

// Gateway is what a Backend may ask of the gateway it serves; *Node implements it.
type Gateway interface {
	Pusher
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
}

// Backend is the rest of the IM stack as a gateway sees it: the session directory,
// the message store and the router. The single-gateway Local backend keeps it all in
// this process; the IM-stack services plug in behind the same interface.
// Methods may block briefly (they run on workers), except Logout, which runs from
// connection teardown and must not block.
type Backend interface {
	// Attach tells the backend which gateway it serves. New calls it once, before
	// the gateway accepts connections.
	Attach(g Gateway)
	// Login records s as uid's current session and returns the user's inbox window.
	Login(ctx context.Context, s Session) (msg.Window, error)
	// Logout forgets s if it is still the user's current session (compare and delete).
	Logout(s Session)
	// Send stores m from uid `from` and routes it to its recipient; it returns the
	// message id once the message is stored.
	Send(ctx context.Context, from uint64, m *proto.Send) (msgID uint64, err error)
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
	store  msg.Store
	pusher Pusher
}

// NewLocal returns a Local backend over store.
func NewLocal(store msg.Store) *Local { return &Local{store: store} }

// Attach implements Backend.
func (l *Local) Attach(g Gateway) { l.pusher = g }

// Login implements Backend.
func (l *Local) Login(ctx context.Context, s Session) (msg.Window, error) {
	return l.store.Window(ctx, s.UID)
}

// Logout implements Backend: the gateway's own session table is the directory.
func (l *Local) Logout(Session) {}

// Send implements Backend: store first, then push to the recipient if connected here.
func (l *Local) Send(ctx context.Context, from uint64, s *proto.Send) (uint64, error) {
	m := &msg.Message{From: from, To: s.To, ClientTS: s.ClientTS, Payload: s.Payload}
	if err := l.store.Append(ctx, m); err != nil {
		return 0, err
	}
	l.pusher.Deliver(m)
	return m.ID, nil
}

// Ack implements Backend.
func (l *Local) Ack(ctx context.Context, uid, seq, epoch uint64) error {
	return l.store.Ack(ctx, uid, seq, epoch)
}

// Sync implements Backend.
func (l *Local) Sync(ctx context.Context, uid, after uint64, limit int) ([]msg.Message, msg.Window, error) {
	return l.store.Range(ctx, uid, after, limit)
}
