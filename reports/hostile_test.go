package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/floodgate/floodgate/loadgen"
)

// hostileResult is one agent's class with the given close times (ms) and endings.
func hostileResult(t *testing.T, class string, bound time.Duration, closeMS []int64, r loadgen.HostileResult) loadgen.HostileResult {
	t.Helper()
	h := loadgen.NewHistogram()
	for _, ms := range closeMS {
		h.RecordValue(ms * 1000) //nolint:errcheck // within range
	}
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	r.Class, r.Bound, r.CloseHist, r.CloseUS = class, loadgen.Duration(bound), string(b), loadgen.Summarise(h)
	r.Opened = uint64(len(closeMS))
	return r
}

// Hostile classes merge over the agents into summary.json and the report, and
// the hostile gates read them: over-bound and open-at-end connections fail
// theirs, close times merge as distributions, a class that did not run is not
// measured.
func TestHostileFiguresAndGates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 5})
	f.gates = []string{"hostile_over_bound == 0", "hostile_open_at_end == 0", "hostile_opened == 7",
		"hostile_close_prelogin max < 10.2s", "hostile_close_garbage p99 < 1s", "hostile_close max < 11s",
		"hostile_close_sync_loop p99 < 5s", "push p99 < 100ms"}
	f.hostile = func(a int) []loadgen.HostileResult {
		pre := hostileResult(t, "prelogin", 12*time.Second, []int64{10_000, 10_050}, loadgen.HostileResult{
			Conns: 5, PeakOpen: 5, Closed: 2, WithinBound: 2, Endings: map[string]uint64{"KICK IDLE/LOGIN_TIMEOUT": 2}})
		garbage := hostileResult(t, "garbage", time.Second, []int64{3}, loadgen.HostileResult{
			Conns: 1, PeakOpen: 1, Closed: 1, WithinBound: 1, Endings: map[string]uint64{"KICK PROTOCOL/FRAME_TOO_LARGE": 1}})
		if a == 1 { // one garbage connection the server never closed
			garbage = hostileResult(t, "garbage", time.Second, []int64{1_500}, loadgen.HostileResult{
				Conns: 1, PeakOpen: 1, OverBound: 1, OpenAtEnd: 1, Endings: map[string]uint64{"open_at_end": 1}})
			pre = hostileResult(t, "prelogin", 12*time.Second, []int64{10_100, 10_000}, pre)
		}
		return []loadgen.HostileResult{pre, garbage}
	}
	s := build(t, f)
	want := map[string]bool{"hostile_over_bound == 0": false, "hostile_open_at_end == 0": false, "hostile_opened == 7": false,
		"hostile_close_prelogin max < 10.2s": true, "hostile_close_garbage p99 < 1s": false, "hostile_close max < 11s": true,
		"hostile_close_sync_loop p99 < 5s": false, "push p99 < 100ms": true}
	for name, pass := range want {
		if g := gate(t, s, name, ""); g.Pass != pass {
			t.Errorf("%s: pass %v, want %v (%+v)", name, g.Pass, pass, g)
		}
	}
	if g := gate(t, s, "hostile_opened == 7", ""); g.Value == nil || *g.Value != 6 {
		t.Errorf("hostile_opened: %+v, want 6", g)
	}
	if g := gate(t, s, "hostile_close_sync_loop p99 < 5s", ""); g.Value != nil || g.Note == "" {
		t.Errorf("a class that did not run was measured: %+v", g)
	}
	if len(s.Hostile) != 2 || s.Hostile[0].Class != "prelogin" || s.Hostile[1].Class != "garbage" {
		t.Fatalf("hostile classes %+v", s.Hostile)
	}
	pre, garbage := s.Hostile[0], s.Hostile[1]
	if pre.Conns != 10 || pre.Opened != 4 || pre.ClosedWithinBound != 4 || pre.Endings["KICK IDLE/LOGIN_TIMEOUT"] != 4 ||
		pre.BoundMS != 12000 || pre.CloseMS.Count != 4 || pre.CloseMS.Max < 10_090 || pre.CloseMS.Max > 10_110 {
		t.Errorf("prelogin merged wrong: %+v", pre)
	}
	if garbage.OverBound != 1 || garbage.OpenAtEnd != 1 || garbage.Closed != 1 || garbage.Endings["open_at_end"] != 1 {
		t.Errorf("garbage merged wrong: %+v", garbage)
	}
	if txt := FiguresText(s); !strings.Contains(txt, "hostile garbage") || !strings.Contains(txt, "1 over its 1.00 s bound, 1 open at the end") {
		t.Errorf("the run's figures do not tell the hostile classes:\n%s", txt)
	}
	md, err := os.ReadFile(filepath.Join(f.dir, FileReport))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "Hostile connections") || !strings.Contains(string(md), "| prelogin | 12.0 s |") ||
		!strings.Contains(string(md), "KICK IDLE/LOGIN_TIMEOUT 4") {
		t.Errorf("report.md has no hostile table:\n%s", md)
	}
}

// Without hostile connections a hostile gate is not measured and fails, and
// summary.json has no hostile section.
func TestHostileGateWithoutHostileFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 5})
	f.gates = []string{"hostile_over_bound == 0"}
	s := build(t, f)
	if g := gate(t, s, "hostile_over_bound == 0", ""); g.Pass || g.Value != nil || !strings.Contains(g.Note, "no hostile connections") {
		t.Fatalf("%+v", g)
	}
	if s.Hostile != nil {
		t.Fatalf("hostile section without hostile connections: %+v", s.Hostile)
	}
}
