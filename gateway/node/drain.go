package node

import (
	"math/rand/v2"
	"time"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/proto"
)

// Drain moves this gateway's clients elsewhere: every req.Interval, req.Batch
// sessions get KICK DRAIN with a retry hint spread uniformly over
// [RetryAfter, RetryAfter+Interval), so they reconnect through ipconf (which no
// longer advertises a draining gateway) at a smooth Batch/Interval per second rather
// than in one storm (emqx#11310) or in a burst per batch. The spread is the whole
// of the pacing: a drained client adds no backoff of its own (PROTOCOL.md §10),
// because every second it waits, messages to it wait too. LOGINs are kicked the same way
// until Undrain: a client that asks ipconf before it has learnt of the drain, and
// comes back here, is sent on again rather than kept. A second request while
// draining changes nothing.
func (n *Node) Drain(req gwlink.DrainRequest) gwlink.DrainStatus {
	st := gwlink.DrainStatus{Sessions: n.Sessions()}
	if req.Validate() != nil || !n.draining.CompareAndSwap(false, true) {
		return st
	}
	st.Started = true
	n.log.Info("drain started", "sessions", st.Sessions, "batch", req.Batch, "interval", req.Interval)
	go n.drain(req)
	return st
}

// Undrain ends a drain: logins are accepted again.
func (n *Node) Undrain() gwlink.DrainStatus {
	if n.draining.CompareAndSwap(true, false) {
		n.log.Info("drain ended")
	}
	return gwlink.DrainStatus{Sessions: n.Sessions()}
}

func (n *Node) drain(req gwlink.DrainRequest) {
	t := time.NewTicker(req.Interval)
	defer t.Stop()
	for {
		var batch []*session
		n.sessions.each(func(s *session) {
			if len(batch) < req.Batch && !s.c.Closed() { // kicked ones linger until they close
				batch = append(batch, s)
			}
		})
		if len(batch) == 0 || !n.draining.Load() {
			n.log.Info("every session moved off; logins stay refused until undrained", "undrained", !n.draining.Load())
			return
		}
		for _, s := range batch {
			retry := req.RetryAfter + time.Duration(rand.Int64N(int64(req.Interval)))
			n.kick(s.c, proto.ReasonDrain, proto.CodeDraining, uint32(retry/time.Millisecond), "gateway draining; reconnect elsewhere")
		}
		<-t.C
	}
}
