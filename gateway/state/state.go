// Package state is the authority on sessions and gateways: which gateway (and which
// connection on it) holds each online user, and which gateways are alive.
//
// Liveness is per gateway, not per user. Each gateway holds a lease that it renews
// about once a second (the renewal carries its load figures); a client's heartbeat
// never becomes a state write. Acquiring a lease yields a new epoch, and every session
// is registered under its gateway's epoch. A session is valid only while its
// gateway's lease is live with that same epoch, so when a lease lapses — the gateway
// died — every one of its sessions becomes invalid at once, without per-user TTLs or
// a sweep. Unregister is compare-and-delete on (gateway, conn, epoch), so a late
// cleanup from an old connection never removes the user's newer session.
package state

import (
	"context"
	"errors"
	"time"
)

// Session is one user's current connection.
type Session struct {
	UID     uint64
	Gateway string // gateway id
	Conn    uint64 // the session id on that gateway (unique per gateway process)
	Epoch   uint64 // the gateway's lease epoch when the session was registered
}

// Load is what a gateway reports with each lease renewal.
type Load struct {
	Conns      int     `json:"conns"`       // connections held
	MaxConns   int     `json:"max_conns"`   // its admission limit
	Sessions   int     `json:"sessions"`    // logged-in sessions
	AcceptRate float64 `json:"accept_rate"` // admissions per second, smoothed
	CPU        float64 `json:"cpu"`         // CPU seconds per second used by the process, smoothed
	// Congestion signals (for control's alerts).
	OutboundQueued int64 `json:"outbound_queued"` // bytes queued for slow sockets
	WorkerQueue    int   `json:"worker_queue"`    // connections waiting for a worker
}

// Gateway is a gateway's registration and lease.
type Gateway struct {
	ID        string    `json:"id"`
	Addr      string    `json:"addr"`              // client-facing address (ip:port)
	LinkAddr  string    `json:"link_addr"`         // internal link address (router pushes, control commands)
	AdminAddr string    `json:"admin_addr"`        // admin HTTP address (/metrics)
	WSAddr    string    `json:"ws_addr,omitempty"` // WebSocket address (ip:port); "" when the gateway has no WebSocket port
	Epoch     uint64    `json:"epoch"`
	Expires   time.Time `json:"expires"` // lease expiry; the lease is live before it
	Draining  bool      `json:"draining"`
	Load      Load      `json:"load"`
}

// Live reports whether the gateway's lease is live at now.
func (g *Gateway) Live(now time.Time) bool { return now.Before(g.Expires) }

// Store keeps sessions and gateway leases. Implementations are safe for concurrent use.
type Store interface {
	// Acquire registers g (its ID and addresses) with a lease of ttl and returns a
	// new epoch. Epochs are unique across gateways and keep increasing across
	// restarts of the state service and of its backing store, so a cached
	// (gateway, epoch) can never be mistaken for a newer lease. The draining flag
	// and load start afresh: a redeployed gateway is not left draining. Sessions of
	// earlier epochs are invalid from now on.
	Acquire(ctx context.Context, g Gateway, ttl time.Duration) (epoch uint64, err error)
	// Renew extends the lease of (id, epoch) by ttl and records load. It fails with
	// ErrLeaseLost if that lease lapsed or a newer epoch exists: the gateway must
	// then stop serving its sessions (they are all invalid) and Acquire again.
	Renew(ctx context.Context, id string, epoch uint64, load Load, ttl time.Duration) error
	// Release ends the lease of (id, epoch) at once (a clean shutdown). For an
	// (id, epoch) that is not the live lease it fails with ErrLeaseLost and never
	// touches a newer lease.
	Release(ctx context.Context, id string, epoch uint64) error
	// SetDraining marks a gateway as draining (ipconf stops advertising it) or not.
	SetDraining(ctx context.Context, id string, draining bool) error
	// Gateways returns every gateway known, live or not; a gateway is forgotten a
	// retention period (default an hour) after its lease ended. Gateway.Live is the
	// caller's estimate on its own clock; the store is the authority.
	Gateways(ctx context.Context) ([]Gateway, error)

	// Register records s as s.UID's current session, replacing any other: a new
	// LOGIN. It fails with ErrLeaseLost unless s.Epoch is the live epoch of
	// s.Gateway. prev is the session it replaced, valid or not (UID 0 if none):
	// the gateway holding it must kick it (the state server tells it, see
	// MethodKick).
	Register(ctx context.Context, s Session) (prev Session, err error)
	// Reregister records s again under a new epoch of its gateway (after a lease
	// loss) only if it is still the user's session: the stored one is absent or
	// has the same Gateway and Conn. Otherwise a newer login replaced it: nothing
	// changes and the error wraps ErrReplaced (the gateway must kick it). It fails
	// with ErrLeaseLost unless s.Epoch is the live epoch of s.Gateway.
	Reregister(ctx context.Context, s Session) error
	// Unregister deletes s.UID's session only if it is exactly s (gateway, conn and
	// epoch); it reports whether it deleted.
	Unregister(ctx context.Context, s Session) (bool, error)
	// Lookup returns uid's session if it is valid: its gateway's lease is live and
	// has the session's epoch.
	Lookup(ctx context.Context, uid uint64) (Session, bool, error)
}

// ErrLeaseLost is returned for an operation under a lease that lapsed or was
// superseded by a newer epoch.
var ErrLeaseLost = errors.New("state: gateway lease lost")

// ErrReplaced is returned by Reregister for a session a newer login replaced.
var ErrReplaced = errors.New("state: session replaced by a newer login")

// ErrUnknownGateway is returned by SetDraining for a gateway never registered.
var ErrUnknownGateway = errors.New("state: unknown gateway")
