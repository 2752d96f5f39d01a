package node

import (
	"testing"
	"time"
)

// The penalty box refuses a user until the end it was given, forgets expired
// entries, keeps the later of two ends, and stays bounded when full.
func TestPenaltyBoxEndsAndBound(t *testing.T) {
	sec := int64(time.Second)
	var p penaltyBox
	p.add(1, 10*sec, 0)
	p.add(1, 5*sec, 0) // an earlier end does not shorten it
	tests := []struct {
		uid  uint64
		now  int64
		want time.Duration
	}{
		{1, 0, 10 * time.Second},
		{1, 4 * sec, 6 * time.Second},
		{2, 0, 0},
		{1, 10 * sec, 0},
		{1, 0, 0}, // forgotten once expired
	}
	for _, tt := range tests {
		if got := p.remaining(tt.uid, tt.now); got != tt.want {
			t.Fatalf("remaining(%d, %v) = %v, want %v", tt.uid, time.Duration(tt.now), got, tt.want)
		}
	}
	for uid := range uint64(penaltyBoxMax) {
		p.add(uid+100, sec, 0)
	}
	p.add(7, sec, 0) // full of live penalties: not recorded
	if got := p.remaining(7, 0); got != 0 || len(p.until) != penaltyBoxMax {
		t.Fatalf("full box: remaining %v, %d entries; want 0 and %d", got, len(p.until), penaltyBoxMax)
	}
	p.add(7, 3*sec, 2*sec) // the others expired: swept, then recorded
	if got := p.remaining(7, 2*sec); got != time.Second || len(p.until) != 1 {
		t.Fatalf("after the sweep: remaining %v, %d entries; want 1s and 1", got, len(p.until))
	}
}
