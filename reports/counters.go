package reports

import (
	"slices"
	"strings"
	"time"

	"github.com/floodgate/floodgate/runfolder"
)

// Scraped metric names this package reads.
const (
	metricConns    = "floodgate_reactor_connections"
	metricRejected = "floodgate_reactor_rejected_total"
	metricKicks    = "floodgate_gateway_kicks_total"
	metricAccepted = "floodgate_reactor_accepted_total"
	metricClosed   = "floodgate_reactor_closed_total"
)

// selector picks the samples of one metric: its name, and labels that must match
// (other labels are free, and matching keys are summed).
type selector struct {
	name   string
	labels map[string]string
}

// parseKey splits a Prometheus sample key, `name{a="x",b="y"}`, into its name and
// labels. Label values may hold escaped quotes and backslashes.
func parseKey(key string) (name string, labels map[string]string) {
	name, rest, ok := strings.Cut(key, "{")
	if !ok {
		return key, nil
	}
	labels = map[string]string{}
	rest = strings.TrimSuffix(rest, "}")
	for rest != "" {
		k, after, ok := strings.Cut(rest, `="`)
		if !ok {
			break
		}
		var v strings.Builder
		i := 0
		for ; i < len(after) && after[i] != '"'; i++ {
			if after[i] == '\\' && i+1 < len(after) {
				i++
				switch after[i] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(after[i])
				}
				continue
			}
			v.WriteByte(after[i])
		}
		labels[strings.TrimSpace(k)] = v.String()
		rest = strings.TrimPrefix(strings.TrimPrefix(after[min(i+1, len(after)):], ","), " ")
	}
	return name, labels
}

// value sums the sample's metrics that sel matches; ok is false if none does.
func (sel selector) value(m map[string]float64) (v float64, ok bool) {
	for key, x := range m {
		if !strings.HasPrefix(key, sel.name) {
			continue
		}
		name, labels := parseKey(key)
		if name != sel.name {
			continue
		}
		match := true
		for k, want := range sel.labels {
			if labels[k] != want {
				match = false
				break
			}
		}
		if match {
			v, ok = v+x, true
		}
	}
	return v, ok
}

// point is one reading of one process's counter or gauge.
type point struct {
	t time.Time
	v float64
}

// perProcess returns sel's readings per process name, in time order (the run's
// samples are sorted by time).
func perProcess(samples []runfolder.MetricsSample, sel selector) map[string][]point {
	out := map[string][]point{}
	for _, s := range samples {
		if v, ok := sel.value(s.Metrics); ok {
			out[s.Process] = append(out[s.Process], point{s.T, v})
		}
	}
	return out
}

// increase is how much a counter grew over (from, to] (zero times leave that end
// open), from one process's readings. Each incarnation of a process starts its
// counters at zero: a reading below the previous one, or the first reading after
// a restart (a start time in starts), counts whole. The first incarnation counts
// from its first reading, so a counter's value before the run is never charged to
// it. ok is false when no reading falls in the window.
func increase(pts []point, starts []time.Time, from, to time.Time) (sum float64, ok bool) {
	var prev *point
	for i := range pts {
		p := &pts[i]
		if !to.IsZero() && p.t.After(to) {
			break
		}
		if !from.IsZero() && !p.t.After(from) {
			prev = p // the baseline: the last reading at or before from
			continue
		}
		ok = true
		switch {
		case prev == nil:
			// the first reading of the run's window with no baseline: counts from here
		case p.v < prev.v || restartedBetween(starts, prev.t, p.t):
			sum += p.v
		default:
			sum += p.v - prev.v
		}
		prev = p
	}
	return sum, ok
}

// restartedBetween reports whether a (re)start time falls in (a, b].
func restartedBetween(starts []time.Time, a, b time.Time) bool {
	for _, s := range starts {
		if s.After(a) && !s.After(b) {
			return true
		}
	}
	return false
}

// peak is the largest reading in [from, to] (zero times leave that end open).
func peak(pts []point, from, to time.Time) (v float64, ok bool) {
	for _, p := range pts {
		if within(p.t, from, to) {
			v, ok = max(v, p.v), true
		}
	}
	return v, ok
}

// within reports whether t lies in [from, to], a zero end being open.
func within(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || !t.After(to))
}

// restarts returns the start times of each process name's later incarnations
// (a process the runner restarted has one runfolder.RunInfo entry per incarnation).
func restarts(procs []runfolder.ProcessInfo) map[string][]time.Time {
	all := map[string][]time.Time{}
	for _, p := range procs {
		all[p.Name] = append(all[p.Name], p.Started)
	}
	out := map[string][]time.Time{}
	for name, ts := range all {
		slices.SortFunc(ts, time.Time.Compare)
		if len(ts) > 1 {
			out[name] = ts[1:]
		}
	}
	return out
}
