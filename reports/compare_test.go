package reports

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/floodgate/floodgate/internal/exitcode"
)

func TestParseBand(t *testing.T) {
	for _, tc := range []struct {
		in, unit string
		want     Band
		bad      bool
	}{
		{in: "20%", unit: "us", want: Band{Rel: 0.2}},
		{in: "10%,2ms", unit: "us", want: Band{Rel: 0.1, Abs: 2000}},
		{in: "250ms", unit: "ms", want: Band{Abs: 250}},
		{in: "5%,1KiB", unit: "bytes", want: Band{Rel: 0.05, Abs: 1024}},
		{in: "0", unit: "count", want: Band{}},
		{in: "x%", unit: "us", bad: true},
		{in: "2 parsecs", unit: "us", bad: true},
		{in: "-3", unit: "count", bad: true},
	} {
		got, err := ParseBand(tc.in, tc.unit)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseBand(%q, %s) = %+v, %v; want %+v (error %v)", tc.in, tc.unit, got, err, tc.want, tc.bad)
		}
	}
}

func TestCompareStatRules(t *testing.T) {
	req := CompareStat{Name: "p99", Path: "l.p99", Samples: "l.count", Unit: "us", Band: Band{Rel: 0.2, Abs: 1000}}
	opt := req
	opt.Optional = true
	tree := func(v, n any) map[string]any {
		l := map[string]any{}
		if v != nil {
			l["p99"] = v
		}
		if n != nil {
			l["count"] = n
		}
		return map[string]any{"l": l}
	}
	for _, tc := range []struct {
		name      string
		st        CompareStat
		base, cur map[string]any
		want      string
	}{
		{"within the relative band", req, tree(10_000.0, 5.0), tree(11_900.0, 5.0), CompareOK},
		{"past the relative band", req, tree(10_000.0, 5.0), tree(12_100.0, 5.0), CompareRegression},
		{"within the absolute floor", req, tree(1000.0, 5.0), tree(1900.0, 5.0), CompareOK},
		{"past the absolute floor", req, tree(1000.0, 5.0), tree(2100.0, 5.0), CompareRegression},
		{"better", req, tree(10_000.0, 5.0), tree(5000.0, 5.0), CompareBetter},
		{"missing in NEW", req, tree(10_000.0, 5.0), tree(nil, 5.0), CompareMissing},
		{"null in NEW", req, tree(10_000.0, 5.0), tree(nil, nil), CompareMissing},
		{"zero samples in NEW", req, tree(10_000.0, 5.0), tree(0.0, 0.0), CompareNoSamples},
		{"zero samples in BASE", req, tree(0.0, 0.0), tree(10_000.0, 5.0), CompareNoSamples},
		{"optional, measured in neither", opt, tree(0.0, 0.0), tree(0.0, 0.0), CompareNA},
		{"optional, gone from NEW", opt, tree(10_000.0, 5.0), tree(0.0, 0.0), CompareNoSamples},
		{"optional, new in NEW", opt, tree(0.0, 0.0), tree(10_000.0, 5.0), CompareNoSamples},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := compareStat(tc.st, tc.base, tc.cur); got.Verdict != tc.want {
				t.Fatalf("%s (%s), want %s", got.Verdict, got.Note, tc.want)
			}
		})
	}
}

func TestVerdictAndExitCode(t *testing.T) {
	pass, fail := GateResult{Pass: true}, GateResult{}
	for _, tc := range []struct {
		name    string
		harness string
		invalid []string
		gates   []GateResult
		want    string
		code    int
	}{
		{"all pass", "", nil, []GateResult{pass, pass}, VerdictPass, 0},
		{"no gates", "", nil, nil, VerdictPass, 0},
		{"a gate fails", "", nil, []GateResult{pass, fail}, VerdictFail, 2},
		{"invalid beats fail", "", []string{"lag"}, []GateResult{fail}, VerdictInvalid, 3},
		{"harness error beats all", "boom", []string{"lag"}, []GateResult{fail}, VerdictError, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := verdict(tc.harness, tc.invalid, tc.gates)
			if v != tc.want || ExitCode(v) != tc.code {
				t.Fatalf("verdict %s exit %d, want %s %d", v, ExitCode(v), tc.want, tc.code)
			}
		})
	}
}

