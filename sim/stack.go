package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
)

// startCore starts the core services: Redis first if a backend needs it (on the
// core host or on hosts of its own), then state, router, msg, ipconf and control.
func (r *runner) startCore(ctx context.Context) error {
	if err := r.startRedis(ctx); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	for _, s := range r.coreSpecs() {
		p, err := r.start(ctx, s)
		if err != nil {
			return err
		}
		r.setLive(p)
	}
	return nil
}

// coreSpecs are the core services, in start order.
func (r *runner) coreSpecs() []spec {
	sc, core := r.sc, r.net.Host("core")
	bin := r.opts.Binary
	at := func(port int) string { return hostPort(core, port) }
	// Each service gets its own key prefix in the shared Redis: state and msg both
	// keep a key named "<prefix>epoch" (state's lease counter, msg's store
	// incarnation), and under one prefix every lease state issued would change
	// msg's incarnation.
	backend := func(kind, service string) []string {
		if strings.HasPrefix(kind, "redis") {
			return append([]string{"-backend", kind, "-redis-prefix", redisPrefix(r.net.Run, service)}, r.redis.clientArgs()...)
		}
		return []string{"-backend", "memory"}
	}
	log := []string{"-log-level", "warn"}
	msgArgs := append([]string{"msg", "-listen", at(portMsg), "-admin", at(portMsgAdmin), "-router", at(portRouter)},
		backend(sc.Topology.Backend.Msg, "msg")...)
	if sc.Components.Msg.Inbox > 0 {
		msgArgs = append(msgArgs, "-inbox", fmt.Sprint(sc.Components.Msg.Inbox))
	}
	ipArgs := []string{"ipconf", "-listen", at(portIpconf), "-admin", at(portIpconfAdmin), "-state", at(portState), "-poll", "200ms"}
	if k := sc.Components.Ipconf.TopK; k > 0 {
		ipArgs = append(ipArgs, "-top-k", fmt.Sprint(k))
	}
	if f := sc.Components.Ipconf.Freeze; f > 0 {
		ipArgs = append(ipArgs, "-freeze", f.String())
	}
	if h := sc.Clients.Heartbeat; h > 0 {
		ipArgs = append(ipArgs, "-heartbeat", h.String())
	}
	if b := sc.Clients.Reconnect.Base; b > 0 {
		ipArgs = append(ipArgs, "-backoff-base", b.String())
	}
	if m := sc.Clients.Reconnect.Max; m > 0 {
		ipArgs = append(ipArgs, "-backoff-max", m.String())
	}
	ctlArgs := []string{"control", "-listen", at(portControl), "-admin", at(portControlAdmin), "-state", at(portState), "-poll", "200ms"}
	if f := sc.Components.Control.SoftLimit; f > 0 {
		ctlArgs = append(ctlArgs, "-soft-fraction", fmt.Sprint(float64(f)))
	}
	return []spec{
		{name: "state", role: "state", host: core, bin: bin, ready: true, addr: at(portState), admin: at(portStateAdmin),
			args: append(append([]string{"state", "-listen", at(portState), "-admin", at(portStateAdmin)}, backend(sc.Topology.Backend.State, "state")...), log...)},
		{name: "router", role: "router", host: core, bin: bin, ready: true, addr: at(portRouter), admin: at(portRouterAdmin),
			args: append([]string{"router", "-listen", at(portRouter), "-admin", at(portRouterAdmin), "-state", at(portState)}, log...)},
		{name: "msg", role: "msg", host: core, bin: bin, ready: true, addr: at(portMsg), admin: at(portMsgAdmin), args: append(msgArgs, log...)},
		{name: "ipconf", role: "ipconf", host: core, bin: bin, ready: true, addr: at(portIpconf), admin: at(portIpconfAdmin), args: append(ipArgs, log...)},
		{name: "control", role: "control", host: core, bin: bin, ready: true, addr: at(portControl), admin: at(portControlAdmin), args: append(ctlArgs, log...)},
	}
}

// redisPrefix is a service's key prefix in the run's Redis.
func redisPrefix(run, service string) string { return "fg-" + run + ":" + service + ":" }

