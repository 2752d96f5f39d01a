package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/state"
)

// Isolation. A gateway cut off from the state service while its clients still
// reach it (a partition between it and the core) cannot renew its lease: from the
// moment its lease may have lapsed it refuses SENDs and LOGINs, and the rest of the
// cluster takes its sessions for dead. Holding the clients would strand them — no
// message can reach them, none of theirs can be stored — so it moves them: every
// client gets KICK DRAIN / ISOLATED, paced over IsolateOver, and reconnects through
// ipconf to a gateway that can reach the state service.
//
// Unless the state service is down for everybody: then every gateway would kick
// every client at once, into a cluster where no gateway can log anyone in — a
// reconnect storm for nothing. So before moving anyone the gateway asks its peers
// (the other gateways of the last table it fetched) over their link listeners
// whether they hold a live lease:
//
//   - one does (freshly and steadily: see leaseStatus): the state service is up and
//     this gateway is the one cut off; isolate.
//   - none answers: this gateway is cut off from its peers too; isolate.
//   - some answer, none holds a lease: the state service is down (or cut off from
//     everyone); hold the clients and ask again a TTL later.
//   - no peers known (a lone gateway): hold; there is nowhere to send them.
//
// Only silence counts, never slowness: the state service must have sent nothing at
// all on the gateway's link for stateSilence, and this loop must have watched that
// silence for watchedSilence. A reachable service keeps sending something — answers
// to earlier requests, or the pongs to the link's pings — however far behind it
// is. A gateway whose renewals queue
// behind thousands of registrations on a busy state service still hears answers,
// and must not move its clients (measured: without this rule, a gateway taking
// 2,000 logins a second after a partition elsewhere took its own slow renewals for
// a partition and isolated itself too). A state service that answers "lease
// lost" (this gateway was frozen past its TTL) is reachable, and the lease loop
// simply acquires a new lease and registers the sessions again.
//
// When a lease is held again (the partition healed: a new one acquired, under a new
// epoch, or the old one renewed in time) the gateway rejoins and takes logins.

// peerRefresh is how often a gateway that holds its lease fetches the gateway table
// it would ask its peers from.
const peerRefresh = 5 * time.Second

// fenceLoop watches the lease on the process clock and isolates the gateway as
// described above; it returns when ctx ends.
func (c *Cluster) fenceLoop(ctx context.Context) {
	ttl := c.cfg.LeaseTTL
	t := time.NewTicker(ttl / 10)
	defer t.Stop()
	// silentSince is when this loop first saw the state service silent, in the
	// current stretch of silence (zero: not silent).
	var fetched, asked, silentSince time.Time
	select {
	case <-c.ready:
	case <-ctx.Done():
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c.epoch.Load() != 0 && c.now() < c.validUntil.Load() {
			silentSince = time.Time{}
			if c.isolated.CompareAndSwap(true, false) {
				c.log.Warn("lease held again: rejoining the cluster")
				c.gw.Rejoin()
			}
			if time.Since(fetched) >= peerRefresh {
				fetched = time.Now()
				c.refreshPeers(ctx)
			}
			continue
		}
		if !c.stateSilent() {
			silentSince = time.Time{}
			continue
		}
		if silentSince.IsZero() {
			silentSince = time.Now()
		}
		// The silence must also be seen by this loop, running, for a while: a gateway
		// that was frozen (SIGSTOP, a VM pause) wakes to a link silent for as long as
		// it slept and a lapsed lease, though nothing is cut — it redials and renews
		// within a second, and must not move its clients meanwhile (seen: a gateway
		// frozen for 20 s moved 1,564 clients on waking).
		if c.isolated.Load() || time.Since(silentSince) < watchedSilence || time.Since(asked) < ttl {
			continue
		}
		asked = time.Now()
		verdict := c.askPeers(ctx)
		if verdict == "" {
			c.m.isolation["hold"].Inc()
		} else {
			c.m.isolation["isolate"].Inc()
			c.isolated.Store(true)
			c.log.Warn("cut off from the state service: moving every client to the other gateways", "why", verdict,
				"over", c.cfg.IsolateOver)
			c.gw.Isolate(c.cfg.IsolateOver)
		}
	}
}

// refreshPeers fetches the gateway table and keeps the other gateways in it.
func (c *Cluster) refreshPeers(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, c.callTimeout())
	defer cancel()
	gws, err := c.cfg.State.Gateways(cctx)
	if err != nil {
		return // the lease loop reports state trouble; the last table stays
	}
	peers := make([]state.Gateway, 0, len(gws))
	for _, g := range gws {
		if g.ID != c.cfg.ID && g.LinkAddr != "" {
			peers = append(peers, g)
		}
	}
	c.peers.Store(&peers)
}

