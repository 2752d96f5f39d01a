// Package gwlink is the contract of a gateway's internal link listener: the methods
// the router (pushes) and control (drain) call on a gateway, and their bodies.
package gwlink

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
)

// Methods served by a gateway's link server.
const (
	// MethodPush delivers one stored message to one session. Request body:
	// AppendPush (the session's conn id, then msg.AppendMessage). Response: one
	// byte, PushDelivered or PushNotHere.
	MethodPush uint16 = 1
	// MethodDrain asks the gateway to move its clients elsewhere. Request and
	// response bodies: JSON DrainRequest and DrainStatus. The gateway keeps turning
	// logins away until MethodUndrain, so clients that reconnect before ipconf
	// stops advertising it are sent on again rather than kept.
	MethodDrain uint16 = 2
	// MethodUndrain ends a drain: the gateway accepts logins again. Empty request;
	// response body: JSON DrainStatus (Started false).
	MethodUndrain uint16 = 3
	// MethodLease asks a gateway whether it holds a live lease: a gateway cut off
	// from the state service asks its peers before moving its clients to them.
	// Empty request; response: one byte, LeaseHeld or LeaseNone.
	MethodLease uint16 = 4
)

// MethodLease results.
const (
	LeaseNone byte = 0 // no lease, or one that may have lapsed
	// LeaseHeld: a live lease on the gateway's own clock, and an answer from the
	// state service within half a TTL.
	LeaseHeld byte = 1
)

// MethodPush results.
const (
	// PushNotHere: this gateway holds no session with that conn id for the
	// recipient (the route was stale, or the session was replaced): look it up
	// again. The message stays stored.
	PushNotHere byte = 0
	// PushDelivered: the gateway took the message for the session: written to its
	// connection or queued for it — or the session is between its registration and
	// LOGIN_OK, or closing, so that the SYNC after its (next) LOGIN_OK fetches the
	// message from the store. Either way the router's job for it is done.
	PushDelivered byte = 1
)

// AppendPush appends a MethodPush request body: u64 conn | msg.AppendMessage(m).
func AppendPush(b []byte, conn uint64, m *msg.Message) []byte {
	return msg.AppendMessage(binary.BigEndian.AppendUint64(b, conn), m)
}

// DecodePush decodes a MethodPush request body; the payload aliases b.
func DecodePush(b []byte) (conn uint64, m msg.Message, err error) {
	if len(b) < 8 {
		return 0, msg.Message{}, errors.New("gwlink: push body too short")
	}
	m, err = msg.DecodeMessage(b[8:])
	if err != nil {
		return 0, msg.Message{}, fmt.Errorf("gwlink: push: %w", err)
	}
	return binary.BigEndian.Uint64(b), m, nil
}

// DrainRequest paces a drain: every Interval, Batch clients get KICK DRAIN with a
// retry hint of RetryAfter plus a uniform share of Interval (so one batch comes back
// spread over its interval, not in lockstep), until none is left.
type DrainRequest struct {
	Batch      int           `json:"batch"`
	Interval   time.Duration `json:"interval_ns"`
	RetryAfter time.Duration `json:"retry_after_ns"`
}

// Validate checks the request's values.
func (d DrainRequest) Validate() error {
	if d.Batch <= 0 || d.Interval <= 0 || d.RetryAfter < 0 {
		return fmt.Errorf("drain: batch %d, interval %v, retry-after %v: want batch > 0, interval > 0, retry-after >= 0",
			d.Batch, d.Interval, d.RetryAfter)
	}
	return nil
}

// DrainStatus is the gateway's answer: how many sessions it held when the drain began.
type DrainStatus struct {
	Sessions int  `json:"sessions"`
	Started  bool `json:"started"` // false if a drain was already running
}

// Marshal encodes v as JSON (for DrainRequest and DrainStatus).
func Marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("gwlink: %v", err)) // the types above always encode
	}
	return b
}