// gatewaySpec is gateway i's process.
func (r *runner) gatewaySpec(i int) spec {
	sc := r.sc
	h := r.net.Host(fmt.Sprintf("gw-%d", i))
	core := r.net.Host("core")
	g := sc.Components.Gateway
	args := []string{"gateway", "-id", h.Name, "-listen", hostPort(h, portGateway), "-admin", hostPort(h, portGatewayAdmin),
		"-link", hostPort(h, portGatewayLink), "-state", hostPort(core, portState), "-msg", hostPort(core, portMsg),
		"-ws-listen", hostPort(h, portGatewayWS), "-log-level", "warn"}
	opt := func(flag string, set bool, v string) {
		if set {
			args = append(args, flag, v)
		}
	}
	opt("-max-conns", g.MaxConns > 0, fmt.Sprint(int64(g.MaxConns)))
	opt("-epollers", g.Epollers > 0, fmt.Sprint(g.Epollers))
	opt("-workers", g.Workers > 0, fmt.Sprint(g.Workers))
	opt("-accept-rate", g.AcceptRate > 0, fmt.Sprint(float64(g.AcceptRate)))
	opt("-idle-timeout", g.IdleTimeout > 0, g.IdleTimeout.String())
	hb := g.Heartbeat
	if hb == 0 {
		hb = sc.Clients.Heartbeat
	}
	opt("-heartbeat", hb > 0, hb.String())
	opt("-write-high-water", g.WriteHighWater > 0, g.WriteHighWater.String())
	opt("-write-hard-cap", g.WriteHardCap > 0, g.WriteHardCap.String())
	opt("-sndbuf", g.Sndbuf > 0, g.Sndbuf.String())
	opt("-lease-ttl", g.LeaseTTL > 0, g.LeaseTTL.String())
	return spec{name: h.Name, role: "gateway", host: h, bin: r.opts.Binary, ready: true,
		addr: hostPort(h, portGateway), admin: hostPort(h, portGatewayAdmin), args: args}
}

// startGateway starts gateway i (or restarts it).
func (r *runner) startGateway(ctx context.Context, i int) (*proc, error) {
	p, err := r.start(ctx, r.gatewaySpec(i))
	if err != nil {
		return nil, err
	}
	r.setLive(p)
	r.mu.Lock()
	r.gateways = max(r.gateways, i)
	r.mu.Unlock()
	return p, nil
}

// noteSecretFile records a file holding the run's keys, outside the run folder,
// for teardown to remove.
func (r *runner) noteSecretFile(path string) {
	r.mu.Lock()
	r.secretFiles = append(r.secretFiles, path)
	r.mu.Unlock()
}

func (r *runner) setLive(p *proc) {
	r.mu.Lock()
	r.byName[p.name] = p
	r.mu.Unlock()
}

func (r *runner) live(name string) *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byName[name]
}

// redisDir is Redis's scratch folder for the run (its append-only file).
func (r *runner) redisDir() string {
	return filepath.Join(os.TempDir(), "floodgate-redis-"+r.net.Run)
}

func (r *runner) ipconfURL() string { return "http://" + hostPort(r.net.Host("core"), portIpconf) }

func (r *runner) controlURL() string { return "http://" + hostPort(r.net.Host("core"), portControl) }

