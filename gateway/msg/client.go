package msg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/prometheus/client_golang/prometheus"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	Addr   string // the msg server's link address
	Secret []byte // cluster secret
	Name   string // this process's identity, shown to the server; default "msg-client"
	// Conns is how many link connections to keep (default 4). The server serves
	// each connection's requests one at a time, so several let a slow store (Redis)
	// serve users in parallel. Requests on one inbox (Append by recipient, the rest
	// by uid) all take the same connection, so they reach the server in the order
	// sent.
	Conns int
	// MinBackoff and MaxBackoff bound the reconnect backoff (link's defaults if zero).
	MinBackoff, MaxBackoff time.Duration
	// Observe, if set, is told each call's method, latency and error, as
	// link.ClientConfig.Observe. Registry is the simpler way to get metrics.
	Observe func(method uint16, d time.Duration, err error)
	// Registry, if set (and Observe is not), receives the shared call latency
	// histogram floodgate_link_call_seconds{peer="msg",method=...}.
	Registry prometheus.Registerer
	Logger   *slog.Logger // nil: slog.Default()
}

// Client is a Store served remotely by a Server: a gateway uses it exactly as it
// would a local store. It keeps its connections up, reconnecting as needed.
//
// While no connection is up, calls fail at once with an error wrapping
// link.ErrUnavailable. A call whose connection breaks fails with one wrapping
// link.ErrDisconnected, and may or may not have been applied. Append tells the two
// apart for its caller: an error wrapping ErrNotStored means certainly not stored
// (never sent, or the server said so); any other leaves the outcome unknown, and a
// retry with the same ClientMsgID finds out without storing twice. Client never
// retries by itself.
type Client struct {
	links []*link.Client
}

var _ Store = (*Client)(nil)

// Dial starts connecting to cfg.Addr and returns at once; WaitConnected waits for
// the connections.
func Dial(cfg ClientConfig) (*Client, error) {
	if cfg.Addr == "" || len(cfg.Secret) == 0 {
		return nil, errors.New("msg: ClientConfig needs an Addr and a Secret")
	}
	if cfg.Name == "" {
		cfg.Name = "msg-client"
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 4
	}
	if cfg.Observe == nil && cfg.Registry != nil {
		names := map[uint16]string{}
		for _, m := range []uint16{MethodAppend, MethodAck, MethodRange, MethodWindow, MethodWindows} {
			names[m] = MethodName(m)
		}
		obs, err := link.CallObserver(cfg.Registry, "msg", names)
		if err != nil {
			return nil, err
		}
		cfg.Observe = obs
	}
	c := &Client{links: make([]*link.Client, cfg.Conns)}
	for i := range c.links {
		c.links[i] = link.Dial(link.ClientConfig{
			Addr: cfg.Addr, Secret: cfg.Secret, Name: cfg.Name,
			MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff, Observe: cfg.Observe, Logger: cfg.Logger,
		})
	}
	return c, nil
}

// WaitConnected waits until every connection is up, or ctx ends.
func (c *Client) WaitConnected(ctx context.Context) error {
	for _, l := range c.links {
		if err := l.WaitConnected(ctx); err != nil {
			return fmt.Errorf("msg: connecting: %w", err)
		}
	}
	return nil
}

// Close closes the connections; calls in flight fail with link.ErrClosed.
func (c *Client) Close() {
	for _, l := range c.links {
		l.Close()
	}
}

// link returns uid's connection: a user's requests keep to one.
func (c *Client) link(uid uint64) *link.Client { return c.links[uid%uint64(len(c.links))] }

// call makes one request, mapping the server's ErrNoRecipient back to it.
func (c *Client) call(ctx context.Context, uid uint64, method uint16, body []byte) ([]byte, error) {
	resp, err := c.link(uid).Call(ctx, method, body)
	if err == nil {
		return resp, nil
	}
	return nil, callError(method, err)
}

// callError maps a failed call's error: the server's ErrNoRecipient back to it, and
// the method named.
func callError(method uint16, err error) error {
	var re *link.RemoteError
	if errors.As(err, &re) && re.Msg == ErrNoRecipient.Error() {
		err = ErrNoRecipient
	}
	return fmt.Errorf("msg %s: %w", MethodName(method), err)
}

// Append implements Store: it returns once the server's store holds m.
func (c *Client) Append(ctx context.Context, m *Message) error {
	if m.To == 0 {
		return ErrNoRecipient
	}
	resp, err := c.call(ctx, m.To, MethodAppend, appendAppendRequest(make([]byte, 0, 8+EncodedSize(m)), m))
	if err != nil {
		return classifyAppendError(err)
	}
	seq, id, epoch, err := decodeTriple(resp)
	if err != nil {
		return fmt.Errorf("msg append: %w", err)
	}
	m.Seq, m.ID, m.Epoch = seq, id, epoch
	return nil
}

// classifyAppendError makes a failed Append's error wrap ErrNotStored when the
// message is certainly not stored: the request was never sent (no connection), or
// the server's error says so (see MethodAppend); and ErrRecipientFull when the
// server says the recipient's quota refused it.
func classifyAppendError(err error) error {
	var re *link.RemoteError
	switch {
	case errors.As(err, &re) && strings.HasPrefix(re.Msg, ErrRecipientFull.Error()):
		return fmt.Errorf("%w (the msg server's answer: %w)", ErrRecipientFull, err)
	case errors.Is(err, link.ErrUnavailable):
		return fmt.Errorf("%w: %w", ErrNotStored, err)
	case errors.As(err, &re) && strings.HasPrefix(re.Msg, ErrNotStored.Error()):
		return fmt.Errorf("%w (the msg server's answer: %w)", ErrNotStored, err)
	}
	return err
}

