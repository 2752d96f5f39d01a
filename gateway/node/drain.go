package node

import (
	"math/rand/v2"
	"sync/atomic"
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
	go n.evacuate(req, &n.draining, proto.CodeDraining, "gateway draining; reconnect elsewhere")
	return st
}

// Isolate moves every client elsewhere, as Drain does but spread over `over` and
// with KICK DRAIN / ISOLATED: the gateway is cut off from the session directory
// while other gateways are not, so its sessions cannot stay valid (and no message
// can reach them) here. LOGINs are turned away the same way until Rejoin. A second
// call while isolated changes nothing; it reports whether it started.
func (n *Node) Isolate(over time.Duration) bool {
	if !n.isolated.CompareAndSwap(false, true) {
		return false
	}
	const interval = 100 * time.Millisecond
	sessions := n.Sessions()
	batch := max(1, int(int64(sessions)*int64(interval)/int64(max(over, interval)))+1)
	n.log.Warn("isolated from the session directory: moving every client to other gateways",
		"sessions", sessions, "over", over)
	go n.evacuate(gwlink.DrainRequest{Batch: batch, Interval: interval}, &n.isolated, proto.CodeIsolated,
		"gateway cut off from the cluster; reconnect elsewhere")
	return true
}

// Rejoin ends an isolation: LOGINs are accepted again.
func (n *Node) Rejoin() {
	if n.isolated.CompareAndSwap(true, false) {
		n.log.Info("rejoined the cluster: accepting logins again")
	}
}

// Undrain ends a drain: logins are accepted again.
func (n *Node) Undrain() gwlink.DrainStatus {
	if n.draining.CompareAndSwap(true, false) {
		n.log.Info("drain ended")
	}
	return gwlink.DrainStatus{Sessions: n.Sessions()}
}

// evacuate kicks req.Batch sessions every req.Interval with KICK DRAIN / code,
// while active holds, until none is left.
func (n *Node) evacuate(req gwlink.DrainRequest, active *atomic.Bool, code proto.Code, text string) {
	t := time.NewTicker(req.Interval)
	defer t.Stop()
	for {
		var batch []*session
		n.sessions.each(func(s *session) {
			if len(batch) < req.Batch && !s.c.Closed() { // kicked ones linger until they close
				batch = append(batch, s)
			}
		})
		if len(batch) == 0 || !active.Load() {
			n.log.Info("every session moved off; logins stay refused until allowed again", "code", code, "allowed", !active.Load())
			return
		}
		for _, s := range batch {
			retry := req.RetryAfter + time.Duration(rand.Int64N(int64(req.Interval)))
			n.kick(s.c, proto.ReasonDrain, code, uint32(retry/time.Millisecond), text)
		}
		<-t.C
	}
}
