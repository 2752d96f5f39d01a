package ipconf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/internal/poll"
)

func get(t *testing.T, url string, into any) (int, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); into != nil && ct != "application/json" {
		t.Fatalf("%s: content type %q", url, ct)
	}
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("%s: decoding: %v", url, err)
		}
	}
	return resp.StatusCode, resp.Header
}

func TestGatewaysEndpoint(t *testing.T) {
	clk := newClock()
	s := newService(t, clk, func(c *Config) {
		c.Heartbeat = 20 * time.Second
		c.Backoff = Backoff{Base: 2 * time.Second, Max: time.Minute, Jitter: 0.5}
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	t.Run("no table yet", func(t *testing.T) {
		var r Response
		code, h := get(t, srv.URL+"/v1/gateways?uid=1", &r)
		if code != http.StatusServiceUnavailable || len(r.Gateways) != 0 || r.Backoff.BaseMS != 2000 || h.Get("Retry-After") != "2" {
			t.Fatalf("code %d, body %+v, Retry-After %q", code, r, h.Get("Retry-After"))
		}
	})

	s.Update(fleet(clk, 100, 500, 900, 950))
	t.Run("list", func(t *testing.T) {
		var r Response
		if code, _ := get(t, srv.URL+"/v1/gateways?uid=42", &r); code != http.StatusOK {
			t.Fatalf("code %d", code)
		}
		if len(r.Gateways) != 4 || r.HeartbeatMS != 20000 || r.Frozen ||
			r.Backoff != (BackoffHint{BaseMS: 2000, MaxMS: 60000, Jitter: 0.5}) {
			t.Fatalf("body %+v", r)
		}
		if at, err := time.Parse(time.RFC3339, r.GeneratedAt); err != nil || !at.Equal(epoch0) {
			t.Fatalf("generated_at %q: %v", r.GeneratedAt, err)
		}
		if r.Gateways[3].ID != "g3" || r.Gateways[3].Addr != "g3:7000" {
			t.Fatalf("worst gateway not last: %+v", r.Gateways)
		}
		var sum float64
		for _, g := range r.Gateways {
			sum += g.Weight
		}
		if !near(sum, 1, 1e-9) {
			t.Fatalf("weights sum to %v", sum)
		}
	})

	for _, q := range []string{"", "?uid=", "?uid=abc", "?uid=0", "?uid=-3", "?uid=18446744073709551616"} {
		t.Run("bad uid "+q, func(t *testing.T) {
			var e ErrorResponse
			if code, _ := get(t, srv.URL+"/v1/gateways"+q, &e); code != http.StatusBadRequest || e.Error == "" {
				t.Fatalf("code %d, error %q", code, e.Error)
			}
		})
	}
	t.Run("wrong method", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/v1/gateways?uid=1", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("code %d", resp.StatusCode)
		}
	})

	for status, want := range map[string]float64{"200": 1, "400": 6, "503": 1} {
		if got := gaugeValue(t, s.metrics.requests.WithLabelValues(status)); got != want {
			t.Errorf("requests{status=%s} = %v, want %v", status, got, want)
		}
	}
	if got := gaugeValue(t, s.metrics.advertised); got != 4 {
		t.Errorf("gateways gauge %v, want 4", got)
	}
}

// A gateway with a WebSocket port is advertised with its address under "ws"; one
// without has no "ws" key at all. Gateways still advertised during a freeze keep
// theirs.
func TestGatewaysEndpointAdvertisesWebSocketAddresses(t *testing.T) {
	clk := newClock()
	s := newService(t, clk)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	table := fleet(clk, 100, 500)
	table[0].WSAddr = "g0:7080"
	wantWS := map[string]string{"g0": `"g0:7080"`, "g1": ""} // raw JSON; "" for no key

	for _, tc := range []struct {
		name   string
		table  []state.Gateway
		frozen bool
	}{
		{"live", table, false},
		{"frozen after the fleet vanished", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk.Advance(time.Second)
			s.Update(tc.table)
			var r struct {
				Gateways []map[string]json.RawMessage `json:"gateways"`
				Frozen   bool                         `json:"frozen"`
			}
			if code, _ := get(t, srv.URL+"/v1/gateways?uid=7", &r); code != http.StatusOK {
				t.Fatalf("code %d", code)
			}
			if r.Frozen != tc.frozen || len(r.Gateways) != len(wantWS) {
				t.Fatalf("frozen %v with gateways %s, want frozen %v and %d gateways", r.Frozen, r.Gateways, tc.frozen, len(wantWS))
			}
			for _, g := range r.Gateways {
				var id string
				if err := json.Unmarshal(g["id"], &id); err != nil {
					t.Fatalf("gateway %s: id: %v", g, err)
				}
				if ws, ok := g["ws"]; string(ws) != wantWS[id] || ok != (wantWS[id] != "") {
					t.Errorf("gateway %s: ws %s (present %v), want %q", id, ws, ok, wantWS[id])
				}
			}
		})
	}
}

