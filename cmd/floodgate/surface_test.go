package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/floodgate/floodgate/internal/testbin"
)

// httpStatus answers method url with the given headers and body and returns
// the status code.
func httpStatus(t *testing.T, method, url string, header map[string]string, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// ipconf's public listener serves the gateway list and /healthz only; pprof,
// the GC-forcing /debug/memstats and metrics are on its admin listener. control
// keeps its API and its admin endpoints apart the same way, and its drain needs
// the admin token and a JSON body. (Before, both mounted pprof and memstats on
// the API listener and control drained for anyone.)
func TestPublicAndAPIListenersServeNoAdminEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	lo := "127.0.0.1:0"
	st := startProc(t, "state", "-listen", lo, "-admin", "")
	ipconf := startProc(t, "ipconf", "-listen", lo, "-admin", lo, "-state", st.Ready[2], "-poll", "100ms")
	control := startProc(t, "control", "-listen", lo, "-admin", lo, "-state", st.Ready[2], "-poll", "100ms")
	for _, p := range []*testbin.Proc{ipconf, control} {
		if len(p.Ready) != 4 {
			t.Fatalf("READY line %q: want READY <role> <api> <admin>", p.Ready)
		}
	}
	get := func(url string) int { return httpStatus(t, http.MethodGet, url, nil, "") }
	for _, p := range []*testbin.Proc{ipconf, control} {
		api, adm := "http://"+p.Ready[2], "http://"+p.Ready[3]
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/memstats", "/metrics"} {
			if code := get(api + path); code != http.StatusNotFound {
				t.Errorf("%s API listener: GET %s = %d, want 404", p.Ready[1], path, code)
			}
		}
		for _, path := range []string{"/debug/pprof/", "/debug/memstats", "/metrics"} {
			if code := get(adm + path); code != http.StatusOK {
				t.Errorf("%s admin listener: GET %s = %d, want 200", p.Ready[1], path, code)
			}
		}
		for _, base := range []string{api, adm} { // 503 while it has no gateway to advertise
			if code := get(base + "/healthz"); code != http.StatusOK && code != http.StatusServiceUnavailable {
				t.Errorf("%s: GET %s/healthz = %d, want it served", p.Ready[1], base, code)
			}
		}
	}
	// No gateway is up: 503 with the backoff hints, but served.
	if code := get("http://" + ipconf.Ready[2] + "/v1/gateways?uid=1"); code != http.StatusServiceUnavailable {
		t.Errorf("ipconf GET /v1/gateways = %d, want 503 (no gateways yet)", code)
	}

	drain := "http://" + control.Ready[2] + "/v1/drain"
	body := `{"gateway":"gw-1"}`
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no token", map[string]string{"Content-Type": "application/json"}, http.StatusUnauthorized},
		{"wrong token", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + testClusterKey}, http.StatusForbidden},
		{"text/plain", map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer " + testAdminToken}, http.StatusUnsupportedMediaType},
		{"authorised, unknown gateway", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + testAdminToken}, http.StatusNotFound},
	} {
		if code := httpStatus(t, http.MethodPost, drain, tc.header, body); code != tc.want {
			t.Errorf("POST /v1/drain, %s: %d, want %d", tc.name, code, tc.want)
		}
	}
}
