package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/prometheus/client_golang/prometheus"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	Addr   string // the state server's link address
	Secret []byte // cluster secret
	Name   string // this process's identity, shown to the server (default "state-client")
	Logger *slog.Logger
	// Registry, if set, receives the call latency histogram
	// floodgate_link_call_seconds{peer="state",method="register"|...}: calls that got
	// an answer from the server, errors included; not calls that failed locally or
	// on a broken connection. If another link client already registered the
	// histogram (same name, help, labels and buckets), it is shared.
	Registry prometheus.Registerer
	// MinBackoff and MaxBackoff bound the reconnection backoff (link defaults: 50ms,
	// 500ms).
	MinBackoff, MaxBackoff time.Duration
	// OnKick, if set, receives the server's MethodKick notifications (for a gateway,
	// whose link Name is its id): the login `by` replaced this gateway's session
	// prev. The gateway kicks prev, then answers with Kicked(prev, by) — also when it
	// no longer held prev. It runs on the link's reader goroutine and must not block.
	OnKick func(prev, by Session)
	// OnKicked, if set, receives the forwarded Kicked of another gateway: prev, which
	// this gateway's session `by` replaced, is closed. It runs on the link's reader
	// goroutine and must not block.
	OnKicked func(prev, by Session)
	// OnReconnect, if set, runs (on its own goroutine) after every connection but
	// the first: notifications sent while the link was down (kicks among them) were
	// lost, so a gateway re-checks its sessions then (Reregister).
	OnReconnect func()
}

// Client is a Store served by a remote state Server, so a gateway (or router) uses a
// remote state exactly like a local store. It keeps one link connection up,
// reconnecting by itself. Calls are pipelined on it (no lock is held across a call)
// and applied by the server in the order sent. While disconnected, calls fail at once
// with link.ErrUnavailable; a call in flight when the connection breaks fails with
// link.ErrDisconnected and may or may not have been applied.
//
// Errors from the server are *RemoteError, which errors.Is matches against
// ErrLeaseLost and ErrUnknownGateway.
type Client struct {
	link    *link.Client
	log     *slog.Logger
	watches *watchHub
	onKick  func(prev, by Session)
	kicked  func(prev, by Session)
}

