package sim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/netns"
	"github.com/floodgate/floodgate/runfolder"
	"github.com/floodgate/floodgate/scenario"
)

// scheduleFaults arms every fault at its time from start: a fault's offset
// counts from its phase's start, the phases laid end to end. The returned channel
// closes once all have been applied (or the run stopped).
func (r *runner) scheduleFaults(ctx context.Context, start time.Time) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	at := start
	for _, ph := range r.sc.Phases {
		for _, f := range ph.Faults {
			when := at.Add(f.Offset.D())
			wg.Go(func() {
				select {
				case <-r.clock.After(when.Sub(r.clock.Now())):
					r.apply(ctx, ph.Name, f)
				case <-ctx.Done():
				}
			})
		}
		at = at.Add(ph.Duration.D())
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

// apply injects one fault and records it.
func (r *runner) apply(ctx context.Context, phase string, f scenario.Fault) {
	ev := runfolder.FaultEvent{Phase: phase, Action: f.Action(), Target: f.Target(), At: r.clock.Now()}
	nf, err := r.inject(ctx, phase, f, &ev)
	if err != nil {
		ev.Error = err.Error()
		r.log.Warn("fault could not be applied", "action", ev.Action, "target", ev.Target, "err", err)
	} else {
		r.log.Info("fault", "phase", phase, "action", ev.Action, "target", ev.Target)
	}
	r.mu.Lock()
	r.info.Faults = append(r.info.Faults, ev)
	var healNow *netFault
	if nf != nil {
		healNow = r.trackNet(newNetFault(nf, len(r.info.Faults)-1, f), f.For.D())
	}
	r.mu.Unlock()
	if healNow != nil { // applied as the run ended
		r.healNet(healNow)
	}
}

// inject applies f, filling in ev what the action tells: its End (its heal, when
// the action ends by itself), Detail and, for a scale-out, the gateways started.
// nf is a network fault now in force, for apply to track.
func (r *runner) inject(ctx context.Context, phase string, f scenario.Fault, ev *runfolder.FaultEvent) (nf *netns.Fault, err error) {
	switch f.Action() {
	case "kill":
		ev.End, ev.Detail, err = r.killFault(ctx, f.Kill)
	case "pause":
		ev.End, ev.Detail, err = r.pause(ctx, f.Pause, f.For.D(), ev.At)
	case "restart":
		err = r.restart(ctx, f.Restart)
		ev.End = r.clock.Now() // serving again: the heal
	case "drain":
		ev.Detail, err = r.drain(ctx, f)
	case "scale_out":
		ev.Target, err = r.scaleOut(ctx, f.ScaleOut)
	case "reconnect_storm":
		err = r.storm(ctx)
		ev.End = r.clock.Now() // every gateway serving again: the heal
		r.mu.Lock()
		ev.Detail = fmt.Sprintf("%d gateways restarted", r.gateways)
		r.mu.Unlock()
	case "connect_flood":
		err = r.flood(ctx, f, phase)
	case "partition", "loss", "bandwidth", "blackhole":
		nf, ev.Detail, err = r.applyNet(ctx, f)
		if f.For == 0 {
			ev.Detail += "; until the end of the run"
		}
	}
	return nf, err
}

// pause SIGSTOPs a process (redis-primary: the primary now) and SIGCONTs it
// after d, from at; end is then, and detail names the server a redis-primary
// pause stopped.
func (r *runner) pause(ctx context.Context, target string, d time.Duration, at time.Time) (end time.Time, detail string, err error) {
	name, err := r.resolveRedis(ctx, target)
	if err != nil {
		return time.Time{}, "", err
	}
	p := r.live(name)
	if p == nil || !p.alive() {
		return time.Time{}, "", fmt.Errorf("%s is not running", name)
	}
	if name != target {
		detail = name + " paused"
	}
	p.signal(syscall.SIGSTOP)
	r.clock.AfterFunc(d, func() { p.signal(syscall.SIGCONT) })
	return at.Add(d), detail, nil
}

// drain asks control to drain a gateway, in batches at an interval when the
// fault sets them; detail is control's answer.
func (r *runner) drain(ctx context.Context, f scenario.Fault) (detail string, err error) {
	body := map[string]any{"gateway": f.Drain}
	if f.Batch > 0 {
		body["batch"] = f.Batch
	}
	if f.Interval > 0 {
		body["interval"] = f.Interval.String()
	}
	out, err := r.postControl(ctx, "/v1/drain", body)
	return fmt.Sprintf("%v", out), err
}

// scaleOut starts n more gateways, stopping at the first that fails; started
// names those that did start (gw-a,gw-b).
func (r *runner) scaleOut(ctx context.Context, n int) (started string, err error) {
	var names []string
	for range n {
		r.mu.Lock()
		next := r.gateways + 1
		r.mu.Unlock()
		if _, err = r.startGateway(ctx, next); err != nil {
			break
		}
		names = append(names, fmt.Sprintf("gw-%d", next))
	}
	return strings.Join(names, ","), err
}

// storm kills every gateway at once and starts them all again at once, so that
// every client reconnects together. All are signalled before any exit is awaited:
// a process holding 10k sockets takes a while to die, and killing them one after
// another would instead herd each dead gateway's clients onto the ones still up (a
// cascade, not a storm).
func (r *runner) storm(ctx context.Context) error {
	r.mu.Lock()
	n := r.gateways
	r.mu.Unlock()
	var dying []*proc
	for i := 1; i <= n; i++ {
		if p := r.live(fmt.Sprintf("gw-%d", i)); p != nil && p.alive() {
			p.expect("fault")
			p.signal(syscall.SIGKILL)
			dying = append(dying, p)
		}
	}
	for _, p := range dying {
		<-p.exited
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Go(func() { _, errs[i-1] = r.startGateway(ctx, i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// killFault SIGKILLs a process. A Redis primary's kill (redis-primary names the
// current one) lasts until its failover completed, which is then the fault's end
// (its heal); detail says which server died and which took over.
func (r *runner) killFault(ctx context.Context, name string) (end time.Time, detail string, err error) {
	if name, err = r.resolveRedis(ctx, name); err != nil {
		return time.Time{}, "", err
	}
	s, isRedis := r.redis.spec(name)
	failover := isRedis && s.role == "redis" && r.redis.mode != scenario.RedisSingle && isPrimary(ctx, s.addr)
	if err := r.kill(name); err != nil {
		return time.Time{}, "", err
	}
	if !failover {
		return time.Time{}, "", nil
	}
	end, how, err := r.awaitFailover(ctx, s, 60*time.Second)
	if err != nil {
		return time.Time{}, name + " (primary) killed", err
	}
	return end, fmt.Sprintf("%s (primary) killed; %s", name, how), nil
}

// kill SIGKILLs a process (its exit is the fault's, not unexpected).
func (r *runner) kill(name string) error {
	p := r.live(name)
	if p == nil || !p.alive() {
		return fmt.Errorf("%s is not running", name)
	}
	p.expect("fault")
	p.signal(syscall.SIGKILL)
	<-p.exited
	return nil
}

// restart starts a process again as it was first started (killing it first if it
// still runs).
func (r *runner) restart(ctx context.Context, name string) error {
	if p := r.live(name); p != nil && p.alive() {
		r.kill(name)
	}
	if strings.HasPrefix(name, "gw-") {
		var i int
		fmt.Sscanf(name, "gw-%d", &i)
		_, err := r.startGateway(ctx, i)
		return err
	}
	specs := r.coreSpecs()
	if s, ok := r.redis.spec(name); ok {
		specs = []spec{s}
	}
	for _, s := range specs {
		if s.name == name {
			p, err := r.start(ctx, s)
			if err == nil {
				r.setLive(p)
			}
			return err
		}
	}
	return fmt.Errorf("unknown process %q", name)
}

// flood starts an extra agent with users beyond the plan's, connecting at the
// flood rate and sending nothing: more clients than the gateways admit.
func (r *runner) flood(ctx context.Context, f scenario.Fault, phase string) error {
	plan := planFor(r.sc, r.ipconfURL(), r.keyset.token)
	plan.Users = int(f.ConnectFlood)
	plan.UIDBase = uint64(r.sc.Clients.Count) + 1_000_000
	plan.ConnectRate = float64(f.FloodRate)
	plan.Traffic.Rate = 0
	plan.Behaviour = loadgen.Behaviour{}
	rest := time.Until(r.info.TrafficEnd)
	if rest < time.Second {
		return fmt.Errorf("no time left for a flood")
	}
	zero := 0.0
	plan.Phases = []loadgen.Phase{{Name: phase + "-flood", Duration: loadgen.Duration(rest), Rate: &zero}}
	path := r.dir + "/../.flood-" + r.net.Run + ".json"
	r.noteSecretFile(path)
	if err := writeJSON(path, plan); err != nil {
		return err
	}
	h := r.net.Host("cl-flood")
	p, err := r.start(ctx, spec{name: "agent-flood", role: "agent", host: h, bin: r.opts.Binary, args: []string{
		"loadgen", "-plan", path, "-name", "agent-flood", "-progress", "json", "-bind", h.Addr.String(), "-log-level", "warn"}})
	if err != nil {
		return err
	}
	r.readers.Go(func() { r.readAgent(p) })
	return nil
}

// autoscale follows control's recommendations between start and end: a scale-out
// recommendation starts gateways, up to the scenario's maximum.
func (r *runner) autoscale(ctx context.Context, start, end time.Time) {
	t := time.NewTicker(r.sc.Autoscale.Every.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if now.Before(start) {
				continue
			}
			if now.After(end) {
				return
			}
			r.followRecommendation(ctx)
		}
	}
}

// followRecommendation asks control for its recommendation and, for a
// scale-out, starts gateways up to its target, within the scenario's maximum,
// and records that it did.
func (r *runner) followRecommendation(ctx context.Context) {
	var rec struct {
		Action string `json:"action"`
		Target int    `json:"target"`
		Reason string `json:"reason"`
	}
	if err := getJSON(ctx, r.controlURL()+"/v1/recommendation", &rec); err != nil || rec.Action != "scale_out" {
		return
	}
	r.mu.Lock()
	have := r.gateways
	r.mu.Unlock()
	want := min(rec.Target, r.sc.Autoscale.Max)
	for i := have + 1; i <= want; i++ {
		if _, err := r.startGateway(ctx, i); err != nil {
			r.log.Warn("autoscale: starting a gateway failed", "gateway", i, "err", err)
			break
		}
	}
	if want > have {
		r.mu.Lock()
		r.info.Events = append(r.info.Events, runfolder.RunEvent{At: time.Now(), Kind: "autoscale",
			Detail: fmt.Sprintf("control recommended %d gateways (%s); started gw-%d…gw-%d", rec.Target, rec.Reason, have+1, want)})
		r.mu.Unlock()
	}
}
