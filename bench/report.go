package bench

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Report is reactor.json. Its field names are a contract: add, never rename.
type Report struct {
	Meta    Meta     `json:"meta"`
	Results []Result `json:"results"`
}

// Meta describes the run: when, where, with what settings.
type Meta struct {
	StartedUTC  time.Time `json:"started_utc"`
	FinishedUTC time.Time `json:"finished_utc"`
	Seconds     float64   `json:"duration_s"`
	Interrupted bool      `json:"interrupted,omitempty"`
	GitCommit   string    `json:"git_commit,omitempty"`
	Kernel      string    `json:"kernel"`
	CPUs        int       `json:"cpus"`
	GoVersion   string    `json:"go_version"`
	Servers     []string  `json:"servers"`
	Tests       []string  `json:"tests"`
	// WarmupSeconds and MeasureSeconds are each echo run's window.
	WarmupSeconds  float64 `json:"warmup_s"`
	MeasureSeconds float64 `json:"measure_s"`
	// MsgBytes says what msg_bytes counts.
	MsgBytes string `json:"msg_bytes"`
	// PerProcessConns caps the connections of one server or client process (the
	// per-process file limit is the reason there are several).
	PerProcessConns int `json:"per_process_conns"`
	EchoClients     int `json:"echo_client_processes"`
	// Rounds is how often the echo and pipelined tests ran over all their servers.
	Rounds int `json:"rounds"`
	// QuietWaitSeconds is how long the run waited for the machine to be quiet before
	// its cases (see other_cpu_cores).
	QuietWaitSeconds float64 `json:"quiet_wait_s"`
	// SourceSeed picked this run's client source addresses (127.a.b.c).
	SourceSeed uint64 `json:"source_seed"`
	// Caveats are the reasons to read the figures with care.
	Caveats []string `json:"caveats"`
}

// Result is one row: a server (and variant) under one test. A row whose Error is set
// may lack its figures: a zero would read as a measurement.
type Result struct {
	Server  string `json:"server"`            // floodgate, floodgate-ws, netstd, gnet or nbio
	Variant string `json:"variant,omitempty"` // floodgate's -write-readiness
	Test    string `json:"test"`              // idle, echo or pipelined
	Conns   int    `json:"conns"`
	*IdleFigures
	*EchoFigures
	Error string `json:"error,omitempty"` // why the row is incomplete
}

// IdleFigures are an idle row's measurements. Sums are over the server's processes.
type IdleFigures struct {
	RSSBytesPerConn  float64 `json:"rss_bytes_per_conn"`  // Σ(loaded−empty VmRSS) / established
	HeapBytesPerConn float64 `json:"heap_bytes_per_conn"` // Σ(loaded−empty heap_alloc) / established
	Established      int64   `json:"established"`         // as the clients counted
	ServerConns      int64   `json:"server_conns"`        // sockets the server processes gained
	Processes        int     `json:"processes"`
	ClientProcesses  int     `json:"client_processes"`
	EstablishSeconds float64 `json:"establish_s"` // the slowest client: first dial to last settled
	// EstablishOtherCores is the CPU the machine spent on anything else while the
	// connections were made: well above zero, establish_s is not the servers' alone.
	EstablishOtherCores float64 `json:"establish_other_cpu_cores"`
	RSSEmptyBytes       int64   `json:"rss_empty_bytes"`
	RSSLoadedBytes      int64   `json:"rss_loaded_bytes"`
	HeapEmptyBytes      int64   `json:"heap_empty_bytes"`
	HeapLoadedBytes     int64   `json:"heap_loaded_bytes"`
	RSSSettled          bool    `json:"rss_settled"` // false: a sample was still moving at the timeout
}

