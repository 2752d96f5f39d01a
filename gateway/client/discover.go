package client

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// GatewayList is ipconf's answer to GET /v1/gateways: where to connect, best first,
// and how to behave (PROTOCOL.md §10).
type GatewayList struct {
	Gateways    []Gateway   `json:"gateways"`     // in the order to try them
	HeartbeatMS int         `json:"heartbeat_ms"` // the deployment's heartbeat (LOGIN_OK's value rules)
	Backoff     BackoffHint `json:"backoff"`      // the reconnect schedule
	// Frozen is true while ipconf still advertises gateways that vanished in a
	// mass loss (one of them may refuse the connection: try the next).
	Frozen bool `json:"frozen"`
	// GeneratedAt is when the gateway table behind the list was taken (RFC 3339).
	GeneratedAt string `json:"generated_at"`
}

// Gateway is one advertised gateway.
type Gateway struct {
	ID     string  `json:"id"`
	Addr   string  `json:"addr"`   // host:port of the client protocol
	Weight float64 `json:"weight"` // its share of new connections; the weights sum to 1
	// WS is the gateway's WebSocket port (PROTOCOL.md §2.1), host:port; "" when it
	// has none.
	WS string `json:"ws,omitempty"`
}

// BackoffHint is ipconf's reconnect schedule, in milliseconds.
type BackoffHint struct {
	BaseMS int     `json:"base_ms"`
	MaxMS  int     `json:"max_ms"`
	Jitter float64 `json:"jitter"` // 1.0: full jitter
}

// Backoff returns the hint as a Backoff (zero fields where the hint has none).
func (h BackoffHint) Backoff() Backoff {
	return Backoff{Base: time.Duration(h.BaseMS) * time.Millisecond, Max: time.Duration(h.MaxMS) * time.Millisecond,
		Jitter: h.Jitter}
}

// Defaults of the reconnect schedule (PROTOCOL.md §10), for whatever neither
// SessionConfig.Backoff nor ipconf sets.
const (
	DefaultBackoffBase   = 500 * time.Millisecond
	DefaultBackoffMax    = 30 * time.Second
	DefaultBackoffJitter = 1.0
)

// Backoff is an exponential reconnect schedule with jitter: attempt n (from 0)
// waits ceiling × (1 − Jitter × u) for u uniform in [0, 1), where ceiling =
// min(Max, Base × 2^n). Jitter 1 is full jitter: uniform in (0, ceiling].
type Backoff struct {
	Base, Max time.Duration
	Jitter    float64 // 0..1
}

// or returns b with its zero fields taken from d.
func (b Backoff) or(d Backoff) Backoff {
	if b.Base <= 0 {
		b.Base = d.Base
	}
	if b.Max <= 0 {
		b.Max = d.Max
	}
	if b.Jitter <= 0 || b.Jitter > 1 {
		b.Jitter = d.Jitter
	}
	return b
}

// Delay is the wait before attempt n (0 for the first retry), for u uniform in
// [0, 1).
func (b Backoff) Delay(n int, u float64) time.Duration {
	ceiling := float64(b.Max)
	if n < 62 {
		ceiling = min(ceiling, float64(b.Base)*math.Pow(2, float64(n)))
	}
	return time.Duration(ceiling * (1 - b.Jitter*u))
}

// DiscoverError is an answer of ipconf other than 200.
type DiscoverError struct {
	Status int
	// RetryAfter is the Retry-After header of a 503: ask again no sooner.
	RetryAfter time.Duration
	// Hints is the body of a 503 (no gateways, the backoff hints intact).
	Hints GatewayList
}

func (e *DiscoverError) Error() string {
	return fmt.Sprintf("ipconf: %d %s (retry after %v)", e.Status, http.StatusText(e.Status), e.RetryAfter)
}

// Discover asks ipconf (base URL, e.g. http://127.0.0.1:7100) for uid's gateway
// list. An answer other than 200 is a *DiscoverError; a 200 without gateways is
// an error too.
func Discover(ctx context.Context, hc *http.Client, base string, uid uint64) (GatewayList, error) {
	u, err := url.Parse(base)
	if err != nil {
		return GatewayList{}, fmt.Errorf("ipconf url: %w", err)
	}
	u = u.JoinPath("/v1/gateways")
	u.RawQuery = url.Values{"uid": {strconv.FormatUint(uid, 10)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return GatewayList{}, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return GatewayList{}, fmt.Errorf("ipconf: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := &DiscoverError{Status: resp.StatusCode}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			_ = json.NewDecoder(resp.Body).Decode(&e.Hints) // the hints are optional
		}
		return GatewayList{}, e
	}
	var gl GatewayList
	if err := json.NewDecoder(resp.Body).Decode(&gl); err != nil {
		return GatewayList{}, fmt.Errorf("ipconf answer: %w", err)
	}
	if len(gl.Gateways) == 0 {
		return gl, fmt.Errorf("ipconf: no gateway available")
	}
	return gl, nil
}
