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
	"github.com/floodgate/floodgate/internal/poll"
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
	req.Header.Set("Authorization", "Bearer "+string(adminToken))
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
	poll.True(t, 5*time.Second, "a failed read to be counted", func() bool { return testutil.ToFloat64(s.metrics.sourceErrors) > 0 })

	store.mu.Lock()
	store.gws, store.gatewaysErr = even(clk, 2, 0, 1000), nil
	store.mu.Unlock()
	poll.True(t, 5*time.Second, "the table to be applied", func() bool { return s.Recommendation().Gateways == 2 })
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
		{"defaults", Config{LinkSecret: secret, AdminToken: adminToken}, true},
		{"no secret", Config{AdminToken: adminToken}, false},
		{"short cluster key", Config{LinkSecret: []byte("cluster-secret-for-tests"), AdminToken: adminToken}, false},
		{"no admin token", Config{LinkSecret: secret}, false},
		{"short admin token", Config{LinkSecret: secret, AdminToken: []byte("letmein")}, false},
		{"admin token is the cluster key", Config{LinkSecret: secret, AdminToken: secret}, false},
		{"watermarks crossed", Config{LinkSecret: secret, AdminToken: adminToken, LowWater: 0.8, HighWater: 0.5}, false},
		{"soft fraction over 1", Config{LinkSecret: secret, AdminToken: adminToken, SoftFraction: 1.5}, false},
		{"min gateways negative", Config{LinkSecret: secret, AdminToken: adminToken, MinGateways: -1}, false},
		{"bad drain defaults", Config{LinkSecret: secret, AdminToken: adminToken, DrainDefaults: gwlink.DrainRequest{Batch: -1}}, false},
		{"drain default batch over the bound", Config{LinkSecret: secret, AdminToken: adminToken,
			DrainDefaults: gwlink.DrainRequest{Batch: 20000, Interval: time.Second}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(&fakeStore{}, tc.cfg); (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// The mutating endpoints refuse callers without the admin token (401), with a
// wrong one (403), requests a browser form or a text/plain fetch could make
// (415), oversized bodies (413) and drains past the bounds (400) — and none of
// these refusals drains anything.
func TestMutatingEndpointsNeedTheAdminTokenAndJSON(t *testing.T) {
	clk := newClock()
	store := &fakeStore{}
	s := newService(t, clk, store)
	api := serve(t, s)
	store.set(gw(clk, "g1", 10)) // known to the state service, not live to control: no link
	valid := `{"gateway":"g1"}`
	for _, tc := range []struct {
		name, path, auth, ctype, body string
		want                          int
	}{
		{"no token", "/v1/drain", "", "application/json", valid, http.StatusUnauthorized},
		{"basic auth", "/v1/drain", "Basic " + string(adminToken), "application/json", valid, http.StatusUnauthorized},
		{"empty bearer", "/v1/undrain", "Bearer ", "application/json", valid, http.StatusUnauthorized},
		{"wrong token", "/v1/drain", "Bearer " + string(secret), "application/json", valid, http.StatusForbidden},
		{"token prefix", "/v1/undrain", "Bearer " + string(adminToken[:len(adminToken)-1]), "application/json", valid, http.StatusForbidden},
		{"text/plain", "/v1/drain", "Bearer " + string(adminToken), "text/plain", valid, http.StatusUnsupportedMediaType},
		{"form", "/v1/undrain", "Bearer " + string(adminToken), "application/x-www-form-urlencoded", "gateway=g1", http.StatusUnsupportedMediaType},
		{"no content type", "/v1/drain", "Bearer " + string(adminToken), "", valid, http.StatusUnsupportedMediaType},
		{"body over 4 KiB", "/v1/drain", "Bearer " + string(adminToken), "application/json",
			`{"gateway":"` + strings.Repeat("g", 5000) + `"}`, http.StatusRequestEntityTooLarge},
		{"batch over the bound", "/v1/drain", "Bearer " + string(adminToken), "application/json",
			`{"gateway":"g1","batch":10001}`, http.StatusBadRequest},
		{"interval under the bound", "/v1/drain", "Bearer " + string(adminToken), "application/json",
			`{"gateway":"g1","interval":"1ns"}`, http.StatusBadRequest},
		{"retry_after over the bound", "/v1/drain", "Bearer " + string(adminToken), "application/json",
			`{"gateway":"g1","retry_after":"24h"}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, api.url+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			var er ErrorResponse
			if code := api.do(req, &er); code != tc.want || er.Error == "" {
				t.Fatalf("%d %+v, want %d", code, er, tc.want)
			}
		})
	}
	if calls := store.drainCalls(); len(calls) != 0 {
		t.Fatalf("a refused request changed the draining flag: %v", calls)
	}
	// With the token and JSON (parameters allowed), the same undrain goes through.
	req, _ := http.NewRequest(http.MethodPost, api.url+"/v1/undrain", strings.NewReader(valid))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "bearer "+string(adminToken))
	var ur UndrainResult
	if code := api.do(req, &ur); code != http.StatusOK || ur.Gateway != "g1" {
		t.Fatalf("authorised undrain: %d %+v", code, ur)
	}
}
