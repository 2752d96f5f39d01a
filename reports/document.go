package reports

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
)

// document is a report in a neutral form, rendered both as report.md and as
// index.html so that the two always say the same thing in the same order.
type document struct {
	Title    string
	Verdict  string // pass, fail, invalid, error
	Headline string // one line: why this verdict
	Reasons  []string
	Sections []section
}

// section is one part of the report.
type section struct {
	ID, Title string
	Paras     []string
	Bullets   []string
	Tables    []table
	Plots     []plotFile
}

// table is a table of preformatted cells. Status, when set, marks each row
// pass or fail (rendered as a symbol and a colour).
type table struct {
	Caption string
	Head    []string
	Rows    [][]string
	Status  []string // "pass", "fail" or "" per row
}

// Align returns each column's alignment, "num" (right) for columns whose every
// cell reads as a figure, "txt" (left) otherwise.
func (t table) Align() []string {
	out := make([]string, len(t.Head))
	for j := range out {
		out[j] = "num"
		for _, row := range t.Rows {
			if j < len(row) && !looksNumeric(row[j]) {
				out[j] = "txt"
				break
			}
		}
	}
	return out
}

// looksNumeric reports whether a cell is a figure ("1,234", "+4.0 s", "12 ms",
// "—", "< 100 ms").
func looksNumeric(s string) bool {
	s = strings.TrimLeft(strings.TrimSpace(s), "+-<>=!≤≥ ")
	if s == "" || s == "—" {
		return true
	}
	return s[0] >= '0' && s[0] <= '9'
}

// reportInput is what a report is made from.
type reportInput struct {
	s        *Summary
	plots    []plotFile
	alerts   []runfolder.AlertEvent
	zero     time.Time // the traffic start: times are shown relative to it
	capacity *CapacityPlan
}

// rel prints a time relative to the traffic start.
func (in reportInput) rel(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return fmt.Sprintf("%+.1f s", t.Sub(in.zero).Seconds())
}

// plotsNamed returns the plots whose file names start with prefix.
func (in reportInput) plotsNamed(prefix string) []plotFile {
	var out []plotFile
	for _, p := range in.plots {
		if strings.HasPrefix(p.File, prefix) {
			out = append(out, p)
		}
	}
	return out
}

// buildDocument lays out the report: the verdict and gate table first, then run
// metadata, latency per phase, delivery accounting, connections (reconnect and
// connect times), resources, faults, alerts, events and caveats.
func buildDocument(in reportInput) document {
	s := in.s
	d := document{Title: fmt.Sprintf("Floodgate run: %s", s.Scenario), Verdict: s.Verdict, Reasons: s.InvalidReasons}
	failed := 0
	for _, g := range s.Gates {
		if !g.Pass {
			failed++
		}
	}
	switch s.Verdict {
	case VerdictPass:
		d.Headline = fmt.Sprintf("All %d gates passed on a valid run.", len(s.Gates))
	case VerdictFail:
		d.Headline = fmt.Sprintf("%d of %d gates failed.", failed, len(s.Gates))
	case VerdictInvalid:
		d.Headline = "The run is invalid: its measurements cannot be trusted, so its gates decide nothing."
	default:
		d.Headline = "The harness failed: " + s.HarnessError
	}
	d.Headline += fmt.Sprintf(" Push p99 %s over %s samples; %s. Exit code %d.",
		fmtUS(float64(s.PushLatencyUS.P99)), fmtCount(float64(s.PushLatencyUS.Count)), lossText(s.Messages), s.ExitCode)
	if k := kneeText(s.Knee); k != "" {
		d.Headline += " " + strings.ToUpper(k[:1]) + k[1:] + "."
	}
	d.Sections = append(d.Sections, gateSection(s))
	if k := kneeSection(s.Knee); k != nil {
		d.Sections = append(d.Sections, *k)
	}
	d.Sections = append(d.Sections, metaSection(s), latencySection(in))
	if t := traceSection(s); t != nil {
		d.Sections = append(d.Sections, *t)
	}
	if c := cpuSection(s); c != nil {
		d.Sections = append(d.Sections, *c)
	}
	if g := gatewayPushSection(s); g != nil {
		d.Sections = append(d.Sections, *g)
	}
	d.Sections = append(d.Sections, accountingSection(s), connectionSection(in))
	if h := hostileSection(s); h != nil {
		d.Sections = append(d.Sections, *h)
	}
	d.Sections = append(d.Sections, resourceSection(in))
	if r := redisSection(s); r != nil {
		d.Sections = append(d.Sections, *r)
	}
	if p := profileSection(s); p != nil {
		d.Sections = append(d.Sections, *p)
	}
	d.Sections = append(d.Sections, faultSection(in), alertSection(in), eventSection(in), caveatSection(s))
	if in.capacity != nil {
		d.Sections = append(d.Sections, capacitySection(in.capacity))
	}
	return d
}

