package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
)

// Link methods of the state service. Lease operations and the gateway table are
// rare and carry JSON; the session calls are hot (one per LOGIN, logout and router
// cache miss) and carry fixed big-endian binary:
//
//	session = u64 uid | u64 conn | u64 epoch | gateway id (the rest of the body)
const (
	// MethodAcquire: JSON acquireRequest → u64 epoch.
	MethodAcquire uint16 = 1
	// MethodRenew: JSON renewRequest → empty.
	MethodRenew uint16 = 2
	// MethodRelease: JSON releaseRequest → empty.
	MethodRelease uint16 = 3
	// MethodSetDraining: JSON drainingRequest → empty.
	MethodSetDraining uint16 = 4
	// MethodGateways: empty → JSON snapshot.
	MethodGateways uint16 = 5
	// MethodWatch is a one-way notification from a client, empty body: push gateway
	// table snapshots to this connection from now on, starting at once. Sending it
	// again asks for an immediate snapshot.
	MethodWatch uint16 = 6
	// MethodSnapshot is a one-way notification from the server: JSON snapshot.
	MethodSnapshot uint16 = 7
	// MethodKick is a one-way notification from the server to a gateway (the peer
	// whose link name is the gateway id): takeover (the replaced session, then the
	// session that replaced it) → kick the first, then answer MethodKicked with the
	// same body, whether or not it still held it. See Server.kickReplaced.
	MethodKick uint16 = 8
	// MethodKicked is a one-way notification, takeover body: from the gateway that
	// kicked a replaced session to the server, which forwards it to the gateway of
	// the replacing session (by its link name), whose LOGIN_OK waits for it.
	MethodKicked uint16 = 9

	// MethodRegister: session → empty, or u8 flags | the session it replaced, where
	// flag RegisterKickSent says the replaced session's gateway was told to kick it
	// (MethodKick) and will answer MethodKicked.
	MethodRegister uint16 = 16
	// MethodUnregister: session → u8 1 (deleted) or 0 (the stored session differs).
	MethodUnregister uint16 = 17
	// MethodLookup: u64 uid → u8 LookupStatus, followed by the session's u64 conn |
	// u64 epoch | gateway id unless the status is LookupMiss.
	MethodLookup uint16 = 18
	// MethodReregister: session → empty, or an error "replaced" (ErrReplaced).
	MethodReregister uint16 = 19
	// MethodReregisterBatch re-registers many sessions of one gateway epoch in one
	// round trip: u64 epoch | u16 len | gateway id | n × (u64 uid | u64 conn), with
	// 1 ≤ n ≤ MaxReregisterBatch → n × u8: ReregisterOK, ReregisterReplaced or
	// ReregisterLeaseLost, in the request's order.
	MethodReregisterBatch uint16 = 20
)

// MaxReregisterBatch is the most sessions one MethodReregisterBatch carries.
const MaxReregisterBatch = 1024

// MethodReregisterBatch results, one byte per session.
const (
	ReregisterOK        byte = 0
	ReregisterReplaced  byte = 1
	ReregisterLeaseLost byte = 2
)

// appendReregisterBatch encodes a batch; every session must have the first one's
// gateway and epoch.
func appendReregisterBatch(b []byte, ss []Session) ([]byte, error) {
	if len(ss) == 0 || len(ss) > MaxReregisterBatch {
		return nil, fmt.Errorf("state: reregister batch of %d sessions, want 1..%d", len(ss), MaxReregisterBatch)
	}
	gw, epoch := ss[0].Gateway, ss[0].Epoch
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = binary.BigEndian.AppendUint16(b, uint16(len(gw)))
	b = append(b, gw...)
	for _, s := range ss {
		if s.Gateway != gw || s.Epoch != epoch {
			return nil, fmt.Errorf("state: reregister batch mixes %s/%d with %s/%d", gw, epoch, s.Gateway, s.Epoch)
		}
		b = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(b, s.UID), s.Conn)
	}
	return b, nil
}