// Ack implements Store.
func (c *Client) Ack(ctx context.Context, uid, seq, epoch uint64) error {
	_, err := c.call(ctx, uid, MethodAck, appendTriple(make([]byte, 0, ackReqSize), uid, seq, epoch))
	return err
}

// Windows returns the windows of uids (at most MaxWindows), in order, in one round
// trip.
func (c *Client) Windows(ctx context.Context, uids []uint64) ([]Window, error) {
	if len(uids) == 0 || len(uids) > MaxWindows {
		return nil, fmt.Errorf("msg windows: %d uids, want 1..%d", len(uids), MaxWindows)
	}
	body := make([]byte, 0, 8*len(uids))
	for _, u := range uids {
		body = appendUID(body, u)
	}
	resp, err := c.call(ctx, uids[0], MethodWindows, body)
	if err != nil {
		return nil, err
	}
	if len(resp) != len(uids)*windowSize {
		return nil, fmt.Errorf("msg windows: %w: reply of %d bytes for %d uids", errMalformed, len(resp), len(uids))
	}
	out := make([]Window, len(uids))
	for i := range out {
		out[i], _ = decodeWindow(resp[i*windowSize : (i+1)*windowSize])
	}
	return out, nil
}

// AckLinger is how long AckGo's request may wait to share a write with others.
const AckLinger = 5 * time.Millisecond

// AckGo is Ack without waiting: fn receives the outcome exactly once, on another
// goroutine unless the request could not be sent. Acknowledgements are cumulative,
// so a lost one costs only a message replayed later, and a gateway need not hold a
// worker while a slow store answers. They are off the latency path, so the request
// may wait up to AckLinger to leave with the link's other traffic: under load many
// share one write.
func (c *Client) AckGo(uid, seq, epoch uint64, fn func(error)) {
	c.link(uid).GoLater(MethodAck, appendTriple(make([]byte, 0, ackReqSize), uid, seq, epoch), AckLinger, func(_ []byte, err error) {
		if err != nil {
			err = callError(MethodAck, err)
		}
		fn(err)
	})
}

// Window implements Store.
func (c *Client) Window(ctx context.Context, uid uint64) (Window, error) {
	resp, err := c.call(ctx, uid, MethodWindow, appendUID(make([]byte, 0, 8), uid))
	if err != nil {
		return Window{}, err
	}
	w, err := decodeWindow(resp)
	if err != nil {
		return Window{}, fmt.Errorf("msg window: %w", err)
	}
	return w, nil
}

// Range implements Store. A reply carries at most MaxRangeReply messages within
// link.MaxBody bytes (see MethodRange); when more are wanted, Range asks again from
// the last seq received. A Range answered in one reply is a snapshot of the inbox.
// One that takes several is not: it returns the first reply's window and only
// messages up to that window's head, and a message acknowledged or evicted between
// replies is missing from the result.
func (c *Client) Range(ctx context.Context, uid, after uint64, limit int) ([]Message, Window, error) {
	out, first, err := c.rangeReply(ctx, uid, after, limit)
	for err == nil && len(out) > 0 && (limit <= 0 || len(out) < limit) && out[len(out)-1].Seq < first.Head {
		var msgs []Message
		var w Window
		msgs, w, err = c.rangeReply(ctx, uid, out[len(out)-1].Seq, limit-len(out))
		if err != nil || w.Epoch != first.Epoch {
			break // a new epoch: the store lost its state, as the caller learns next time
		}
		if i := slices.IndexFunc(msgs, func(m Message) bool { return m.Seq > first.Head }); i >= 0 {
			msgs = msgs[:i]
		}
		if len(msgs) == 0 {
			break
		}
		out = append(out, msgs...)
	}
	if err != nil {
		return nil, Window{}, err
	}
	return out, first, nil
}

// rangeReply makes one MethodRange call for at most limit messages (limit <= 0:
// as many as a reply carries).
func (c *Client) rangeReply(ctx context.Context, uid, after uint64, limit int) ([]Message, Window, error) {
	want := uint32(0)
	if limit > 0 {
		want = uint32(min(limit, MaxRangeReply))
	}
	resp, err := c.call(ctx, uid, MethodRange, appendRangeRequest(make([]byte, 0, rangeReqSize), uid, after, want))
	if err != nil {
		return nil, Window{}, err
	}
	msgs, w, err := decodeRangeReply(resp)
	if err != nil {
		return nil, Window{}, fmt.Errorf("msg range: %w", err)
	}
	return msgs, w, nil
}

// AppendGo is Append without waiting: m is encoded before AppendGo returns (the
// caller may then reuse its payload), and fn receives the outcome exactly once, on
// another goroutine unless the request could not be sent at all; on success m's Seq,
// ID and Epoch are set first. fn must not block. Appends to one recipient started
// in order from one goroutine reach the server in that order, so a sender's
// messages keep their order without waiting for each other. Errors are classified
// as Append's.
func (c *Client) AppendGo(m *Message, fn func(error)) {
	if m.To == 0 {
		fn(ErrNoRecipient)
		return
	}
	body := appendAppendRequest(make([]byte, 0, 8+EncodedSize(m)), m)
	c.link(m.To).Go(MethodAppend, body, func(resp []byte, err error) {
		if err != nil {
			fn(classifyAppendError(callError(MethodAppend, err)))
			return
		}
		seq, id, epoch, err := decodeTriple(resp)
		if err != nil {
			fn(fmt.Errorf("msg append: %w", err))
			return
		}
		m.Seq, m.ID, m.Epoch = seq, id, epoch
		fn(nil)
	})
}
