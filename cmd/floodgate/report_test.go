package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/reports"
	"github.com/floodgate/floodgate/runfolder"
)

// tinyRun writes a minimal run folder: one agent, one 10 s phase, samples push
// values of pushUS per second, the given scenario gates.
func tinyRun(t *testing.T, samples int, pushUS int64, gates string) string {
	t.Helper()
	dir := t.TempDir()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	info := runfolder.RunInfo{Scenario: "tiny", ScenarioFile: "scenarios/tiny.yaml", Mode: "loopback", Agents: 1, Clients: 10,
		Started: t0.Add(-time.Second), TrafficStart: t0, TrafficEnd: t0.Add(10 * time.Second), Ended: t0.Add(11 * time.Second),
		Phases: []runfolder.PhaseWindow{{Name: "steady", Start: t0, End: t0.Add(10 * time.Second)}}}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	j, _ := json.Marshal(info)
	write(runfolder.FileRun, j)
	write(runfolder.FileScenario, []byte(fmt.Sprintf("name: tiny\ntopology: {gateways: 1, agents: 1}\nclients: {count: 10}\n"+
		"validity: {min_samples: 10}\ngates: [%s]\nphases: [{name: steady, duration: 10s}]\n", gates)))
	if err := os.Mkdir(filepath.Join(dir, runfolder.DirHlog), 0o755); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	lw := hdr.NewHistogramLogWriter(&log)
	lw.OutputLogFormatVersion()
	lw.OutputStartTime(t0.UnixMilli())
	lw.OutputBaseTime(t0.UnixMilli())
	lw.SetBaseTime(t0.UnixMilli())
	for k := range 10 {
		for _, tag := range []string{loadgen.TagPush, loadgen.TagLag} {
			h := loadgen.NewHistogram()
			for range samples {
				if tag == loadgen.TagLag {
					h.RecordValue(100)
				} else {
					h.RecordValue(pushUS)
				}
			}
			h.SetTag(tag)
			h.SetStartTimeMs(t0.Add(time.Duration(k) * time.Second).UnixMilli())
			h.SetEndTimeMs(t0.Add(time.Duration(k+1) * time.Second).UnixMilli())
			if err := lw.OutputIntervalHistogram(h); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(filepath.Join(runfolder.DirHlog, "agent-0.hlog"), log.Bytes())
	res, _ := json.Marshal(loadgen.Result{Agent: "agent-0", Ended: t0.Add(10 * time.Second),
		Messages: loadgen.Counts{Sent: uint64(10 * samples), Acked: uint64(10 * samples), Delivered: uint64(10 * samples)}})
	write(filepath.Join(runfolder.DirHlog, "agent-0.json"), res)
	return dir
}

func TestReportExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples int
		pushUS  int64
		code    int
		verdict string
	}{
		{"pass", 20, 2000, 0, "PASS"},
		{"fail", 20, 200_000, 2, "FAIL"},
		{"invalid: no samples", 0, 2000, 3, "INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tinyRun(t, tc.samples, tc.pushUS, `"push p99 < 100ms", "lost == 0"`)
			var out, errb bytes.Buffer
			code := dispatch([]string{"report", dir, "-log-level", "warn", "-no-plots"}, &out, &errb)
			if code != tc.code || !strings.Contains(out.String(), tc.verdict) {
				t.Fatalf("exit %d (want %d), out %q, err %q", code, tc.code, out.String(), errb.String())
			}
			for _, f := range []string{reports.FileSummary, reports.FileReport, reports.FileHTML, reports.FileJUnit} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	var out, errb bytes.Buffer
	if code := dispatch([]string{"report", t.TempDir()}, &out, &errb); code != exitcode.Failure {
		t.Fatalf("an empty folder: exit %d, want 1", code)
	}
}

func TestCapacityFlags(t *testing.T) {
	var m machineFlag
	if err := m.Set("cores=32,mem=128GiB"); err != nil || m.cores != 32 || m.mem != 128<<30 {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{"cores=0,mem=1GiB", "cpus=4", "cores=4,mem=lots"} {
		if err := (&machineFlag{}).Set(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	var r rateFlag
	for in, want := range map[string]float64{"250000": 250000, "1M/s": 1e6, "60/m": 1} {
		if err := r.Set(in); err != nil || float64(r) != want {
			t.Errorf("%q: %v %v", in, float64(r), err)
		}
	}
	var out, errb bytes.Buffer
	if code := dispatch([]string{"capacity", t.TempDir(), "-users", "100M"}, &out, &errb); code != exitcode.Failure {
		t.Fatalf("missing flags: exit %d", code)
	}
}
