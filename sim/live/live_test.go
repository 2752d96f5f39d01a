package live

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/sim"
)

func get(t *testing.T, url string) (string, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", url, res.StatusCode, err)
	}
	return string(b), res.Header.Get("Content-Type")
}

func TestServesTheLatestProgressAsJSONMetricsAndAPage(t *testing.T) {
	s := New("crash-failover")
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	s.Update(sim.Progress{Phase: "steady", Clients: 100, Active: 90, Sent: 10, Delivered: 9})
	s.Update(sim.Progress{Phase: "crash", Clients: 100, Active: 80, Sent: 20, Delivered: 18, Lost: 1, Reconnects: 5, Phantom: 2})

	body, ct := get(t, srv.URL+"/progress.json")
	var got struct {
		Scenario string   `json:"scenario"`
		Samples  []Sample `json:"samples"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("progress.json %q (%s): %v", body, ct, err)
	}
	if got.Scenario != "crash-failover" || len(got.Samples) != 2 || got.Samples[1].Phase != "crash" || got.Samples[1].Active != 80 {
		t.Fatalf("progress %+v", got)
	}

	metrics, _ := get(t, srv.URL+"/metrics")
	for _, line := range []string{
		"floodgate_run_sent_total 20", "floodgate_run_delivered_total 18", "floodgate_run_lost_total 1",
		"floodgate_run_reconnects_total 5", "floodgate_run_wrong_total 2", "floodgate_run_active 80",
		`floodgate_run_phase{phase="crash",scenario="crash-failover"} 1`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", line, metrics)
		}
	}

	html, ct := get(t, srv.URL+"/")
	if !strings.HasPrefix(ct, "text/html") || !strings.Contains(html, `fetch("progress.json"`) {
		t.Fatalf("page (%s) does not poll progress.json", ct)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	s := New("x")
	for i := range history + 50 {
		s.Update(sim.Progress{Sent: uint64(i)})
	}
	s.mu.Lock()
	n, first := len(s.samples), s.samples[0].Sent
	s.mu.Unlock()
	if n != history || first != 50 {
		t.Fatalf("%d samples from %d; want the last %d", n, first, history)
	}
}

func TestServeStopsWithItsContext(t *testing.T) {
	s := New("x")
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, "127.0.0.1:0", func(a string) { addrs <- a }) }()
	addr := <-addrs
	if body, _ := get(t, "http://"+addr+"/metrics"); !strings.Contains(body, "floodgate_run_clients") {
		t.Fatalf("metrics: %s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

// Every figure of a progress report reaches the sample, and the sample's time is
// when it arrived.
func TestUpdateKeepsEveryFigure(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    sim.Progress
		want Sample
	}{
		{"zero", sim.Progress{}, Sample{}},
		{"every field", sim.Progress{Phase: "p", Clients: 1, Active: 2, Sent: 3, Delivered: 4, Lost: 5, Failed: 6, Reconnects: 7,
			Duplicates: 8, Phantom: 9, Misdelivered: 10},
			Sample{Phase: "p", Clients: 1, Active: 2, Sent: 3, Delivered: 4, Lost: 5, Failed: 6, Reconnects: 7, Duplicates: 8,
				Phantom: 9, Misdelivered: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New("x")
			before := time.Now()
			s.Update(tc.p)
			got := s.last()
			if got.T.Before(before) || got.T.After(time.Now()) {
				t.Errorf("sample time %v, not when it arrived", got.T)
			}
			got.T = time.Time{}
			if got != tc.want {
				t.Fatalf("sample %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Before the first report the view serves no samples, zero figures and an
// empty phase; it serves only reads.
func TestServesNothingBeforeTheFirstReport(t *testing.T) {
	s := New("idle")
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	body, _ := get(t, srv.URL+"/progress.json")
	var got struct {
		Scenario string   `json:"scenario"`
		Samples  []Sample `json:"samples"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Scenario != "idle" || len(got.Samples) != 0 {
		t.Fatalf("progress.json %q: %+v, %v", body, got, err)
	}
	metrics, _ := get(t, srv.URL+"/metrics")
	for _, line := range []string{"floodgate_run_sent_total 0", "floodgate_run_active 0", `floodgate_run_phase{phase="",scenario="idle"} 1`} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	for _, path := range []string{"/", "/progress.json"} {
		res, err := http.Post(srv.URL+path, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d, want 405", path, res.StatusCode)
		}
	}
}

// An address the view cannot listen on is an error, before anything is ready.
func TestServeSaysWhenItCannotListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ready := false
	err = New("x").Serve(context.Background(), ln.Addr().String(), func(string) { ready = true })
	if err == nil || !strings.HasPrefix(err.Error(), "live view: ") || ready {
		t.Fatalf("Serve on a taken address: %v (ready called: %v)", err, ready)
	}
}
