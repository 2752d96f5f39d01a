package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Percentiles summarises one histogram, in microseconds.
type Percentiles struct {
	Count int64 `json:"count"`
	P50   int64 `json:"p50"`
	P90   int64 `json:"p90"`
	P99   int64 `json:"p99"`
	P999  int64 `json:"p999"`
	P9999 int64 `json:"p9999"`
	Max   int64 `json:"max"`
}

// Summarise reads the percentiles of h.
func Summarise(h *hdrhistogram.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		Count: h.TotalCount(), P50: h.ValueAtPercentile(50), P90: h.ValueAtPercentile(90),
		P99: h.ValueAtPercentile(99), P999: h.ValueAtPercentile(99.9), P9999: h.ValueAtPercentile(99.99), Max: h.Max(),
	}
}

// Snapshot is an agent's progress, reported every second.
type Snapshot struct {
	Agent       string `json:"agent"`
	Phase       string `json:"phase"`
	Users       int    `json:"users"`
	Active      int    `json:"active"`
	Established uint64 `json:"established"`
	Reconnects  uint64 `json:"reconnects"`
	InFlight    uint64 `json:"in_flight"`
	Counts      Counts `json:"messages"`
}

// Result is an agent's outcome.
type Result struct {
	Agent           string    `json:"agent"`
	Segment         string    `json:"segment"`
	Users           int       `json:"users"`
	Started         time.Time `json:"traffic_started"`
	Ended           time.Time `json:"ended"`
	Interrupted     bool      `json:"interrupted"`
	Established     uint64    `json:"established"`
	PeakActive      int       `json:"peak_active"`
	Reconnects      uint64    `json:"reconnects"`
	Disconnects     uint64    `json:"disconnects"`
	ConnectFailures uint64    `json:"connect_failures"`
	// WebSocketUsers are the users that connected over WebSocket
	// (Plan.WebSocketShare), the others over TCP; WebSocketConns the WebSocket
	// connections whose handshake succeeded (each then logged in like a TCP
	// connection); WebSocketRefused the handshakes the gateway refused or
	// answered wrongly (each also a connect failure).
	WebSocketUsers   int    `json:"websocket_users,omitempty"`
	WebSocketConns   uint64 `json:"websocket_conns,omitempty"`
	WebSocketRefused uint64 `json:"websocket_refused,omitempty"`
	// SilentCloses are connections the agent gave up because the gateway went
	// silent (Plan.PongTimeout, or the announced idle timeout).
	SilentCloses   uint64                 `json:"silent_closes"`
	Kicks          map[string]uint64      `json:"kicks"`
	Messages       Counts                 `json:"messages"`
	Latency        map[string]Percentiles `json:"latency_us"`
	Clamped        uint64                 `json:"clamped_values"`
	ProtocolErrors uint64                 `json:"protocol_errors"`
	ServerErrors   uint64                 `json:"server_errors"`
	Errors         map[string]uint64      `json:"errors"` // ERROR frames received, by code
	// Recovery is when messages were first delivered, by when they were meant to
	// be sent: reports derive each fault's heal-to-last-delivery time from it.
	Recovery *Recovery `json:"recovery,omitempty"`
	// Hostile is each hostile class's outcome (Plan.Hostile), apart from the
	// users' accounting above.
	Hostile []HostileResult `json:"hostile,omitempty"`
	// PushByGateway is the normal readers' push latency per gateway of the
	// recipient and per phase (only those with samples).
	PushByGateway []GatewayPush `json:"push_by_gateway,omitempty"`
	// TraceNegative counts trace hops recorded as 0 because they came out
	// negative (a clock stepped between two stamps; see TraceTags).
	TraceNegative uint64 `json:"trace_negative,omitempty"`
}

func (r *Result) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func (a *Agent) snapshot(st *runState) Snapshot {
	phase := "connect"
	switch {
	case st.phase >= len(a.plan.Phases):
		phase = "drain"
	case st.phase >= 0:
		phase = a.plan.Phases[st.phase].Name
	}
	c := a.counts
	c.Add(a.ledger.c)
	return Snapshot{Agent: a.opts.Name, Phase: phase, Users: len(a.users), Active: a.active,
		Established: a.established, Reconnects: a.reconnects, InFlight: a.ledger.inFlight(), Counts: c}
}

