package scenario

import (
	"fmt"
	"strings"
	"time"

	"github.com/floodgate/floodgate/internal/units"
)

// Gate is one pass/fail condition on a run's results, written in a scenario as
//
//	[worst <window>] <metric> [<stat>] <op> <value>
//
// e.g. "push p99 < 100ms", "lost == 0", "reconnect p99 < 3s",
// "worst 10s push p99 < 150ms" (the worst p99 over consecutive 10 s windows),
// "gateway_rss_per_conn < 2KiB". A gate on a metric with no samples fails.
type Gate struct {
	At     Pos // where it was written (set by the reader)
	Text   string
	Worst  time.Duration // window for a worst-window gate; 0: over the whole run (or phase)
	Metric string
	Stat   string // for latency metrics: p50, p90, p99, p999, p9999, max, count
	Op     string
	Value  float64 // microseconds for latencies, bytes for sizes, plain for counts
}

// Metric kinds.
const (
	KindLatency = "latency" // value is a duration; needs a stat
	KindCount   = "count"   // value is a number
	KindBytes   = "bytes"   // value is a size
	// KindFraction's value is a share, written 20% or 0.2.
	KindFraction = "fraction"
)

// Metrics lists every metric a gate may name, with its kind.
var Metrics = map[string]string{
	"push": KindLatency, "push_slow": KindLatency, "connect": KindLatency, "reconnect": KindLatency,
	"lag": KindLatency, "hiccup": KindLatency, "replace": KindLatency,
	"sent": KindCount, "acked": KindCount, "delivered": KindCount, "lost": KindCount, "lost_slow": KindCount, "lost_normal": KindCount, "failed": KindCount,
	"duplicates": KindCount, "out_of_order": KindCount, "evicted": KindCount,
	"phantom": KindCount, "misdelivered": KindCount, "redelivered": KindCount, "retried": KindCount, "stale": KindCount,
	"relogins": KindCount, "replace_late": KindCount, "replaced_unexpected": KindCount,
	"established": KindCount, "peak_established": KindCount, "reconnects": KindCount,
	"rejected_busy": KindCount, "kicks_slow": KindCount, "process_deaths": KindCount,
	"gateway_rss_per_conn": KindBytes, "gateway_peak_rss": KindBytes,
	// redis_shard_spread: (most − fewest) ÷ mean of the commands the Redis
	// Cluster's shard primaries served over the traffic (whole run only).
	"redis_shard_spread": KindFraction,
	// Hostile connections (behaviours.hostile), over the whole run: the time from
	// connect to the server's close over every class, and per class.
	"hostile_close": KindLatency, "hostile_close_slowloris": KindLatency, "hostile_close_prelogin": KindLatency,
	"hostile_close_garbage": KindLatency, "hostile_close_oversized": KindLatency, "hostile_close_send_flood": KindLatency,
	"hostile_close_sync_loop": KindLatency, "hostile_close_made_up_recipients": KindLatency,
	"hostile_opened": KindCount, "hostile_closed": KindCount, "hostile_over_bound": KindCount, "hostile_open_at_end": KindCount,
}

var stats = map[string]bool{"p50": true, "p90": true, "p99": true, "p999": true, "p9999": true, "max": true, "count": true}
var ops = map[string]bool{"<": true, "<=": true, ">": true, ">=": true, "==": true, "!=": true}

// UnmarshalText parses a gate.
func (g *Gate) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	f := strings.Fields(text)
	g.Text = text
	bad := func(why string) error {
		return fmt.Errorf("gate %q: %s; expected [worst <window>] <metric> [<stat>] <op> <value>, like \"push p99 < 100ms\" or \"lost == 0\"", text, why)
	}
	if len(f) >= 2 && f[0] == "worst" {
		var w units.Duration
		if err := w.UnmarshalText([]byte(f[1])); err != nil || w <= 0 {
			return bad(fmt.Sprintf("worst needs a window like 10s, got %q", f[1]))
		}
		g.Worst, f = w.D(), f[2:]
	}
	if len(f) < 3 {
		return bad("too short")
	}
	g.Metric = f[0]
	kind, ok := Metrics[g.Metric]
	if !ok {
		return bad(fmt.Sprintf("unknown metric %q (known: %s)", g.Metric, strings.Join(sortedKeys(Metrics), ", ")))
	}
	if g.Worst > 0 && isHostileMetric(g.Metric) {
		return bad("hostile figures are over the whole run, without windows: drop worst")
	}
	f = f[1:]
	if kind == KindLatency {
		if !stats[f[0]] {
			return bad(fmt.Sprintf("%s needs a statistic (p50, p90, p99, p999, p9999, max or count), got %q", g.Metric, f[0]))
		}
		g.Stat, f = f[0], f[1:]
	} else if g.Worst > 0 {
		return bad("worst-window gates apply to latency metrics")
	}
	if len(f) != 2 {
		return bad("expected an operator and a value")
	}
	g.Op = f[0]
	if !ops[g.Op] {
		return bad(fmt.Sprintf("unknown operator %q (<, <=, >, >=, ==, !=)", g.Op))
	}
	v := f[1]
	switch {
	case kind == KindLatency && g.Stat != "count":
		var d units.Duration
		if err := d.UnmarshalText([]byte(v)); err != nil {
			return bad(fmt.Sprintf("a latency needs a duration like 100ms, got %q", v))
		}
		g.Value = float64(d.D().Microseconds())
	case kind == KindFraction:
		var fr units.Fraction
		if err := fr.UnmarshalText([]byte(v)); err != nil {
			return bad(fmt.Sprintf("a share like 20%%, got %q", v))
		}
		g.Value = float64(fr)
	case kind == KindBytes:
		s, err := units.ParseSize(v)
		if err != nil {
			return bad(fmt.Sprintf("a size like 2KiB, got %q", v))
		}
		g.Value = float64(s)
	default:
		var c units.Count
		if err := c.UnmarshalText([]byte(v)); err != nil {
			return bad(fmt.Sprintf("a count, got %q", v))
		}
		g.Value = float64(c)
	}
	return nil
}

// Holds reports whether measured satisfies the gate.
func (g *Gate) Holds(measured float64) bool {
	switch g.Op {
	case "<":
		return measured < g.Value
	case "<=":
		return measured <= g.Value
	case ">":
		return measured > g.Value
	case ">=":
		return measured >= g.Value
	case "==":
		return measured == g.Value
	case "!=":
		return measured != g.Value
	}
	return false
}

// Kind returns the gate's metric kind.
func (g *Gate) Kind() string { return Metrics[g.Metric] }

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sortStrings(ks)
	return ks
}