func gateSection(s *Summary) section {
	t := table{Head: []string{"", "gate", "scope", "measured", "limit", "note"}}
	for _, g := range s.Gates {
		scope := "whole run"
		if g.Phase != "" {
			scope = "phase " + g.Phase
		}
		if g.WorstS > 0 {
			scope += fmt.Sprintf(", worst %gs window", g.WorstS)
			if g.WorstAtS != nil {
				scope += fmt.Sprintf(" (at %+.0f s)", *g.WorstAtS)
			}
		}
		measured := "not measured"
		if g.Value != nil {
			measured = fmtValue(*g.Value, g.Unit)
		}
		status := "fail"
		if g.Pass {
			status = "pass"
		}
		t.Rows = append(t.Rows, []string{status, g.Name, scope, measured, g.Op + " " + fmtValue(g.Limit, g.Unit), g.Note})
		t.Status = append(t.Status, status)
	}
	sec := section{ID: "gates", Title: "Gates", Tables: []table{t}}
	if len(s.Gates) == 0 {
		sec.Paras = []string{"The scenario has no gates: the verdict rests on validity alone."}
	}
	return sec
}

func metaSection(s *Summary) section {
	r := s.Run
	commit := s.Commit
	if commit == "" {
		commit = "unknown"
	}
	rows := [][]string{
		{"scenario", s.Scenario},
		{"commit", commit},
		{"scenario sha256", r.ScenarioHash},
		{"seed", fmt.Sprint(s.Seed)},
		{"mode", s.Mode},
		{"kernel", r.Kernel},
		{"CPUs", fmt.Sprint(r.CPUs)},
		{"Go", r.GoVersion},
		{"per-process fd limit (hard)", fmtCount(float64(r.NofileHard))},
		{"agents / clients", fmt.Sprintf("%d / %s", r.Agents, fmtCount(float64(r.Clients)))},
		{"started (UTC)", r.Started.UTC().Format("2006-01-02 15:04:05")},
		{"traffic", fmt.Sprintf("%.0f s (whole run %.0f s)", s.DurationS, s.RunDurationS)},
		{"validity bounds", fmt.Sprintf("lag p99.9 ≤ %s, hiccup ≤ %s, ≥ %s push samples",
			fmtUS(float64(r.MaxLagUS)), fmtUS(float64(r.MaxHiccupUS)), fmtCount(float64(r.MinSamples)))},
		{"generator", fmt.Sprintf("lag p99.9 %s (max %s, %s samples), hiccup max %s",
			fmtUS(float64(s.Generator.LagP999US)), fmtUS(float64(s.Generator.LagMaxUS)),
			fmtCount(float64(s.Generator.LagSamples)), fmtUS(float64(s.Generator.HiccupMaxUS)))},
	}
	if r.Interrupted {
		rows = append(rows, []string{"interrupted", "yes"})
	}
	for _, f := range r.PreflightFailed {
		rows = append(rows, []string{"preflight not passed", f})
	}
	return section{ID: "run", Title: "Run", Tables: []table{{Head: []string{"", ""}, Rows: rows}}}
}

// latencyRow prints one percentile row in milliseconds.
func latencyRow(name string, l Latency) []string {
	if l.Count == 0 {
		return []string{name, "0", "—", "—", "—", "—", "—", "—"}
	}
	ms := func(us int64) string { return fmt.Sprintf("%.3f", float64(us)/1000) }
	return []string{name, fmtCount(float64(l.Count)), ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.P9999), ms(l.Max)}
}

