package reports

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// interval is one interval histogram from an agent's log: one SLI tag over one
// stretch of wall-clock time, values in microseconds.
type interval struct {
	tag        string
	start, end time.Time
	h          *hdr.PackedHistogram
}

// hlog is a parsed HdrHistogram interval log (format 1.3, as hdrhistogram-go's
// HistogramLogWriter writes it). Interval start stamps are seconds relative to
// baseMs; a log without a base time and with absolute stamps has baseMs 0.
type hlog struct {
	baseMs int64
	// precise is false when the base is known only to the second: hdrhistogram-go
	// writes "#[BaseTime: …]" as whole seconds while it subtracts the base in
	// milliseconds, so the stamps read back up to 999 ms early.
	precise bool
	raw     []rawInterval
}

// rawInterval is one interval line before its stamps are made absolute.
type rawInterval struct {
	tag             string
	relStart, width float64 // seconds
	h               *hdr.PackedHistogram
}

// readHlogFile parses the interval log at path.
func readHlogFile(path string) (*hlog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lg, err := parseHlog(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lg, nil
}

// parseHlog reads an interval log. Histograms decode straight into sparse
// (packed) form: a dense histogram over 1 µs–1 h is ~180 KiB, and a long run has
// thousands of intervals per agent.
func parseHlog(r io.Reader) (*hlog, error) {
	var (
		lg                  hlog
		startSec, baseSec   float64
		startSeen, baseSeen bool
		startFrac, baseFrac bool
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, `"`):
			continue // blank, or the legend
		case strings.HasPrefix(line, "#[StartTime: "):
			s := firstField(strings.TrimPrefix(line, "#[StartTime: "))
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: start time %q: %w", n, s, err)
			}
			startSec, startSeen, startFrac = v, true, strings.Contains(s, ".")
			continue
		case strings.HasPrefix(line, "#[BaseTime: "):
			s := firstField(strings.TrimPrefix(line, "#[BaseTime: "))
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: base time %q: %w", n, s, err)
			}
			baseSec, baseSeen, baseFrac = v, true, strings.Contains(s, ".")
			continue
		case strings.HasPrefix(line, "#"):
			continue
		}
		ri, err := parseIntervalLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		lg.raw = append(lg.raw, ri)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// The same rule as the reference reader: without a base time, stamps more than
	// a year before the start time are relative to it; otherwise absolute.
	const year = 365 * 24 * 3600.0
	switch {
	case baseSeen:
		lg.baseMs, lg.precise = int64(math.Round(baseSec*1000)), baseFrac
	case startSeen && len(lg.raw) > 0 && lg.raw[0].relStart < startSec-year:
		lg.baseMs, lg.precise = int64(math.Round(startSec*1000)), startFrac
	default:
		lg.baseMs, lg.precise = 0, true
	}
	return &lg, nil
}

// firstField returns s up to its first space.
func firstField(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}

// parseIntervalLine reads "[Tag=t,]start,length,max,payload".
func parseIntervalLine(line string) (rawInterval, error) {
	var ri rawInterval
	if rest, ok := strings.CutPrefix(line, "Tag="); ok {
		tag, after, ok := strings.Cut(rest, ",")
		if !ok {
			return ri, fmt.Errorf("interval line without fields after its tag")
		}
		ri.tag, line = tag, after
	}
	f := strings.SplitN(line, ",", 4)
	if len(f) != 4 {
		return ri, fmt.Errorf("interval line: want start,length,max,histogram; got %d fields", len(f))
	}
	var err error
	if ri.relStart, err = strconv.ParseFloat(f[0], 64); err != nil {
		return ri, fmt.Errorf("interval start %q: %w", f[0], err)
	}
	if ri.width, err = strconv.ParseFloat(f[1], 64); err != nil {
		return ri, fmt.Errorf("interval length %q: %w", f[1], err)
	}
	if ri.h, err = hdr.DecodePacked([]byte(f[3])); err != nil {
		return ri, fmt.Errorf("interval histogram: %w", err)
	}
	return ri, nil
}

// refineBase recovers the millisecond part of a whole-second base time from the
// agent's end time. The agent closes its last interval at time.Now() and stamps
// Result.Ended right after, so ended − (last interval end) is the base to within a
// millisecond. The estimate is kept only if it agrees with the whole-second base
// the log states; it reports whether it did.
func (lg *hlog) refineBase(ended time.Time) bool {
	if lg.precise || len(lg.raw) == 0 || ended.IsZero() {
		return false
	}
	var lastEnd float64
	for _, ri := range lg.raw {
		lastEnd = max(lastEnd, ri.relStart+ri.width)
	}
	cand := ended.UnixMilli() - int64(math.Round(lastEnd*1000))
	const slack = 10 // ms: Ended is taken a moment after the last interval closed
	if cand < lg.baseMs || cand >= lg.baseMs+1000+slack {
		return false
	}
	lg.baseMs, lg.precise = cand, true
	return true
}

// intervals returns the log's intervals with absolute times.
func (lg *hlog) intervals() []interval {
	out := make([]interval, 0, len(lg.raw))
	base := time.UnixMilli(lg.baseMs)
	for _, ri := range lg.raw {
		start := base.Add(secs(ri.relStart))
		out = append(out, interval{tag: ri.tag, start: start, end: start.Add(secs(ri.width)), h: ri.h})
	}
	return out
}

// secs converts seconds to a Duration, to the microsecond the log carries.
func secs(s float64) time.Duration {
	return time.Duration(math.Round(s*1e6)) * time.Microsecond
}

// writeMergedHlog writes one tag's merged bins as an interval log with absolute
// time stamps (base time 0: the stamps themselves are seconds since the epoch, to
// the millisecond), readable by any HdrHistogram log tool.
func writeMergedHlog(path, tag string, bins []binHist) error {
	var w bytes.Buffer
	lw := hdr.NewHistogramLogWriter(&w)
	if err := lw.OutputLogFormatVersion(); err != nil {
		return err
	}
	if len(bins) > 0 {
		if err := lw.OutputStartTime(bins[0].start.UnixMilli()); err != nil {
			return err
		}
	}
	if err := lw.OutputComment(fmt.Sprintf("Floodgate merged %s histograms (every agent); values in microseconds; absolute time stamps", tag)); err != nil {
		return err
	}
	if err := lw.OutputLegend(); err != nil {
		return err
	}
	for _, b := range bins {
		if b.h.count() == 0 {
			continue
		}
		h := b.h.p.Clone()
		h.SetTag(tag)
		h.SetStartTimeMs(b.start.UnixMilli())
		h.SetEndTimeMs(b.end.UnixMilli())
		if err := lw.OutputIntervalPackedHistogram(h); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return writeFile(path, w.Bytes())
}
