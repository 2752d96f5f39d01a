package bench

import (
	"strings"
	"testing"
)

func TestGoals(t *testing.T) {
	r := sampleReport()
	got := r.goals()
	want := []struct {
		prefix, measured string
		met              bool
	}{
		{"Floodgate ≤ 256 B RSS per idle connection at 50k", "240 B", true},
		{"Floodgate (dynamic) echo msgs/s ≥ 1.1× gnet v2 at 10k connections, 64 B", "1.15× (230,000 vs 200,000 msgs/s)", true},
		{"Floodgate (always) echo msgs/s ≥ 1.1× gnet v2 at 10k connections, 64 B", "1.07× (215,000 vs 200,000 msgs/s)", false},
		{"Floodgate over WebSocket ≤ 2× raw TCP in RSS per idle connection at 50,000", "1.30× (312 B vs 240 B)", true},
	}
	if len(got) != len(want) {
		t.Fatalf("goals = %+v", got)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i].Name, w.prefix) || got[i].Measured != w.measured || got[i].Met != w.met {
			t.Errorf("goal %d = %+v, want %+v", i, got[i], w)
		}
	}

	// A missing figure is reported and not met.
	r.Results = r.Results[1:2] // nbio idle only
	for _, g := range r.goals() {
		if g.Met || g.Measured != "not measured" {
			t.Errorf("goal without data: %+v", g)
		}
	}
}

func TestMarkdown(t *testing.T) {
	md := sampleReport().Markdown()
	for _, want := range []string{
		"# Reactor benchmark",
		"commit `0123456789ab`",
		"| Floodgate ≤ 256 B RSS per idle connection at 50k (nbio's README claims ~1 KB) | 240 B | yes |",
		"| 1.07× (215,000 vs 200,000 msgs/s) | **no** |",
		"## Idle connections",
		"| 50,000 | floodgate | 240 | 120 | 4 | 50,000 | 2.5 s | 40.0 MiB → 52.0 MiB |",
		"| 50,000 | gnet v2 | – | – | – | – | – | error: gnet1 exited early |",
		"## Echo",
		"2 s warm-up, then 8 s measured",
		"| 10,000 | 64 | floodgate (dynamic) | 230,000 | 220.0k–250.0k (3) | 80 | 900 | 1500 | 4.25 (0.00 / 0.00) | 0.90 | 1.10 | 0.00 |",
		"each row is the median of 3 rounds",
		"| 1,000 | 1024 | netstd | 123,457 |",
		"## Pipelined echo",
		"| 50 | 64 | 1024 | server snd 4 KiB, client rcv auto | floodgate (dynamic) | 300,000 | 1 round | 5000 | 9000 | 0.00 | 0.100 | 0.200 | 7 | 3.0 KiB |",
		"| 10,000 | 64 | always | 0.100 | 0.800 | 0 | 0 B |",
		"| 50,000 | nbio | 1100 | 550 | 4 | 50,000 | 2.5 s ⚠ 0.9 other cores |",
		"| 50,000 | floodgate-ws (dynamic) | 312 (1.30× TCP) | 156 (1.30× TCP) | 4 | 50,000 | 2.5 s | 40.0 MiB → 52.0 MiB |",
		"| Floodgate over WebSocket ≤ 2× raw TCP in RSS per idle connection at 50,000 | 1.30× (312 B vs 240 B) | yes |",
		"## Caveats\n\n- shared cores\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	// The WebSocket row follows the raw TCP row it is compared with.
	if tcp, wsRow := strings.Index(md, "| 50,000 | floodgate |"), strings.Index(md, "| 50,000 | floodgate-ws (dynamic) |"); tcp < 0 ||
		wsRow < 0 || strings.Index(md[tcp:], "\n")+tcp+1 != wsRow {
		t.Error("the floodgate-ws idle row is not right after floodgate's")
	}
	// Echo rows are ordered by connections, then size: 1k before 10k.
	if strings.Index(md, "| 1,000 | 1024 | netstd") > strings.Index(md, "| 10,000 | 64 | floodgate (dynamic)") {
		t.Error("echo rows out of order")
	}
	if t.Failed() {
		t.Log(md)
	}
}

func TestCount(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.6: "1,234,568", -45000: "-45,000"} {
		if got := count(in); got != want {
			t.Errorf("count(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestWSGoals: the WebSocket bar is met at exactly 2× and not above it; a missing or
// failed row, or a raw TCP figure with nothing to divide by, is not met.
func TestWSGoals(t *testing.T) {
	idle := func(server string, conns int, rss float64) Result {
		return Result{Server: server, Test: "idle", Conns: conns, IdleFigures: &IdleFigures{RSSBytesPerConn: rss}}
	}
	for _, tt := range []struct {
		name     string
		rows     []Result
		measured []string
		met      []bool
	}{
		{"at the bar", []Result{idle("floodgate", 10_000, 200), idle(wsServer, 10_000, 400)}, []string{"2.00× (400 B vs 200 B)"}, []bool{true}},
		{"over the bar", []Result{idle("floodgate", 10_000, 200), idle(wsServer, 10_000, 401)}, []string{"2.00× (401 B vs 200 B)"}, []bool{false}},
		{"two counts, sorted", []Result{idle(wsServer, 100_000, 300), idle("floodgate", 100_000, 250), idle("floodgate", 50_000, 250), idle(wsServer, 50_000, 600)},
			[]string{"2.40× (600 B vs 250 B)", "1.20× (300 B vs 250 B)"}, []bool{false, true}},
		{"no TCP row", []Result{idle(wsServer, 10_000, 300)}, []string{"not measured"}, []bool{false}},
		{"failed WebSocket row", []Result{idle("floodgate", 10_000, 200), {Server: wsServer, Test: "idle", Conns: 10_000, Error: "refused"}},
			[]string{"not measured"}, []bool{false}},
		{"TCP at zero", []Result{idle("floodgate", 10_000, 0), idle(wsServer, 10_000, 100)}, []string{"no ratio: raw TCP measured 0 B"}, []bool{false}},
		{"no WebSocket row", []Result{idle("floodgate", 10_000, 200)}, []string{"not measured"}, []bool{false}},
	} {
		got := (&Report{Results: tt.rows}).wsGoals()
		if len(got) != len(tt.measured) {
			t.Errorf("%s: goals %+v", tt.name, got)
			continue
		}
		for i, g := range got {
			if g.Measured != tt.measured[i] || g.Met != tt.met[i] || !strings.HasPrefix(g.Name, "Floodgate over WebSocket ≤ 2× raw TCP") {
				t.Errorf("%s: goal %d = %+v, want %q met=%v", tt.name, i, g, tt.measured[i], tt.met[i])
			}
		}
	}
}
