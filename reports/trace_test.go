package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The five trace hop tags become the whole run's and each phase's hop table,
// beside the push latency; a run without them has neither.
func TestTraceHops(t *testing.T) {
	t.Parallel()
	hopUS := map[string]int64{"trace_uplink": 300, "trace_store": 900, "trace_route": 400, "trace_gateway": 200, "trace_downlink": 150}
	f := newFixture(t, fxPhase{name: "a", secs: 3}, fxPhase{name: "b", secs: 3})
	for _, h := range traceHops() {
		f.extraTags = append(f.extraTags, h.tag)
	}
	inner := f.values
	f.values = func(a, k int, tag string) []int64 {
		if us, ok := hopUS[tag]; ok && k >= 0 {
			if k >= 3 {
				us *= 2 // phase b is twice as slow at every hop
			}
			return []int64{us, us, us}
		}
		return inner(a, k, tag)
	}
	f.steadySystem(1000)
	s := build(t, f)
	if len(s.TraceHopsUS) != 5 || s.TraceHopsUS[0].Hop != "uplink" || s.TraceHopsUS[4].Hop != "downlink" {
		t.Fatalf("whole-run hops %+v", s.TraceHopsUS)
	}
	a, b := s.Phases[0].TraceHopsUS, s.Phases[1].TraceHopsUS
	if len(a) != 5 || len(b) != 5 {
		t.Fatalf("phase hops %+v %+v", a, b)
	}
	if got := a[1].LatencyUS; got.Count != 18 || got.P50 < 899 || got.P50 > 901 {
		t.Fatalf("phase a store %+v: 2 agents × 3 intervals × 3 samples of 900 µs", got)
	}
	if got := b[1].LatencyUS; got.P50 < 1799 || got.P50 > 1801 {
		t.Fatalf("phase b store %+v, want 1.8 ms", got)
	}
	md := readReport(t, f)
	for _, want := range []string{"## Where the time goes", "| uplink p50 / p99 |", "| a | 18 | 0.30 / 0.30 | 0.90 / 0.90 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if strings.Contains(md, "**trace_store") || strings.Contains(md, "**trace hop") {
		t.Error("a trace hop also got a latency table of its own")
	}
	if got := tagTitle("trace_route"); got != "trace hop route (→ routed to the recipient's gateway)" {
		t.Errorf("tagTitle(trace_route) = %q", got)
	}

	plain := newFixture(t, fxPhase{name: "a", secs: 3})
	plain.steadySystem(1000)
	if s := build(t, plain); s.TraceHopsUS != nil || s.Phases[0].TraceHopsUS != nil || strings.Contains(readReport(t, plain), "Where the time goes") {
		t.Fatal("a run without traced messages shows trace hops")
	}
}

// readReport reads the fixture's report.md.
func readReport(t *testing.T, f *fixture) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, FileReport))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
