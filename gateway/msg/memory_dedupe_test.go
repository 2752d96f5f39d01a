package msg

import (
	"context"
	"testing"
	"time"
)

// The memory store remembers a message's identity for at least one dedupe window
// and at most two: windows count from the store's start, and an identity lives in
// its window's generation and the next one.
func TestMemoryDedupeWindowBounds(t *testing.T) {
	const window = time.Minute
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name              string
		appendAt, retryAt time.Duration // since the store's start
		wantDeduplicated  bool
	}{
		{"same window", 30 * time.Second, 59 * time.Second, true},
		{"next window, less than a window later", 30 * time.Second, 89 * time.Second, true},
		{"next window, more than a window later", 30 * time.Second, 119 * time.Second, true},
		{"two windows on", 30 * time.Second, 121 * time.Second, false},
		{"appended at a window's end, retried a window later", 59 * time.Second, 119 * time.Second, true},
		{"long after", 0, time.Hour, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := start
			m := NewMemory(10, WithDedupeWindow(window), WithClock(func() time.Time { return now }))
			now = start.Add(c.appendAt)
			first := Message{From: 1, To: 2, ClientMsgID: 9}
			if err := m.Append(context.Background(), &first); err != nil {
				t.Fatal(err)
			}
			now = start.Add(c.retryAt)
			retry := Message{From: 1, To: 2, ClientMsgID: 9}
			if err := m.Append(context.Background(), &retry); err != nil {
				t.Fatal(err)
			}
			if got := retry.Seq == first.Seq; got != c.wantDeduplicated {
				t.Fatalf("retry got seq %d (first %d): deduplicated %v, want %v", retry.Seq, first.Seq, got, c.wantDeduplicated)
			}
			if want := uint64(map[bool]int{true: 1, false: 0}[c.wantDeduplicated]); m.Deduplicated() != want {
				t.Fatalf("Deduplicated() = %d, want %d", m.Deduplicated(), want)
			}
		})
	}
}
