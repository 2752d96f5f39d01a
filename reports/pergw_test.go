package reports

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/floodgate/floodgate/loadgen"
)

// gwSamples are the push latencies (µs) one agent recorded for one gateway in
// one phase.
type gwSamples struct {
	gateway, phase string
	us             []int64
}

// gatewayPushResults encodes samples as an agent writes them, adding each to the
// reference histograms ref[gateway][phase] (phase "" for the whole run).
func gatewayPushResults(t *testing.T, ref map[string]map[string]*hdr.Histogram, samples ...gwSamples) []loadgen.GatewayPush {
	t.Helper()
	var out []loadgen.GatewayPush
	for _, s := range samples {
		h := hdr.NewPacked(1, int64(time.Hour/time.Microsecond), 3)
		if ref[s.gateway] == nil {
			ref[s.gateway] = map[string]*hdr.Histogram{"": loadgen.NewHistogram()}
		}
		if ref[s.gateway][s.phase] == nil {
			ref[s.gateway][s.phase] = loadgen.NewHistogram()
		}
		for _, v := range s.us {
			if err := h.RecordValue(v); err != nil {
				t.Fatal(err)
			}
			ref[s.gateway][s.phase].RecordValue(v)
			ref[s.gateway][""].RecordValue(v)
		}
		b, err := h.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, loadgen.GatewayPush{Gateway: s.gateway, Phase: s.phase, Hist: string(b)})
	}
	return out
}

// spread returns n values from base up, one µs apart per step.
func spread(base int64, n int, step int64) []int64 {
	vs := make([]int64, n)
	for i := range vs {
		vs[i] = base + int64(i)*step
	}
	return vs
}

// readReportFiles returns report.md, index.html and summary.json of a built run.
func readReportFiles(t *testing.T, dir string) (md, page, sum string) {
	t.Helper()
	var out [3]string
	for i, name := range []string{FileReport, FileHTML, FileSummary} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out[0], out[1], out[2]
}