// writeSummaryTree writes a summary.json with the given content into a fresh
// run folder and returns the folder.
func writeSummaryTree(t *testing.T, tree map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	writeJSONFile(t, filepath.Join(dir, FileSummary), tree)
	return dir
}

// summaryTree is a summary.json's content for a run with a verdict and a push p99.
func summaryTree(verdict string, p99 float64) map[string]any {
	return map[string]any{
		"verdict":         verdict,
		"push_latency_us": map[string]any{"count": 5000.0, "p50": 900.0, "p99": p99, "p999": 20_000.0},
		"messages":        map[string]any{"sent": 10_000.0, "lost": 0.0, "delivered": 10_000.0},
	}
}

// Compare reads BASE and NEW from run folders or summary.json files alike, and
// its exit code follows the runs' own verdicts before the numbers: a baseline
// that is not a valid run, or a NEW whose harness failed, is not comparable (1);
// an invalid NEW is 3; else 2 for a regression, 0 within the bands.
func TestCompareExitCodes(t *testing.T) {
	t.Parallel()
	stats := []CompareStat{{Name: "push_p99", Path: "push_latency_us.p99", Samples: "push_latency_us.count", Unit: "us", Band: Band{Rel: 0.2, Abs: 2000}}}
	tests := []struct {
		name      string
		base, cur map[string]any
		code      int
		last      string
	}{
		{"within the band", summaryTree(VerdictPass, 10_000), summaryTree(VerdictPass, 11_000), exitcode.OK, "within bands: "},
		{"a regression", summaryTree(VerdictPass, 10_000), summaryTree(VerdictPass, 13_000), exitcode.GateFailed, "REGRESSION: "},
		{"better is fine", summaryTree(VerdictPass, 10_000), summaryTree(VerdictPass, 4000), exitcode.OK, "within bands: "},
		{"a failed run is compared", summaryTree(VerdictPass, 10_000), summaryTree(VerdictFail, 10_000), exitcode.OK, "within bands: "},
		{"an invalid NEW", summaryTree(VerdictPass, 10_000), summaryTree(VerdictInvalid, 10_000), exitcode.Invalid, "INVALID: "},
		{"an invalid baseline", summaryTree(VerdictInvalid, 10_000), summaryTree(VerdictPass, 10_000), exitcode.Failure, "NOT COMPARABLE: "},
		{"a baseline whose harness failed", summaryTree(VerdictError, 10_000), summaryTree(VerdictPass, 10_000), exitcode.Failure, "NOT COMPARABLE: "},
		{"NEW's harness failed", summaryTree(VerdictPass, 10_000), summaryTree(VerdictError, 13_000), exitcode.Failure, "NOT COMPARABLE: "},
		{"a statistic missing from NEW", summaryTree(VerdictPass, 10_000), map[string]any{"verdict": VerdictPass}, exitcode.GateFailed, "REGRESSION: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := writeSummaryTree(t, tc.base)
			cur := filepath.Join(writeSummaryTree(t, tc.cur), FileSummary) // a file, not a folder
			c, err := Compare(base, cur, stats)
			if err != nil {
				t.Fatal(err)
			}
			if c.ExitCode() != tc.code || c.Regressed() != (tc.code == exitcode.GateFailed) && tc.code != exitcode.Failure {
				t.Fatalf("exit %d regressed %v, want %d (rows %+v)", c.ExitCode(), c.Regressed(), tc.code, c.Rows)
			}
			var out strings.Builder
			if err := c.WriteTable(&out); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if !strings.HasPrefix(lines[len(lines)-1], tc.last) {
				t.Fatalf("last line %q, want it to start %q", lines[len(lines)-1], tc.last)
			}
		})
	}
}

