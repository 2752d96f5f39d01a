package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/floodgate/floodgate/internal/units"
	"github.com/floodgate/floodgate/netns"
	"github.com/floodgate/floodgate/scenario"
)

// netFault is a network fault in force and the event that records it.
type netFault struct {
	heal  func() error // removes the fault's rules (netns.Fault.Heal)
	ev    int          // index in RunInfo.Faults: its End is set at the heal
	hosts []string
	black bool // a blackhole: the harness stops scraping its host
	once  sync.Once
}

// newNetFault tracks nf, applied for f and recorded as RunInfo.Faults[ev].
func newNetFault(nf *netns.Fault, ev int, f scenario.Fault) *netFault {
	return &netFault{heal: nf.Heal, ev: ev, hosts: nf.Hosts, black: f.Action() == "blackhole"}
}

// applyNet applies a network fault (partition, loss, bandwidth, blackhole) and
// describes it for the event.
func (r *runner) applyNet(ctx context.Context, f scenario.Fault) (*netns.Fault, string, error) {
	switch f.Action() {
	case "partition":
		a, b := r.side(f.Partition[0]), r.side(f.Partition[1])
		nf, err := r.net.Partition(ctx, a, b, f.OneWay)
		detail := "both ways"
		if f.OneWay {
			detail = fmt.Sprintf("one way: %s's packets to %s dropped", f.Partition[0], f.Partition[1])
		}
		return nf, detail, err
	case "loss":
		nf, err := r.net.Loss(ctx, f.Loss, f.LossRate)
		return nf, fmt.Sprintf("%s of packets dropped each way", f.Rate), err
	case "bandwidth":
		nf, err := r.net.Bandwidth(ctx, f.Bandwidth, f.BytesPerSec)
		return nf, fmt.Sprintf("%s each way (tbf, burst %v, queue 50ms)", f.Rate, units.Size(netns.TBFBurst(f.BytesPerSec))), err
	case "blackhole":
		nf, err := r.net.Blackhole(ctx, f.Blackhole)
		return nf, "every packet in and out dropped silently", err
	}
	return nil, "", fmt.Errorf("%q is not a network fault", f.Action())
}

// side resolves a partition side to host names: a host, or every gateway
// started so far, or every agent host.
func (r *runner) side(name string) []string {
	switch name {
	case scenario.GroupGateways:
		r.mu.Lock()
		n := r.gateways
		r.mu.Unlock()
		var hs []string
		for i := 1; i <= n; i++ {
			hs = append(hs, fmt.Sprintf("gw-%d", i))
		}
		return hs
	case scenario.GroupAgents:
		var hs []string
		for i := range r.sc.Topology.Agents {
			hs = append(hs, fmt.Sprintf("cl-%d", i))
		}
		return hs
	}
	return []string{name}
}

// trackNet records a network fault in force, and heals it after d (d = 0: at the
// end of the run). Called with r.mu held; if the run is already ending it returns
// the fault for the caller to heal at once (after unlocking).
func (r *runner) trackNet(nt *netFault, d time.Duration) (healNow *netFault) {
	if nt.black {
		for _, h := range nt.hosts {
			r.silenced[h]++
		}
	}
	if r.netHealed {
		return nt
	}
	r.netFaults = append(r.netFaults, nt)
	if d > 0 {
		r.clock.AfterFunc(d, func() { r.healNet(nt) })
	}
	return nil
}

// healNet removes a network fault once and records the heal as its event's End.
func (r *runner) healNet(nt *netFault) {
	nt.once.Do(func() {
		err := nt.heal()
		r.mu.Lock()
		defer r.mu.Unlock()
		ev := &r.info.Faults[nt.ev]
		ev.End = r.clock.Now()
		if nt.black {
			for _, h := range nt.hosts {
				r.silenced[h]--
			}
		}
		if err != nil {
			ev.Detail += "; heal failed: " + err.Error()
			r.log.Warn("network fault could not be healed", "action", ev.Action, "target", ev.Target, "err", err)
			return
		}
		r.log.Info("fault healed", "action", ev.Action, "target", ev.Target)
	})
}

// healAllNet heals every network fault still in force (the run is ending: normal
// end, Ctrl-C or a harness error); one applied after this is healed at once.
func (r *runner) healAllNet() {
	r.mu.Lock()
	r.netHealed = true
	all := r.netFaults
	r.netFaults = nil
	r.mu.Unlock()
	for _, nt := range all {
		r.healNet(nt)
	}
}

// scrapeable reports whether the harness can reach host now: not while it is
// blackholed (a scrape would only wait for its timeout and delay the others').
func (r *runner) scrapeable(host string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.silenced[host] == 0
}
