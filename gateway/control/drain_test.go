package control

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/internal/poll"
)

// fakeGateway is a real link server that answers gwlink.MethodDrain as a gateway
// would, recording each DrainRequest.
type fakeGateway struct {
	srv    *link.Server
	status gwlink.DrainStatus
	fail   error // answered instead of a status when set

	mu  sync.Mutex
	got []gwlink.DrainRequest
}

func startGateway(t *testing.T, status gwlink.DrainStatus, fail error) *fakeGateway {
	t.Helper()
	fg := &fakeGateway{status: status, fail: fail}
	srv, err := link.Listen(link.ServerConfig{Addr: "127.0.0.1:0", Secret: secret, Handler: fg.handle,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	fg.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return fg
}

func (fg *fakeGateway) handle(_ context.Context, r *link.Request) ([]byte, error) {
	if r.Method != gwlink.MethodDrain {
		return nil, errors.New("unknown method")
	}
	var req gwlink.DrainRequest
	if err := json.Unmarshal(r.Body, &req); err != nil {
		return nil, err
	}
	fg.mu.Lock()
	fg.got = append(fg.got, req)
	fg.mu.Unlock()
	if fg.fail != nil {
		return nil, fg.fail
	}
	return gwlink.Marshal(fg.status), nil
}

func (fg *fakeGateway) requests() []gwlink.DrainRequest {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	return slices.Clone(fg.got)
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestDrainOverTheLink(t *testing.T) {
	clk := newClock()
	fg := startGateway(t, gwlink.DrainStatus{Sessions: 42, Started: true}, nil)
	g := gw(clk, "g1", 500)
	g.LinkAddr = fg.srv.Addr()
	store := &fakeStore{}
	store.set(g, gw(clk, "g2", 100))
	s := newService(t, clk, store)
	s.Update(store.gws)
	api := serve(t, s)

	var res DrainResult
	code := api.post("/v1/drain", `{"gateway":"g1","batch":250,"interval":"1500ms","retry_after":"3s"}`, &res)
	if code != 200 || res != (DrainResult{Gateway: "g1", Draining: true, DrainStatus: gwlink.DrainStatus{Sessions: 42, Started: true}}) {
		t.Fatalf("drain: %d %+v", code, res)
	}
	if got := store.drainCalls(); !slices.Equal(got, []drainCall{{"g1", true}}) {
		t.Fatalf("SetDraining calls %v", got)
	}
	want := []gwlink.DrainRequest{{Batch: 250, Interval: 1500 * time.Millisecond, RetryAfter: 3 * time.Second}}
	if got := fg.requests(); !slices.Equal(got, want) {
		t.Fatalf("the gateway got %+v, want %+v", got, want)
	}

	// Left-out fields take the defaults; the link client is reused; the answer is
	// the DrainStatus's fields with the gateway's id.
	var raw map[string]any
	if code := api.post("/v1/drain", `{"gateway":"g1"}`, &raw); code != 200 ||
		raw["gateway"] != "g1" || raw["draining"] != true || raw["sessions"] != 42.0 || raw["started"] != true {
		t.Fatalf("second drain: %d %v", code, raw)
	}
	want = append(want, gwlink.DrainRequest{Batch: 500, Interval: time.Second})
	if got := fg.requests(); !slices.Equal(got, want) {
		t.Fatalf("the gateway got %+v, want %+v", got, want)
	}
	if n := len(fg.srv.Peers()); n != 1 {
		t.Fatalf("%d link connections to the gateway, want 1", n)
	}

	// The drained gateway exits: no alert, and its link client is closed.
	clk.Advance(5 * time.Second)
	s.Update([]state.Gateway{gw(clk, "g2", 100)})
	poll.True(t, 5*time.Second, "the link to the gone gateway to close", func() bool { return len(fg.srv.Peers()) == 0 })
	if events, _, _ := s.Alerts(0); len(events) != 0 {
		t.Fatalf("alerts after a drained gateway left: %v", briefs(events))
	}
}

// TestDrainBeforeTheTableShowsIt checks that a gateway drained through control
// and gone before any table showed its draining flag is not reported down.
func TestDrainBeforeTheTableShowsIt(t *testing.T) {
	clk := newClock()
	fg := startGateway(t, gwlink.DrainStatus{Started: true}, nil)
	g := gw(clk, "g1", 0)
	g.LinkAddr = fg.srv.Addr()
	store := &fakeStore{}
	store.set(g)
	s := newService(t, clk, store)
	s.Update([]state.Gateway{g})
	if _, err := s.Drain(context.Background(), "g1", gwlink.DrainRequest{Batch: 1, Interval: time.Second}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Second)
	s.Update([]state.Gateway{g}) // the old row: lapsed, no flag
	if events, _, _ := s.Alerts(0); len(events) != 0 {
		t.Fatalf("alerts: %v", briefs(events))
	}
}

func TestDrainAndUndrainErrors(t *testing.T) {
	clk := newClock()
	broken := startGateway(t, gwlink.DrainStatus{}, errors.New("drain refused"))
	live := func(id, linkAddr string) state.Gateway {
		g := gw(clk, id, 0)
		g.LinkAddr = linkAddr
		return g
	}
	dead := gw(clk, "dead", 0)
	dead.Expires = clk.Now()
	store := &fakeStore{}
	store.set(live("unreachable", closedAddr(t)), live("broken", broken.srv.Addr()), live("nolink", ""), dead)
	s := newService(t, clk, store, func(c *Config) { c.DrainTimeout = 200 * time.Millisecond })
	s.Update(store.gws)
	api := serve(t, s)

	for _, tc := range []struct {
		name, path, body string
		status           int
		setDraining      bool // whether SetDraining was called
	}{
		{"malformed JSON", "/v1/drain", `{"gateway":`, 400, false},
		{"unknown field", "/v1/drain", `{"gateway":"broken","batchsize":5}`, 400, false},
		{"no gateway", "/v1/drain", `{"batch":5}`, 400, false},
		{"bad duration", "/v1/drain", `{"gateway":"broken","interval":"soon"}`, 400, false},
		{"duration as a number", "/v1/drain", `{"gateway":"broken","interval":1000}`, 400, false},
		{"zero batch", "/v1/drain", `{"gateway":"broken","batch":0}`, 400, false},
		{"negative retry-after", "/v1/drain", `{"gateway":"broken","retry_after":"-1s"}`, 400, false},
		{"trailing data", "/v1/drain", `{"gateway":"broken"} {}`, 400, false},
		{"unknown gateway", "/v1/drain", `{"gateway":"nope"}`, 404, false},
		{"dead gateway", "/v1/drain", `{"gateway":"dead"}`, 409, false},
		{"no link address", "/v1/drain", `{"gateway":"nolink"}`, 409, false},
		{"gateway unreachable", "/v1/drain", `{"gateway":"unreachable"}`, 502, true},
		{"gateway refuses", "/v1/drain", `{"gateway":"broken"}`, 502, true},
		{"undrain malformed", "/v1/undrain", `[]`, 400, false},
		{"undrain unknown gateway", "/v1/undrain", `{"gateway":"nope"}`, 404, true}, // the store says so
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(store.drainCalls())
			var e ErrorResponse
			if code := api.post(tc.path, tc.body, &e); code != tc.status || e.Error == "" {
				t.Fatalf("status %d error %q, want %d with an error", code, e.Error, tc.status)
			}
			if set := len(store.drainCalls()) > before; set != tc.setDraining {
				t.Fatalf("SetDraining called: %v, want %v", set, tc.setDraining)
			}
		})
	}

	s.mu.Lock()
	kept := s.links["unreachable"]
	s.mu.Unlock()
	if kept != nil {
		t.Error("the link client to an unreachable gateway was kept")
	}

	t.Run("state service failing", func(t *testing.T) {
		store.mu.Lock()
		store.err = errors.New("redis down")
		store.mu.Unlock()
		defer func() { store.mu.Lock(); store.err = nil; store.mu.Unlock() }()
		var e ErrorResponse
		if code := api.post("/v1/drain", `{"gateway":"broken"}`, &e); code != 502 {
			t.Fatalf("status %d, error %q", code, e.Error)
		}
		if code := api.post("/v1/undrain", `{"gateway":"broken"}`, &e); code != 502 {
			t.Fatalf("undrain: status %d, error %q", code, e.Error)
		}
	})

	t.Run("undrain a dead gateway", func(t *testing.T) {
		var res UndrainResult
		if code := api.post("/v1/undrain", `{"gateway":"dead"}`, &res); code != 200 || res.Gateway != "dead" || res.Draining {
			t.Fatalf("status %d %+v", code, res)
		}
		if calls := store.drainCalls(); calls[len(calls)-1] != (drainCall{"dead", false}) {
			t.Fatalf("last SetDraining call %v", calls[len(calls)-1])
		}
	})

	t.Run("closed", func(t *testing.T) {
		s.Close()
		var e ErrorResponse
		if code := api.post("/v1/drain", `{"gateway":"broken"}`, &e); code != 503 {
			t.Fatalf("status %d, error %q", code, e.Error)
		}
	})
}
