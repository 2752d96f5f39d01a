package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/floodgate/floodgate/runfolder"
)

// summary.json reads back as the Summary the build returned; a missing or
// malformed file is an error naming it.
func TestReadSummaryRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 5, gates: []string{"push p99 < 100ms"}})
	f.gates = []string{"lost == 0", "reconnect p99 < 1s"}
	f.steadySystem(1000)
	built := build(t, f)
	read, err := ReadSummary(filepath.Join(f.dir, FileSummary))
	if err != nil {
		t.Fatal(err)
	}
	// Compare as JSON: times read back in their own location.
	a, _ := json.Marshal(built)
	b, _ := json.Marshal(read)
	if string(a) != string(b) {
		t.Fatalf("summary.json reads back differently:\nbuilt %s\nread  %s", a, b)
	}
	if !reflect.DeepEqual(read.Gates, built.Gates) || read.Verdict != built.Verdict || read.ExitCode != built.ExitCode {
		t.Fatalf("gates or verdict differ: %+v %s %d", read.Gates, read.Verdict, read.ExitCode)
	}
	bad := filepath.Join(t.TempDir(), FileSummary)
	if err := os.WriteFile(bad, []byte(`{"verdict": 3`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{bad, filepath.Join(t.TempDir(), FileSummary)} {
		if _, err := ReadSummary(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file", path, err)
		}
	}
}

// The CPU profiles a run took are listed in the report: each process with its
// role, phase, start relative to the traffic and file, or why it was not taken.
func TestReportListsTheProfiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 20})
	f.info.Profiles = []runfolder.ProfileFile{
		{Process: "gw-1", Role: "gateway", Phase: "steady", From: f.at(5), Seconds: 10, File: "profiles/gw-1.pprof"},
		{Process: "msg", Role: "msg", Phase: "steady", From: f.at(5), Seconds: 10, Error: "connection refused"},
	}
	f.steadySystem(1000)
	s := build(t, f)
	if len(s.Profiles) != 2 {
		t.Fatalf("summary profiles %+v", s.Profiles)
	}
	md, err := os.ReadFile(filepath.Join(f.dir, FileReport))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## CPU profiles", "| gw-1 | gateway | steady | +5.0 s | 10 | profiles/gw-1.pprof |",
		"| msg | msg | steady | +5.0 s | 10 | not taken: connection refused |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if txt := FiguresText(s); !strings.Contains(txt, "1 of 2 CPU profiles taken in phase steady (10 s each), in profiles/") {
		t.Errorf("figures %q do not count the profiles", txt)
	}
	if profileSection(&Summary{}) != nil {
		t.Error("a run without profiles has a profiles section")
	}
}
