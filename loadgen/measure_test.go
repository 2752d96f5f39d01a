package loadgen

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Intervals handed to the writer reach the log whole and in order, each tag's
// counts in its own interval, however the writer and the rotations interleave.
func TestRotatedIntervalsAreWrittenInOrder(t *testing.T) {
	var buf bytes.Buffer
	t0 := time.UnixMilli(1_700_000_000_000)
	m, err := newMeters(&buf, t0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const intervals = 3 * inFlightIntervals // more than the writer holds: rotate must wait, not drop
	for i := range intervals {
		for range i + 1 {
			m.record(TagPush, int64(1000*(i+1)))
		}
		m.record(TagLag, 7)
		m.rotate(t0.Add(time.Duration(i+1) * time.Second))
	}
	if err := m.close(); err != nil {
		t.Fatal(err)
	}
	if err := m.close(); err != nil { // idempotent
		t.Fatal(err)
	}
	r := hdrhistogram.NewHistogramLogReader(&buf)
	for i := range intervals {
		for _, tag := range Tags {
			h, err := r.NextIntervalHistogram()
			if err != nil || h == nil {
				t.Fatalf("interval %d tag %s: %v (log ended)", i, tag, err)
			}
			want := int64(0)
			switch tag {
			case TagPush:
				want = int64(i + 1)
				if h.TotalCount() > 0 && h.Max() < int64(1000*(i+1)) {
					t.Errorf("interval %d: push max %d, want about %d", i, h.Max(), 1000*(i+1))
				}
			case TagLag:
				want = 1
			}
			if h.Tag() != tag || h.TotalCount() != want {
				t.Fatalf("interval %d: got tag %q with %d values, want %q with %d", i, h.Tag(), h.TotalCount(), tag, want)
			}
			if start := h.StartTimeMs(); start != t0.Add(time.Duration(i)*time.Second).UnixMilli() {
				t.Fatalf("interval %d tag %s starts at %d", i, tag, start)
			}
		}
	}
	if h, _ := r.NextIntervalHistogram(); h != nil {
		t.Fatalf("an extra interval in the log: %s", h.Tag())
	}
	if got := m.total[TagPush].TotalCount(); got != intervals*(intervals+1)/2 {
		t.Errorf("whole-run push count %d", got)
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n--; w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// A log that stops accepting writes is reported by close, and rotation goes on.
func TestLogWriteErrorIsReportedByClose(t *testing.T) {
	m, err := newMeters(&failingWriter{n: 6}, time.Now(), time.Second) // the header fits, intervals do not
	if err != nil {
		t.Fatal(err)
	}
	for range 2 * inFlightIntervals {
		m.record(TagPush, 100)
		m.rotate(time.Now())
	}
	if err := m.close(); err == nil {
		t.Fatal("close reported no error after the log failed")
	}
}

// An interval in which a tag recorded nothing is written from the cached empty
// encoding: byte for byte the line the library writes for an empty histogram.
func TestEmptyIntervalLineIsTheLibrarysLine(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_123)
	for _, tc := range []struct {
		name       string
		start, end time.Time
	}{
		{"the first interval", t0, t0.Add(time.Second)},
		{"a later, shorter one", t0.Add(41*time.Second + 7*time.Millisecond), t0.Add(41*time.Second + 980*time.Millisecond)},
	} {
		var ours, theirs bytes.Buffer
		m, err := newMeters(&ours, t0, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ours.Reset() // the header
		if err := m.emptyLine(TagReconnect, tc.start.UnixMilli(), tc.end.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		lw := hdrhistogram.NewHistogramLogWriter(&theirs)
		lw.SetBaseTime(t0.UnixMilli())
		h := NewHistogram()
		h.SetTag(TagReconnect)
		h.SetStartTimeMs(tc.start.UnixMilli())
		h.SetEndTimeMs(tc.end.UnixMilli())
		if err := lw.OutputIntervalHistogram(h); err != nil {
			t.Fatal(err)
		}
		if ours.String() != theirs.String() {
			t.Errorf("%s: wrote\n%q\nthe library writes\n%q", tc.name, ours.String(), theirs.String())
		}
		m.close()
	}
}
