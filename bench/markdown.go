package bench

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Goal thresholds the reactor is held to: 50,000 idle connections at 256 bytes of
// RSS each, and the echo figures below.
const (
	goalIdleConns      = 50_000
	goalIdleRSSPerConn = 256 // bytes of RSS per idle connection
	goalEchoConns      = 10_000
	goalEchoVsGnet     = 1.1 // Floodgate's echo msgs/s over gnet v2's
	// goalWSVsTCP bounds the RSS of an idle WebSocket connection over that of an
	// idle raw TCP one, both on Floodgate's gateway ("within 2× of raw TCP").
	goalWSVsTCP = 2.0
)

// goal is one stated target and how the run did against it. A goal whose figure is
// missing is not met (a gate on a missing metric must fail, k6#1526).
type goal struct {
	Name     string
	Measured string
	Met      bool
}

// goals evaluates the report's targets.
func (r *Report) goals() []goal {
	var out []goal
	idle := fmt.Sprintf("Floodgate ≤ %d B RSS per idle connection at %dk (nbio's README claims ~1 KB)", goalIdleRSSPerConn, goalIdleConns/1000)
	if row, ok := r.find("floodgate", "", "idle", goalIdleConns, 0); ok {
		out = append(out, goal{idle, fmt.Sprintf("%.0f B", row.RSSBytesPerConn), row.RSSBytesPerConn <= goalIdleRSSPerConn})
	} else {
		out = append(out, goal{idle, "not measured", false})
	}

	echoName := func(variant string, size int) string {
		return fmt.Sprintf("Floodgate (%s) echo msgs/s ≥ %.1f× gnet v2 at %dk connections, %d B", variant, goalEchoVsGnet, goalEchoConns/1000, size)
	}
	var sizes []int
	for _, row := range r.Results {
		if row.Test == "echo" && row.Conns == goalEchoConns && row.EchoFigures != nil && !slices.Contains(sizes, row.MsgBytes) {
			sizes = append(sizes, row.MsgBytes)
		}
	}
	slices.Sort(sizes)
	for _, size := range sizes {
		gnet, gok := r.find("gnet", "", "echo", goalEchoConns, size)
		for _, variant := range r.variants("floodgate", "echo") {
			fg, fok := r.find("floodgate", variant, "echo", goalEchoConns, size)
			switch {
			case !gok || !fok || gnet.MsgsPerSec <= 0:
				out = append(out, goal{echoName(variant, size), "not measured", false})
			default:
				ratio := fg.MsgsPerSec / gnet.MsgsPerSec
				out = append(out, goal{echoName(variant, size),
					fmt.Sprintf("%.2f× (%s vs %s msgs/s)", ratio, count(fg.MsgsPerSec), count(gnet.MsgsPerSec)),
					ratio >= goalEchoVsGnet})
			}
		}
	}
	if len(sizes) == 0 {
		out = append(out, goal{fmt.Sprintf("Floodgate echo msgs/s ≥ %.1f× gnet v2 at %dk connections", goalEchoVsGnet, goalEchoConns/1000), "not measured", false})
	}
	return append(out, r.wsGoals()...)
}

// wsGoals evaluates the WebSocket bar at every connection count with a floodgate-ws
// idle row: its RSS per idle connection within goalWSVsTCP× Floodgate's over raw TCP.
func (r *Report) wsGoals() []goal {
	name := func(conns int) string {
		return fmt.Sprintf("Floodgate over WebSocket ≤ %.0f× raw TCP in RSS per idle connection at %s", goalWSVsTCP, count(float64(conns)))
	}
	var conns []int
	for _, row := range r.Results {
		if row.Server == wsServer && row.Test == "idle" && !slices.Contains(conns, row.Conns) {
			conns = append(conns, row.Conns)
		}
	}
	if len(conns) == 0 {
		return []goal{{name(goalIdleConns), "not measured", false}}
	}
	slices.Sort(conns)
	var out []goal
	for _, n := range conns {
		wsRow, tcpRow, ok := r.wsAndTCP(n)
		switch {
		case !ok:
			out = append(out, goal{name(n), "not measured", false})
		case tcpRow.RSSBytesPerConn <= 0:
			out = append(out, goal{name(n), fmt.Sprintf("no ratio: raw TCP measured %.0f B", tcpRow.RSSBytesPerConn), false})
		default:
			ratio := wsRow.RSSBytesPerConn / tcpRow.RSSBytesPerConn
			out = append(out, goal{name(n), fmt.Sprintf("%.2f× (%.0f B vs %.0f B)", ratio, wsRow.RSSBytesPerConn, tcpRow.RSSBytesPerConn),
				ratio <= goalWSVsTCP})
		}
	}
	return out
}

