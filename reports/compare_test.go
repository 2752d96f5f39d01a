package reports

import (
	"testing"
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
