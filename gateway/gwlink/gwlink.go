// Package gwlink is the contract of a gateway's internal link listener: the methods
// the router (pushes) and control (drain) call on a gateway, and their bodies.
package gwlink

import (
	"encoding/json"
	"fmt"
	"time"
)

// Methods served by a gateway's link server.
const (
	// MethodPush delivers one stored message. Request body: msg.AppendMessage.
	// Response: one byte, PushDelivered or PushNotHere.
	MethodPush uint16 = 1
	// MethodDrain asks the gateway to move its clients elsewhere. Request and
	// response bodies: JSON DrainRequest and DrainStatus. The gateway keeps turning
	// logins away until MethodUndrain, so clients that reconnect before ipconf
	// stops advertising it are sent on again rather than kept.
	MethodDrain uint16 = 2
	// MethodUndrain ends a drain: the gateway accepts logins again. Empty request;
	// response body: JSON DrainStatus (Started false).
	MethodUndrain uint16 = 3
)

// MethodPush results.
const (
	// PushNotHere: the recipient has no session on this gateway (the route was
	// stale); the message stays stored for the recipient's next SYNC.
	PushNotHere byte = 0
	// PushDelivered: written to the recipient's connection (or queued for it).
	PushDelivered byte = 1
)

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
