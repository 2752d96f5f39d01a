package bench

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIdleFiguresSumsThenDivides(t *testing.T) {
	empty := []memSample{{RSS: 10_000_000, Heap: 1_000_000}, {RSS: 12_000_000, Heap: 1_100_000}}
	// Unequal loads: 3,000 and 1,000 connections.
	loaded := []memSample{{RSS: 10_900_000, Heap: 1_450_000}, {RSS: 12_300_000, Heap: 1_250_000}}
	f, err := idleFigures(empty, loaded, 4000)
	if err != nil {
		t.Fatal(err)
	}
	if f.RSSBytesPerConn != 300 || f.HeapBytesPerConn != 150 {
		t.Errorf("per conn: RSS %v heap %v, want 300 and 150", f.RSSBytesPerConn, f.HeapBytesPerConn)
	}
	if f.Processes != 2 || f.RSSEmptyBytes != 22_000_000 || f.RSSLoadedBytes != 23_200_000 ||
		f.HeapEmptyBytes != 2_100_000 || f.HeapLoadedBytes != 2_700_000 {
		t.Errorf("sums: %+v", f)
	}
	if _, err := idleFigures(empty, loaded[:1], 4000); err == nil {
		t.Error("mismatched samples accepted")
	}
	if _, err := idleFigures(empty, loaded, 0); err == nil {
		t.Error("zero connections accepted")
	}
}

