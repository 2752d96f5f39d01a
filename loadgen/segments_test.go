package loadgen

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The segments of a plan hold each of its users exactly once, in uid order, and
// their rates add up to the plan's, however the users divide.
func TestSegmentsPartitionUsersAndRates(t *testing.T) {
	for _, tc := range []struct{ users, count int }{{10, 1}, {10, 3}, {7, 7}, {100, 6}, {1001, 4}, {3, 5}} {
		p := Plan{Users: tc.users, UIDBase: 500}
		next := p.UIDBase + 1
		rate := 0.0
		for i := range tc.count {
			s := Segment{i, tc.count}
			first, n := s.users(&p)
			if first != next || n < 0 {
				t.Fatalf("%d users in %d: segment %d holds %d from uid %d, want them from %d", tc.users, tc.count, i, n, first, next)
			}
			next += uint64(n)
			rate += s.share(&p, 1000)
		}
		if next != p.UIDBase+uint64(tc.users)+1 {
			t.Errorf("%d users in %d: the segments end at uid %d", tc.users, tc.count, next-1)
		}
		if math.Abs(rate-1000) > 1e-9 {
			t.Errorf("%d users in %d: rates add up to %v, want 1000", tc.users, tc.count, rate)
		}
	}
}

// A plan run as segments offers the messages it offers run whole: each
// segment's slots at its share of the rate, in every phase, add up to the
// whole's, give or take a slot per segment and phase (a phase's last slot falls
// on either side of its end).
func TestSegmentsOfferWhatTheWholePlanOffers(t *testing.T) {
	s := int64(time.Second)
	offered := func(seg Segment) uint64 {
		a := timerAgent(0)
		a.log = slog.New(slog.DiscardHandler)
		a.opts.Segment = seg
		a.plan = Plan{Users: 100, Traffic: Traffic{Rate: 400, Pattern: "pairs"}, Phases: []Phase{
			{Name: "warm", Duration: Duration(time.Second), Rate: f64(200)},
			{Name: "steady", Duration: Duration(2 * time.Second)},
		}}
		st := runState{t0: 0, tEnd: 3 * s, phase: -1}
		for now := int64(0); now <= 4*s; now += 10 * int64(time.Millisecond) {
			a.traffic(&st, now)
		}
		return a.counts.Skipped // no sender online: every slot counts as skipped
	}
	whole := offered(Segment{0, 1})
	if whole != 1000 {
		t.Fatalf("the whole plan offers %d slots, want 1000 (200/s for 1 s, 400/s for 2 s)", whole)
	}
	for _, count := range []int{2, 3, 4, 7} {
		var sum uint64
		for i := range count {
			sum += offered(Segment{i, count})
		}
		if d := int64(sum) - int64(whole); d < -int64(2*count) || d > int64(2*count) {
			t.Errorf("%d segments offer %d slots, the whole plan %d", count, sum, whole)
		}
	}
}

// Two segments of a plan, run as two agents with a shared start against one
// gateway, account for what the plan run whole does: their users add up to the
// plan's, their messages to about its offer, all delivered; and their interval
// logs merge into one push histogram whose count is the sum of their results'
// and whose max is the larger of theirs, exactly: nothing is lost or counted
// twice on the way from each agent's histograms to its log.
func TestSegmentsResultsMergeIntoTheWholeRun(t *testing.T) {
	g := newFakeGateway(t, nil)
	plan := fakePlan([]string{g.addr()}, 30, 150, 2)
	whole := runAgent(t, newAgent(t, plan))
	assertEveryMessageDelivered(t, whole.Messages)

	dir := t.TempDir()
	start := make(chan time.Time, 2)
	var waits [2]func() *Result
	for i := range 2 {
		p := plan
		p.UIDBase = 1000 // not the whole run's users: the gateway still holds their messages
		a, err := New(Options{Plan: p, Segment: Segment{i, 2}, OutDir: dir, Start: start, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		waits[i] = startAgent(t, a)
	}
	at := time.Now().Add(500 * time.Millisecond)
	start <- at
	start <- at
	var (
		results [2]*Result
		sum     Counts
		users   int
	)
	for i, wait := range waits {
		r := wait()
		results[i] = r
		assertEveryMessageDelivered(t, r.Messages)
		if !r.Started.Equal(at) {
			t.Errorf("segment %d started its traffic at %v, not the shared %v", i, r.Started, at)
		}
		sum.Add(r.Messages)
		users += r.Users
	}
	if users != whole.Users || sum.Sent+2 < whole.Messages.Sent || sum.Sent > whole.Messages.Sent+2 {
		t.Fatalf("segments: %d users, %d sent; whole: %d users, %d sent", users, sum.Sent, whole.Users, whole.Messages.Sent)
	}
	merged := NewHistogram()
	for i := range 2 {
		readPushIntervals(t, filepath.Join(dir, fmt.Sprintf("agent-%d", i)+SuffixHlog), merged)
	}
	p0, p1 := results[0].Latency[TagPush], results[1].Latency[TagPush]
	if merged.TotalCount() != p0.Count+p1.Count || merged.TotalCount() != int64(sum.Delivered) {
		t.Fatalf("merged push count %d, results %d + %d, delivered %d", merged.TotalCount(), p0.Count, p1.Count, sum.Delivered)
	}
	if !merged.ValuesAreEquivalent(merged.Max(), max(p0.Max, p1.Max)) {
		t.Fatalf("merged push max %d, results' %d and %d", merged.Max(), p0.Max, p1.Max)
	}
}

// readPushIntervals merges every push interval of the interval log at path into into.
func readPushIntervals(t *testing.T, path string, into *hdrhistogram.Histogram) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := hdrhistogram.NewHistogramLogReader(f)
	for range 10_000 {
		h, err := r.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			return
		}
		if h.Tag() == TagPush {
			into.Merge(h)
		}
	}
	t.Fatalf("%s: more intervals than a test run writes", path)
}