// waitAdvertised waits until ipconf advertises n gateways: the stack is healthy.
func (r *runner) waitAdvertised(ctx context.Context, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		gl, err := client.Discover(ctx, nil, r.ipconfURL(), 1)
		if err == nil && len(gl.Gateways) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ipconf does not advertise %d gateways after 60s (last: %d, %v)", n, len(gl.Gateways), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startAgents writes the plan and starts one agent per client host, each running
// its segment of the plan and waiting for the start signal.
func (r *runner) startAgents(ctx context.Context) ([]*proc, error) {
	sc := r.sc
	plan := planFor(sc, r.ipconfURL(), r.keyset.token)
	planPath := filepath.Join(r.dir, runfolder.FilePlan)
	pub := plan
	pub.Secret = "(redacted)"
	if err := writeJSON(planPath, pub); err != nil {
		return nil, err
	}
	// The agents read the real token key (they mint their users' tokens) from a
	// file outside the run folder.
	secretPlan := filepath.Join(os.TempDir(), "floodgate-plan-"+r.net.Run+".json")
	r.noteSecretFile(secretPlan)
	if err := writeJSON(secretPlan, plan); err != nil {
		return nil, err
	}
	var agents []*proc
	for i := 0; i < sc.Topology.Agents; i++ {
		h := r.net.Host(fmt.Sprintf("cl-%d", i))
		name := fmt.Sprintf("agent-%d", i)
		s := spec{name: name, role: "agent", host: h, bin: r.opts.Binary, args: []string{
			"loadgen", "-plan", secretPlan, "-segment", fmt.Sprintf("%d/%d", i, sc.Topology.Agents), "-name", name,
			"-out", filepath.Join(r.dir, runfolder.DirHlog), "-progress", "json", "-wait-start",
			"-bind", h.Addr.String(), "-log-level", "warn"}}
		if i == 0 && r.opts.Profile != nil {
			// The first agent stands for them all in the profiles (they run one plan).
			s.admin = hostPort(h, portAgentAdmin)
			s.args = append(s.args, "-admin", s.admin)
		}
		p, err := r.start(ctx, s)
		if err != nil {
			return nil, err
		}
		r.setLive(p)
		agents = append(agents, p)
		r.readers.Go(func() { r.readAgent(p) })
	}
	time.AfterFunc(30*time.Second, func() { os.Remove(secretPlan) }) // read by then; teardown removes it otherwise
	return agents, nil
}

// agentLine is one JSON line an agent prints.
type agentLine struct {
	Event string `json:"event"`
	loadgen.Snapshot
	Result *loadgen.Result `json:"result"`
}

// readAgent records an agent's progress lines.
func (r *runner) readAgent(p *proc) {
	f, err := os.OpenFile(filepath.Join(r.dir, runfolder.FileProgress), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	defer w.Flush()
	for line := range p.lines {
		var l agentLine
		if json.Unmarshal([]byte(line), &l) != nil || l.Event != "progress" {
			continue
		}
		r.mu.Lock()
		r.snaps[p.name] = l.Snapshot
		r.mu.Unlock()
		b, _ := json.Marshal(runfolder.ProgressSample{T: time.Now(), Snapshot: l.Snapshot})
		w.Write(append(b, '\n'))
		w.Flush()
	}
}

// connectStall is how long the connecting may go without a client more before
// the traffic starts anyway.
const connectStall = 20 * time.Second

// waitEstablished waits until every agent has connected its users (or its connect
// phase has clearly stalled), so that traffic starts on a settled population. It
// returns how many are logged in.
func (r *runner) waitEstablished(ctx context.Context, agents []*proc) (int64, error) {
	sc := r.sc
	budget := 60 * time.Second
	if rate := float64(sc.Clients.ConnectRate); rate > 0 {
		budget += time.Duration(float64(sc.Clients.Count) / rate * float64(time.Second) * 2)
	}
	deadline := r.clock.Now().Add(budget)
	lastGain, lastActive := r.clock.Now(), int64(-1)
	for {
		var active int64
		r.mu.Lock()
		for _, s := range r.snaps {
			active += int64(s.Active)
		}
		r.mu.Unlock()
		if active > lastActive {
			lastActive, lastGain = active, r.clock.Now()
		}
		r.noteProgress()
		if active >= sc.InitialClients() {
			r.log.Info("all clients established", "clients", active)
			return active, nil
		}
		for _, a := range agents {
			if !a.alive() {
				return active, fmt.Errorf("agent %s exited while connecting; see logs/%s.log", a.name, a.name)
			}
		}
		if now := r.clock.Now(); now.After(deadline) || now.Sub(lastGain) > connectStall {
			r.log.Warn("starting traffic before every client connected", "established", active, "clients", sc.Clients.Count)
			r.mu.Lock()
			r.info.Events = append(r.info.Events, runfolder.RunEvent{At: r.clock.Now(), Kind: "harness",
				Detail: fmt.Sprintf("traffic started with %d of %d clients established (connecting stalled or took over %v)", active, sc.InitialClients(), budget)})
			r.mu.Unlock()
			return active, nil
		}
		select {
		case <-ctx.Done():
			return active, ctx.Err()
		case <-r.clock.After(200 * time.Millisecond):
		}
	}
}

// waitTCP waits until something listens at addr.
func waitTCP(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		var dl net.Dialer
		if c, err := dl.DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			return nil
		} else if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// getJSON fetches a JSON document.
func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// postControl posts body as JSON to control's path, with the run's admin token
// (control's mutating endpoints refuse requests without it).
func (r *runner) postControl(ctx context.Context, path string, body any) (map[string]any, error) {
	b, _ := json.Marshal(body)
	url := r.controlURL() + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(b)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.keyset.admin)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("%s: %s: %v", url, resp.Status, out["error"])
	}
	return out, nil
}
