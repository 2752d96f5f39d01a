package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/internal/units"
)

// Band is how far a statistic may move the wrong way before it is a regression:
// max(Rel × |base|, Abs). Abs is in the statistic's unit.
type Band struct {
	Rel float64 // a share: 0.2 is 20%
	Abs float64
}

// width is the band's size around base.
func (b Band) width(base float64) float64 { return math.Max(b.Rel*math.Abs(base), b.Abs) }

// CompareStat is one statistic `floodgate compare` checks. Every statistic is
// higher-is-worse.
type CompareStat struct {
	Name    string // as flags name it: push_p99
	Path    string // where summary.json holds it: push_latency_us.p99
	Samples string // where it holds the statistic's sample count
	Unit    string // us, ms, bytes or count
	// Optional statistics may be absent from a run whose scenario does not
	// exercise them (no reconnects without faults): with no samples in BASE either,
	// they are not compared. A required one must be measured in both.
	Optional bool
	Band     Band
}

// DefaultStats are the statistics compared by default, with bands wide enough
// for run-to-run noise on one shared machine and tight enough to catch a real
// regression: latencies by 20–25% above a floor of their usual jitter, losses by
// 10%, memory per connection by 10% or 256 B, CPU per message by 15% or 2 µs.
func DefaultStats() []CompareStat {
	return []CompareStat{
		{Name: "push_p50", Path: "push_latency_us.p50", Samples: "push_latency_us.count", Unit: "us", Band: Band{0.20, 500}},
		{Name: "push_p99", Path: "push_latency_us.p99", Samples: "push_latency_us.count", Unit: "us", Band: Band{0.20, 2000}},
		{Name: "push_p999", Path: "push_latency_us.p999", Samples: "push_latency_us.count", Unit: "us", Band: Band{0.25, 5000}},
		{Name: "lost", Path: "messages.lost", Samples: "messages.sent", Unit: "count", Band: Band{0.10, 0}},
		{Name: "reconnect_p99", Path: "reconnect_ms.p99", Samples: "reconnect_ms.count", Unit: "ms", Optional: true, Band: Band{0.25, 250}},
		{Name: "rss_per_conn", Path: "gateway.rss_per_conn_bytes", Samples: "gateway.peak_connections", Unit: "bytes", Band: Band{0.10, 256}},
		{Name: "cpu_per_msg", Path: "efficiency.cpu_us_per_msg", Samples: "messages.delivered", Unit: "us", Band: Band{0.15, 2}},
	}
}

// ParseBand reads a band for a statistic: "20%", "2ms", or both, "20%,2ms". The
// absolute part takes the statistic's unit: a duration for latencies, a size for
// bytes, a plain number for counts.
func ParseBand(s string, unit string) (Band, error) {
	var b Band
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if pct, ok := strings.CutSuffix(part, "%"); ok {
			v, err := strconv.ParseFloat(pct, 64)
			if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return b, fmt.Errorf("band %q: %q is not a percentage", s, part)
			}
			b.Rel = v / 100
			continue
		}
		v, err := parseAbs(part, unit)
		if err != nil {
			return b, fmt.Errorf("band %q: %w", s, err)
		}
		b.Abs = v
	}
	return b, nil
}

// parseAbs reads an absolute band in a unit.
func parseAbs(s, unit string) (float64, error) {
	switch unit {
	case "us", "ms":
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%q is not a duration like 2ms", s)
		}
		if unit == "ms" {
			return float64(d) / float64(time.Millisecond), nil
		}
		return float64(d) / float64(time.Microsecond), nil
	case "bytes":
		v, err := units.ParseSize(s)
		return float64(v), err
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a non-negative number", s)
	}
	return v, nil
}

// Compare outcomes per statistic.
const (
	CompareOK         = "ok"
	CompareBetter     = "better"
	CompareRegression = "REGRESSION"
	CompareMissing    = "MISSING"    // absent or null in NEW (or, if required, in BASE)
	CompareNoSamples  = "NO SAMPLES" // measured over zero samples in NEW (or, if required, in BASE)
	CompareNA         = "n/a"        // optional and unmeasured in both: not compared
)

// CompareRow is one statistic's comparison.
type CompareRow struct {
	Stat      CompareStat
	Base, New *float64
	Verdict   string
	Note      string
}

// failed reports whether the row fails the comparison.
func (r CompareRow) failed() bool {
	return r.Verdict != CompareOK && r.Verdict != CompareBetter && r.Verdict != CompareNA
}

// Comparison is a whole comparison of NEW against BASE.
type Comparison struct {
	Base, New string
	Rows      []CompareRow
	// NewVerdict and BaseVerdict are the runs' own verdicts ("" if unstated). An
	// invalid or failed-harness run has no numbers worth comparing.
	NewVerdict, BaseVerdict string
}

// Regressed reports whether any statistic regressed, is missing or unmeasured.
func (c *Comparison) Regressed() bool {
	for _, r := range c.Rows {
		if r.failed() {
			return true
		}
	}
	return false
}