func TestEchoFiguresMergesClients(t *testing.T) {
	part := func(values ...int64) EchoResult {
		h := newHistogram()
		for _, v := range values {
			if err := h.RecordValue(v); err != nil {
				t.Fatal(err)
			}
		}
		return EchoResult{MsgBytes: 64, Depth: 1, Measured: int64(len(values)), Sent: 10, Received: 9, Unanswered: 1, Hist: h.Export()}
	}
	// 100 samples in all: 98 at 50 µs, one at 400 µs, one at 2 ms.
	a := part(slices.Repeat([]int64{50_000}, 60)...)
	b := part(append(slices.Repeat([]int64{50_000}, 38), 400_000, 2_000_000)...)
	f, err := echoFigures([]EchoResult{a, b}, echoWindow{Seconds: 2, CPU: cpuSnapshot{
		Server:  procCPU{User: 100 * time.Microsecond, System: 400 * time.Microsecond},
		Clients: procCPU{User: 300 * time.Millisecond, System: 700 * time.Millisecond},
		Machine: machineCPU{Busy: 1500*time.Millisecond + 500*time.Microsecond, Steal: 20 * time.Millisecond},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Samples != 100 || f.MsgsPerSec != 50 {
		t.Errorf("samples %d, msgs/s %v; want 100 and 50", f.Samples, f.MsgsPerSec)
	}
	near := func(got, want float64) bool { return got >= want*0.999 && got <= want*1.001 }
	if !near(f.P50US, 50) || !near(f.P99US, 400) || !near(f.MaxUS, 2000) {
		t.Errorf("p50 %v p99 %v max %v; want 50, 400, 2000 µs", f.P50US, f.P99US, f.MaxUS)
	}
	if f.ServerCPUUSPerMsg != 5 || f.ServerUserUSPerMsg != 1 || f.ServerSysUSPerMsg != 4 || f.ServerCPUCores != 0 || f.ClientCPUCores != 0.5 {
		t.Errorf("cpu: %v µs/msg, %v server cores, %v client cores; want 5, 0, 0.5", f.ServerCPUUSPerMsg, f.ServerCPUCores, f.ClientCPUCores)
	}
	if f.OtherCPUCores != 0.25 || f.StealCores != 0.01 {
		t.Errorf("other %v cores, steal %v; want 0.25 and 0.01", f.OtherCPUCores, f.StealCores)
	}
	if f.Unanswered != 2 || f.MsgBytes != 64 || f.Depth != 1 {
		t.Errorf("totals: %+v", f)
	}
	if _, err := echoFigures(nil, echoWindow{Seconds: 1}); err == nil {
		t.Error("no parts accepted")
	}
}

// TestReportContract pins reactor.json's field names: consumers read them, so they may
// be added to but never renamed.
func TestReportContract(t *testing.T) {
	r := sampleReport()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Meta    map[string]any   `json:"meta"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"started_utc", "git_commit", "kernel", "cpus", "go_version", "warmup_s", "measure_s", "msg_bytes", "per_process_conns"} {
		if _, ok := doc.Meta[k]; !ok {
			t.Errorf("meta lacks %q", k)
		}
	}
	want := map[string][]string{
		"idle":      {"server", "test", "conns", "rss_bytes_per_conn", "heap_bytes_per_conn", "establish_s", "establish_other_cpu_cores"},
		"echo":      {"server", "test", "conns", "msg_bytes", "msgs_per_sec", "p50_us", "p99_us", "server_cpu_us_per_msg", "server_user_us_per_msg", "other_cpu_cores", "rounds"},
		"pipelined": {"server", "variant", "test", "conns", "msg_bytes", "depth", "msgs_per_sec", "p50_us", "p99_us"},
	}
	for _, row := range doc.Results {
		if _, failed := row["error"]; failed {
			continue // a failed row may lack its figures (a zero would read as a result)
		}
		test, _ := row["test"].(string)
		for _, k := range want[test] {
			if _, ok := row[k]; !ok {
				t.Errorf("%s row lacks %q: %v", test, k, row)
			}
		}
	}
	// An idle row carries no echo fields and the other way round.
	if _, ok := doc.Results[0]["msg_bytes"]; ok {
		t.Error("idle row has msg_bytes")
	}
	if _, ok := doc.Results[len(doc.Results)-1]["rss_bytes_per_conn"]; ok {
		t.Error("echo row has rss_bytes_per_conn")
	}
	// A zero figure is still present: a consumer must not mistake it for a missing one.
	r.Results[0].RSSBytesPerConn = 0
	b, _ = json.Marshal(r.Results[0])
	if !strings.Contains(string(b), `"rss_bytes_per_conn":0`) {
		t.Errorf("zero figure omitted: %s", b)
	}
}

// busyRow marks an echo row as measured on a busy machine.
func busyRow(r Result) Result {
	r.EchoFigures.OtherCPUCores = 1.5
	return r
}

func TestMedianRounds(t *testing.T) {
	echo := func(server string, size int, rate float64, err string) Result {
		return Result{Server: server, Test: "echo", Conns: 10, Error: err,
			EchoFigures: &EchoFigures{MsgBytes: size, MsgsPerSec: rate, P99US: rate / 10}}
	}
	idle := Result{Server: "nbio", Test: "idle", Conns: 5, IdleFigures: &IdleFigures{RSSBytesPerConn: 900}}
	runs := []Result{
		idle,
		echo("gnet", 64, 300, ""), echo("gnet", 1024, 50, ""), echo("nbio", 64, 7, "boom"),
		echo("gnet", 64, 100, ""), echo("gnet", 1024, 70, ""), echo("nbio", 64, 0, "bang"),
		echo("gnet", 64, 200, ""), echo("gnet", 1024, 60, ""), echo("gnet", 1024, 40, "late"),
		echo("gnet", 64, 400, ""), // a fourth round: the lower median of 100, 200, 300, 400
		busyRow(echo("nbio", 1024, 999, "")), echo("nbio", 1024, 10, ""), echo("nbio", 1024, 20, ""),
	}
	got := medianRounds(runs)
	if len(got) != 5 {
		t.Fatalf("%d rows, want 5: %+v", len(got), got)
	}
	// A round that shared the machine is dropped when clean ones exist.
	if n := got[4]; n.MsgsPerSec != 10 || n.Rounds != 2 || n.BusyRoundsDropped != 1 || n.MsgsPerSecMax != 20 || n.Error != "" {
		t.Errorf("nbio 1 KiB: %+v %+v", n, n.EchoFigures)
	}
	if got[0].IdleFigures == nil || got[0].RSSBytesPerConn != 900 {
		t.Errorf("idle row changed: %+v", got[0])
	}
	g64, g1k, nbio := got[1], got[2], got[3]
	if g64.MsgsPerSec != 200 || g64.P99US != 20 || g64.Rounds != 4 || g64.MsgsPerSecMin != 100 || g64.MsgsPerSecMax != 400 || g64.Error != "" {
		t.Errorf("gnet 64 B: %+v %+v", g64, g64.EchoFigures)
	}
	// Three good rounds and a failed one, which is left out and counted in the error.
	if g1k.MsgsPerSec != 60 || g1k.Rounds != 3 || !strings.HasPrefix(g1k.Error, "1 of 4 rounds failed, the first: late") {
		t.Errorf("gnet 1 KiB: %+v %+v", g1k, g1k.EchoFigures)
	}
	if nbio.Error != "boom" {
		t.Errorf("nbio (every round failed): %+v", nbio)
	}
	// The input rows are not modified.
	if runs[1].Rounds != 0 {
		t.Error("medianRounds modified its input")
	}
}

// TestRowFieldsDisjoint: Result embeds IdleFigures and EchoFigures; a JSON name in
// both would make encoding/json drop it from every row without a word.
func TestRowFieldsDisjoint(t *testing.T) {
	names := func(v any) map[string]bool {
		out := map[string]bool{}
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			out[name] = true
		}
		return out
	}
	top := names(Result{})
	idle := names(IdleFigures{})
	for name := range names(EchoFigures{}) {
		if idle[name] || top[name] {
			t.Errorf("JSON name %q is in EchoFigures and in Result or IdleFigures", name)
		}
	}
	for name := range idle {
		if top[name] {
			t.Errorf("JSON name %q is in IdleFigures and Result", name)
		}
	}
}

// sampleReport is a small report with rows of every kind.
func sampleReport() *Report {
	echo := func(server, variant string, conns, size int, rate float64) Result {
		f := &EchoFigures{
			MsgBytes: size, Depth: 1, MsgsPerSec: rate, P50US: 80, P99US: 900, P999US: 1500, MaxUS: 3000,
			Samples: int64(rate * 8), ServerCPUUSPerMsg: 4.25, ServerCPUCores: 0.9, ClientCPUCores: 1.1,
			Rounds: 3, MsgsPerSecMin: rate - 10_000, MsgsPerSecMax: rate + 20_000,
		}
		if server == "floodgate" {
			f.Reactor = &ReactorCounters{EpollWaits: 100, EpollEvents: 800, FramesIn: 1000}
		}
		return Result{Server: server, Variant: variant, Test: "echo", Conns: conns, EchoFigures: f}
	}
	idle := func(server string, conns int, rss float64) Result {
		return Result{Server: server, Test: "idle", Conns: conns, IdleFigures: &IdleFigures{
			RSSBytesPerConn: rss, HeapBytesPerConn: rss / 2, Established: int64(conns), Processes: 4, ClientProcesses: 4,
			EstablishSeconds: 2.5, RSSEmptyBytes: 40 << 20, RSSLoadedBytes: 52 << 20, RSSSettled: true,
		}}
	}
	return &Report{
		Meta: Meta{StartedUTC: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Seconds: 420, GitCommit: "0123456789abcdef",
			Kernel: "6.1.0", CPUs: 2, GoVersion: "go1.26.0", WarmupSeconds: 2, MeasureSeconds: 8, PerProcessConns: 15000, Rounds: 3,
			Caveats: []string{"shared cores"}},
		Results: []Result{
			idle("floodgate", 50_000, 240),
			func() Result { r := idle("nbio", 50_000, 1100); r.EstablishOtherCores = 0.9; return r }(),
			{Server: "gnet", Test: "idle", Conns: 50_000, Error: "gnet1 exited early"},
			// After the other idle rows in run order, yet shown beside floodgate's row.
			func() Result { r := idle(wsServer, 50_000, 312); r.Variant = "dynamic"; return r }(),
			echo("floodgate", "dynamic", 10_000, 64, 230_000),
			echo("floodgate", "always", 10_000, 64, 215_000),
			echo("gnet", "", 10_000, 64, 200_000),
			{Server: "floodgate", Variant: "dynamic", Test: "pipelined", Conns: 50, EchoFigures: &EchoFigures{
				MsgBytes: 1024, Depth: 64, SndBuf: 4096, MsgsPerSec: 300_000, P50US: 5000, P99US: 9000,
				Reactor: &ReactorCounters{EpollWaits: 10, EpollEvents: 20, ReadPauses: 7, FramesIn: 100, OutboundQueued: 3 << 10}}},
			echo("netstd", "", 1_000, 1024, 123_456.7),
		},
	}
}