// askPeers asks every known peer whether it holds a live lease and returns why this
// gateway should isolate itself, or "" if it should hold its clients.
func (c *Cluster) askPeers(ctx context.Context) string {
	pp := c.peers.Load()
	if pp == nil || len(*pp) == 0 {
		c.log.Warn("cut off from the state service, with no other gateway known: holding the clients")
		return ""
	}
	peers := *pp
	held := make([]int8, len(peers)) // -1 no answer, 0 no lease, 1 lease
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() { held[i] = c.askPeer(ctx, p.LinkAddr) })
	}
	wg.Wait()
	answered := 0
	for i, h := range held {
		if h == 1 {
			return "gateway " + peers[i].ID + " holds its lease"
		}
		if h == 0 {
			answered++
		}
	}
	if answered == 0 {
		return "no other gateway answers either"
	}
	c.log.Warn("the state service is unreachable for every gateway that answers: holding the clients",
		"answered", answered, "peers", len(peers))
	return ""
}

// askPeer asks the gateway at addr over its link listener whether it holds a live
// lease: 1 yes, 0 no, -1 no answer within callTimeout.
func (c *Cluster) askPeer(ctx context.Context, addr string) int8 {
	cctx, cancel := context.WithTimeout(ctx, c.callTimeout())
	defer cancel()
	l := link.Dial(link.ClientConfig{Addr: addr, Secret: c.cfg.Secret, Name: c.cfg.ID, DialTimeout: c.callTimeout(),
		Logger: c.log})
	defer l.Close()
	if l.WaitConnected(cctx) != nil {
		return -1
	}
	b, err := l.Call(cctx, gwlink.MethodLease, nil)
	if err != nil || len(b) != 1 {
		return -1
	}
	if b[0] == gwlink.LeaseHeld {
		return 1
	}
	return 0
}

// leaseStatus answers a peer's MethodLease: held only if the lease is live, the
// state service answered within half a TTL, and every lease call has been answered
// for at least a TTL. Both conditions matter when the state service is out for
// everyone. As it goes, the gateways' leases lapse one after the other (each on its
// own renewal schedule), and the first to ask must not take a peer whose lease has
// not lapsed yet for proof that the service is up: a healthy peer heard from it at
// most a renewal period (a third of the TTL) ago, one cut off with the asker has
// not, for at least half a TTL by then. As it comes back, the gateways regain it
// one after the other (each redials on its own schedule), and the last must not
// take a peer that regained it a moment earlier for proof that it alone is cut
// off (seen: a gateway moved 367 clients at the heal of a cut of every gateway).
func (c *Cluster) leaseStatus() []byte {
	now := c.now()
	if c.epoch.Load() != 0 && now < c.validUntil.Load() && now-c.lastAnswer.Load() < int64(c.cfg.LeaseTTL/2) &&
		now-c.contactSince.Load() >= int64(c.cfg.LeaseTTL) {
		return []byte{gwlink.LeaseHeld}
	}
	return []byte{gwlink.LeaseNone}
}

// callTimeout bounds each lease call and each peer question: a third of the TTL,
// so that a state service that does not answer at all (a partition: no error, no
// reset, just silence) is known within the lease, not after the kernel gives up.
func (c *Cluster) callTimeout() time.Duration { return c.cfg.LeaseTTL / 3 }

// watchedSilence is how long the fence loop itself must have seen the state
// service silent before it acts.
const watchedSilence = time.Second

// stateSilence is how long the state service must have sent nothing at all for the
// gateway to count it unreachable: two of the link's ping periods.
const stateSilence = 2 * link.DefaultPingEvery

// silence is what a state.Client adds to the Store: how long the service has sent
// nothing at all.
type silence interface{ Silent() time.Duration }

// stateSilent reports whether the state service is unreachable rather than slow:
// silent on the link for stateSilence, or, for a Store without a link, the last
// lease call got no answer.
func (c *Cluster) stateSilent() bool {
	if s, ok := c.cfg.State.(silence); ok {
		return s.Silent() >= stateSilence
	}
	return !c.stateAnswers.Load()
}

// noteLeaseCall records whether a lease call got an answer from the state service
// (success, or "lease lost", which is an answer too).
func (c *Cluster) noteLeaseCall(err error) {
	answered := err == nil || errors.Is(err, state.ErrLeaseLost)
	was := c.stateAnswers.Swap(answered)
	if answered {
		now := c.now()
		c.lastAnswer.Store(now)
		if !was {
			c.contactSince.Store(now)
		}
	}
}