// EchoFigures are an echo or pipelined row's measurements over the window.
type EchoFigures struct {
	MsgBytes          int     `json:"msg_bytes"`               // the whole frame, header included
	Depth             int     `json:"depth"`                   // messages in flight per connection
	SndBuf            int     `json:"sndbuf,omitempty"`        // the server's SO_SNDBUF, if set
	RcvBuf            int     `json:"client_rcvbuf,omitempty"` // the clients' SO_RCVBUF, if set
	MsgsPerSec        float64 `json:"msgs_per_sec"`
	P50US             float64 `json:"p50_us"`
	P99US             float64 `json:"p99_us"`
	P999US            float64 `json:"p999_us"`
	MaxUS             float64 `json:"max_us"`
	Samples           int64   `json:"samples"`
	ServerCPUUSPerMsg float64 `json:"server_cpu_us_per_msg"`
	// The server's CPU per message split: user space (the server's own code) and
	// system (syscalls and the kernel's TCP stack on its behalf).
	ServerUserUSPerMsg float64 `json:"server_user_us_per_msg"`
	ServerSysUSPerMsg  float64 `json:"server_sys_us_per_msg"`
	// Rounds is how many rounds measured this row; the figures are the median round's
	// (by msgs/s), and the min and max show the spread over the rounds.
	Rounds int `json:"rounds"`
	// BusyRoundsDropped counts rounds left out of the median because something else
	// kept the machine busy (other_cpu_cores above 0.3) while clean rounds existed.
	BusyRoundsDropped int     `json:"busy_rounds_dropped,omitempty"`
	MsgsPerSecMin     float64 `json:"msgs_per_sec_min"`
	MsgsPerSecMax     float64 `json:"msgs_per_sec_max"`
	ServerCPUCores    float64 `json:"server_cpu_cores"` // CPU seconds per second of the window
	ClientCPUCores    float64 `json:"client_cpu_cores"`
	// OtherCPUCores is the CPU the machine spent on anything but the server and the
	// clients over the window (other processes; kernel work charged to no process):
	// well above zero, the run shared the machine with something else.
	OtherCPUCores float64 `json:"other_cpu_cores"`
	StealCores    float64 `json:"steal_cores"` // taken by the hypervisor
	Unanswered    int64   `json:"unanswered"`
	WriteErrors   int64   `json:"write_errors"`
	ConnsLost     int64   `json:"conns_lost"`
	Clamped       int64   `json:"clamped"`
	// Reactor holds Floodgate's own counters over the window.
	Reactor *ReactorCounters `json:"reactor,omitempty"`
}

// ReactorCounters are increases of a Floodgate server's reactor counters.
type ReactorCounters struct {
	EpollWaits   float64 `json:"epoll_waits"`
	EpollEvents  float64 `json:"epoll_events"`
	ReadPauses   float64 `json:"read_pauses"`
	ReadRequeues float64 `json:"read_requeues"`
	FramesIn     float64 `json:"frames_in"`
	// OutboundQueued is the output queued for full sockets when the window starts,
	// mid-run (a gauge, not an increase): non-zero shows that writes hit EAGAIN.
	OutboundQueued float64 `json:"outbound_queued_bytes"`
}

// reactorMetrics returns the Prometheus names behind ReactorCounters.
func reactorMetrics() []string {
	return []string{
		"floodgate_reactor_epoll_waits_total",
		"floodgate_reactor_epoll_events_total",
		"floodgate_reactor_read_pauses_total",
		"floodgate_reactor_read_requeues_total",
		"floodgate_reactor_frames_in_total",
		"floodgate_reactor_outbound_queued_bytes",
	}
}

// reactorDelta returns the increase from a to b of the reactorMetrics' counters, and
// the queued-output gauge at a.
func reactorDelta(a, b map[string]float64) *ReactorCounters {
	d := func(name string) float64 { return b[name] - a[name] }
	return &ReactorCounters{
		EpollWaits:     d("floodgate_reactor_epoll_waits_total"),
		EpollEvents:    d("floodgate_reactor_epoll_events_total"),
		ReadPauses:     d("floodgate_reactor_read_pauses_total"),
		ReadRequeues:   d("floodgate_reactor_read_requeues_total"),
		FramesIn:       d("floodgate_reactor_frames_in_total"),
		OutboundQueued: a["floodgate_reactor_outbound_queued_bytes"],
	}
}

// memSample is one server process's memory, empty or loaded.
type memSample struct {
	RSS  int64 // VmRSS, bytes
	Heap int64 // heap_alloc after a GC, bytes
}

// idleFigures aggregates per-process samples: the per-connection figures are the sums
// of the increases divided by the connections, so processes of unequal load still
// give the right mean.
func idleFigures(empty, loaded []memSample, conns int64) (*IdleFigures, error) {
	if len(empty) != len(loaded) || len(empty) == 0 {
		return nil, fmt.Errorf("idle: %d empty and %d loaded samples", len(empty), len(loaded))
	}
	if conns <= 0 {
		return nil, errors.New("idle: no connection established")
	}
	f := &IdleFigures{Processes: len(empty)}
	for i := range empty {
		f.RSSEmptyBytes += empty[i].RSS
		f.RSSLoadedBytes += loaded[i].RSS
		f.HeapEmptyBytes += empty[i].Heap
		f.HeapLoadedBytes += loaded[i].Heap
	}
	f.RSSBytesPerConn = round1(float64(f.RSSLoadedBytes-f.RSSEmptyBytes) / float64(conns))
	f.HeapBytesPerConn = round1(float64(f.HeapLoadedBytes-f.HeapEmptyBytes) / float64(conns))
	return f, nil
}

