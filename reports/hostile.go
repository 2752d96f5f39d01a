package reports

import (
	"fmt"
	"slices"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// HostileSummary is one hostile class (behaviours.hostile) over the whole run,
// summed over the agents. Hostile connections are not users: none of their
// figures is in Connections, Messages or the latency series.
type HostileSummary struct {
	Class   string  `json:"class"`
	BoundMS float64 `json:"bound_ms"` // the server must close each connection within this of its connect
	// Conns is the connections the class keeps open at once across the fleet;
	// PeakOpen the sum of each agent's peak (an upper bound of the fleet's).
	Conns           int    `json:"conns"`
	PeakOpen        int    `json:"peak_open"`
	Opened          uint64 `json:"opened"`
	ConnectFailures uint64 `json:"connect_failures"`
	// Closed are the connections the server closed, ClosedWithinBound those it
	// closed within the bound; OverBound are those closed after it or still
	// open past it at the end; OpenAtEnd those still open when the run ended
	// (each waited for until its bound, then closed by the agent).
	Closed            uint64 `json:"closed"`
	ClosedWithinBound uint64 `json:"closed_within_bound"`
	OverBound         uint64 `json:"over_bound"`
	OpenAtEnd         uint64 `json:"open_at_end"`
	// CloseMS is the time from connect to the connection's end.
	CloseMS MillisStats `json:"close_ms"`
	// Endings counts how connections ended: "KICK <reason>/<code>", eof, reset,
	// open_at_end or error; Errors the ERROR frames they were sent, by code.
	Endings   map[string]uint64 `json:"endings"`
	Errors    map[string]uint64 `json:"errors"`
	BytesSent uint64            `json:"bytes_sent"`
}

// hostileFigures merges the agents' hostile results per class, in the plan's
// order, with each class's close times and all of them together (key "").
// ok is false when no agent reported hostile connections.
func (a *analysis) hostileFigures() (classes []HostileSummary, close map[string]hist, ok bool) {
	close = map[string]hist{}
	byClass := map[string]*HostileSummary{}
	var order []string
	for _, ag := range a.r.agents {
		if ag.result == nil {
			continue
		}
		for _, h := range ag.result.Hostile {
			ok = true
			s := byClass[h.Class]
			if s == nil {
				s = &HostileSummary{Class: h.Class, BoundMS: float64(h.Bound.D().Microseconds()) / 1000,
					Endings: map[string]uint64{}, Errors: map[string]uint64{}}
				byClass[h.Class] = s
				order = append(order, h.Class)
			}
			s.Conns += h.Conns
			s.PeakOpen += h.PeakOpen
			s.Opened += h.Opened
			s.ConnectFailures += h.ConnectFailures
			s.Closed += h.Closed
			s.ClosedWithinBound += h.WithinBound
			s.OverBound += h.OverBound
			s.OpenAtEnd += h.OpenAtEnd
			s.BytesSent += h.BytesSent
			for k, v := range h.Endings {
				s.Endings[k] += v
			}
			for k, v := range h.Errors {
				s.Errors[k] += v
			}
			if h.CloseHist == "" {
				continue
			}
			p, err := hdr.DecodePacked([]byte(h.CloseHist))
			if err != nil {
				if note := fmt.Sprintf("agent-%d: hostile %s close times unreadable: %v", ag.index, h.Class, err); !slices.Contains(a.r.notes, note) {
					a.r.notes = append(a.r.notes, note)
				}
				continue
			}
			c, all := close[h.Class], close[""]
			c.add(p)
			all.add(p)
			close[h.Class], close[""] = c, all
		}
	}
	for _, c := range order {
		s := *byClass[c]
		s.CloseMS = millis(close[c].latency())
		classes = append(classes, s)
	}
	return classes, close, ok
}

// measureHostile is a hostile gate metric over the whole run.
func (a *analysis) measureHostile(metric, stat string) (v float64, ok bool, why string) {
	classes, close, any := a.hostileFigures()
	if !any {
		return 0, false, "no hostile connections in the agents' results"
	}
	if class, isClose := strings.CutPrefix(metric, "hostile_close"); isClose {
		class = strings.TrimPrefix(class, "_")
		v, ok := close[class].stat(stat)
		if !ok {
			return 0, false, fmt.Sprintf("no %s close times", metric)
		}
		return v, true, ""
	}
	var n uint64
	for _, c := range classes {
		n += map[string]uint64{"hostile_opened": c.Opened, "hostile_closed": c.Closed,
			"hostile_over_bound": c.OverBound, "hostile_open_at_end": c.OpenAtEnd}[metric]
	}
	return float64(n), true, ""
}

// hostileSection is the report's table of hostile classes; nil without any.
func hostileSection(s *Summary) *section {
	if len(s.Hostile) == 0 {
		return nil
	}
	t := table{Caption: "Hostile connections per class: time from connect to the server's close (ms) and how they ended",
		Head: []string{"", "class", "bound", "conns", "peak open", "opened", "closed in bound", "over bound", "open at end", "p50", "p99", "max", "endings"}}
	for _, h := range s.Hostile {
		var ends []string
		for _, k := range sortedKeys(h.Endings) {
			ends = append(ends, fmt.Sprintf("%s %s", k, fmtCount(float64(h.Endings[k]))))
		}
		status := "pass" // the status column: every connection closed within its bound
		if h.OverBound > 0 || h.OpenAtEnd > 0 {
			status = "fail"
		}
		f := func(v float64) string { return fmt.Sprintf("%.1f", v) }
		t.Rows = append(t.Rows, []string{status, h.Class, fmtMS(h.BoundMS), fmtCount(float64(h.Conns)), fmtCount(float64(h.PeakOpen)),
			fmtCount(float64(h.Opened)), fmtCount(float64(h.ClosedWithinBound)), fmtCount(float64(h.OverBound)), fmtCount(float64(h.OpenAtEnd)),
			f(h.CloseMS.P50), f(h.CloseMS.P99), f(h.CloseMS.Max), strings.Join(ends, ", ")})
		t.Status = append(t.Status, status)
	}
	return &section{ID: "hostile", Title: "Hostile connections",
		Paras: []string{"Connections that abuse the client port beside the clients (behaviours.hostile). They are not users: " +
			"nothing here is in the delivery accounting or the latency series. A connection is over its bound when the server " +
			"closed it later than the bound after its connect, or had not closed it when the run ended."},
		Tables: []table{t}}
}
