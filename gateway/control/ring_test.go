package control

import (
	"slices"
	"testing"
)

func TestRingSince(t *testing.T) {
	r := newRing(3)
	if ev, trunc := r.since(0); len(ev) != 0 || trunc || r.last() != 0 {
		t.Fatalf("empty ring: %v %v last %d", ev, trunc, r.last())
	}
	for range 5 {
		r.add(Event{Gateway: "g"})
	}
	for _, tc := range []struct {
		after     uint64
		want      []uint64
		truncated bool
	}{
		{0, []uint64{3, 4, 5}, true},
		{1, []uint64{3, 4, 5}, true},
		{2, []uint64{3, 4, 5}, false},
		{4, []uint64{5}, false},
		{5, nil, false},
		{99, nil, false},
	} {
		ev, trunc := r.since(tc.after)
		var got []uint64
		for _, e := range ev {
			got = append(got, e.Seq)
		}
		if !slices.Equal(got, tc.want) || trunc != tc.truncated {
			t.Errorf("since(%d) = %v truncated %v, want %v truncated %v", tc.after, got, trunc, tc.want, tc.truncated)
		}
	}
	if r.last() != 5 {
		t.Errorf("last %d, want 5", r.last())
	}
}
