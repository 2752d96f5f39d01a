package state

import (
	"context"
	"fmt"
)

// Optional capabilities: interfaces a Store may implement beyond the contract. The
// Server uses them when its store has them (metrics, garbage collection); Memory and
// Redis implement all three, and Client implements Prober.

// LookupStatus is the outcome of a Probe.
type LookupStatus uint8

const (
	// LookupMiss means no session is stored for the uid.
	LookupMiss LookupStatus = iota
	// LookupHit means the stored session is valid: its gateway's lease is live with
	// the session's epoch.
	LookupHit
	// LookupInvalid means a session is stored but died with its gateway's lease (the
	// lease lapsed, was released, or a newer epoch exists). Invalidity is permanent:
	// a dead epoch never becomes live again.
	LookupInvalid
)

// String returns the status as the word used in metric labels.
func (s LookupStatus) String() string {
	switch s {
	case LookupMiss:
		return "miss"
	case LookupHit:
		return "hit"
	case LookupInvalid:
		return "invalid"
	}
	return fmt.Sprintf("LookupStatus(%d)", uint8(s))
}

// Prober is a Store whose lookups tell a user without a session (LookupMiss) from one
// whose session died with its gateway's lease (LookupInvalid).
type Prober interface {
	// Probe is Lookup with the reason: it returns the stored session with LookupHit
	// or LookupInvalid, and the zero Session with LookupMiss. Lookup(uid) equals
	// Probe(uid) with ok = (status == LookupHit), except that Lookup returns the zero
	// Session when not ok.
	Probe(ctx context.Context, uid uint64) (Session, LookupStatus, error)
}

// Sweeper is a Store that holds dead sessions until they are reclaimed. Sessions of
// dead epochs are invalid whether or not they were reclaimed; sweeping only bounds
// memory. The Server calls Sweep periodically.
type Sweeper interface {
	// Sweep reclaims sessions of dead epochs (and forgets gateways dead for longer
	// than the store's retention) and returns how many sessions it reclaimed.
	Sweep(ctx context.Context) (reclaimed int, err error)
}

// SessionCounter is a Store that can count its valid sessions cheaply (in time
// proportional to the number of gateways, not sessions).
type SessionCounter interface {
	// Sessions returns the number of sessions under live leases.
	Sessions(ctx context.Context) (int, error)
}