// wsAndTCP returns the error-free idle rows of floodgate-ws and of floodgate at conns.
func (r *Report) wsAndTCP(conns int) (wsRow, tcpRow Result, ok bool) {
	wsRow, wok := r.find(wsServer, "", "idle", conns, 0)
	tcpRow, tok := r.find("floodgate", "", "idle", conns, 0)
	return wsRow, tcpRow, wok && tok
}

// vsTCP is the note beside a floodgate-ws idle figure: its ratio to the raw TCP
// row's, "" when there is none to compare with.
func vsTCP(ws, tcp float64) string {
	if tcp <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%.2f× TCP)", ws/tcp)
}

// find returns the error-free row for server (and variant, when not empty), test,
// conns and, for echo rows, msg_bytes.
func (r *Report) find(server, variant, test string, conns, msgBytes int) (Result, bool) {
	for _, row := range r.Results {
		if row.Server != server || row.Test != test || row.Conns != conns || row.Error != "" {
			continue
		}
		if variant != "" && row.Variant != variant {
			continue
		}
		switch {
		case test == "idle" && row.IdleFigures != nil:
			return row, true
		case test != "idle" && row.EchoFigures != nil && row.MsgBytes == msgBytes:
			return row, true
		}
	}
	return Result{}, false
}

// variants lists a server's variants in a test, in order of appearance.
func (r *Report) variants(server, test string) []string {
	var out []string
	for _, row := range r.Results {
		if row.Server == server && row.Test == test && !slices.Contains(out, row.Variant) {
			out = append(out, row.Variant)
		}
	}
	return out
}

// Markdown renders the report as reactor.md: the goals, then a table per test.
func (r *Report) Markdown() string {
	var b strings.Builder
	r.writeHeader(&b)
	r.writeGoals(&b)
	r.writeIdle(&b, r.rows("idle"))
	r.writeEcho(&b, r.rows("echo"))
	writePipelined(&b, r.rows("pipelined"))
	writeReactorCounters(&b, floodgateEcho(r.rows("echo")))
	if len(r.Meta.Caveats) > 0 {
		b.WriteString("\n## Caveats\n\n")
		for _, c := range r.Meta.Caveats {
			fmt.Fprintf(&b, "- %s\n", c)
		}
	}
	return b.String()
}

// writeHeader writes the title and the run's circumstances.
func (r *Report) writeHeader(b *strings.Builder) {
	m := r.Meta
	b.WriteString("# Reactor benchmark\n\n")
	fmt.Fprintf(b, "Run %s UTC, %.0f s", m.StartedUTC.UTC().Format("2006-01-02 15:04:05"), m.Seconds)
	if m.GitCommit != "" {
		fmt.Fprintf(b, ", commit `%.12s`", m.GitCommit)
	}
	fmt.Fprintf(b, "; Linux %s, %d CPUs, %s.", m.Kernel, m.CPUs, m.GoVersion)
	if m.QuietWaitSeconds >= 1 {
		fmt.Fprintf(b, " Cases waited %.0f s in all for the machine to be quiet.", m.QuietWaitSeconds)
	}
	if m.Interrupted {
		b.WriteString(" **Interrupted: the tables are incomplete.**")
	}
	b.WriteString(" Every server runs on this one machine, one at a time, under the same load client" +
		" (Floodgate's reactor in client mode); figures come from `reactor.json`.\n\n")
}

