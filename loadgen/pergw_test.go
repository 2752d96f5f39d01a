package loadgen

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/floodgate/floodgate/gateway/client"
)

// gwKey names one histogram of a gatewayPush: gateway name and phase name.
type gwKey struct{ gateway, phase string }

// countsByGatewayAndPhase returns each (gateway, phase)'s sample count, checking
// that every result's histogram decodes to the count and maximum it states.
func countsByGatewayAndPhase(t *testing.T, rs []GatewayPush) map[gwKey]int64 {
	t.Helper()
	out := map[gwKey]int64{}
	for _, r := range rs {
		h, err := hdrhistogram.DecodePacked([]byte(r.Hist))
		if err != nil {
			t.Fatalf("%s/%s: histogram: %v", r.Gateway, r.Phase, err)
		}
		if h.TotalCount() != r.Latency.Count || h.Max() != r.Latency.Max {
			t.Fatalf("%s/%s: histogram holds %d samples, max %d; the percentiles say %d, max %d",
				r.Gateway, r.Phase, h.TotalCount(), h.Max(), r.Latency.Count, r.Latency.Max)
		}
		k := gwKey{r.Gateway, r.Phase}
		if _, dup := out[k]; dup {
			t.Fatalf("%s/%s reported twice", r.Gateway, r.Phase)
		}
		out[k] = r.Latency.Count
	}
	return out
}

// Each sample lands under the gateway its recipient dialled and the phase it
// was taken in, and nowhere else.
func TestGatewayPushAttributesEachSampleToItsGatewayAndPhase(t *testing.T) {
	phases := []Phase{{Name: "warm"}, {Name: "cut"}, {Name: "heal"}}
	type advert struct{ addr, id string }
	type sample struct {
		addr  string // "" : the recipient never dialled
		phase int
	}
	tests := []struct {
		name        string
		adverts     []advert // ipconf's list, learnt before the samples
		samples     []sample
		readvertise []advert // learnt after the first half of the samples
		want        map[gwKey]int64
	}{
		{
			name:    "a sample on gw-2 is under gw-2 only",
			adverts: []advert{{"10.0.0.1:7000", "gw-1"}, {"10.0.0.2:7000", "gw-2"}, {"10.0.0.3:7000", "gw-3"}},
			samples: []sample{{"10.0.0.2:7000", 1}},
			want:    map[gwKey]int64{{"gw-2", "cut"}: 1},
		},
		{
			name:    "gateways and phases apart",
			adverts: []advert{{"10.0.0.1:7000", "gw-1"}, {"10.0.0.2:7000", "gw-2"}},
			samples: []sample{{"10.0.0.1:7000", 0}, {"10.0.0.1:7000", 0}, {"10.0.0.2:7000", 0}, {"10.0.0.2:7000", 2}, {"10.0.0.1:7000", 1}},
			want:    map[gwKey]int64{{"gw-1", "warm"}: 2, {"gw-2", "warm"}: 1, {"gw-2", "heal"}: 1, {"gw-1", "cut"}: 1},
		},
		{
			name:    "before the first phase is the first, the drain the last",
			adverts: []advert{{"10.0.0.1:7000", "gw-1"}},
			samples: []sample{{"10.0.0.1:7000", -1}, {"10.0.0.1:7000", 3}, {"10.0.0.1:7000", 7}},
			want:    map[gwKey]int64{{"gw-1", "warm"}: 1, {"gw-1", "heal"}: 2},
		},
		{
			name:    "a fixed list names gateways by address",
			samples: []sample{{"127.0.0.1:7000", 0}},
			want:    map[gwKey]int64{{"127.0.0.1:7000", "warm"}: 1},
		},
		{
			name:    "an unnamed advert is named by its address",
			adverts: []advert{{"10.0.0.9:7000", ""}},
			samples: []sample{{"10.0.0.9:7000", 0}},
			want:    map[gwKey]int64{{"10.0.0.9:7000", "warm"}: 1},
		},
		{
			name:    "a recipient that never dialled is under none",
			samples: []sample{{"", 1}},
			want:    map[gwKey]int64{{NoGateway, "cut"}: 1},
		},
		{
			name:        "an address advertised for another id counts for that id from then on",
			adverts:     []advert{{"10.0.0.1:7000", "gw-1"}},
			samples:     []sample{{"10.0.0.1:7000", 0}, {"10.0.0.1:7000", 0}},
			readvertise: []advert{{"10.0.0.1:7000", "gw-5"}},
			want:        map[gwKey]int64{{"gw-1", "warm"}: 1, {"gw-5", "warm"}: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGatewayPush(phases)
			for _, a := range tc.adverts {
				g.learn(a.addr, a.id)
			}
			for i, s := range tc.samples {
				if len(tc.readvertise) > 0 && i == len(tc.samples)/2 {
					for _, a := range tc.readvertise {
						g.learn(a.addr, a.id)
					}
				}
				gw := -1
				if s.addr != "" {
					gw = g.of(s.addr) // as dial does
				}
				g.record(gw, s.phase, int64(1000+i))
			}
			rs, err := g.results()
			if err != nil {
				t.Fatal(err)
			}
			got := countsByGatewayAndPhase(t, rs)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, n := range tc.want {
				if got[k] != n {
					t.Fatalf("%s/%s: %d samples, want %d (all: %v)", k.gateway, k.phase, got[k], n, got)
				}
			}
		})
	}
}

