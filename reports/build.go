package reports

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
)

// Options adjust Build.
type Options struct {
	// Baseline is a run folder or a summary.json whose latency distributions are
	// overlaid on this run's plots; empty: none.
	Baseline string
	// NoPlots skips drawing the PNGs (the slow part); index.html and report.md
	// then have tables only.
	NoPlots bool
	Logger  *slog.Logger // nil: no logging
}

// Build reads the run folder runDir, decides the verdict and writes every derived
// file into it: summary.json, report.md, index.html with its PNG plots,
// junit.xml and a merged <tag>.hlog per SLI. It returns the summary; an error
// means the folder could not be read or a file not written (a harness error).
func Build(runDir string) (*Summary, error) { return BuildWith(runDir, Options{}) }

// BuildWith is Build with options.
func BuildWith(runDir string, opts Options) (*Summary, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, err := loadRun(runDir, log)
	if err != nil {
		return nil, err
	}
	a := analyse(r)
	sum := a.summarise()
	var base *baseline
	if opts.Baseline != "" {
		if base, err = loadBaseline(opts.Baseline); err != nil {
			return nil, err
		}
		sum.Baseline = opts.Baseline
	}
	files, err := a.writeMergedLogs()
	if err != nil {
		return nil, err
	}
	var plots []plotFile
	if !opts.NoPlots {
		if plots, err = a.writePlots(sum, base); err != nil {
			return nil, err
		}
	}
	for _, p := range plots {
		files = append(files, p.File)
	}
	files = append(files, FileReport, FileHTML, FileJUnit, FileSummary)
	sum.Files = files
	plan, err := readCapacity(runDir)
	if err != nil {
		return nil, err
	}
	doc := buildDocument(reportInput{s: sum, plots: plots, alerts: r.alerts, zero: a.s.tl.zero, capacity: plan})
	if err := writeFile(filepath.Join(runDir, FileReport), []byte(renderMarkdown(doc))); err != nil {
		return nil, err
	}
	page, err := renderHTML(doc)
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(runDir, FileHTML), page); err != nil {
		return nil, err
	}
	junit, err := junitXML(sum)
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(runDir, FileJUnit), junit); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(runDir, FileSummary), append(b, '\n')); err != nil {
		return nil, err
	}
	log.Info("report written", "dir", runDir, "verdict", sum.Verdict, "gates", len(sum.Gates))
	return sum, nil
}

