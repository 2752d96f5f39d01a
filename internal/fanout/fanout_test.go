package fanout

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

func TestEachCallsEveryItemOnBoundedWorkers(t *testing.T) {
	for _, tc := range []struct{ items, workers int }{{0, 4}, {1, 4}, {100, 1}, {1000, 8}} {
		items := make([]int, tc.items)
		for i := range items {
			items[i] = i
		}
		var mu sync.Mutex
		seen := map[int]int{}
		var running, peak atomic.Int32
		Each(context.Background(), items, tc.workers, func(it int, calls int) int {
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			mu.Lock()
			seen[it]++
			mu.Unlock()
			running.Add(-1)
			return calls + 1 // the scratch state carries across one worker's calls
		})
		if len(seen) != tc.items {
			t.Fatalf("%+v: %d items seen", tc, len(seen))
		}
		for it, n := range seen {
			if n != 1 {
				t.Fatalf("%+v: item %d seen %d times", tc, it, n)
			}
		}
		if p := int(peak.Load()); p > tc.workers {
			t.Fatalf("%+v: %d calls at once", tc, p)
		}
	}
}

func TestEachStopsTakingItemsOnceCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	Each(ctx, make([]int, 1000), 1, func(int, struct{}) struct{} {
		if calls.Add(1) == 10 {
			cancel()
		}
		return struct{}{}
	})
	if n := calls.Load(); n < 10 || n > 11 {
		t.Fatalf("%d calls after cancelling at the 10th, want 10 or 11", n)
	}
}
