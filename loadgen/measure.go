package loadgen

import (
	"fmt"
	"io"
	"sync"
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
	TagHiccup    = "hiccup"    // scheduler wake-up lateness (the agent's own stalls)
	// TagReplace is a relogin's new LOGIN_OK → the old connection's KICK REPLACED
	// (clamped at 0: the server may kick before it answers the new login).
	TagReplace = "replace"
)

// Trace tags: the hops of a traced message (SEND_TRACED, PUSH_TRACED), recorded on
// its first receipt by a normal reader; the five of one message add up to its push
// latency. A hop made negative by a clock step is recorded as 0 and counted
// (Result.TraceNegative).
const (
	TagTraceUplink   = "trace_uplink"   // gateway_in − intended send time (generator lag included)
	TagTraceStore    = "trace_store"    // stored − gateway_in
	TagTraceRoute    = "trace_route"    // routed − stored
	TagTraceGateway  = "trace_gateway"  // gateway_out − routed
	TagTraceDownlink = "trace_downlink" // receipt − gateway_out
)

// TraceTags lists the trace tags in the order of a message's way.
var TraceTags = []string{TagTraceUplink, TagTraceStore, TagTraceRoute, TagTraceGateway, TagTraceDownlink}

// Tags lists every tag in a fixed order, the trace tags last.
var Tags = []string{TagPush, TagPushSlow, TagConnect, TagReconnect, TagLag, TagHiccup, TagReplace,
	TagTraceUplink, TagTraceStore, TagTraceRoute, TagTraceGateway, TagTraceDownlink}

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
//
// Writing an interval to the log (encoding and deflating each histogram that has
// samples, a new zlib compressor each; an empty one's line is written from an
// encoding made once) happens on a writer goroutine, not on the scheduler
// loop that calls rotate: rotate only swaps in a spare set, so sends never wait for
// the log. A set goes back to the spares once written; at most a few are in flight.
type meters struct {
	cur      tagHistograms
	total    tagHistograms // the whole run, for the agent's own summary
	start    time.Time     // interval start
	clamped  uint64
	log      *hdrhistogram.HistogramLogWriter
	w        io.Writer // what log writes to
	baseMs   int64
	interval time.Duration
	// empty is an empty histogram's encoding and interval-line max: most tags
	// record nothing in most intervals (connect, reconnect, replace, push_slow),
	// and encoding one costs as much as encoding a full one (a new zlib
	// compressor each time). Their lines are written from it (emptyLine).
	empty struct {
		payload []byte
		max     float64
	}

	full      chan closedInterval // to the writer; closed by close
	spare     chan tagHistograms  // written and reset sets, from the writer
	written   chan struct{}       // closed when the writer is done
	writeErr  error               // the writer's first error; read after written is closed
	closeOnce sync.Once
}

// tagHistograms holds one histogram per tag.
type tagHistograms map[string]*hdrhistogram.Histogram

func newTagHistograms() tagHistograms {
	hs := tagHistograms{}
	for _, t := range Tags {
		hs[t] = NewHistogram()
	}
	return hs
}

// closedInterval is one interval's histograms, on their way to the log.
type closedInterval struct {
	hs         tagHistograms
	start, end time.Time
}

// inFlightIntervals bounds the intervals handed to the writer and not yet written:
// beyond it rotate waits (the disk is that slow) rather than grow.
const inFlightIntervals = 4

func newMeters(w io.Writer, now time.Time, interval time.Duration) (*meters, error) {
	m := &meters{cur: newTagHistograms(), total: newTagHistograms(), start: now, interval: interval}
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
		m.w = w
		e := NewHistogram()
		payload, err := e.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		if err != nil {
			return nil, fmt.Errorf("hlog: %w", err)
		}
		m.empty.payload, m.empty.max = payload, float64(e.Max())/hdrhistogram.MsToNsRatio
		m.full = make(chan closedInterval, inFlightIntervals)
		m.spare = make(chan tagHistograms, inFlightIntervals+1)
		m.written = make(chan struct{})
		go m.write()
	}
	return m, nil
}

// write writes each closed interval to the log, in order, and recycles its set.
// After an error it keeps recycling (and reports the first error from close).
func (m *meters) write() {
	defer close(m.written)
	for iv := range m.full {
		for _, t := range Tags {
			h := iv.hs[t]
			if m.writeErr == nil {
				var err error
				if h.TotalCount() == 0 {
					err = m.emptyLine(t, iv.start.UnixMilli(), iv.end.UnixMilli())
				} else {
					h.SetTag(t)
					h.SetStartTimeMs(iv.start.UnixMilli())
					h.SetEndTimeMs(iv.end.UnixMilli())
					err = m.log.OutputIntervalHistogram(h)
					h.Reset() // an empty one is reset already
				}
				if err != nil {
					m.writeErr = fmt.Errorf("hlog: %w", err)
				}
			} else {
				h.Reset()
			}
		}
		select {
		case m.spare <- iv.hs:
		default: // more spares than needed: let this one go
		}
	}
}

// emptyLine writes the interval line of an empty histogram of tag from startMs
// to endMs: byte for byte what HistogramLogWriter.OutputIntervalHistogram writes
// for it (the same format, relative to the same base time), from the encoding
// made once.
func (m *meters) emptyLine(tag string, startMs, endMs int64) error {
	start := (float64(startMs) - float64(m.baseMs)) / 1000.0
	end := (float64(endMs) - float64(m.baseMs)) / 1000.0
	_, err := fmt.Fprintf(m.w, "Tag=%s,%f,%f,%f,%s\n", tag, start, end-start, m.empty.max, m.empty.payload)
	return err
}

// record adds one value (microseconds) to a tag and returns it as recorded
// (clamped to the histograms' range).
func (m *meters) record(tag string, us int64) int64 {
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
		m.clamped++
	}
	m.cur[tag].RecordValue(us)
	m.total[tag].RecordValue(us)
	return us
}

// rotate closes the current interval at now: hands it to the log writer (without a
// log, drops it) and starts recording into a spare set.
func (m *meters) rotate(now time.Time) {
	if m.log == nil {
		for _, h := range m.cur {
			h.Reset()
		}
		m.start = now
		return
	}
	m.full <- closedInterval{hs: m.cur, start: m.start, end: now}
	select {
	case m.cur = <-m.spare:
	default:
		m.cur = newTagHistograms()
	}
	m.start = now
}

// close waits until every rotated interval is written and returns the first write
// error. Call it after the last rotate; it is idempotent.
func (m *meters) close() error {
	if m.log == nil {
		return nil
	}
	m.closeOnce.Do(func() { close(m.full) })
	<-m.written
	return m.writeErr
}