func latencySection(in reportInput) section {
	s := in.s
	sec := section{ID: "latency", Title: "Latency per phase",
		Paras: []string{"Milliseconds; every agent's histograms merged (HdrHistogram, 3 significant digits). Push latency is receipt time minus the intended send time (coordinated omission corrected once, at the source); a lost message is a sample at its deadline."}}
	for _, tag := range loadgen.Tags {
		whole := s.LatencyUS[tag]
		if whole.Count == 0 || isTraceTag(tag) {
			continue
		}
		t := table{Caption: tagTitle(tag) + " (ms)", Head: []string{"scope", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max"}}
		t.Rows = append(t.Rows, latencyRow("whole run", whole))
		if pre := s.BeforeTrafficUS[tag]; pre.Count > 0 {
			t.Rows = append(t.Rows, latencyRow("before traffic", pre))
		}
		for _, ph := range s.Phases {
			t.Rows = append(t.Rows, latencyRow(ph.Name, ph.LatencyUS[tag]))
		}
		sec.Tables = append(sec.Tables, t)
	}
	sec.Plots = append(in.plotsNamed("latency_"), in.plotsNamed("timeline_")...)
	return sec
}

// countRow prints one row of the delivery accounting by identity.
func countRow(name string, m Messages) []string {
	c := func(v uint64) string { return fmtCount(float64(v)) }
	lost := c(m.Lost)
	if m.LostSlow > 0 {
		lost += " (" + c(m.LostSlow) + " slow)"
	}
	return []string{name, c(m.Sent), c(m.Acked), c(m.Delivered), lost, c(m.Failed), c(m.Late),
		c(m.Duplicates), c(m.Phantom), c(m.Misdelivered)}
}

// wireRow prints one row of what the receive rule and the senders' retries did.
func wireRow(name string, m Messages) []string {
	c := func(v uint64) string { return fmtCount(float64(v)) }
	return []string{name, c(m.Retried), c(m.Redelivered), c(m.OutOfOrder), c(m.Stale), c(m.Evicted), c(m.Skipped), c(m.Overflow)}
}

func accountingSection(s *Summary) section {
	t := table{Caption: "Messages, by identity (sender, client message id)",
		Head: []string{"scope", "sent", "acked", "delivered", "lost", "failed", "late", "duplicates", "phantom", "misdelivered"}}
	w := table{Caption: "Retries and the receive rule",
		Head: []string{"scope", "retried", "redelivered", "out of order", "stale", "evicted", "skipped", "overflow"}}
	t.Rows = append(t.Rows, countRow("whole run", s.Messages))
	w.Rows = append(w.Rows, wireRow("whole run", s.Messages))
	for _, ph := range s.Phases {
		if ph.Messages != nil {
			t.Rows = append(t.Rows, countRow(ph.Name, *ph.Messages))
			w.Rows = append(w.Rows, wireRow(ph.Name, *ph.Messages))
		}
	}
	return section{ID: "delivery", Title: "Delivery accounting", Tables: []table{t, w},
		Paras: []string{"Each message is counted by its identity, (sender, client message id). Delivered: its recipient received it within the deadline, once. Lost: acknowledged by the server, not delivered by the deadline (in brackets, those to slow readers). Failed: the client gave up: not acknowledged by the deadline, retries included. Late: delivered after the deadline (already counted lost or failed). Duplicates: handed to the app a second time (one message received under two seqs: stored twice). Phantom: received, never sent by an agent. Misdelivered: reached a user other than its recipient. The last three must be 0.",
			"Retried: SENDs written again with the same client message id (refused UNAVAILABLE or RATE_LIMITED, or unanswered when a connection ended). Redelivered: pushes the receive rule dropped as already held (replays; harmless). Out of order: pushes held back behind a gap. Stale: pushes of a store incarnation older than the retired one. Evicted: no longer held by the server at SYNC. Skipped: send slots with no sender online. Overflow: ended early because the agent's ledger was full."}}
}

func millisRow(name string, m MillisStats) []string {
	if m.Count == 0 {
		return []string{name, "0", "—", "—", "—", "—", "—"}
	}
	f := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	return []string{name, fmtCount(float64(m.Count)), f(m.P50), f(m.P90), f(m.P99), f(m.P999), f(m.Max)}
}

func connectionSection(in reportInput) section {
	s := in.s
	c := s.Connections
	peak := fmtCount(float64(c.PeakEstablished))
	if !c.PeakExact {
		peak += " (upper bound: the sum of each agent's own peak)"
	}
	kicks := []string{}
	for _, k := range sortedKeys(c.Kicks) {
		kicks = append(kicks, fmt.Sprintf("%s %s", k, fmtCount(float64(c.Kicks[k]))))
	}
	rows := [][]string{
		{"target clients", fmtCount(float64(c.Target))},
		{"peak logged in", peak},
		{"first logins", fmtCount(float64(c.Established))},
		{"initial population logged in", establishText(c)},
		{"reconnects", fmtCount(float64(c.Reconnects))},
		{"disconnects", fmtCount(float64(c.Disconnects))},
		{"failed connection attempts", fmtCount(float64(c.ConnectFailures))},
		{"kicks received", cmp.Or(strings.Join(kicks, ", "), "none")},
	}
	if c.WebSocketUsers > 0 {
		rows = append(rows, []string{"WebSocket clients (upgraded connections, refused handshakes)",
			fmt.Sprintf("%s of %s (%s, %s)", fmtCount(float64(c.WebSocketUsers)), fmtCount(float64(c.Target)),
				fmtCount(float64(c.WebSocketConns)), fmtCount(float64(c.WebSocketRefused)))})
	}
	if c.Relogins > 0 || c.ReplacedUnexpected > 0 {
		rows = append(rows,
			[]string{"relogins (second login on another gateway)", fmtCount(float64(c.Relogins))},
			[]string{"old session not kicked REPLACED within 1 s", fmtCount(float64(c.ReplaceLate))},
			[]string{"KICK REPLACED nobody asked for", fmtCount(float64(c.ReplacedUnexpected))})
	}
	dist := table{Caption: "Connect and reconnect times (ms)", Head: []string{"", "count", "p50", "p90", "p99", "p99.9", "max"},
		Rows: [][]string{millisRow("reconnect", s.ReconnectMS), millisRow("first connect", s.ConnectMS)}}
	sec := section{ID: "connections", Title: "Connections, reconnect and connect times",
		Tables: []table{{Head: []string{"", ""}, Rows: rows}, dist}}
	for _, f := range []string{"reconnect.png", "connections.png", "send_rate.png"} {
		sec.Plots = append(sec.Plots, in.plotsNamed(f)...)
	}
	return sec
}

func resourceSection(in reportInput) section {
	s := in.s
	opt := func(v *float64, f func(float64) string) string {
		if v == nil {
			return "not reported"
		}
		return f(*v)
	}
	g := s.Gateway
	rows := [][]string{
		{"gateway peak RSS (largest gateway)", opt(g.PeakRSSBytes, fmtBytes)},
		{"gateway RSS per connection (Σ peak RSS ÷ Σ peak connections)", opt(g.RSSPerConnBytes, fmtBytes)},
		{"gateway peak connections (Σ each gateway's peak)", opt(g.PeakConnections, fmtCount)},
		{"connections refused busy", opt(g.RejectedBusy, fmtCount)},
		{"slow readers kicked", opt(g.KicksSlow, fmtCount)},
		{"system CPU (all but the agents)", fmt.Sprintf("%.1f s", s.Efficiency.SystemCPUSecs)},
		{"system CPU per delivered message", opt(s.Efficiency.CPUUSPerMsg, func(v float64) string { return fmtUS(v) })},
	}
	procs := table{Caption: "Processes", Head: []string{"process", "role", "peak RSS", "CPU", "incarnations", "last exit"}}
	for _, p := range s.Processes {
		procs.Rows = append(procs.Rows, []string{p.Name, p.Role, fmtBytes(float64(p.PeakRSSBytes)),
			fmt.Sprintf("%.1f s", p.CPUSecs), fmt.Sprint(p.Incarnations), p.ExitCause})
	}
	return section{ID: "resources", Title: "Gateways and processes", Tables: []table{{Head: []string{"", ""}, Rows: rows}, procs},
		Plots: in.plotsNamed("resources.png")}
}

func faultSection(in reportInput) section {
	t := table{Head: []string{"at", "phase", "action", "target", "until", "duration", "heal → last delivery", "detail"}}
	for _, f := range in.s.Faults {
		detail := f.Detail
		if f.Error != "" {
			detail = strings.TrimSpace(detail + " not applied: " + f.Error)
		}
		until, duration := "—", "—"
		if !f.End.IsZero() {
			until = in.rel(f.End)
		}
		if v := f.DurationMS; v != nil {
			duration = fmtMS(*v)
		}
		recovery := "—"
		if v := f.HealToLastDeliveryMS; v != nil {
			recovery = fmtUS(*v * 1000)
		}
		t.Rows = append(t.Rows, []string{in.rel(f.At), f.Phase, f.Action, f.Target, until, duration, recovery, detail})
	}
	sec := section{ID: "faults", Title: "Faults", Tables: []table{t},
		Paras: []string{"Until: the heal — a pause's end, a network fault's removal (partition, loss, bandwidth, blackhole), or when a restarted process served again; duration is from the fault to its heal. Heal → last delivery: from the heal to the last first delivery of a message intended before it (the messages pending at the heal; late ones included, lost ones are counted lost instead); 0 when all of them were delivered by the heal. On the timeline plots a fault with a heal is a shaded window, one without a line."}}
	if len(in.s.Faults) == 0 {
		sec.Tables, sec.Paras = nil, []string{"No faults were injected."}
	}
	return sec
}

// maxAlertRows bounds the alerts table; the rest are counted.
const maxAlertRows = 200

func alertSection(in reportInput) section {
	t := table{Head: []string{"at", "kind", "gateway", "detail", "resolved"}}
	for i, a := range in.alerts {
		if i == maxAlertRows {
			break
		}
		res := ""
		if a.Resolved {
			res = "resolved"
		}
		t.Rows = append(t.Rows, []string{in.rel(a.Time), a.Kind, a.Gateway, a.Detail, res})
	}
	sec := section{ID: "alerts", Title: "Alerts timeline (control)", Tables: []table{t}}
	switch n := len(in.alerts); {
	case n == 0:
		sec.Tables, sec.Paras = nil, []string{"Control raised no alerts."}
	case n > maxAlertRows:
		sec.Paras = []string{fmt.Sprintf("The first %d of %d alerts; alerts.jsonl has them all.", maxAlertRows, n)}
	}
	return sec
}

func eventSection(in reportInput) section {
	t := table{Head: []string{"at", "kind", "detail"}}
	for _, e := range in.s.Events {
		t.Rows = append(t.Rows, []string{in.rel(e.At), e.Kind, e.Detail})
	}
	sec := section{ID: "events", Title: "Events", Tables: []table{t}}
	if len(in.s.Events) == 0 {
		sec.Tables, sec.Paras = nil, []string{"No unexpected deaths, autoscale actions or harness events."}
	}
	return sec
}

func caveatSection(s *Summary) section {
	return section{ID: "caveats", Title: "Caveats", Bullets: s.Caveats}
}

// establishText says how many of the initial clients logged in and how fast.
func establishText(c Connections) string {
	if c.EstablishS <= 0 {
		return "—"
	}
	return fmt.Sprintf("%s in %.1f s (%s/s, agents' connect rate included)", fmtCount(float64(c.EstablishedInitially)),
		c.EstablishS, fmtCount(float64(c.EstablishedInitially)/c.EstablishS))
}

// profileSection lists the CPU profiles a run took; nil without any.
func profileSection(s *Summary) *section {
	if len(s.Profiles) == 0 {
		return nil
	}
	t := table{Head: []string{"process", "role", "phase", "from", "seconds", "file"}}
	for _, p := range s.Profiles {
		file := p.File
		if file == "" {
			file = "not taken: " + p.Error
		}
		from := "—"
		if !p.From.IsZero() && !s.Run.TrafficStart.IsZero() {
			from = fmt.Sprintf("%+.1f s", p.From.Sub(s.Run.TrafficStart).Seconds())
		}
		t.Rows = append(t.Rows, []string{cmp.Or(p.Process, "—"), cmp.Or(p.Role, "—"), p.Phase, from, fmt.Sprintf("%.0f", p.Seconds), file})
	}
	return &section{ID: "profiles", Title: "CPU profiles", Tables: []table{t},
		Paras: []string{"Taken at once from every server process and one load agent (their admin listeners' /debug/pprof/profile), from the middle of the phase. Read one with `go tool pprof -top -cum FILE`, or compare two roles' with -diff_base."}}
}