// decodeReregisterBatch decodes a batch.
func decodeReregisterBatch(b []byte) ([]Session, error) {
	if len(b) < 10 {
		return nil, fmt.Errorf("reregister batch of %d bytes", len(b))
	}
	epoch := binary.BigEndian.Uint64(b)
	n := int(binary.BigEndian.Uint16(b[8:]))
	b = b[10:]
	if n > len(b) {
		return nil, fmt.Errorf("reregister batch: gateway id of %d bytes in %d", n, len(b))
	}
	gw := string(b[:n])
	b = b[n:]
	if len(b) == 0 || len(b)%16 != 0 || len(b)/16 > MaxReregisterBatch {
		return nil, fmt.Errorf("reregister batch: %d bytes of sessions", len(b))
	}
	ss := make([]Session, len(b)/16)
	for i := range ss {
		ss[i] = Session{UID: binary.BigEndian.Uint64(b[16*i:]), Conn: binary.BigEndian.Uint64(b[16*i+8:]), Gateway: gw, Epoch: epoch}
	}
	return ss, nil
}

// MethodName names a method in logs and metric labels.
func MethodName(m uint16) string {
	switch m {
	case MethodAcquire:
		return "acquire"
	case MethodRenew:
		return "renew"
	case MethodRelease:
		return "release"
	case MethodSetDraining:
		return "set_draining"
	case MethodGateways:
		return "gateways"
	case MethodWatch:
		return "watch"
	case MethodSnapshot:
		return "snapshot"
	case MethodKick:
		return "kick"
	case MethodKicked:
		return "kicked"
	case MethodReregister:
		return "reregister"
	case MethodReregisterBatch:
		return "reregister_batch"
	case MethodRegister:
		return "register"
	case MethodUnregister:
		return "unregister"
	case MethodLookup:
		return "lookup"
	}
	return fmt.Sprintf("method_%d", m)
}

type acquireRequest struct {
	Gateway Gateway       `json:"gateway"`
	TTL     time.Duration `json:"ttl_ns"`
}

type renewRequest struct {
	ID    string        `json:"id"`
	Epoch uint64        `json:"epoch"`
	Load  Load          `json:"load"`
	TTL   time.Duration `json:"ttl_ns"`
}

type releaseRequest struct {
	ID    string `json:"id"`
	Epoch uint64 `json:"epoch"`
}

type drainingRequest struct {
	ID       string `json:"id"`
	Draining bool   `json:"draining"`
}

// snapshot is the gateway table on the wire. Each gateway carries the lease's
// remaining time besides its absolute expiry: the receiver recomputes Expires on its
// own clock, so clock skew between hosts does not make a lease look live or dead.
type snapshot struct {
	Gateways []wireGateway `json:"gateways"`
}

type wireGateway struct {
	Gateway
	Remaining time.Duration `json:"remaining_ns"` // 0 when the lease is not live
}

// encodeSnapshot encodes gws as seen at now.
func encodeSnapshot(gws []Gateway, now time.Time) []byte {
	s := snapshot{Gateways: make([]wireGateway, len(gws))}
	for i, g := range gws {
		s.Gateways[i] = wireGateway{Gateway: g}
		if g.Live(now) {
			s.Gateways[i].Remaining = g.Expires.Sub(now)
		}
	}
	return mustJSON(s)
}

// decodeSnapshot decodes a snapshot received at now.
func decodeSnapshot(b []byte, now time.Time) ([]Gateway, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state: gateway snapshot: %w", err)
	}
	out := make([]Gateway, len(s.Gateways))
	for i, w := range s.Gateways {
		g := w.Gateway
		switch {
		case w.Remaining > 0:
			g.Expires = now.Add(w.Remaining)
		case g.Expires.After(now):
			g.Expires = now // dead at the sender: dead here too
		}
		out[i] = g
	}
	return out, nil
}

// mustJSON encodes v, whose types always encode.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("state: %v", err))
	}
	return b
}

const sessionHeader = 3 * 8

// appendSession appends s in the session encoding.
func appendSession(b []byte, s Session) []byte {
	b = binary.BigEndian.AppendUint64(b, s.UID)
	b = binary.BigEndian.AppendUint64(b, s.Conn)
	b = binary.BigEndian.AppendUint64(b, s.Epoch)
	return append(b, s.Gateway...)
}

// decodeSession decodes the session encoding.
func decodeSession(b []byte) (Session, error) {
	if len(b) < sessionHeader {
		return Session{}, fmt.Errorf("session body of %d bytes, want at least %d", len(b), sessionHeader)
	}
	return Session{
		UID:     binary.BigEndian.Uint64(b),
		Conn:    binary.BigEndian.Uint64(b[8:]),
		Epoch:   binary.BigEndian.Uint64(b[16:]),
		Gateway: string(b[sessionHeader:]),
	}, nil
}

