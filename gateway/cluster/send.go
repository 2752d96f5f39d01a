package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
)

// Retrying an append whose outcome is unknown: each attempt gets attemptTimeout to
// answer (a frozen msg service answers nothing), then the next starts after a pause
// that doubles from retryFirst to retryMax. While msg is down an attempt fails at
// once (its link is not connected), so the cap is what a message waits after msg is
// back: measured with a 2 s cap, the last message pending at a msg restart on Redis
// arrived 2.1 s after it; the cap matches the link's reconnect backoff.
// A SEND that certainly was not stored (msg is down, or this gateway cannot store
// for the session right now) is retried the same way for up to Config.SendHold (see
// there) before the client is told UNAVAILABLE; one the recipient's quota refused
// (msg.ErrRecipientFull) is answered at once.
const (
	attemptTimeout = 5 * time.Second
	retryFirst     = 100 * time.Millisecond
	retryMax       = 500 * time.Millisecond
)

// errOutcomeUnknown ends a SEND whose append could not be confirmed in time.
var errOutcomeUnknown = errors.New("cluster: the message store did not confirm the append in time (it may be stored)")

// sendAttempt is one SEND on its way to the store. Attempts are numbered; an answer
// or a timeout of an attempt that is no longer the current one is ignored, so done
// runs exactly once.
type sendAttempt struct {
	c      *Cluster
	m      *msg.Message
	closed func() bool
	done   func(uint64, error)
	start  time.Time

	mu       sync.Mutex
	attempt  int
	unknown  bool // an earlier attempt's outcome was unknown: "not stored" no longer proves anything
	finished bool
	timer    *time.Timer
}

// try starts the next attempt, unless a late answer finished the SEND meanwhile.
func (a *sendAttempt) try() {
	a.mu.Lock()
	if a.finished {
		a.mu.Unlock()
		return
	}
	a.attempt++
	n := a.attempt
	a.timer = time.AfterFunc(attemptTimeout, func() { a.result(n, fmt.Errorf("no answer within %v", attemptTimeout)) })
	a.mu.Unlock()
	if n > 1 {
		a.c.m.sendRetries.Inc()
	}
	if !a.c.mayStore(a.m.From) {
		a.result(n, fmt.Errorf("%w: the gateway holds no live lease for this session now", msg.ErrNotStored))
		return
	}
	if ag, ok := a.c.cfg.Msgs.(asyncAppender); ok {
		ag.AppendGo(a.m, func(err error) { a.result(n, err) })
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	err := a.c.cfg.Msgs.Append(ctx, a.m)
	cancel()
	a.result(n, err)
}

// result takes attempt n's outcome.
func (a *sendAttempt) result(n int, err error) {
	a.mu.Lock()
	if a.finished || n != a.attempt {
		a.mu.Unlock()
		return
	}
	a.timer.Stop()
	notStored := errors.Is(err, msg.ErrNotStored) && !a.unknown
	// A quota refusal is answered at once: holding it would not free the quota,
	// the recipient has to read first. After an unknown outcome it proves nothing
	// (like any "not stored") and is retried.
	definite := err == nil || errors.Is(err, msg.ErrNoRecipient) ||
		(notStored && (errors.Is(err, msg.ErrRecipientFull) || a.closed() || time.Since(a.start) >= a.c.cfg.SendHold))
	switch {
	case definite:
	case notStored:
		// Certainly not stored so far: hold it a little, it may be stored shortly.
	case a.closed():
		err = fmt.Errorf("%w; the client's connection is gone", errOutcomeUnknown) // it resends after reconnecting
		definite = true
	case time.Since(a.start) >= a.c.cfg.SendTimeout:
		err = fmt.Errorf("%w: last error: %w", errOutcomeUnknown, err)
		definite = true
	}
	if definite {
		a.finished = true
		a.mu.Unlock()
		if err != nil {
			a.done(0, err)
			return
		}
		a.done(a.m.ID, nil)
		return
	}
	// Until the next attempt starts, a late answer of this one still counts (a
	// success is as good as any).
	a.unknown = a.unknown || !notStored
	pause := min(retryFirst<<min(a.attempt-1, 5), retryMax)
	a.mu.Unlock()
	time.AfterFunc(pause, a.try)
}
