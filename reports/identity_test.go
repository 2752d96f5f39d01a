package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
)

// The accounting by identity reaches summary.json (fields added beside the old
// ones), the gates and both reports; a gate on the replace SLI when nobody
// relogged in fails as not measured.
func TestIdentityAccountingInSummaryGatesAndReports(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 5})
	f.gates = []string{"phantom == 0", "misdelivered == 0", "duplicates == 0", "replace_late == 0",
		"replaced_unexpected == 0", "retried > 0", "redelivered >= 0", "stale == 0", "relogins == 10", "replace p99 < 1s"}
	f.counts = func(a int) loadgen.Counts {
		return loadgen.Counts{Sent: 1000, Acked: 1000, Delivered: 997, Lost: 3, Duplicates: 1, Phantom: 2, Misdelivered: 3,
			Redelivered: 40, Retried: 7, Stale: 0, Relogins: 5, ReplaceLate: uint64(a), ReplacedUnexpected: 0}
	}
	f.steadySystem(1000)
	s := build(t, f)
	m, c := s.Messages, s.Connections
	if m.Duplicates != 2 || m.Phantom != 4 || m.Misdelivered != 6 || m.Redelivered != 80 || m.Retried != 14 ||
		c.Relogins != 10 || c.ReplaceLate != 1 || c.ReplacedUnexpected != 0 {
		t.Fatalf("messages %+v, connections %+v", m, c)
	}
	for _, tc := range []struct {
		gate string
		pass bool
		want float64
	}{
		{"phantom == 0", false, 4}, {"misdelivered == 0", false, 6}, {"duplicates == 0", false, 2},
		{"replace_late == 0", false, 1}, {"replaced_unexpected == 0", true, 0}, {"retried > 0", true, 14},
		{"redelivered >= 0", true, 80}, {"stale == 0", true, 0}, {"relogins == 10", true, 10},
	} {
		g := gate(t, s, tc.gate, "")
		if g.Pass != tc.pass || g.Value == nil || *g.Value != tc.want {
			t.Errorf("%s: pass %v value %v, want %v %v", tc.gate, g.Pass, deref(g.Value), tc.pass, tc.want)
		}
	}
	if g := gate(t, s, "replace p99 < 1s", ""); g.Pass || g.Value != nil || g.Note == "" {
		t.Errorf("a replace gate without relogin samples: %+v", g)
	}
	// summary.json names the new fields as documented, and keeps the old ones.
	raw, err := os.ReadFile(filepath.Join(f.dir, FileSummary))
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Messages    map[string]float64 `json:"messages"`
		Connections map[string]any     `json:"connections"`
	}
	if err := json.Unmarshal(raw, &js); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sent", "acked_by_server", "delivered", "lost", "failed", "duplicates", "out_of_order",
		"phantom", "misdelivered", "redelivered", "retried", "stale"} {
		if _, ok := js.Messages[k]; !ok {
			t.Errorf("summary.json messages lacks %q", k)
		}
	}
	for _, k := range []string{"relogins", "replace_late", "replaced_unexpected"} {
		if _, ok := js.Connections[k]; !ok {
			t.Errorf("summary.json connections lacks %q", k)
		}
	}
	md, err := os.ReadFile(filepath.Join(f.dir, FileReport))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| whole run | 2,000 | 2,000 | 1,994 | 6 | 0 | 0 | 2 | 4 | 6 |",
		"| whole run | 14 | 80 | 0 | 0 | 0 | 0 | 0 |",
		"| relogins (second login on another gateway) | 10 |",
		"2 duplicates, 4 phantom, 6 misdelivered",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	page, err := os.ReadFile(filepath.Join(f.dir, FileHTML))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "misdelivered") || !strings.Contains(string(page), "old session not kicked REPLACED within 1 s") {
		t.Error("index.html lacks the identity accounting or the relogin rows")
	}
}

// Each healed fault gets the time from its heal to the last first delivery of a
// message intended before it, the worst agent's; faults without a heal get none.
func TestHealToLastDeliveryPerFault(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 6})
	start := f.at(-1)
	ms := func(v int) time.Time { return start.Add(time.Duration(v) * time.Millisecond) }
	f.info.Faults = []runfolder.FaultEvent{
		{Phase: "steady", Action: "restart", Target: "router", At: ms(3400), End: ms(3500)},
		{Phase: "steady", Action: "pause", Target: "msg", At: ms(4000), End: ms(5000)},
		{Phase: "steady", Action: "kill", Target: "gw-1", At: ms(5200)},
		{Phase: "steady", Action: "restart", Target: "gw-1", At: ms(5300), Error: "gw-1: exited before it was ready"},
	}
	f.recovery = func(a int) *loadgen.Recovery {
		r := &loadgen.Recovery{Start: start, BucketMS: 100}
		for i := range 70 {
			at := i*100 + 50 // delivered 50 ms into its bucket's width after it
			switch {
			case i >= 25 && i < 34: // pending while the router was down
				at = []int{4200, 4000}[a]
			case i >= 40 && i < 49 && a == 1: // pending while msg was paused
				at = 5080
			}
			r.LastDeliveryMS = append(r.LastDeliveryMS, int64(at))
		}
		r.LastDeliveryMS[60] = -1 // a bucket with nothing delivered
		return r
	}
	f.steadySystem(1000)
	s := build(t, f)
	want := []*float64{ptr(700), ptr(80), nil, nil}
	if len(s.Faults) != len(want) {
		t.Fatalf("%d faults, want %d", len(s.Faults), len(want))
	}
	for i, w := range want {
		got := s.Faults[i].HealToLastDeliveryMS
		if (got == nil) != (w == nil) || (got != nil && *got != *w) {
			t.Errorf("fault %d (%s %s): heal → last delivery %v, want %v", i, s.Faults[i].Action, s.Faults[i].Target, deref(got), deref(w))
		}
	}
	md, err := os.ReadFile(filepath.Join(f.dir, FileReport))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "heal → last delivery") || !strings.Contains(string(md), "| restart | router | +2.5 s | 100 ms | 700 ms |") {
		t.Errorf("report.md's fault table lacks the recovery time:\n%s", md)
	}
	if txt := FiguresText(s); !strings.Contains(txt, "recovery   restart router healed at +2.5 s; the last message pending then was delivered 700 ms later") {
		t.Errorf("the figures printed after a run lack the recovery:\n%s", txt)
	}
}

func ptr(v float64) *float64 { return &v }