// ExitCode is 0 when every statistic is within its band, 2 otherwise; 3 when
// NEW is an invalid run and 1 when its harness failed or BASE is not a usable
// baseline (invalid or failed harness), whatever the numbers say.
func (c *Comparison) ExitCode() int {
	switch {
	case c.NewVerdict == VerdictError || c.BaseVerdict == VerdictError || c.BaseVerdict == VerdictInvalid:
		return exitcode.Failure
	case c.NewVerdict == VerdictInvalid:
		return exitcode.Invalid
	case c.Regressed():
		return exitcode.GateFailed
	}
	return exitcode.OK
}

// Compare compares NEW against BASE (each a summary.json or a run folder holding
// one) over stats.
func Compare(basePath, newPath string, stats []CompareStat) (*Comparison, error) {
	base, err := readSummaryTree(basePath)
	if err != nil {
		return nil, err
	}
	cur, err := readSummaryTree(newPath)
	if err != nil {
		return nil, err
	}
	c := &Comparison{Base: basePath, New: newPath}
	c.BaseVerdict, _ = base["verdict"].(string)
	c.NewVerdict, _ = cur["verdict"].(string)
	for _, st := range stats {
		c.Rows = append(c.Rows, compareStat(st, base, cur))
	}
	return c, nil
}

// compareStat compares one statistic.
func compareStat(st CompareStat, base, cur map[string]any) CompareRow {
	row := CompareRow{Stat: st, Base: lookup(base, st.Path), New: lookup(cur, st.Path)}
	bn, nn := lookup(base, st.Samples), lookup(cur, st.Samples)
	baseMeasured := row.Base != nil && bn != nil && *bn > 0
	switch {
	case st.Optional && !baseMeasured && (row.New == nil || nn == nil || *nn == 0):
		row.Verdict, row.Note = CompareNA, "measured in neither run"
	case row.New == nil:
		row.Verdict, row.Note = CompareMissing, st.Path+" is missing from NEW"
	case nn == nil || *nn == 0:
		row.Verdict, row.Note = CompareNoSamples, "NEW has no samples ("+st.Samples+")"
	case row.Base == nil:
		row.Verdict, row.Note = CompareMissing, st.Path+" is missing from BASE"
	case bn == nil || *bn == 0:
		row.Verdict, row.Note = CompareNoSamples, "BASE has no samples ("+st.Samples+")"
	default:
		band := st.Band.width(*row.Base)
		switch d := *row.New - *row.Base; {
		case d > band:
			row.Verdict = CompareRegression
		case d < -band:
			row.Verdict = CompareBetter
		default:
			row.Verdict = CompareOK
		}
	}
	return row
}

// readSummaryTree reads a summary.json, or the one in a run folder, as a tree.
func readSummaryTree(path string) (map[string]any, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, FileSummary)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && filepath.Base(path) == FileSummary {
		return nil, fmt.Errorf("%s: no summary.json (make one with `floodgate report %s`): %w", path, filepath.Dir(path), err)
	}
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	if err := json.Unmarshal(b, &tree); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tree, nil
}

// lookup finds a number at a dotted path; nil if absent, null or not a number.
func lookup(tree map[string]any, path string) *float64 {
	var cur any = tree
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	v, ok := cur.(float64)
	if !ok {
		return nil
	}
	return &v
}

// fmtStat prints a statistic's value in its unit.
func fmtStat(v float64, unit string) string {
	switch unit {
	case "us":
		return fmtUS(v)
	case "ms":
		return fmtMS(v)
	case "bytes":
		return fmtBytes(v)
	}
	return fmtCount(v)
}

// WriteTable prints the comparison: one row per statistic with base, new, the
// change, the band and the verdict, then an overall line.
func (c *Comparison) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "stat\tbase\tnew\tdelta\tband\tverdict\n")
	opt := func(v *float64, unit string) string {
		if v == nil {
			return "—"
		}
		return fmtStat(*v, unit)
	}
	for _, r := range c.Rows {
		delta, band := "—", "—"
		if r.Base != nil && r.New != nil {
			d := *r.New - *r.Base
			delta = fmtStat(d, r.Stat.Unit)
			if d >= 0 {
				delta = "+" + delta
			}
			if *r.Base != 0 {
				delta += fmt.Sprintf(" (%+.1f%%)", 100*d/math.Abs(*r.Base))
			}
			band = "±" + fmtStat(r.Stat.Band.width(*r.Base), r.Stat.Unit)
		}
		verdict := r.Verdict
		if r.Note != "" {
			verdict += ": " + r.Note
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Stat.Name, opt(r.Base, r.Stat.Unit), opt(r.New, r.Stat.Unit), delta, band, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch c.ExitCode() {
	case exitcode.Failure:
		_, err := fmt.Fprintf(w, "NOT COMPARABLE: BASE verdict %q, NEW verdict %q: a baseline must be a valid run, and NEW must have run\n", c.BaseVerdict, c.NewVerdict)
		return err
	case exitcode.Invalid:
		_, err := fmt.Fprintf(w, "INVALID: %s is an invalid run: its numbers cannot be compared\n", c.New)
		return err
	}
	if c.Regressed() {
		_, err := fmt.Fprintf(w, "REGRESSION: %s against %s\n", c.New, c.Base)
		return err
	}
	_, err := fmt.Fprintf(w, "within bands: %s against %s\n", c.New, c.Base)
	return err
}