// The agents' per-gateway histograms merge by (gateway, phase) into exactly the
// percentiles of one histogram fed every sample; each gateway's samples stay its
// own; the report shows the whole-run table and the p99 matrix in every format.
func TestPushByGatewayMergesAgentsAndRenders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "warm", secs: 3}, fxPhase{name: "cut", secs: 4})
	ref := map[string]map[string]*hdr.Histogram{}
	perAgent := [][]loadgen.GatewayPush{
		gatewayPushResults(t, ref,
			gwSamples{"gw-1", "warm", spread(1000, 40, 7)},
			gwSamples{"gw-2", "warm", spread(1200, 30, 11)},
			gwSamples{"gw-2", "cut", spread(2_000_000, 25, 90_000)}), // gw-2 cut off: seconds
		gatewayPushResults(t, ref,
			gwSamples{"gw-2", "cut", spread(3_000_000, 10, 50_000)},
			gwSamples{"gw-10", "cut", spread(1500, 60, 3)},
			gwSamples{"gw-1", "cut", spread(1100, 50, 5)}),
	}
	f.pushByGateway = func(a int) []loadgen.GatewayPush { return perAgent[a] }
	f.steadySystem(1000)
	dir := f.write()
	s, err := BuildWith(dir, Options{NoPlots: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range s.PushByGateway {
		names = append(names, g.Gateway)
		if want := loadgen.Summarise(ref[g.Gateway][""]); g.PushLatencyUS != want {
			t.Fatalf("%s whole run: merged %+v, single histogram %+v", g.Gateway, g.PushLatencyUS, want)
		}
		if len(g.Phases) != 2 || g.Phases[0].Phase != "warm" || g.Phases[1].Phase != "cut" {
			t.Fatalf("%s: phases %+v, want warm and cut in order", g.Gateway, g.Phases)
		}
		for _, ph := range g.Phases {
			var want Latency
			if h := ref[g.Gateway][ph.Phase]; h != nil {
				want = loadgen.Summarise(h)
			}
			if ph.PushLatencyUS != want {
				t.Fatalf("%s in %s: merged %+v, single histogram %+v", g.Gateway, ph.Phase, ph.PushLatencyUS, want)
			}
		}
	}
	if got := strings.Join(names, " "); got != "gw-1 gw-2 gw-10" {
		t.Fatalf("gateways %q, want gw-1 gw-2 gw-10 (natural order)", got)
	}
	if n := s.PushByGateway[1].Phases[1].PushLatencyUS.Count; n != 35 {
		t.Fatalf("gw-2 in cut: %d samples, want both agents' 25 + 10", n)
	}
	if n := s.PushByGateway[2].Phases[0].PushLatencyUS.Count; n != 0 {
		t.Fatalf("gw-10 in warm: %d samples, want none", n)
	}

	md, page, sum := readReportFiles(t, dir)
	cut := s.PushByGateway[1].Phases[1].PushLatencyUS
	for _, want := range []string{
		"## Push latency by recipient's gateway",
		"**p50 / p99 per phase (count in brackets)**",
		"| gateway | warm | cut |",
		"| gw-10 | — | ",
		"| gw-2 | " + matrixCell(s.PushByGateway[1].Phases[0].PushLatencyUS) + " | " + matrixCell(cut) + " |",
		"phase cut: by p50, worst gw-2",
	} {
		if !strings.Contains(md, want) {
			t.Fatalf("report.md lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(page, `id="push-by-gateway"`) || !strings.Contains(page, "p50 / p99 per phase") {
		t.Fatal("index.html lacks the push latency by recipient's gateway")
	}
	if !strings.Contains(sum, `"push_by_gateway"`) {
		t.Fatal("summary.json lacks push_by_gateway")
	}
	if txt := FiguresText(s); !strings.Contains(txt, "gateways   phase cut: by p50, worst gw-2") || strings.Contains(txt, "phase warm") {
		t.Fatalf("the figures printed after a run should name gw-2 in cut and nothing in warm (no gateway twice as bad):\n%s", txt)
	}
}

// A run folder whose agents did not record latency per gateway (written before
// they did) still builds, without the section or the summary field; one whose
// histogram is unreadable says so in the caveats and keeps the other gateways.
func TestPushByGatewayOldAndDamagedFolders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		results     func(t *testing.T) func(a int) []loadgen.GatewayPush
		wantSection bool
		wantCaveat  string
	}{
		{name: "old folder", results: func(*testing.T) func(int) []loadgen.GatewayPush { return nil }},
		{name: "one unreadable histogram", wantSection: true, wantCaveat: "push latency of gateway gw-9 in phase steady unreadable",
			results: func(t *testing.T) func(int) []loadgen.GatewayPush {
				good := gatewayPushResults(t, map[string]map[string]*hdr.Histogram{}, gwSamples{"gw-1", "steady", spread(1000, 20, 1)})
				bad := loadgen.GatewayPush{Gateway: "gw-9", Phase: "steady", Hist: "not a histogram"}
				return func(a int) []loadgen.GatewayPush { return append(good, bad) }
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fxPhase{name: "steady", secs: 3})
			f.pushByGateway = tc.results(t)
			f.steadySystem(1000)
			dir := f.write()
			s, err := BuildWith(dir, Options{NoPlots: true})
			if err != nil {
				t.Fatal(err)
			}
			md, page, sum := readReportFiles(t, dir)
			has := strings.Contains(md, "Push latency by recipient's gateway")
			if has != tc.wantSection || strings.Contains(page, `id="push-by-gateway"`) != tc.wantSection ||
				strings.Contains(sum, `"push_by_gateway"`) != tc.wantSection {
				t.Fatalf("section in report.md %v, want %v", has, tc.wantSection)
			}
			if tc.wantSection && (len(s.PushByGateway) != 1 || s.PushByGateway[0].Gateway != "gw-1") {
				t.Fatalf("want gw-1 alone, got %+v", s.PushByGateway)
			}
			if tc.wantCaveat != "" && !strings.Contains(strings.Join(s.Caveats, "\n"), tc.wantCaveat) {
				t.Fatalf("caveats lack %q: %v", tc.wantCaveat, s.Caveats)
			}
		})
	}
}

// The worst gateway of a phase is named by p50 when most of its users waited, by
// p99 when only its tail did, and not at all when the difference is noise (under
// the SLO, or less than twice the best).
func TestWorstGatewayLine(t *testing.T) {
	t.Parallel()
	lat := func(p50, p99 int64) Latency { return Latency{Count: 100, P50: p50, P99: p99, Max: p99} }
	tests := []struct {
		name string
		gw   [3]Latency // gw-1, gw-2, gw-3 in the phase
		want string     // "" : no line
	}{
		{"frozen gw-2: every p99 alike, its p50 stands out",
			[3]Latency{lat(1_200, 7_700_000), lat(2_160_000, 7_900_000), lat(1_180, 7_800_000)}, "by p50, worst gw-2"},
		{"a tail on gw-3 only", [3]Latency{lat(1_000, 3_000), lat(1_100, 2_900), lat(1_050, 900_000)}, "by p99, worst gw-3"},
		{"twice as bad but under the SLO", [3]Latency{lat(1_000, 14_000), lat(1_000, 4_000), lat(1_000, 5_000)}, ""},
		{"over the SLO but not twice as bad", [3]Latency{lat(150_000, 400_000), lat(120_000, 300_000), lat(110_000, 250_000)}, ""},
		{"one gateway alone", [3]Latency{lat(900_000, 2_000_000), {}, {}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var gs []GatewayPushSummary
			for i, l := range tc.gw {
				gs = append(gs, GatewayPushSummary{Gateway: fmt.Sprintf("gw-%d", i+1), Phases: []GatewayPhasePush{{Phase: "p", PushLatencyUS: l}}})
			}
			line, ok := worstGatewayLine(gs, 0)
			if ok != (tc.want != "") || !strings.HasPrefix(line, tc.want) {
				t.Fatalf("got %q (%v), want a line starting %q", line, ok, tc.want)
			}
		})
	}
}