// echoWindow is what the harness measured around one echo run.
type echoWindow struct {
	Seconds float64     // the measurement window
	CPU     cpuSnapshot // spent over the window
}

// echoFigures merges the client processes' results of one run.
func echoFigures(parts []EchoResult, w echoWindow) (*EchoFigures, error) {
	if len(parts) == 0 {
		return nil, errors.New("echo: no client result")
	}
	if w.Seconds <= 0 {
		return nil, fmt.Errorf("echo: window of %v s", w.Seconds)
	}
	merged := newHistogram()
	f := &EchoFigures{MsgBytes: parts[0].MsgBytes, Depth: parts[0].Depth}
	var measured int64
	for _, p := range parts {
		if p.Hist != nil {
			h := hdrhistogram.Import(p.Hist)
			if dropped := merged.Merge(h); dropped > 0 {
				return nil, fmt.Errorf("echo: %d samples out of the histogram's range", dropped)
			}
		}
		measured += p.Measured
		f.Unanswered += p.Unanswered
		f.WriteErrors += p.WriteErrors
		f.ConnsLost += p.ConnsLost
		f.Clamped += p.Clamped
	}
	f.Samples = merged.TotalCount()
	f.MsgsPerSec = round1(float64(measured) / w.Seconds)
	us := func(q float64) float64 { return round1(float64(merged.ValueAtQuantile(q)) / 1e3) }
	f.P50US, f.P99US, f.P999US = us(50), us(99), us(99.9)
	f.MaxUS = round1(float64(merged.Max()) / 1e3)
	if measured > 0 {
		perMsg := func(d time.Duration) float64 { return round3(float64(d.Microseconds()) / float64(measured)) }
		f.ServerCPUUSPerMsg = perMsg(w.CPU.Server.Total())
		f.ServerUserUSPerMsg, f.ServerSysUSPerMsg = perMsg(w.CPU.Server.User), perMsg(w.CPU.Server.System)
	}
	f.ServerCPUCores = round3(w.CPU.Server.Total().Seconds() / w.Seconds)
	f.ClientCPUCores = round3(w.CPU.Clients.Total().Seconds() / w.Seconds)
	f.OtherCPUCores = round3(w.CPU.otherCores(w.Seconds))
	f.StealCores = round3(w.CPU.Machine.Steal.Seconds() / w.Seconds)
	return f, nil
}

// medianRounds reduces the rows of several rounds to one row per server, variant,
// test, connections and message size, in order of first appearance: the median round
// by msgs/s (the lower one of an even count), with the spread and the round count.
// Rounds that failed are left out of the median and counted in the row's error;
// rounds that shared the machine with other work are left out if clean ones exist.
func medianRounds(runs []Result) []Result {
	type key struct {
		server, variant, test string
		conns, size           int
	}
	var order []key
	groups := map[key][]Result{}
	for _, r := range runs {
		k := key{r.Server, r.Variant, r.Test, r.Conns, msgBytes(r)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Result, 0, len(order))
	for _, k := range order {
		var ok []Result
		firstErr := ""
		for _, r := range groups[k] {
			if r.Error == "" && r.EchoFigures != nil {
				ok = append(ok, r)
			} else if firstErr == "" {
				firstErr = r.Error
			}
		}
		if len(ok) == 0 {
			out = append(out, groups[k][0])
			continue
		}
		clean := slices.DeleteFunc(slices.Clone(ok), func(r Result) bool { return r.OtherCPUCores > quietCores })
		busy := 0
		if len(clean) > 0 {
			busy, ok = len(ok)-len(clean), clean
		}
		slices.SortStableFunc(ok, func(a, b Result) int { return cmp.Compare(a.MsgsPerSec, b.MsgsPerSec) })
		row := ok[(len(ok)-1)/2]
		f := *row.EchoFigures
		f.Rounds, f.MsgsPerSecMin, f.MsgsPerSecMax = len(ok), ok[0].MsgsPerSec, ok[len(ok)-1].MsgsPerSec
		f.BusyRoundsDropped = busy
		row.EchoFigures = &f
		if failed := len(groups[k]) - len(ok) - busy; failed > 0 {
			row.Error = fmt.Sprintf("%d of %d rounds failed, the first: %s", failed, len(groups[k]), firstErr)
		}
		out = append(out, row)
	}
	return out
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// write saves the report as reactor.json and reactor.md in dir.
func (r *Report) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "reactor.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "reactor.md"), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}
