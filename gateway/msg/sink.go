package msg

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/floodgate/floodgate/gateway/link"
)

// RouteMethod is the router's link method "route this stored message": a one-way
// notification (link Notify) whose body is AppendMessage of the stored message, Seq
// and ID set. The msg service sends one, through LinkSink, for every message it
// stores; the router serves it. It is a method of the router's link listener, not
// of the msg server's (whose methods are MethodAppend and the rest).
const RouteMethod uint16 = 1

// Sink is told of every message a Server stores.
type Sink interface {
	// Stored is called once per stored message, after the store holds it and before
	// the sender's Append is answered. m, its payload included, is valid only during
	// the call: copy what you keep.
	//
	// Stored runs on the link handler of the sender's connection, which serves that
	// connection's requests one at a time: it must not block (hand off or send
	// asynchronously), and it must be safe for concurrent use, since each connection
	// has its own handler.
	Stored(m *Message)
}

// DropCounter is implemented by sinks that may drop messages, to report how many.
type DropCounter interface {
	Dropped() uint64
}

// Connector is implemented by sinks that forward over a connection, to report
// whether it is up now: while it is not, stored messages are not forwarded.
type Connector interface {
	Connected() bool
}

// LinkSink is a Sink that forwards each stored message to the router as a
// RouteMethod notification over a link.Client. Forwarding is best effort: while the
// link is down the notification is dropped (and counted); the message stays stored
// and reaches its recipient through SYNC.
//
// Stored does not wait for the router: the notification is copied into the link's
// write buffer. It blocks only under back-pressure, when that buffer is full and
// the router reads too slowly, and then at most for the link's WriteTimeout, after
// which the link drops the connection.
type LinkSink struct {
	c       *link.Client
	log     *slog.Logger
	bufs    sync.Pool // of *[]byte, encoding buffers
	dropped atomic.Uint64
	down    atomic.Bool // the last notification failed; logged on the transition only
}

// NewLinkSink returns a LinkSink forwarding over c, which the caller dials (to the
// router's link address) and closes. A nil log means slog.Default().
func NewLinkSink(c *link.Client, log *slog.Logger) *LinkSink {
	if log == nil {
		log = slog.Default()
	}
	return &LinkSink{c: c, log: log}
}

// Stored implements Sink.
func (s *LinkSink) Stored(m *Message) {
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = AppendMessage((*bp)[:0], m)
	err := s.c.Notify(RouteMethod, *bp) // the link copies the body before returning
	s.bufs.Put(bp)
	if err != nil {
		s.dropped.Add(1)
		if !s.down.Swap(true) {
			s.log.Warn("router unreachable: stored messages are not routed until it is back (they stay stored for SYNC)", "err", err)
		}
		return
	}
	if s.down.Swap(false) {
		s.log.Info("router reachable again: routing stored messages")
	}
}

// Dropped returns how many messages were not forwarded because the link was down.
func (s *LinkSink) Dropped() uint64 { return s.dropped.Load() }

// Connected reports whether the link to the router is up, so that a message stored
// now is forwarded. It is the router's view that the link is up only once this is.
func (s *LinkSink) Connected() bool { return s.c.Connected() }
