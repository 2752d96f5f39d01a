package scenario

import (
	"strings"
	"testing"
	"time"
)

// A gate reads its window, metric, statistic, operator and value, the value in
// its metric's unit: microseconds, bytes, a share or a plain count.
func TestGateReads(t *testing.T) {
	tests := []struct {
		text string
		want Gate
		kind string
	}{
		{"push p99 < 100ms", Gate{Metric: "push", Stat: "p99", Op: "<", Value: 100_000}, KindLatency},
		{"  worst 10s connect max <= 2s ", Gate{Worst: 10 * time.Second, Metric: "connect", Stat: "max", Op: "<=", Value: 2_000_000}, KindLatency},
		{"push count >= 10k", Gate{Metric: "push", Stat: "count", Op: ">=", Value: 10_000}, KindLatency},
		{"lost == 0", Gate{Metric: "lost", Op: "==", Value: 0}, KindCount},
		{"established > 1.5k", Gate{Metric: "established", Op: ">", Value: 1500}, KindCount},
		{"gateway_peak_rss != 1MiB", Gate{Metric: "gateway_peak_rss", Op: "!=", Value: 1 << 20}, KindBytes},
		{"redis_shard_spread < 0.2", Gate{Metric: "redis_shard_spread", Op: "<", Value: 0.2}, KindFraction},
		{"hostile_close_garbage p9999 < 1s", Gate{Metric: "hostile_close_garbage", Stat: "p9999", Op: "<", Value: 1e6}, KindLatency},
	}
	for _, tc := range tests {
		var g Gate
		if err := g.UnmarshalText([]byte(tc.text)); err != nil {
			t.Errorf("%q: %v", tc.text, err)
			continue
		}
		tc.want.Text = strings.TrimSpace(tc.text)
		if g != tc.want || g.Kind() != tc.kind {
			t.Errorf("%q read as %+v (kind %s), want %+v (kind %s)", tc.text, g, g.Kind(), tc.want, tc.kind)
		}
	}
}

// Every malformed gate is refused saying what is wrong, with the gate's grammar.
func TestGateMistakes(t *testing.T) {
	tests := []struct{ text, why string }{
		{"worst push p99 < 1ms", `worst needs a window like 10s, got "push"`},
		{"worst 0s push p99 < 1ms", `worst needs a window like 10s, got "0s"`},
		{"push p99", "too short"},
		{"worst 1s push", "too short"},
		{"speed p99 < 1ms", `unknown metric "speed" (known: acked, connect, delivered`},
		{"worst 10s hostile_close max < 1s", "hostile figures are over the whole run, without windows: drop worst"},
		{"push < 100ms", "push needs a statistic (p50, p90, p99, p999, p9999, max or count), got \"<\""},
		{"worst 10s lost == 0", "worst-window gates apply to latency metrics"},
		{"push p99 < 1ms 2ms", "expected an operator and a value"},
		{"push p99 <", "expected an operator and a value"},
		{"lost =~ 0", `unknown operator "=~" (<, <=, >, >=, ==, !=)`},
		{"push p99 < soon", `a latency needs a duration like 100ms, got "soon"`},
		{"push count < 1.5", `a count, got "1.5"`},
		{"lost == -1", `a count, got "-1"`},
		{"gateway_rss_per_conn < big", `a size like 2KiB, got "big"`},
		{"redis_shard_spread < 120%", `a share like 20%, got "120%"`},
	}
	for _, tc := range tests {
		var g Gate
		err := g.UnmarshalText([]byte(tc.text))
		if err == nil {
			t.Errorf("%q accepted", tc.text)
			continue
		}
		prefix := "gate " + `"` + tc.text + `": `
		suffix := `; expected [worst <window>] <metric> [<stat>] <op> <value>, like "push p99 < 100ms" or "lost == 0"`
		if msg := err.Error(); !strings.HasPrefix(msg, prefix+tc.why) || !strings.HasSuffix(msg, suffix) {
			t.Errorf("%q: %v\nwant %s%s…%s", tc.text, err, prefix, tc.why, suffix)
		}
	}
}

// Holds applies the gate's operator to a measurement, the boundary included or
// not as the operator says; an unknown operator holds for nothing.
func TestGateHolds(t *testing.T) {
	tests := []struct {
		op                   string
		below, equal, higher bool
	}{
		{"<", true, false, false},
		{"<=", true, true, false},
		{">", false, false, true},
		{">=", false, true, true},
		{"==", false, true, false},
		{"!=", true, false, true},
		{"~", false, false, false},
	}
	for _, tc := range tests {
		g := Gate{Op: tc.op, Value: 10}
		if got := [3]bool{g.Holds(9), g.Holds(10), g.Holds(11)}; got != [3]bool{tc.below, tc.equal, tc.higher} {
			t.Errorf("%s 10 holds for 9, 10, 11: %v, want %v", tc.op, got, [3]bool{tc.below, tc.equal, tc.higher})
		}
	}
}

// A gate remembers where it was written; a hostile gate belongs to the whole run.
func TestGatePlaceAndHostileGates(t *testing.T) {
	s := parsed(t, "ok.yaml", valid)
	if at := s.Gates[1].At; at != (Pos{32, 5}) {
		t.Errorf("lost == 0 at %v, want 32:5", at)
	}
	if at := s.Phases[1].Gates[0].At; at != (Pos{29, 13}) {
		t.Errorf("the phase's gate at %v, want 29:13", at)
	}
	for _, tc := range []struct {
		metric  string
		inPhase bool
		refused bool
	}{
		{"hostile_opened", true, true}, {"hostile_opened", false, false}, {"push", true, false}, {"push", false, false},
	} {
		why := hostileGateError(Gate{Metric: tc.metric, Text: tc.metric + " > 0"}, tc.inPhase)
		if (why != "") != tc.refused {
			t.Errorf("%s in phase %v: %q", tc.metric, tc.inPhase, why)
		}
	}
}