// The table has a row per statistic with both values in the statistic's unit,
// the signed change with its percentage, the band and the verdict with its note.
func TestCompareTableRows(t *testing.T) {
	t.Parallel()
	base := writeSummaryTree(t, summaryTree(VerdictPass, 10_000))
	curTree := summaryTree(VerdictPass, 13_000)
	curTree["messages"].(map[string]any)["lost"] = 5.0
	cur := writeSummaryTree(t, curTree)
	stats := []CompareStat{
		{Name: "push_p99", Path: "push_latency_us.p99", Samples: "push_latency_us.count", Unit: "us", Band: Band{Rel: 0.2, Abs: 2000}},
		{Name: "push_p50", Path: "push_latency_us.p50", Samples: "push_latency_us.count", Unit: "us", Band: Band{Rel: 0.2, Abs: 500}},
		{Name: "lost", Path: "messages.lost", Samples: "messages.sent", Unit: "count", Band: Band{Rel: 0.1}},
		{Name: "reconnect_p99", Path: "reconnect_ms.p99", Samples: "reconnect_ms.count", Unit: "ms", Optional: true, Band: Band{0.25, 250}},
	}
	c, err := Compare(base, cur, stats)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := c.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	fields := map[string][]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Split(regexp.MustCompile(`\s{2,}`).ReplaceAllString(strings.TrimSpace(l), "\t"), "\t"); len(f) > 1 {
			fields[f[0]] = f[1:]
		}
	}
	for name, want := range map[string][]string{
		"stat":          {"base", "new", "delta", "band", "verdict"},
		"push_p99":      {"10.0 ms", "13.0 ms", "+3.00 ms (+30.0%)", "±2.00 ms", CompareRegression},
		"push_p50":      {"900 µs", "900 µs", "+0.00 µs (+0.0%)", "±500 µs", CompareOK},
		"lost":          {"0", "5", "+5", "±0", CompareRegression},
		"reconnect_p99": {"—", "—", "—", "—", CompareNA + ": measured in neither run"},
	} {
		if !slices.Equal(fields[name], want) {
			t.Errorf("row %s: %q, want %q", name, fields[name], want)
		}
	}
}

// A folder without summary.json says how to make one; an unreadable or
// malformed summary is an error naming it.
func TestCompareInputErrors(t *testing.T) {
	t.Parallel()
	good := writeSummaryTree(t, summaryTree(VerdictPass, 1000))
	empty := t.TempDir()
	bad := filepath.Join(t.TempDir(), "broken.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, base, cur, want string
	}{
		{"no summary in the folder", empty, good, "make one with `floodgate report " + empty + "`"},
		{"no summary in NEW", good, empty, "no summary.json"},
		{"malformed", good, bad, bad},
		{"no such file", filepath.Join(empty, "nope.json"), good, "nope.json"},
	} {
		if _, err := Compare(tc.base, tc.cur, DefaultStats()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

// A run compared with itself is within every default band; every default
// statistic is found in a real summary.json, with the summary's sample counts.
func TestDefaultStatsFindTheirValuesInASummary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 5})
	f.steadySystem(1000)
	build(t, f)
	c, err := Compare(f.dir, f.dir, DefaultStats())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Rows {
		want := CompareOK
		if r.Stat.Optional {
			want = CompareNA // no reconnects in this run
		}
		if r.Verdict != want {
			t.Errorf("%s (%s): %s (%s), want %s", r.Stat.Name, r.Stat.Path, r.Verdict, r.Note, want)
		}
	}
	if c.ExitCode() != exitcode.OK || c.NewVerdict != VerdictPass || c.BaseVerdict != VerdictPass {
		t.Fatalf("exit %d, verdicts %q %q", c.ExitCode(), c.BaseVerdict, c.NewVerdict)
	}
}

func TestLookupFindsNumbersAtDottedPaths(t *testing.T) {
	t.Parallel()
	tree := map[string]any{"a": map[string]any{"b": 2.5, "s": "x", "n": nil, "c": map[string]any{"d": 0.0}}, "top": 7.0}
	for _, tc := range []struct {
		path string
		want *float64
	}{
		{"a.b", ptr(2.5)}, {"a.c.d", ptr(0)}, {"top", ptr(7)},
		{"a.s", nil}, {"a.n", nil}, {"a", nil}, {"a.x", nil}, {"top.deeper", nil}, {"", nil},
	} {
		got := lookup(tree, tc.path)
		if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("lookup(%q) = %v, want %v", tc.path, deref(got), deref(tc.want))
		}
	}
}