// Dial starts connecting to the server and returns at once; WaitConnected waits
// for the connection.
func Dial(cfg ClientConfig) (*Client, error) {
	if cfg.Addr == "" || len(cfg.Secret) == 0 {
		return nil, errors.New("state: ClientConfig needs an Addr and a Secret")
	}
	if cfg.Name == "" {
		cfg.Name = "state-client"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var observe func(uint16, time.Duration, error)
	if cfg.Registry != nil {
		var err error
		if observe, err = link.CallObserver(cfg.Registry, "state", stateMethods()); err != nil {
			return nil, err
		}
	}
	c := &Client{log: cfg.Logger, watches: newWatchHub(), onKick: cfg.OnKick, kicked: cfg.OnKicked}
	connected := false
	c.link = link.Dial(link.ClientConfig{
		Addr: cfg.Addr, Secret: cfg.Secret, Name: cfg.Name, Logger: cfg.Logger,
		MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff, Observe: observe,
		OnNotify: c.onNotify,
		// Re-subscribe on every connection: the server forgets watchers when their
		// connection ends. (A Call here would deadlock: the connection's reader
		// starts only after OnConnect returns; a notification needs no answer.)
		OnConnect: func(_ context.Context, lc *link.Client) {
			if c.watches.active() {
				lc.Notify(MethodWatch, nil)
			}
			if connected && cfg.OnReconnect != nil {
				go cfg.OnReconnect()
			}
			connected = true // OnConnect runs on the one goroutine that maintains the link
		},
	})
	go c.watches.run()
	return c, nil
}

// Silent reports how long the state service has sent nothing at all on the link
// (see link.Client.Silent).
func (c *Client) Silent() time.Duration { return c.link.Silent() }

// WaitConnected waits until the connection is up or ctx ends.
func (c *Client) WaitConnected(ctx context.Context) error {
	if err := c.link.WaitConnected(ctx); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Close closes the connection (calls in flight fail with link.ErrClosed) and stops
// delivering snapshots.
func (c *Client) Close() {
	c.link.Close()
	c.watches.close()
}

// Watch calls fn with the gateway table now and whenever it changes: at once on a
// lease acquire, release, lapse or draining change, and at least every second (the
// server's Refresh) for fresh loads. Each snapshot is the whole table; Expires is on
// this host's clock. fn runs on a goroutine of the Client's, one snapshot at a time
// in order, and when fn is slow, snapshots that arrive meanwhile are coalesced into
// the newest. No snapshots arrive while disconnected; the subscription is renewed on
// every reconnection, which brings a snapshot at once. Watches last until Close.
func (c *Client) Watch(fn func([]Gateway)) {
	c.watches.add(fn)
	c.link.Notify(MethodWatch, nil) // ErrUnavailable: OnConnect will subscribe
}

func (c *Client) onNotify(method uint16, body []byte) {
	if method == MethodKick || method == MethodKicked {
		prev, by, err := decodeTakeover(body)
		switch {
		case err != nil:
			c.log.Warn("state: bad takeover notification", "method", MethodName(method), "err", err)
		case method == MethodKick && c.onKick != nil:
			c.onKick(prev, by)
		case method == MethodKicked && c.kicked != nil:
			c.kicked(prev, by)
		}
		return
	}
	if method != MethodSnapshot {
		return
	}
	gws, err := decodeSnapshot(body, time.Now())
	if err != nil {
		c.log.Warn("state: bad snapshot", "err", err)
		return
	}
	c.watches.publish(gws)
}

// call makes one call, turning the server's errors back into *RemoteError.
func (c *Client) call(ctx context.Context, method uint16, body []byte) ([]byte, error) {
	resp, err := c.link.Call(ctx, method, body)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", MethodName(method), fromWire(err))
	}
	return resp, nil
}

// Acquire implements Store.
func (c *Client) Acquire(ctx context.Context, g Gateway, ttl time.Duration) (uint64, error) {
	resp, err := c.call(ctx, MethodAcquire, mustJSON(acquireRequest{Gateway: g, TTL: ttl}))
	if err != nil {
		return 0, err
	}
	if len(resp) != 8 {
		return 0, fmt.Errorf("state acquire: malformed response (%d bytes)", len(resp))
	}
	return binary.BigEndian.Uint64(resp), nil
}

// Renew implements Store.
func (c *Client) Renew(ctx context.Context, id string, epoch uint64, load Load, ttl time.Duration) error {
	_, err := c.call(ctx, MethodRenew, mustJSON(renewRequest{ID: id, Epoch: epoch, Load: load, TTL: ttl}))
	return err
}

// Release implements Store.
func (c *Client) Release(ctx context.Context, id string, epoch uint64) error {
	_, err := c.call(ctx, MethodRelease, mustJSON(releaseRequest{ID: id, Epoch: epoch}))
	return err
}

// SetDraining implements Store.
func (c *Client) SetDraining(ctx context.Context, id string, draining bool) error {
	_, err := c.call(ctx, MethodSetDraining, mustJSON(drainingRequest{ID: id, Draining: draining}))
	return err
}

// Gateways implements Store; Expires is on this host's clock.
func (c *Client) Gateways(ctx context.Context) ([]Gateway, error) {
	resp, err := c.call(ctx, MethodGateways, nil)
	if err != nil {
		return nil, err
	}
	return decodeSnapshot(resp, time.Now())
}

// Register implements Store.
func (c *Client) Register(ctx context.Context, s Session) (Session, error) {
	prev, _, err := c.RegisterTakeover(ctx, s)
	return prev, err
}

// RegisterTakeover is Register that also reports whether the replaced session's
// gateway was told to kick it: if so, its Kicked arrives through OnKicked (unless
// that gateway is stuck), and a login that must not overlap the old session waits
// for it.
func (c *Client) RegisterTakeover(ctx context.Context, s Session) (prev Session, kickSent bool, err error) {
	resp, err := c.call(ctx, MethodRegister, appendSession(make([]byte, 0, sessionHeader+len(s.Gateway)), s))
	if err != nil || len(resp) == 0 {
		return Session{}, false, err
	}
	if prev, err = decodeSession(resp[1:]); err != nil {
		return Session{}, false, fmt.Errorf("state register: %w", err)
	}
	return prev, resp[0]&RegisterKickSent != 0, nil
}

// ReregisterBatch is Reregister for many sessions of one gateway epoch (at most
// MaxReregisterBatch) in one round trip. It returns one error per session, in
// order: nil, or one wrapping ErrReplaced or ErrLeaseLost; err is for the call.
func (c *Client) ReregisterBatch(ctx context.Context, ss []Session) (errs []error, err error) {
	body, err := appendReregisterBatch(nil, ss)
	if err != nil {
		return nil, err
	}
	resp, err := c.call(ctx, MethodReregisterBatch, body)
	if err != nil {
		return nil, err
	}
	if len(resp) != len(ss) {
		return nil, fmt.Errorf("state reregister batch: %d results for %d sessions", len(resp), len(ss))
	}
	return batchErrors(ss, resp)
}

// Kicked tells the server (which tells the gateway of by) that this gateway closed
// prev, or no longer held it: the answer to an OnKick.
func (c *Client) Kicked(prev, by Session) error {
	return c.link.Notify(MethodKicked, appendTakeover(nil, prev, by))
}

// Reregister implements Store.
func (c *Client) Reregister(ctx context.Context, s Session) error {
	_, err := c.call(ctx, MethodReregister, appendSession(make([]byte, 0, sessionHeader+len(s.Gateway)), s))
	return err
}

// Unregister implements Store.
func (c *Client) Unregister(ctx context.Context, s Session) (bool, error) {
	resp, err := c.call(ctx, MethodUnregister, appendSession(make([]byte, 0, sessionHeader+len(s.Gateway)), s))
	if err != nil {
		return false, err
	}
	if len(resp) != 1 {
		return false, fmt.Errorf("state unregister: malformed response (%d bytes)", len(resp))
	}
	return resp[0] == 1, nil
}

// Lookup implements Store.
func (c *Client) Lookup(ctx context.Context, uid uint64) (Session, bool, error) {
	s, st, err := c.Probe(ctx, uid)
	if st != LookupHit {
		return Session{}, false, err
	}
	return s, true, err
}

// Probe implements Prober (if the server's store is not a Prober, an invalid session
// reads as LookupMiss).
func (c *Client) Probe(ctx context.Context, uid uint64) (Session, LookupStatus, error) {
	resp, err := c.call(ctx, MethodLookup, binary.BigEndian.AppendUint64(nil, uid))
	if err != nil {
		return Session{}, LookupMiss, err
	}
	return decodeLookup(uid, resp)
}

// stateMethods names the client's methods for the latency histogram.
func stateMethods() map[uint16]string {
	m := map[uint16]string{}
	for _, id := range []uint16{MethodAcquire, MethodRenew, MethodRelease, MethodSetDraining,
		MethodGateways, MethodRegister, MethodUnregister, MethodLookup, MethodReregister, MethodReregisterBatch} {
		m[id] = MethodName(id)
	}
	return m
}
