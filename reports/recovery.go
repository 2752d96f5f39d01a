package reports

import (
	"time"

	"github.com/floodgate/floodgate/runfolder"
)

// FaultSummary is one injected fault in summary.json: the event as the runner
// recorded it (its fields inline) and, for a fault with a heal, how long after
// the heal the last message pending at it was delivered.
type FaultSummary struct {
	runfolder.FaultEvent
	// DurationMS is how long a fault with an end lasted (End − At): a pause, a
	// network fault until its heal, a restart until the process served again.
	// nil for a fault without an end.
	DurationMS *float64 `json:"duration_ms,omitempty"`
	// HealToLastDeliveryMS is the time from the heal (a restarted process
	// serving again, the end of a pause, a reconnect storm's gateways back) to the
	// last first delivery of a message intended before the heal — the messages
	// pending at it — in milliseconds; 0 when all of them were delivered by the
	// heal. It covers messages that were delivered, late ones included; one never
	// delivered is counted lost instead. nil for a fault without a heal, one not
	// applied, or when no agent recorded deliveries before it.
	HealToLastDeliveryMS *float64 `json:"heal_to_last_delivery_ms,omitempty"`
}

// heal returns when a fault healed: its end when it has one (a pause's SIGCONT,
// a network fault's removal, the moment a restart or a reconnect storm's
// restarts served again), a restart's or reconnect storm's start in run folders
// written before the runner recorded that, and false for a fault without one.
func heal(f runfolder.FaultEvent) (time.Time, bool) {
	switch {
	case f.Error != "":
		return time.Time{}, false
	case !f.End.IsZero():
		return f.End, true
	case f.Action == "restart" || f.Action == "reconnect_storm":
		return f.At, true
	}
	return time.Time{}, false
}

// faultSummaries measures every fault's recovery: per healed fault, the latest
// first delivery any agent recorded for messages intended before the heal.
func (a *analysis) faultSummaries() []FaultSummary {
	out := make([]FaultSummary, 0, len(a.r.info.Faults))
	for _, f := range a.r.info.Faults {
		fs := FaultSummary{FaultEvent: f}
		if !f.End.IsZero() {
			ms := float64(f.End.Sub(f.At)) / float64(time.Millisecond)
			fs.DurationMS = &ms
		}
		if h, ok := heal(f); ok {
			var last time.Time
			for _, ag := range a.r.agents {
				if ag.result == nil {
					continue
				}
				if t, ok := ag.result.Recovery.LastDeliveryBefore(h); ok && t.After(last) {
					last = t
				}
			}
			if !last.IsZero() {
				ms := max(0, float64(last.Sub(h))/float64(time.Millisecond))
				fs.HealToLastDeliveryMS = &ms
			}
		}
		out = append(out, fs)
	}
	return out
}