// writeGoals writes the goals table.
func (r *Report) writeGoals(b *strings.Builder) {
	b.WriteString("## Goals\n\n| goal | measured | met |\n|---|---|---|\n")
	for _, g := range r.goals() {
		met := "**no**"
		if g.Met {
			met = "yes"
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", g.Name, g.Measured, met)
	}
}

// rows returns the results of test, by connections, message size and server.
func (r *Report) rows(test string) []Result {
	var out []Result
	for _, row := range r.Results {
		if row.Test == test {
			out = append(out, row)
		}
	}
	slices.SortStableFunc(out, func(a, b Result) int {
		return cmp.Or(cmp.Compare(a.Conns, b.Conns), cmp.Compare(msgBytes(a), msgBytes(b)), cmp.Compare(tableRank(a), tableRank(b)))
	})
	return out
}

// writeIdle writes the idle connections' table.
func (r *Report) writeIdle(b *strings.Builder, idle []Result) {
	if len(idle) == 0 {
		return
	}
	m := r.Meta
	fmt.Fprintf(b, "\n## Idle connections\n\nConnections that never send. Each server runs as several processes"+
		" (at most %d connections each: one process holds fewer than 20k sockets here), and so does the load."+
		" Per connection = Σ(loaded − empty) over the server's processes ÷ connections established. RSS is VmRSS once it"+
		" stopped moving; heap is Go's heap_alloc right after a forced GC. One run each (memory barely varies);"+
		" ⚠ marks a time to establish measured while other work kept the machine busy."+
		" floodgate-ws is the same gateway over its WebSocket port, its connections counted once upgraded, its figures"+
		" taken the same way; beside them, their ratio to the raw TCP row's.\n\n", m.PerProcessConns)
	b.WriteString("| conns | server | RSS B/conn | heap B/conn | processes | established | time to establish | RSS empty → loaded |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---|\n")
	for _, row := range idle {
		if row.IdleFigures == nil {
			fmt.Fprintf(b, "| %s | %s | – | – | – | – | – | error: %s |\n", count(float64(row.Conns)), label(row), oneLine(row.Error))
			continue
		}
		f := row.IdleFigures
		settled := ""
		if !f.RSSSettled {
			settled = " (still moving)"
		}
		busy := ""
		if f.EstablishOtherCores > quietCores {
			busy = fmt.Sprintf(" ⚠ %.1f other cores", f.EstablishOtherCores)
		}
		rssNote, heapNote := "", ""
		if _, tcp, ok := r.wsAndTCP(row.Conns); ok && row.Server == wsServer {
			rssNote, heapNote = vsTCP(f.RSSBytesPerConn, tcp.RSSBytesPerConn), vsTCP(f.HeapBytesPerConn, tcp.HeapBytesPerConn)
		}
		fmt.Fprintf(b, "| %s | %s | %.0f%s | %.0f%s | %d | %s | %.1f s%s | %s → %s%s |\n",
			count(float64(row.Conns)), label(row), f.RSSBytesPerConn, rssNote, f.HeapBytesPerConn, heapNote, f.Processes,
			count(float64(f.Established)), f.EstablishSeconds, busy, mib(f.RSSEmptyBytes), mib(f.RSSLoadedBytes), settled)
	}
}

// writeEcho writes the echo table.
func (r *Report) writeEcho(b *strings.Builder, echo []Result) {
	if len(echo) == 0 {
		return
	}
	m := r.Meta
	fmt.Fprintf(b, "\n## Echo\n\nClosed loop: each connection keeps one message in flight and sends the next on its echo."+
		" %s s warm-up, then %s s measured; each row is the median of %d rounds (by msgs/s; the range shows all"+
		" rounds), the rounds cycling through every server. msg B is the whole frame on the wire, its 5-byte header included."+
		" RTTs from one HdrHistogram per client process, merged. Server CPU is utime+stime over the window:"+
		" µs/msg is not diluted by the load client sharing the cores; cores = CPU seconds per second; other cores is"+
		" what the machine spent on anything else (other processes, kernel work charged to none): near zero, the"+
		" server and its load had the machine to themselves (⚠: not so).\n\n",
		trimFloat(m.WarmupSeconds), trimFloat(m.MeasureSeconds), m.Rounds)
	b.WriteString("| conns | msg B | server | msgs/s | range | p50 µs | p99 µs | p99.9 µs | server CPU µs/msg (user / sys) | server cores | client cores | other cores |\n")
	b.WriteString("|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range echo {
		echoRow(b, row, false)
	}
}

// writePipelined writes the pipelined echo table.
func writePipelined(b *strings.Builder, pipe []Result) {
	if len(pipe) == 0 {
		return
	}
	b.WriteString("\n## Pipelined echo: Floodgate's EPOLLOUT strategies under backpressure\n\n" +
		"Plain echo almost never fills a socket, so its writes never queue and the two strategies barely differ there." +
		" Here a few connections keep many messages in flight through small socket buffers (the server's SO_SNDBUF," +
		" the clients' SO_RCVBUF), so the server's writes hit EAGAIN and queue (\"queued mid-run\": its outbound queues" +
		" when the window opened):" +
		" `dynamic` arms EPOLLOUT with epoll_ctl while output is queued, `always` registers it once and ignores it when idle." +
		" The reactor's counters are per echoed message, over the window.\n\n")
	b.WriteString("| conns | depth | msg B | socket buffers | server | msgs/s | range | p50 µs | p99 µs | server CPU µs/msg | epoll waits/msg | events/msg | read pauses | queued mid-run |\n")
	b.WriteString("|---:|---:|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range pipe {
		echoRow(b, row, true)
	}
}

// writeReactorCounters writes Floodgate's reactor counters in the echo runs.
func writeReactorCounters(b *strings.Builder, fg []Result) {
	if len(fg) == 0 {
		return
	}
	b.WriteString("\nFloodgate's reactor counters in the echo runs, per echoed message:\n\n")
	b.WriteString("| conns | msg B | variant | epoll waits/msg | events/msg | read pauses | queued mid-run |\n|---:|---:|---|---:|---:|---:|---:|\n")
	for _, row := range fg {
		rc, n := row.Reactor, max(row.Reactor.FramesIn, 1)
		fmt.Fprintf(b, "| %s | %d | %s | %.3f | %.3f | %.0f | %s |\n", count(float64(row.Conns)), row.MsgBytes, row.Variant,
			rc.EpollWaits/n, rc.EpollEvents/n, rc.ReadPauses, humanBytes(rc.OutboundQueued))
	}
}

// echoRow writes one echo or pipelined table row.
func echoRow(b *strings.Builder, row Result, pipelined bool) {
	f := row.EchoFigures
	if f == nil {
		cols := 9 // empty cells after conns, server, error
		if pipelined {
			cols = 11
		}
		fmt.Fprintf(b, "| %s | %s | error: %s%s |\n", count(float64(row.Conns)), label(row), oneLine(row.Error), strings.Repeat(" |", cols))
		return
	}
	note := ""
	if row.Error != "" || f.Unanswered > 0 || f.ConnsLost > 0 || f.WriteErrors > 0 {
		note = fmt.Sprintf(" ⚠ %d unanswered, %d conns lost, %d write errors %s", f.Unanswered, f.ConnsLost, f.WriteErrors, oneLine(row.Error))
	}
	if !pipelined {
		other := fmt.Sprintf("%.2f", f.OtherCPUCores)
		if f.OtherCPUCores > quietCores {
			other += " ⚠"
		}
		fmt.Fprintf(b, "| %s | %d | %s%s | %s | %s | %.0f | %.0f | %.0f | %.2f (%.2f / %.2f) | %.2f | %.2f | %s |\n",
			count(float64(row.Conns)), f.MsgBytes, label(row), note, count(f.MsgsPerSec), spread(f), f.P50US, f.P99US, f.P999US,
			f.ServerCPUUSPerMsg, f.ServerUserUSPerMsg, f.ServerSysUSPerMsg, f.ServerCPUCores, f.ClientCPUCores, other)
		return
	}
	waits, events, pauses, queued := "–", "–", "–", "–"
	if rc := f.Reactor; rc != nil {
		n := max(rc.FramesIn, 1)
		waits, events, pauses = fmt.Sprintf("%.3f", rc.EpollWaits/n), fmt.Sprintf("%.3f", rc.EpollEvents/n), fmt.Sprintf("%.0f", rc.ReadPauses)
		queued = humanBytes(rc.OutboundQueued)
	}
	bufs := fmt.Sprintf("server snd %s, client rcv %s", bufLabel(f.SndBuf), bufLabel(f.RcvBuf))
	fmt.Fprintf(b, "| %s | %d | %d | %s | %s%s | %s | %s | %.0f | %.0f | %.2f | %s | %s | %s | %s |\n",
		count(float64(row.Conns)), f.Depth, f.MsgBytes, bufs, label(row), note, count(f.MsgsPerSec), spread(f),
		f.P50US, f.P99US, f.ServerCPUUSPerMsg, waits, events, pauses, queued)
}

// spread shows a row's msgs/s over its rounds: "61.2k–70.9k (3)".
func spread(f *EchoFigures) string {
	dropped := ""
	if f.BusyRoundsDropped > 0 {
		dropped = fmt.Sprintf(", %d busy dropped", f.BusyRoundsDropped)
	}
	if f.Rounds <= 1 {
		return "1 round" + dropped
	}
	return fmt.Sprintf("%.1fk–%.1fk (%d%s)", f.MsgsPerSecMin/1e3, f.MsgsPerSecMax/1e3, f.Rounds, dropped)
}

// humanBytes prints a byte count in B, KiB or MiB, one decimal.
func humanBytes(n float64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}

func floodgateEcho(rows []Result) []Result {
	var out []Result
	for _, row := range rows {
		if row.Server == "floodgate" && row.EchoFigures != nil && row.Reactor != nil {
			out = append(out, row)
		}
	}
	return out
}

// tableRank orders a table's rows of equal connections and size: Floodgate over TCP,
// then over WebSocket right beside it, then the rest in run order.
func tableRank(r Result) int {
	switch r.Server {
	case "floodgate":
		return 0
	case wsServer:
		return 1
	}
	return 2
}

func msgBytes(r Result) int {
	if r.EchoFigures == nil {
		return 0
	}
	return r.MsgBytes
}

// label names a row's server for a table.
func label(r Result) string {
	name := r.Server
	if name == "gnet" {
		name = "gnet v2"
	}
	if r.Variant != "" {
		name += " (" + r.Variant + ")"
	}
	return name
}

// count formats n with thousands separators: 1234567 → 1,234,567.
func count(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func sizeLabel(n int) string {
	switch {
	case n == 0:
		return "0 B"
	case n%1024 == 0:
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// bufLabel names a socket buffer setting: 0 is the kernel's autotuning.
func bufLabel(n int) string {
	if n == 0 {
		return "auto"
	}
	return sizeLabel(n)
}

func trimFloat(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.3g", v), ".0") }

// oneLine keeps a table cell on one line and short.
func oneLine(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", "/")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