// writeFile writes a derived file whole, through a temporary file, so a reader
// never sees half of one.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeMergedLogs writes <tag>.hlog for every tag with samples.
func (a *analysis) writeMergedLogs() ([]string, error) {
	var files []string
	for _, tag := range loadgen.Tags {
		if a.latency(tag, a.whole).count() == 0 {
			continue
		}
		name := tag + ".hlog"
		if err := writeMergedHlog(filepath.Join(a.r.dir, name), tag, a.s.timed(tag)); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	return files, nil
}

// summarise computes the summary: figures, gates, verdict.
func (a *analysis) summarise() *Summary {
	info, sc := a.r.info, a.r.scenario
	s := &Summary{
		Version: SummaryVersion, Scenario: info.Scenario, Seed: info.Seed, Mode: string(info.Mode),
		HarnessError: info.HarnessError, Commit: info.Commit,
		LatencyUS: map[string]Latency{}, Faults: a.faultSummaries(), Events: info.Events, Alerts: len(a.r.alerts),
	}
	if s.Scenario == "" {
		s.Scenario = sc.Name
	}
	s.BeforeTrafficUS = map[string]Latency{}
	pre := scope{hi: a.s.tl.n}
	if len(a.phases) > 0 {
		pre.hi = a.phases[0].lo
	}
	for _, tag := range loadgen.Tags {
		s.LatencyUS[tag] = a.latency(tag, a.whole).latency()
		s.BeforeTrafficUS[tag] = a.latency(tag, pre).latency()
	}
	s.PushLatencyUS = s.LatencyUS[loadgen.TagPush]
	s.ReconnectMS = millis(s.LatencyUS[loadgen.TagReconnect])
	s.ConnectMS = millis(s.LatencyUS[loadgen.TagConnect])
	lag, hic := s.LatencyUS[loadgen.TagLag], s.LatencyUS[loadgen.TagHiccup]
	s.Generator = Generator{LagP999US: lag.P999, LagMaxUS: lag.Max, LagSamples: lag.Count, HiccupMaxUS: hic.Max}
	s.Connections = Connections{Target: info.Clients, Kicks: map[string]uint64{},
		EstablishedInitially: info.Connecting.Established}
	if w := info.Connecting; !w.Start.IsZero() && w.End.After(w.Start) {
		s.Connections.EstablishS = w.End.Sub(w.Start).Seconds()
	}
	if s.Connections.Target == 0 {
		s.Connections.Target = int64(sc.Clients.Count)
	}
	for _, ag := range a.r.agents {
		if res := ag.result; res != nil {
			s.Generator.Clamped += res.Clamped
			s.Connections.Disconnects += res.Disconnects
			s.Connections.ConnectFailures += res.ConnectFailures
			s.Connections.WebSocketUsers += res.WebSocketUsers
			s.Connections.WebSocketConns += res.WebSocketConns
			s.Connections.WebSocketRefused += res.WebSocketRefused
			for k, v := range res.Kicks {
				s.Connections.Kicks[k] += v
			}
		}
	}
	if t, ok := a.counts(a.whole); ok {
		s.Messages = messages(t.msgs)
		s.Connections.Established, s.Connections.Reconnects = t.established, t.reconnects
		s.Connections.Relogins, s.Connections.ReplaceLate, s.Connections.ReplacedUnexpected = t.msgs.Relogins, t.msgs.ReplaceLate, t.msgs.ReplacedUnexpected
	}
	s.Connections.PeakEstablished, s.Connections.PeakExact, _ = a.peakEstablished(a.whole)
	s.Hostile, _, _ = a.hostileFigures()
	s.PushByGateway, _ = a.gatewayPush()
	s.Redis = a.redisFigures()
	s.Processes = a.processes()
	s.Gateway = a.gatewayFigures()
	for _, p := range s.Processes {
		if p.Role != "agent" {
			s.Efficiency.SystemCPUSecs += p.CPUSecs
		}
	}
	if s.Messages.Delivered > 0 {
		v := s.Efficiency.SystemCPUSecs / float64(s.Messages.Delivered) * 1e6
		s.Efficiency.CPUUSPerMsg = &v
	}
	s.Phases = a.phaseSummaries()
	a.addCPU(s)
	a.addTrace(s)
	s.Profiles = info.Profiles
	s.Gates = a.evalGates()
	s.Run = a.runMeta()
	if !info.TrafficStart.IsZero() && info.TrafficEnd.After(info.TrafficStart) {
		s.DurationS = info.TrafficEnd.Sub(info.TrafficStart).Seconds()
	} else {
		for _, ph := range info.Phases {
			s.DurationS += ph.End.Sub(ph.Start).Seconds()
		}
	}
	if !info.Started.IsZero() && info.Ended.After(info.Started) {
		s.RunDurationS = info.Ended.Sub(info.Started).Seconds()
	}
	s.Knee = a.knee(s.Phases)
	s.InvalidReasons = a.invalidReasons(lag, hic, s.PushLatencyUS, s.Knee)
	s.Verdict = verdict(s.HarnessError, s.InvalidReasons, s.Gates)
	s.ExitCode = ExitCode(s.Verdict)
	s.Caveats = a.caveats(s)
	return s
}

// messages converts the agents' counts.
func messages(c loadgen.Counts) Messages {
	return Messages{Sent: c.Sent, Acked: c.Acked, Delivered: c.Delivered, Lost: c.Lost, LostSlow: c.LostSlow, Failed: c.Failed, Late: c.Late,
		Duplicates: c.Duplicates, OutOfOrder: c.OutOfOrder, Evicted: c.Evicted, Skipped: c.Skipped, Overflow: c.Overflow,
		Redelivered: c.Redelivered, Stale: c.Stale, Phantom: c.Phantom, Misdelivered: c.Misdelivered, Retried: c.Retried}
}

// processes folds each process name's incarnations and resource samples.
func (a *analysis) processes() []Process {
	byName := map[string]*Process{}
	var order []string
	get := func(name, role string) *Process {
		p, ok := byName[name]
		if !ok {
			p = &Process{Name: name, Role: role}
			byName[name] = p
			order = append(order, name)
		}
		if p.Role == "" {
			p.Role = role
		}
		return p
	}
	for _, pi := range a.r.info.Processes {
		p := get(pi.Name, pi.Role)
		p.Incarnations++
		p.ExitCause = pi.ExitCause
	}
	cpu := map[string][]point{}
	for _, ps := range a.r.procs {
		p := get(ps.Process, ps.Role)
		p.PeakRSSBytes = max(p.PeakRSSBytes, ps.RSSBytes)
		cpu[ps.Process] = append(cpu[ps.Process], point{ps.T, ps.CPUSecs})
	}
	out := make([]Process, 0, len(order))
	for _, name := range order {
		p := byName[name]
		p.CPUSecs, _ = increase(cpu[name], a.restarts[name], time.Time{}, time.Time{})
		out = append(out, *p)
	}
	return out
}

// gatewayFigures measures the gateway counters and memory over the whole run.
func (a *analysis) gatewayFigures() GatewayFigures {
	var g GatewayFigures
	opt := func(v float64, ok bool) *float64 {
		if !ok {
			return nil
		}
		return &v
	}
	g.RejectedBusy = opt(a.gatewayCounter(selector{metricRejected, map[string]string{"reason": "busy"}}, a.whole))
	g.KicksSlow = opt(a.gatewayCounter(selector{metricKicks, map[string]string{"reason": "SLOW"}}, a.whole))
	peakRSS, perConn, okRSS, okPer := a.gatewayMemory(a.whole)
	g.PeakRSSBytes, g.RSSPerConnBytes = opt(peakRSS, okRSS), opt(perConn, okPer)
	var conns float64
	var any bool
	for proc, pts := range perProcess(a.r.metrics, selector{name: metricConns}) {
		if v, ok := peak(pts, time.Time{}, time.Time{}); ok && a.isGateway(proc) {
			conns, any = conns+v, true
		}
	}
	g.PeakConnections = opt(conns, any)
	return g
}

// phaseSummaries computes each phase's figures.
func (a *analysis) phaseSummaries() []PhaseSummary {
	out := make([]PhaseSummary, 0, len(a.phases))
	for i, sc := range a.phases {
		w := a.r.info.Phases[i]
		ps := PhaseSummary{Name: sc.phase, StartS: a.s.tl.rel(w.Start), DurationS: w.End.Sub(w.Start).Seconds(),
			LatencyUS: map[string]Latency{}}
		for _, tag := range loadgen.Tags {
			ps.LatencyUS[tag] = a.latency(tag, sc).latency()
		}
		ps.PushLatencyUS = ps.LatencyUS[loadgen.TagPush]
		if t, ok := a.counts(sc); ok {
			m := messages(t.msgs)
			ps.Messages = &m
			if ps.DurationS > 0 {
				ps.DeliveredPerSec = float64(m.Delivered) / ps.DurationS
				ps.SentPerSec = float64(m.Sent) / ps.DurationS
			}
		}
		ps.PeakEstablished, _, _ = a.peakEstablished(sc)
		out = append(out, ps)
	}
	return out
}

// runMeta copies where and how the run ran.
func (a *analysis) runMeta() RunMeta {
	info, v := a.r.info, a.r.scenario.Validity
	m := RunMeta{
		ScenarioHash: info.ScenarioHash, Kernel: info.Kernel, CPUs: info.CPUs, GoVersion: info.GoVersion,
		NofileHard: info.NofileHard, Agents: info.Agents, Clients: info.Clients, Started: info.Started,
		TrafficStart: info.TrafficStart, TrafficEnd: info.TrafficEnd, Ended: info.Ended, Interrupted: info.Interrupted,
		MaxLagUS: v.MaxLag.D().Microseconds(), MaxHiccupUS: v.MaxHiccup.D().Microseconds(), MinSamples: int64(v.MinSamples),
	}
	for _, c := range info.Preflight {
		if !c.OK {
			m.PreflightFailed = append(m.PreflightFailed, fmt.Sprintf("%s = %s", c.Name, c.Value))
		}
	}
	return m
}

// caveats are the reasons to read the figures with care: the runner's, problems
// met reading the folder, and what this harness always implies.
func (a *analysis) caveats(s *Summary) []string {
	out := slices.Clone(a.r.info.Caveats)
	add := func(c string) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	for _, n := range a.r.notes {
		add(n)
	}
	switch s.Mode {
	case "netns":
		add("netns mode: hosts are network namespaces on one bridge, joined by veth pairs, which have no NIC offloads and no wire latency; per-packet costs differ from real NICs.")
	case "loopback":
		add("loopback mode: every host shares the root network namespace on distinct 127.x addresses; there is no network between them.")
	}
	if s.Mode != string(runfolder.ModeDistributed) { // a collected run's agents ran elsewhere
		add(fmt.Sprintf("The load generator (%d agent processes) and the system under test share this machine's %d CPUs: a busy generator shows up as system latency, and the reverse.",
			a.r.info.Agents, a.r.info.CPUs))
	}
	add("Per-phase figures are attributed by when a sample was recorded: a message lost in one phase is recorded at its deadline, possibly in the next phase; the last phase includes the wait for the final deadlines.")
	if k := s.Knee; k != nil && len(k.Steps) > 0 {
		add(fmt.Sprintf("A knee run: its validity rests on the steps through %s. The whole run's generator lag p99.9 (%s) and largest agent stall (%s), the connect ramp and the steps past the knee included, are shown but not judged.",
			k.JudgedThrough, fmtUS(float64(s.Generator.LagP999US)), fmtUS(float64(s.Generator.HiccupMaxUS))))
	}
	if s.Messages.Failed > 0 {
		add(fmt.Sprintf("%d messages failed (never acknowledged by the server): they are counted, but carry no latency sample.", s.Messages.Failed))
	}
	if s.Generator.Clamped > 0 {
		add(fmt.Sprintf("%d latency values exceeded the histograms' 1 h range and were recorded at 1 h.", s.Generator.Clamped))
	}
	var dropped int64
	for _, tag := range loadgen.Tags {
		dropped += a.latency(tag, a.whole).dropped
	}
	if dropped > 0 {
		add(fmt.Sprintf("%d samples could not be merged (an agent used another histogram range).", dropped))
	}
	return out
}
