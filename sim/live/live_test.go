package live

import (
	"context"
	"encoding/json"
	"io"
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
