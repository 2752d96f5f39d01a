package loadgen

import (
	"fmt"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// NoGateway names the gateway of a sample whose recipient had not dialled any
// gateway yet (a message lost to a user that never connected).
const NoGateway = "none"

// GatewayPush is the normal readers' push latency (the samples of TagPush) during
// one phase, for the recipients whose connection was to one gateway when the
// sample was taken: at a message's first receipt, or at its deadline for a lost
// one. Summed over every gateway and phase it is the agent's whole push series.
type GatewayPush struct {
	// Gateway is the gateway's id as ipconf advertises it (gw-3), its address
	// when the agent has a fixed gateway list, or NoGateway.
	Gateway string `json:"gateway"`
	// Phase is the plan phase the sample was taken in; the wait for the last
	// deadlines after the traffic counts as the last phase.
	Phase   string      `json:"phase"`
	Latency Percentiles `json:"latency_us"`
	// Hist is the same as a base64 compressed HdrHistogram (the range and
	// precision of NewHistogram), for merging across agents.
	Hist string `json:"hist"`
}

// gatewayPush keeps one histogram per (gateway, phase) of the normal readers'
// push latency. Histograms are sparse (hdrhistogram.PackedHistogram, the range
// and precision of NewHistogram): memory grows with the distinct values recorded,
// a few KiB per histogram for a latency distribution, not the ~180 KiB of a dense
// one; a dense one per (gateway, phase) of every agent would be most of the
// agent's memory at a handful of gateways and phases. Only totals are kept (no
// intervals): nothing is written until the result. Not safe for concurrent use:
// the agent records under its lock.
//
// Gateways are numbered in the order the agent first learns of them; a user
// keeps the number of the gateway it dialled (user.gw), so a gateway dropped from
// ipconf's list still gets its connected users' samples. An address ipconf
// reassigns to another id gets a new number from then on; numbers are never
// reused.
type gatewayPush struct {
	names  []string       // gateway number → name
	byName map[string]int // name → number
	byAddr map[string]int // dial address → number of the gateway it was last advertised for
	phases []string
	hs     [][]*hdrhistogram.PackedHistogram // [gateway][phase]; nil until the first sample
}

// newGatewayPush returns an empty gatewayPush for the plan's phases (a plan
// without any, which Validate rejects, gets one unnamed phase).
func newGatewayPush(phases []Phase) *gatewayPush {
	g := &gatewayPush{byName: map[string]int{}, byAddr: map[string]int{}}
	for _, ph := range phases {
		g.phases = append(g.phases, ph.Name)
	}
	if len(g.phases) == 0 {
		g.phases = []string{""}
	}
	return g
}

// named returns the number of the gateway called name, adding it if new.
func (g *gatewayPush) named(name string) int {
	if n, ok := g.byName[name]; ok {
		return n
	}
	n := len(g.names)
	g.names = append(g.names, name)
	g.byName[name] = n
	g.hs = append(g.hs, make([]*hdrhistogram.PackedHistogram, len(g.phases)))
	return n
}

// learn records that addr is the gateway id (ipconf's list); an empty id names
// the gateway by its address.
func (g *gatewayPush) learn(addr, id string) {
	if id == "" {
		id = addr
	}
	g.byAddr[addr] = g.named(id)
}

// of returns the number of the gateway at addr, naming it by the address if it
// was never advertised with an id (a fixed gateway list).
func (g *gatewayPush) of(addr string) int {
	if n, ok := g.byAddr[addr]; ok {
		return n
	}
	g.learn(addr, "")
	return g.byAddr[addr]
}

// record adds one sample (µs, already clamped to the histogram's range) taken in
// phase (clamped to the plan's phases: before the first is the first, after the
// last the last) for a recipient on gateway gw (-1, or any number not handed
// out: none dialled yet).
func (g *gatewayPush) record(gw, phase int, us int64) {
	if gw < 0 || gw >= len(g.hs) {
		gw = g.named(NoGateway)
	}
	phase = max(0, min(phase, len(g.phases)-1))
	h := g.hs[gw][phase]
	if h == nil {
		h = hdrhistogram.NewPacked(histMin, histMax, histSigFigs)
		g.hs[gw][phase] = h
	}
	h.RecordValue(us) // in range: the caller clamped it
}

// results returns every (gateway, phase) with samples, gateways in the order
// the agent learnt of them and phases in the plan's order.
func (g *gatewayPush) results() ([]GatewayPush, error) {
	var out []GatewayPush
	for gw, row := range g.hs {
		for ph, h := range row {
			if h == nil || h.TotalCount() == 0 {
				continue
			}
			b, err := h.Encode()
			if err != nil {
				return nil, fmt.Errorf("push histogram of %s in phase %s: %w", g.names[gw], g.phases[ph], err)
			}
			out = append(out, GatewayPush{Gateway: g.names[gw], Phase: g.phases[ph], Latency: summarisePacked(h), Hist: string(b)})
		}
	}
	return out, nil
}

// memory is the bytes the histograms hold.
func (g *gatewayPush) memory() int {
	n := 0
	for _, row := range g.hs {
		for _, h := range row {
			if h != nil {
				n += h.GetMemorySize()
			}
		}
	}
	return n
}

// summarisePacked is Summarise for a sparse histogram.
func summarisePacked(h *hdrhistogram.PackedHistogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	v := h.ValueAtPercentilesSlice([]float64{50, 90, 99, 99.9, 99.99})
	return Percentiles{Count: h.TotalCount(), P50: v[0], P90: v[1], P99: v[2], P999: v[3], P9999: v[4], Max: h.Max()}
}