// The per-gateway histograms have the push histogram's range and precision: the
// same samples give the same percentiles as NewHistogram. Their size is logged:
// sparse histograms grow with the distinct values recorded.
func TestGatewayPushMatchesThePushHistogram(t *testing.T) {
	g := newGatewayPush([]Phase{{Name: "p"}})
	g.learn("10.0.0.1:7000", "gw-1")
	dense := NewHistogram()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		us := int64(2000 * math.Exp(0.8*rng.NormFloat64())) // lognormal around 2 ms
		if rng.IntN(1000) == 0 {
			us = 10_000_000 // a loss, at the deadline
		}
		us = max(histMin, min(us, histMax))
		dense.RecordValue(us)
		g.record(g.of("10.0.0.1:7000"), 0, us)
	}
	rs, err := g.results()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("want one result, got %d", len(rs))
	}
	if want := Summarise(dense); rs[0].Latency != want {
		t.Fatalf("per-gateway percentiles %+v, push histogram's %+v", rs[0].Latency, want)
	}
	t.Logf("one per-gateway histogram of 200k lognormal samples: %d bytes in memory (dense: %d), %d bytes encoded",
		g.memory(), dense.ByteSize(), len(rs[0].Hist))
}

// An agent whose gateways come from ipconf records its users' push latency under
// the id ipconf gave the gateway they dialled, per phase; the per-gateway counts
// add up to the push series.
func TestAgentRecordsPushLatencyUnderTheRecipientsGateway(t *testing.T) {
	addr := startGateway(t, nil)
	ipconf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(client.GatewayList{Gateways: []client.Gateway{{ID: "gw-7", Addr: addr, Weight: 1}}})
	}))
	t.Cleanup(ipconf.Close)
	plan := fakePlan(nil, 20, 100, 0)
	plan.Ipconf = ipconf.URL
	plan.Phases = []Phase{{Name: "one", Duration: Duration(time.Second)}, {Name: "two", Duration: Duration(time.Second)}}
	res := runAgent(t, newAgent(t, plan))
	assertEveryMessageDelivered(t, res.Messages)
	got := countsByGatewayAndPhase(t, res.PushByGateway)
	var sum int64
	for k, n := range got {
		if k.gateway != "gw-7" {
			t.Fatalf("samples under %q: only gw-7 was dialled (all: %v)", k.gateway, got)
		}
		sum += n
	}
	if got[gwKey{"gw-7", "one"}] == 0 || got[gwKey{"gw-7", "two"}] == 0 {
		t.Fatalf("want samples in both phases: %v", got)
	}
	if push := res.Latency[TagPush].Count; sum != push {
		t.Fatalf("per-gateway samples add up to %d, the push series holds %d", sum, push)
	}
}

// BenchmarkGatewayPushRecord is the cost of one per-gateway sample, beside the
// dense push histogram's record it follows.
func BenchmarkGatewayPushRecord(b *testing.B) {
	g := newGatewayPush([]Phase{{Name: "p"}})
	gw := g.of("10.0.0.1:7000")
	dense := NewHistogram()
	rng := rand.New(rand.NewPCG(1, 2))
	vs := make([]int64, 1<<16)
	for i := range vs {
		vs[i] = max(histMin, int64(2000*math.Exp(0.8*rng.NormFloat64())))
	}
	b.Run("per-gateway", func(b *testing.B) {
		for i := range b.N {
			g.record(gw, 0, vs[i&(len(vs)-1)])
		}
	})
	b.Run("dense", func(b *testing.B) {
		for i := range b.N {
			dense.RecordValue(vs[i&(len(vs)-1)])
		}
	})
}