// RegisterKickSent is the Register response flag: the replaced session's gateway
// was told to kick it.
const RegisterKickSent = 1

// appendTakeover appends the takeover body of MethodKick and MethodKicked: u16 length
// of the replaced session's encoding, that encoding, then the replacing session's.
func appendTakeover(b []byte, prev, by Session) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(sessionHeader+len(prev.Gateway)))
	return appendSession(appendSession(b, prev), by)
}

// decodeTakeover decodes a takeover body.
func decodeTakeover(b []byte) (prev, by Session, err error) {
	if len(b) < 2 {
		return Session{}, Session{}, fmt.Errorf("takeover body of %d bytes", len(b))
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > len(b)-2 {
		return Session{}, Session{}, fmt.Errorf("takeover body: first session of %d bytes in %d", n, len(b)-2)
	}
	if prev, err = decodeSession(b[2 : 2+n]); err != nil {
		return Session{}, Session{}, err
	}
	by, err = decodeSession(b[2+n:])
	return prev, by, err
}

// appendLookup appends a Lookup response.
func appendLookup(b []byte, s Session, st LookupStatus) []byte {
	b = append(b, byte(st))
	if st == LookupMiss {
		return b
	}
	b = binary.BigEndian.AppendUint64(b, s.Conn)
	b = binary.BigEndian.AppendUint64(b, s.Epoch)
	return append(b, s.Gateway...)
}

// decodeLookup decodes a Lookup response for uid.
func decodeLookup(uid uint64, b []byte) (Session, LookupStatus, error) {
	if len(b) == 1 && LookupStatus(b[0]) == LookupMiss {
		return Session{}, LookupMiss, nil
	}
	if len(b) < 1+16 || (LookupStatus(b[0]) != LookupHit && LookupStatus(b[0]) != LookupInvalid) {
		return Session{}, LookupMiss, fmt.Errorf("state: malformed lookup response (%d bytes)", len(b))
	}
	return Session{
		UID:     uid,
		Conn:    binary.BigEndian.Uint64(b[1:]),
		Epoch:   binary.BigEndian.Uint64(b[9:]),
		Gateway: string(b[17:]),
	}, LookupStatus(b[0]), nil
}

// Error frames carry "<code> <message>", so the client can rebuild the sentinel.
const (
	codeLeaseLost      = "lease-lost"
	codeReplaced       = "replaced"
	codeUnknownGateway = "unknown-gateway"
	codeBadRequest     = "bad-request"
	codeInternal       = "internal"
)

// errBadRequest marks a malformed request.
var errBadRequest = errors.New("bad request")

// wireError is an error as the server sends it.
type wireError struct {
	code string
	err  error
}

// Error is the text of the error frame: the code, a space, the error's own text.
func (e *wireError) Error() string { return e.code + " " + e.err.Error() }

// toWire tags err with its code for an error frame.
func toWire(err error) error {
	code := codeInternal
	switch {
	case errors.Is(err, ErrLeaseLost):
		code = codeLeaseLost
	case errors.Is(err, ErrReplaced):
		code = codeReplaced
	case errors.Is(err, ErrUnknownGateway):
		code = codeUnknownGateway
	case errors.Is(err, errBadRequest):
		code = codeBadRequest
	}
	return &wireError{code: code, err: err}
}

// RemoteError is an error returned by the state server. errors.Is matches it against
// ErrLeaseLost and ErrUnknownGateway when the server's error was one of them.
type RemoteError struct {
	Code string // lease-lost, unknown-gateway, bad-request or internal
	Msg  string // the server's error text
}

// Error returns the server's error text, marked as the server's.
func (e *RemoteError) Error() string { return "state server: " + e.Msg }

// Unwrap returns the sentinel the code stands for, if any.
func (e *RemoteError) Unwrap() error {
	switch e.Code {
	case codeLeaseLost:
		return ErrLeaseLost
	case codeReplaced:
		return ErrReplaced
	case codeUnknownGateway:
		return ErrUnknownGateway
	}
	return nil
}

// fromWire turns a link error frame back into a *RemoteError; other errors (the link's
// own, such as link.ErrUnavailable) are returned as they are.
func fromWire(err error) error {
	var re *link.RemoteError
	if !errors.As(err, &re) {
		return err
	}
	code, msg, ok := strings.Cut(re.Msg, " ")
	if !ok {
		code, msg = codeInternal, re.Msg
	}
	return &RemoteError{Code: code, Msg: msg}
}
