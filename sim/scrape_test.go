package sim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The runner's scrapes do not ask for gzip: every process would compress its
// /metrics page every second for nothing.
func TestScrapesAskForNoCompression(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("Accept-Encoding"):
		default:
		}
		w.Write([]byte("# TYPE floodgate_x counter\nfloodgate_x 3\n"))
	}))
	defer srv.Close()
	r := &runner{http: &http.Client{Timeout: 5 * time.Second, Transport: plainTransport()}}
	m, err := r.scrape(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if m["floodgate_x"] != 3 {
		t.Fatalf("scraped %v", m)
	}
	if enc := <-got; enc != "" {
		t.Fatalf("the scrape asked for Accept-Encoding %q", enc)
	}
}