// finish closes the last interval and builds the result.
func (a *Agent) finish(st *runState, started time.Time, interrupted bool) (*Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.meters.rotate(time.Now())
	err := a.meters.close()
	c := a.counts
	c.Add(a.ledger.c)
	res := &Result{
		Agent: a.opts.Name, Segment: a.opts.Segment.String(), Users: len(a.users),
		Started: started, Ended: time.Now(), Interrupted: interrupted,
		Established: a.established, PeakActive: a.peakActive, Reconnects: a.reconnects,
		Disconnects: a.disconnects, ConnectFailures: a.connectFailures, SilentCloses: a.silentCloses, Kicks: a.kicks,
		WebSocketUsers: a.wsUsers, WebSocketConns: a.wsConns, WebSocketRefused: a.wsRefused,
		Messages: c, Latency: map[string]Percentiles{}, Clamped: a.meters.clamped,
		ProtocolErrors: a.protoErrors, ServerErrors: a.serverErrors, Errors: a.errorCodes,
		Recovery: recoveryOf(a.recovery, a.epoch),
	}
	for _, t := range Tags {
		res.Latency[t] = Summarise(a.meters.total[t])
	}
	byGw, gwErr := a.gwPush.results()
	res.PushByGateway = byGw
	res.TraceNegative = a.traceNegative
	return res, errors.Join(err, gwErr)
}

// WriteTable prints the result as a small text report: accounting, then the
// percentiles of every tag that has samples, in milliseconds.
func (r *Result) WriteTable(w io.Writer) {
	m := r.Messages
	fmt.Fprintf(w, "%s: %d users, established %d, reconnects %d, connect failures %d\n",
		r.Agent, r.Users, r.Established, r.Reconnects, r.ConnectFailures)
	fmt.Fprintf(w, "messages: sent %d, acked %d, delivered %d, lost %d, failed %d, late %d, duplicates %d, phantom %d, misdelivered %d, retried %d, redelivered %d, out of order %d, evicted %d, skipped %d\n",
		m.Sent, m.Acked, m.Delivered, m.Lost, m.Failed, m.Late, m.Duplicates, m.Phantom, m.Misdelivered, m.Retried, m.Redelivered, m.OutOfOrder, m.Evicted, m.Skipped)
	if r.WebSocketUsers > 0 {
		fmt.Fprintf(w, "websocket: %d of %d users, %d connections upgraded, %d handshakes refused\n",
			r.WebSocketUsers, r.Users, r.WebSocketConns, r.WebSocketRefused)
	}
	if m.Relogins > 0 || m.ReplacedUnexpected > 0 {
		fmt.Fprintf(w, "relogins %d, replace late %d, replaced unexpectedly %d\n", m.Relogins, m.ReplaceLate, m.ReplacedUnexpected)
	}
	fmt.Fprintf(w, "%-10s %9s %9s %9s %9s %9s %9s %9s\n", "ms", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max")
	for _, t := range Tags {
		p := r.Latency[t]
		if p.Count == 0 {
			continue
		}
		ms := func(us int64) string { return fmt.Sprintf("%.3f", float64(us)/1000) }
		fmt.Fprintf(w, "%-10s %9d %9s %9s %9s %9s %9s %9s\n", t, p.Count, ms(p.P50), ms(p.P90), ms(p.P99), ms(p.P999), ms(p.P9999), ms(p.Max))
	}
	for _, h := range r.Hostile {
		fmt.Fprintf(w, "hostile %s (bound %v): opened %d, closed within bound %d, over bound %d, open at end %d, close p99 %.1f ms, max %.1f ms, endings %v\n",
			h.Class, h.Bound.D(), h.Opened, h.WithinBound, h.OverBound, h.OpenAtEnd, float64(h.CloseUS.P99)/1000, float64(h.CloseUS.Max)/1000, h.Endings)
	}
}
