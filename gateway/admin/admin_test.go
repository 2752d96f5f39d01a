package admin

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAdminEndpoints(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	var unhealthy atomic.Pointer[error]
	health := func() error {
		if e := unhealthy.Load(); e != nil {
			return *e
		}
		return nil
	}
	s, err := Start("127.0.0.1:0", Handler(reg, health), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(time.Second)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "floodgate_test_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	draining := errors.New("draining")
	unhealthy.Store(&draining)
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "draining") {
		t.Fatalf("/healthz unhealthy: %d %q", code, body)
	}
	code, body := get("/debug/memstats")
	var m MemStats
	if err := json.Unmarshal([]byte(body), &m); code != 200 || err != nil || m.HeapAlloc == 0 || m.Goroutines == 0 || m.NumGC == 0 {
		t.Fatalf("/debug/memstats: %d %v %+v", code, err, m)
	}
	if code, _ := get("/debug/pprof/heap"); code != 200 {
		t.Fatalf("/debug/pprof/heap: %d", code)
	}
}

// An API listener serves the service's routes and /healthz, never the admin
// endpoints: pprof, the GC-forcing memstats and metrics stay on the admin listener.
func TestAPIServesNoAdminEndpoints(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "api") })
	s, err := Start("127.0.0.1:0", API(api, nil), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(time.Second)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/v1/gateways", http.StatusOK},
		{"/healthz", http.StatusOK},
		{"/metrics", http.StatusNotFound},
		{"/debug/memstats", http.StatusNotFound},
		{"/debug/pprof/", http.StatusNotFound},
		{"/debug/pprof/heap", http.StatusNotFound},
		{"/debug/pprof/profile", http.StatusNotFound},
	} {
		resp, err := http.Get("http://" + s.Addr() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
}
