package reports

import (
	"math"
	"slices"
	"testing"
)

// Durations, sizes and counts print to about three significant digits in the
// largest unit that keeps them at or above one.
func TestFormatters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"µs", fmtUS(850), "850 µs"}, {"sub-µs", fmtUS(0.5), "0.50 µs"}, {"ms", fmtUS(1500), "1.50 ms"},
		{"tens of ms", fmtUS(42_300), "42.3 ms"}, {"hundreds of ms", fmtUS(250_000), "250 ms"}, {"s", fmtUS(3_200_000), "3.20 s"},
		{"negative", fmtUS(-2500), "-2.50 ms"}, {"ms given in ms", fmtMS(100), "100 ms"}, {"a fraction of a ms", fmtMS(0.25), "250 µs"},
		{"bytes", fmtBytes(512), "512 B"}, {"KiB", fmtBytes(1536), "1.50 KiB"}, {"MiB", fmtBytes(20 << 20), "20.0 MiB"},
		{"GiB", fmtBytes(128 << 30), "128 GiB"}, {"TiB stays TiB", fmtBytes(3 << 50), "3072 TiB"},
		{"count", fmtCount(0), "0"}, {"thousands", fmtCount(1_234_567), "1,234,567"}, {"negative count", fmtCount(-4500), "-4,500"},
		{"a fractional count", fmtCount(2.5), "2.50"}, {"a huge count", fmtCount(2e15), "2000000000000000"},
		{"seconds", fmtSecs(12.345), "12.3 s"},
		{"a latency value", fmtValue(1500, "us"), "1.50 ms"}, {"a size value", fmtValue(2048, "bytes"), "2.00 KiB"},
		{"a fraction value", fmtValue(0.125, "fraction"), "12.5%"}, {"a count value", fmtValue(10_000, "count"), "10,000"},
		{"a stat in µs", fmtStat(1500, "us"), "1.50 ms"}, {"a stat in ms", fmtStat(1500, "ms"), "1.50 s"},
		{"a stat in bytes", fmtStat(1024, "bytes"), "1.00 KiB"}, {"a plain stat", fmtStat(12, "count"), "12"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestSortedKeys(t *testing.T) {
	t.Parallel()
	if got := sortedKeys(map[string]int{"gw-2": 1, "agent-0": 2, "gw-10": 3}); !slices.Equal(got, []string{"agent-0", "gw-10", "gw-2"}) {
		t.Fatalf("%q", got)
	}
	if got := sortedKeys(map[string]bool{}); len(got) != 0 {
		t.Fatalf("%q", got)
	}
}

// Each statistic of a series is HdrHistogram's at that rank; a series without
// samples has none but its count (zero, a measurement), and an unknown
// statistic is never a value.
func TestHistStat(t *testing.T) {
	t.Parallel()
	var vs []int64
	for i := 1; i <= 1000; i++ {
		vs = append(vs, int64(i))
	}
	h := histOf(t, vs...)
	for _, tc := range []struct {
		stat string
		want float64
	}{
		{"count", 1000}, {"p50", 500}, {"p90", 900}, {"p99", 990}, {"p999", 999}, {"p9999", 1000}, {"max", 1000},
	} {
		if v, ok := h.stat(tc.stat); !ok || math.Abs(v-tc.want) > 1 {
			t.Errorf("%s: %g %v, want %g", tc.stat, v, ok, tc.want)
		}
	}
	if _, ok := h.stat("p42"); ok {
		t.Error("an unknown statistic gave a value")
	}
	var empty hist
	if v, ok := empty.stat("count"); !ok || v != 0 {
		t.Errorf("an empty series' count: %g %v, want 0 measured", v, ok)
	}
	for _, s := range []string{"p50", "p99", "max"} {
		if _, ok := empty.stat(s); ok {
			t.Errorf("an empty series has a %s", s)
		}
	}
	if l := empty.latency(); l != (Latency{}) {
		t.Errorf("an empty series' latency %+v, want zero", l)
	}
}
