package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/reports"
)

// summaryFile writes a plausible summary.json, adjusted by edit (a JSON tree), and
// returns its path.
func summaryFile(t *testing.T, dir string, edit func(tree map[string]any)) string {
	t.Helper()
	cpu, rss, conns := 40.0, 3200.0, 10_000.0
	s := reports.Summary{
		Scenario: "steady", Verdict: reports.VerdictPass,
		PushLatencyUS: reports.Latency{Count: 120_000, P50: 1800, P90: 4000, P99: 9000, P999: 30_000, P9999: 60_000, Max: 90_000},
		Messages:      reports.Messages{Sent: 120_000, Acked: 120_000, Delivered: 120_000},
		ReconnectMS:   reports.MillisStats{},
		Gateway:       reports.GatewayFigures{RSSPerConnBytes: &rss, PeakConnections: &conns},
		Efficiency:    reports.Efficiency{SystemCPUSecs: 4.8, CPUUSPerMsg: &cpu},
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := json.Unmarshal(b, &tree); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(tree)
	}
	b, _ = json.Marshal(tree)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, reports.FileSummary)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCompare(t *testing.T) {
	dir := t.TempDir()
	base := summaryFile(t, filepath.Join(dir, "base"), nil)
	push := func(f func(p map[string]any)) func(map[string]any) {
		return func(tree map[string]any) { f(tree["push_latency_us"].(map[string]any)) }
	}
	for _, tc := range []struct {
		name  string
		edit  func(map[string]any)
		args  []string
		code  int
		wants string
	}{
		{name: "the same summary", code: 0, wants: "within bands"},
		{name: "p99 ×3", edit: push(func(p map[string]any) { p["p99"] = p["p99"].(float64) * 3 }), code: 2, wants: "push_p99"},
		{name: "p99 ×3 within a widened band", edit: push(func(p map[string]any) { p["p99"] = p["p99"].(float64) * 3 }),
			args: []string{"-band", "push_p99=250%"}, code: 0},
		{name: "p99 missing", edit: push(func(p map[string]any) { delete(p, "p99") }), code: 2, wants: "MISSING"},
		{name: "zero push samples", edit: push(func(p map[string]any) { p["count"] = 0.0 }), code: 2, wants: "NO SAMPLES"},
		{name: "gateway figures null", edit: func(tree map[string]any) { tree["gateway"] = map[string]any{"rss_per_conn_bytes": nil} },
			code: 2, wants: "MISSING"},
		{name: "a lost message", edit: func(tree map[string]any) { tree["messages"].(map[string]any)["lost"] = 1.0 }, code: 2, wants: "lost"},
		{name: "faster is fine", edit: push(func(p map[string]any) { p["p99"] = 1000.0 }), code: 0, wants: "better"},
		{name: "NEW invalid", edit: func(tree map[string]any) { tree["verdict"] = "invalid" }, code: 3, wants: "INVALID"},
		{name: "only the stats asked for", edit: func(tree map[string]any) { tree["messages"].(map[string]any)["lost"] = 5.0 },
			args: []string{"-stats", "push_p50,push_p99"}, code: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := summaryFile(t, filepath.Join(t.TempDir(), "new"), tc.edit)
			var out, errb bytes.Buffer
			args := append(append([]string{}, tc.args...), base, filepath.Dir(cur)) // NEW as a run folder
			if code := dispatch(append([]string{"compare"}, args...), &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.wants) {
				t.Fatalf("output lacks %q:\n%s", tc.wants, out.String())
			}
			if strings.Contains(out.String(), "reconnect_p99") && !strings.Contains(out.String(), "n/a") {
				t.Fatalf("reconnects measured in neither run must read n/a:\n%s", out.String())
			}
		})
	}
}

func TestCompareUsage(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{{"compare", "only-one"}, {"compare", "-band", "nope=1%", "a", "b"}, {"compare", "/nonexistent/a", "/nonexistent/b"}} {
		if code := dispatch(args, &out, &errb); code != exitcode.Failure {
			t.Fatalf("%v: exit %d, want %d (usage and unreadable inputs are not regressions)", args, code, exitcode.Failure)
		}
	}
}
