package client_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/ipconf"
	"github.com/floodgate/floodgate/gateway/state"
)

func TestBackoffDelay(t *testing.T) {
	b := client.Backoff{Base: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 1}
	tests := []struct {
		name string
		b    client.Backoff
		n    int
		u    float64
		want time.Duration
	}{
		{"first retry, u 0: the ceiling", b, 0, 0, 500 * time.Millisecond},
		{"first retry, u 0.5: half of it (full jitter)", b, 0, 0.5, 250 * time.Millisecond},
		{"doubles", b, 3, 0, 4 * time.Second},
		{"capped", b, 7, 0, 30 * time.Second},
		{"capped for huge attempts", b, 1000, 0.5, 15 * time.Second},
		{"partial jitter keeps the rest", client.Backoff{Base: time.Second, Max: time.Minute, Jitter: 0.3}, 1, 0.5,
			1700 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Delay(tt.n, tt.u); got != tt.want {
				t.Fatalf("Delay(%d, %v) = %v, want %v", tt.n, tt.u, got, tt.want)
			}
		})
	}
}

// Discover reads what ipconf's handler serves: the list and its hints on 200,
// and on 503 a *DiscoverError with Retry-After and the hints.
func TestDiscoverReadsIpconf(t *testing.T) {
	svc, err := ipconf.New(ipconf.Config{Rand: rand.New(rand.NewPCG(1, 2)), Logger: slog.New(slog.DiscardHandler),
		Backoff: ipconf.Backoff{Base: 2 * time.Second, Max: time.Minute, Jitter: 1}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	ctx := context.Background()

	_, err = client.Discover(ctx, nil, srv.URL, 7)
	de, ok := errors.AsType[*client.DiscoverError](err)
	if !ok || de.Status != http.StatusServiceUnavailable || de.RetryAfter != 2*time.Second ||
		de.Hints.Backoff != (client.BackoffHint{BaseMS: 2000, MaxMS: 60000, Jitter: 1}) {
		t.Fatalf("no gateways yet: %v (%+v)", err, de)
	}

	svc.Update([]state.Gateway{{ID: "gw-1", Addr: "127.0.0.1:7000", Epoch: 1, Expires: time.Now().Add(time.Hour),
		Load: state.Load{MaxConns: 10}}})
	gl, err := client.Discover(ctx, nil, srv.URL, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(gl.Gateways) != 1 || gl.Gateways[0].Addr != "127.0.0.1:7000" || gl.Gateways[0].ID != "gw-1" ||
		gl.Backoff.Backoff() != (client.Backoff{Base: 2 * time.Second, Max: time.Minute, Jitter: 1}) || gl.GeneratedAt == "" {
		t.Fatalf("list %+v", gl)
	}
}