// The example answer of PROTOCOL.md §10.1 decodes into a Response with no field
// left over, its WebSocket addresses included, so the document and the code name
// the same fields.
func TestProtocolExampleIsAResponse(t *testing.T) {
	doc, err := os.ReadFile("../proto/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := bytes.Cut(doc, []byte("### 10.1 "))
	if !ok {
		t.Fatal("PROTOCOL.md has no §10.1")
	}
	_, body, ok := bytes.Cut(sec, []byte("```json\n"))
	if !ok {
		t.Fatal("§10.1 has no json example")
	}
	body, _, ok = bytes.Cut(body, []byte("```"))
	if !ok {
		t.Fatal("§10.1's json example is not closed")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var r Response
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("§10.1 example: %v\n%s", err, body)
	}
	var ws []string
	for _, g := range r.Gateways {
		ws = append(ws, g.WS)
	}
	if want := []string{"10.0.0.3:7080", "10.0.0.1:7080", ""}; !slices.Equal(ws, want) {
		t.Fatalf("§10.1 example's ws fields %q, want %q", ws, want)
	}
}

func TestRunPollsTheSourceAndHealthTracksIt(t *testing.T) {
	clk := newClock()
	s := newService(t, clk, func(c *Config) { c.PollInterval = time.Millisecond })
	if err := s.Health(); err == nil {
		t.Fatal("healthy before any table")
	}
	src := &fakeSource{}
	src.set(nil, errors.New("state unreachable"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, src) }()

	poll.True(t, 5*time.Second, "a failed read to be counted", func() bool { return gaugeValue(t, s.metrics.sourceErrors) > 0 })
	if s.current.Load() != nil {
		t.Fatal("a failed read produced a list")
	}
	src.set(fleet(clk, 10, 20), nil)
	poll.True(t, 5*time.Second, "the table to be applied", func() bool { return len(ids(s)) == 2 })
	if err := s.Health(); err != nil {
		t.Fatalf("unhealthy after an update: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	clk.Advance(6 * time.Second)
	if err := s.Health(); err == nil {
		t.Fatal("healthy with a table 6s old")
	}
}

// The default hints are the schedule PROTOCOL.md §10 gives clients without a
// hint (full jitter, 500 ms base, 30 s cap): one truth for clients, the Go
// client's defaults included, whether or not they ask ipconf.
func TestDefaultBackoffHintIsTheProtocolSchedule(t *testing.T) {
	clk := newClock()
	s := newService(t, clk)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	want := BackoffHint{BaseMS: 500, MaxMS: 30000, Jitter: 1}

	var r Response
	code, h := get(t, srv.URL+"/v1/gateways?uid=1", &r)
	if code != http.StatusServiceUnavailable || r.Backoff != want || h.Get("Retry-After") != "1" {
		t.Fatalf("no table: code %d, backoff %+v, Retry-After %q; want 503, %+v, 1", code, r.Backoff, h.Get("Retry-After"), want)
	}
	s.Update(fleet(clk, 100))
	if code, _ := get(t, srv.URL+"/v1/gateways?uid=1", &r); code != http.StatusOK || r.Backoff != want {
		t.Fatalf("code %d, backoff %+v, want 200, %+v", code, r.Backoff, want)
	}
	c := client.BackoffHint{BaseMS: int(want.BaseMS), MaxMS: int(want.MaxMS), Jitter: want.Jitter}.Backoff()
	if c != (client.Backoff{Base: client.DefaultBackoffBase, Max: client.DefaultBackoffMax, Jitter: client.DefaultBackoffJitter}) {
		t.Fatalf("the Go client's defaults %+v differ from ipconf's hint %+v", c, want)
	}
}
