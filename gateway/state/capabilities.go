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

// BatchReregisterer is a Store that re-registers many sessions of one gateway
// epoch at once (Redis: one script instead of a round trip each). The Server uses it
// for MethodReregisterBatch.
type BatchReregisterer interface {
	// ReregisterBatch is Reregister for every session of ss, which share one
	// Gateway and Epoch; it returns one error per session, in order (nil, or one
	// wrapping ErrReplaced or ErrLeaseLost), and err for the batch as a whole.
	ReregisterBatch(ctx context.Context, ss []Session) (errs []error, err error)
}

// batchErrors turns per-session statuses (0 stored, 1 replaced, 2 lease lost) into
// ReregisterBatch's errors.
func batchErrors[N ~int64 | ~uint8](ss []Session, res []N) ([]error, error) {
	errs := make([]error, len(ss))
	for i, st := range res {
		switch st {
		case 0:
		case 1:
			errs[i] = fmt.Errorf("reregister uid %d: %w", ss[i].UID, ErrReplaced)
		case 2:
			errs[i] = fmt.Errorf("reregister uid %d: gateway %q epoch %d: %w", ss[i].UID, ss[i].Gateway, ss[i].Epoch, ErrLeaseLost)
		default:
			return nil, fmt.Errorf("state: reregister batch: status %d", st)
		}
	}
	return errs, nil
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
