package ipconf

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"time"
)

// entry is one advertised gateway.
type entry struct {
	ID, Addr string
	WS       string  // the WebSocket address; "" when the gateway has none
	Score    float64 // from Config.score
	Weight   float64 // Score normalised over the view; the weights sum to 1
}

// view is an immutable answer template, replaced whole on every update.
type view struct {
	entries   []entry // best score first, ties broken by id
	frozen    bool
	generated time.Time // when the table behind it was applied
}

// newView sorts entries by score and normalises their weights. If every score is
// 0 (the whole fleet is full) the weights are equal, so clients still spread out.
func newView(entries []entry, frozen bool, at time.Time) *view {
	slices.SortFunc(entries, func(a, b entry) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	var total float64
	for _, e := range entries {
		total += e.Score
	}
	for i := range entries {
		if total > 0 {
			entries[i].Weight = entries[i].Score / total
		} else {
			entries[i].Weight = 1 / float64(len(entries))
		}
	}
	return &view{entries: entries, frozen: frozen, generated: at}
}

// arrange appends v's entries to dst in answer order: the first k (the best by
// score) in weighted random order — each position drawn among the remaining ones
// with probability proportional to weight — then the rest by score. Randomising the
// head spreads a reconnect storm over the best gateways instead of sending every
// client to the single best one; the tail gives clients fallbacks.
func (v *view) arrange(dst []entry, k int, rng *rand.Rand) []entry {
	dst = append(dst, v.entries...)
	head := dst[:min(k, len(dst))]
	for i := range head {
		rest := head[i:]
		var total float64
		for _, e := range rest {
			total += e.Weight
		}
		pick := 0
		if total > 0 {
			r := rng.Float64() * total
			for pick = 0; pick < len(rest)-1; pick++ {
				if r -= rest[pick].Weight; r < 0 {
					break
				}
			}
		} else {
			pick = rng.IntN(len(rest))
		}
		rest[0], rest[pick] = rest[pick], rest[0]
	}
	return dst
}
