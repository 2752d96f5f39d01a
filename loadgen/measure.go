package loadgen

import (
	"fmt"
	"io"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// SLI tags: one histogram series per tag, each value in microseconds.
const (
	TagPush      = "push"      // push latency of normal readers: receive − intended send
	TagPushSlow  = "push_slow" // push latency of slow readers
	TagConnect   = "connect"   // first connect: dial → LOGIN_OK
	TagReconnect = "reconnect" // after a disconnect: disconnect seen → LOGIN_OK
	TagLag       = "lag"       // generator lag: actual − intended send time
	TagHiccup    = "hiccup"    // scheduler tick lateness (the agent's own stalls)
)

// Tags lists every tag in a fixed order.
var Tags = []string{TagPush, TagPushSlow, TagConnect, TagReconnect, TagLag, TagHiccup}

// Histogram range: 1µs to one hour, 3 significant digits. Values above the range are
// clamped to it and counted (tcpkali#27 silently dropped them), never lost.
const (
	histMin     = 1
	histMax     = int64(time.Hour / time.Microsecond)
	histSigFigs = 3
)

// NewHistogram returns a histogram with the harness's range and precision.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, histSigFigs)
}

// meters are the agent's interval histograms, one per tag. Not safe for concurrent
// use: the agent records under its lock. hdrhistogram-go histograms are not
// concurrency-safe either, which is why each agent owns its own and they are only
// merged afterwards.
type meters struct {
	cur      map[string]*hdrhistogram.Histogram
	total    map[string]*hdrhistogram.Histogram // the whole run, for the agent's own summary
	start    time.Time                          // interval start
	clamped  uint64
	log      *hdrhistogram.HistogramLogWriter
	baseMs   int64
	interval time.Duration
}

func newMeters(w io.Writer, now time.Time, interval time.Duration) (*meters, error) {
	m := &meters{cur: map[string]*hdrhistogram.Histogram{}, total: map[string]*hdrhistogram.Histogram{},
		start: now, interval: interval}
	for _, t := range Tags {
		m.cur[t] = NewHistogram()
		m.total[t] = NewHistogram()
	}
	if w != nil {
		m.log = hdrhistogram.NewHistogramLogWriter(w)
		m.baseMs = now.UnixMilli()
		if err := m.log.OutputLogFormatVersion(); err != nil {
			return nil, err
		}
		m.log.OutputStartTime(m.baseMs)
		// hdrhistogram-go's OutputBaseTime writes whole seconds while the writer
		// subtracts milliseconds; write the base with its milliseconds instead (its
		// reader, and ours, accept the fractional form).
		m.log.OutputComment(fmt.Sprintf("[BaseTime: %.3f (seconds since epoch)]", float64(m.baseMs)/1000))
		m.log.OutputComment("Floodgate loadgen interval histograms; values in microseconds; Tag = SLI")
		m.log.OutputLegend()
		m.log.SetBaseTime(m.baseMs)
	}
	return m, nil
}

// record adds one value (microseconds) to a tag.
func (m *meters) record(tag string, us int64) {
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
		m.clamped++
	}
	m.cur[tag].RecordValue(us)
	m.total[tag].RecordValue(us)
}

// rotate closes the current interval at now: writes each tag's histogram to the log
// and starts fresh ones.
func (m *meters) rotate(now time.Time) error {
	for _, t := range Tags {
		h := m.cur[t]
		if m.log != nil {
			h.SetTag(t)
			h.SetStartTimeMs(m.start.UnixMilli())
			h.SetEndTimeMs(now.UnixMilli())
			if err := m.log.OutputIntervalHistogram(h); err != nil {
				return fmt.Errorf("hlog: %w", err)
			}
		}
		h.Reset()
	}
	m.start = now
	return nil
}
