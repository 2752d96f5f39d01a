package control

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// api is a test client of a Service's HTTP handler.
type api struct {
	t   *testing.T
	url string
}

func serve(t *testing.T, s *Service) *api {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &api{t, srv.URL}
}

func (a *api) do(req *http.Request, into any) int {
	a.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			a.t.Fatalf("%s %s: content type %q", req.Method, req.URL.Path, ct)
		}
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			a.t.Fatalf("%s %s: decoding: %v", req.Method, req.URL.Path, err)
		}
	}
	return resp.StatusCode
}

func (a *api) get(path string, into any) int {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.url+path, nil)
	return a.do(req, into)
}

func (a *api) post(path, body string, into any) int {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return a.do(req, into)
}

func TestAlertsEndpoint(t *testing.T) {
	clk := newClock()
	s := newService(t, clk, &fakeStore{})
	api := serve(t, s)

	var r AlertsResponse
	if code := api.get("/v1/alerts", &r); code != 200 || r.Events == nil || len(r.Events) != 0 || r.LastSeq != 0 {
		t.Fatalf("empty: %d %+v", code, r)
	}
	s.Update([]state.Gateway{gw(clk, "g1", 950), gw(clk, "g2", 10)})
	clk.Advance(time.Second)
	s.Update([]state.Gateway{gw(clk, "g1", 10)})
	if code := api.get("/v1/alerts", &r); code != 200 || r.LastSeq != 3 || len(r.Events) != 3 || r.Truncated {
		t.Fatalf("all: %d %+v", code, r)
	}
	e := r.Events[0]
	if e.Seq != 1 || e.Kind != KindOverSoftLimit || e.Gateway != "g1" || e.Resolved || !e.Time.Equal(epoch0) || e.Detail == "" {
		t.Fatalf("first event %+v", e)
	}
	if code := api.get("/v1/alerts?since=1", &r); code != 200 || len(r.Events) != 2 || r.Events[0].Seq != 2 {
		t.Fatalf("since=1: %d %+v", code, r)
	}
	if code := api.get("/v1/alerts?since=3", &r); code != 200 || len(r.Events) != 0 || r.LastSeq != 3 {
		t.Fatalf("since=3: %d %+v", code, r)
	}
	for _, q := range []string{"?since=x", "?since=-1"} {
		var er ErrorResponse
		if code := api.get("/v1/alerts"+q, &er); code != 400 || er.Error == "" {
			t.Fatalf("%s: %d %+v", q, code, er)
		}
	}
}

func TestRecommendationEndpoint(t *testing.T) {
	clk := newClock()
	s := newService(t, clk, &fakeStore{})
	api := serve(t, s)
	s.Update(even(clk, 3, 1500, 1000))
	var r Recommendation
	if code := api.get("/v1/recommendation", &r); code != 200 ||
		r != (Recommendation{Action: ActionNone, Gateways: 3, Target: 3, Utilisation: 0.5, Reason: r.Reason}) || r.Reason == "" {
		t.Fatalf("%d %+v", code, r)
	}
	req, _ := http.NewRequest(http.MethodPost, api.url+"/v1/recommendation", nil)
	if code := api.do(req, nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", code)
	}
}

func TestRunPollsTheStore(t *testing.T) {
	clk := newClock()
	store := &fakeStore{gatewaysErr: errors.New("state unreachable")}
	s := newService(t, clk, store, func(c *Config) { c.PollInterval = time.Millisecond })
	if s.Health() == nil {
		t.Fatal("healthy before any table")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	eventually(t, "a failed read to be counted", func() bool { return testutil.ToFloat64(s.metrics.sourceErrors) > 0 })

	store.mu.Lock()
	store.gws, store.gatewaysErr = even(clk, 2, 0, 1000), nil
	store.mu.Unlock()
	eventually(t, "the table to be applied", func() bool { return s.Recommendation().Gateways == 2 })
	if err := s.Health(); err != nil {
		t.Fatal(err)
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
	clk.Advance(time.Minute)
	if s.Health() == nil {
		t.Fatal("healthy with a table a minute old")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{LinkSecret: secret}, true},
		{"no secret", Config{}, false},
		{"watermarks crossed", Config{LinkSecret: secret, LowWater: 0.8, HighWater: 0.5}, false},
		{"soft fraction over 1", Config{LinkSecret: secret, SoftFraction: 1.5}, false},
		{"min gateways negative", Config{LinkSecret: secret, MinGateways: -1}, false},
		{"bad drain defaults", Config{LinkSecret: secret, DrainDefaults: gwlink.DrainRequest{Batch: -1}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(&fakeStore{}, tc.cfg); (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
