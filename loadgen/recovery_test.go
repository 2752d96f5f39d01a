package loadgen

import (
	"testing"
	"time"
)

func TestRecoveryLastDeliveryBefore(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Buckets of 100 ms: [0,100) delivered at 150 ms, [100,200) none, [200,300)
	// delivered at 4000 ms, [300,400) delivered at 350 ms.
	r := &Recovery{Start: start, BucketMS: 100, LastDeliveryMS: []int64{150, -1, 4000, 350}}
	ms := func(v int) time.Time { return start.Add(time.Duration(v) * time.Millisecond) }
	for _, tc := range []struct {
		name string
		at   time.Time
		want time.Time
		ok   bool
	}{
		{"before the start", ms(-50), time.Time{}, false},
		{"within the first bucket: it is not whole yet", ms(50), time.Time{}, false},
		{"after the first bucket", ms(100), ms(150), true},
		{"a bucket with nothing delivered adds nothing", ms(200), ms(150), true},
		{"the late delivery of the third bucket", ms(300), ms(4000), true},
		{"past the end", ms(10_000), ms(4000), true},
	} {
		got, ok := r.LastDeliveryBefore(tc.at)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("%s: %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	var none *Recovery
	if _, ok := none.LastDeliveryBefore(ms(1000)); ok {
		t.Error("a missing record has a delivery")
	}
}

// The agent keeps the latest first delivery per bucket of intended time, in ms
// from its clock zero.
func TestNoteDeliveryKeepsTheLatestPerBucket(t *testing.T) {
	a := &Agent{mono0: 1_000_000_000}
	ms := int64(time.Millisecond)
	a.noteDelivery(a.mono0+50*ms, 300*ms)
	a.noteDelivery(a.mono0+60*ms, 200*ms) // earlier: kept out
	a.noteDelivery(a.mono0+250*ms, 900*ms)
	a.noteDelivery(a.mono0-ms, 5000*ms) // before the clock zero: not recorded
	r := recoveryOf(a.recovery, time.Unix(0, 0))
	want := []int64{300, -1, 900}
	if len(r.LastDeliveryMS) != len(want) {
		t.Fatalf("buckets %v, want %v", r.LastDeliveryMS, want)
	}
	for i := range want {
		if r.LastDeliveryMS[i] != want[i] {
			t.Fatalf("buckets %v, want %v", r.LastDeliveryMS, want)
		}
	}
}
