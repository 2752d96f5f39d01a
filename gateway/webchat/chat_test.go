package webchat

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/internal/headless"
)

// liveGateway is a lone gateway, as floodgate gateway runs it without -state:
// an in-memory store behind node.NewLocal, LOGIN tokens verified by signer, and
// a WebSocket port.
type liveGateway struct {
	n      *node.Node
	signer *proto.Signer
}

// startLiveGateway runs a lone gateway with a WebSocket port on 127.0.0.1 until
// the test ends.
func startLiveGateway(t *testing.T) *liveGateway {
	t.Helper()
	signer, err := proto.NewSigner([]byte("webchat-test-secret-0123"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{
		ID:        "gw-webchat",
		Reactor:   reactor.Config{Addr: "127.0.0.1:0", ShutdownTimeout: 2 * time.Second},
		WSAddr:    "127.0.0.1:0",
		Pages:     map[string][]byte{"/chat": Page()},
		Heartbeat: 10 * time.Second,
		Signer:    signer,
		Backend:   node.NewLocal(msg.NewMemory(1024)),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if n.WSAddr() == "" {
		t.Fatal("the node has no WebSocket port")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("gateway did not stop within 10s")
		}
	})
	return &liveGateway{n: n, signer: signer}
}

// token mints a LOGIN token for uid valid for an hour.
func (g *liveGateway) token(uid uint64) string {
	return string(g.signer.Mint(uid, time.Now().Add(time.Hour)))
}

// Two users log in from the page — as the gateway's WebSocket port serves it at
// /chat — in headless Chromium, to that gateway, and exchange a message each way:
// the page's self-test resolves to what each side received, and nothing goes
// wrong on the page. (The page runs from the probe's server, which injects the
// probe, so its WebSocket address comes as ws=.)
func TestTwoUsersChatThroughTheGateway(t *testing.T) {
	headless.Binary(t)
	g := startLiveGateway(t)
	resp, err := http.Get("http://" + g.n.WSAddr() + "/chat?uid=1")
	if err != nil {
		t.Fatal(err)
	}
	served, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(served, Page()) ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /chat on the WebSocket port: %s %q, %d bytes (%v); want the page", resp.Status,
			resp.Header.Get("Content-Type"), len(served), err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "chat.html"), served, 0o644); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"selftest": {"1"}, "a": {"101"}, "ta": {g.token(101)}, "b": {"202"}, "tb": {g.token(202)},
		"ws": {"ws://" + g.n.WSAddr() + "/"}}
	res := headless.Open(t, dir, "chat.html?"+q.Encode(), 30*time.Second)
	if probs := res.Problems(); len(probs) != 0 {
		t.Errorf("page problems: %q", probs)
	}
	if want := "a→b: hello from A | b→a: hello from B"; res.Value != want {
		t.Fatalf("self-test value %q, want %q", res.Value, want)
	}
}

// A token for another uid is refused: the page shows the AUTH kick, gives up
// without reconnecting, and its self-test rejects with the reason.
func TestPageStopsOnAuthKick(t *testing.T) {
	headless.Binary(t)
	g := startLiveGateway(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "chat.html"), Page(), 0o644); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"selftest": {"1"}, "a": {"101"}, "ta": {g.token(999)}, "b": {"202"}, "tb": {g.token(202)},
		"ws": {"ws://" + g.n.WSAddr() + "/"}}
	res := headless.Open(t, dir, "chat.html?"+q.Encode(), 30*time.Second)
	if res.Value != "" || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "AUTH / UID_MISMATCH") {
		t.Fatalf("value %q, errors %q; want one error naming AUTH / UID_MISMATCH", res.Value, res.Errors)
	}
}
