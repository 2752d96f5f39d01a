package msg_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/internal/promtest"
	"github.com/prometheus/client_golang/prometheus"
)

var testSecret = []byte("msg-test-cluster-secret")

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startServer serves cfg (Addr, Secret and Logger defaulted) until the test ends or
// the returned stop is called; stop returns once Serve has.
func startServer(t *testing.T, cfg msg.ServerConfig) (*msg.Server, func()) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Secret == nil {
		cfg.Secret = testSecret
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	s, err := msg.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("the server did not stop within 5s")
		}
	})
	t.Cleanup(stop)
	return s, stop
}

// dial returns a connected client of addr, closed when the test ends.
func dial(t *testing.T, addr string, mutate ...func(*msg.ClientConfig)) *msg.Client {
	t.Helper()
	cfg := msg.ClientConfig{Addr: addr, Secret: testSecret, Name: t.Name(), Logger: quiet(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := msg.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	waitConnected(t, c)
	return c
}

// dialLink returns a link client of addr, closed when the test ends.
func dialLink(t *testing.T, addr string) *link.Client {
	t.Helper()
	c := link.Dial(link.ClientConfig{Addr: addr, Secret: testSecret, Name: "msg", Logger: quiet(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	t.Cleanup(c.Close)
	return c
}

func waitConnected(t *testing.T, c *msg.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
}

// brokenStore fails every call, as a store that lost its backend does.
type brokenStore struct{ msg.Store }

var errBroken = errors.New("backend down")

func (brokenStore) Append(context.Context, *msg.Message) error { return errBroken }
func (brokenStore) Window(context.Context, uint64) (msg.Window, error) {
	return msg.Window{}, errBroken
}

// Malformed requests, unknown methods and uid 0 are rejected with an error (and
// counted as rejected); store failures are passed on (and counted as failed).
func TestServerRejectsBadRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, _ := startServer(t, msg.ServerConfig{Store: brokenStore{msg.NewMemory(10)}, Registry: reg})
	lc := dialLink(t, s.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lc.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	// An append request is u64 client_msg_id, then the message.
	appendReq := func(m *msg.Message) []byte { return msg.AppendMessage(make([]byte, 8), m) }
	to0 := appendReq(&msg.Message{From: 1})
	for _, c := range []struct {
		name    string
		method  uint16
		body    []byte
		wantErr string
	}{
		{"short append", msg.MethodAppend, make([]byte, 8+47), "malformed"},
		{"append to uid 0", msg.MethodAppend, to0, msg.ErrNoRecipient.Error()},
		{"store failure", msg.MethodAppend, appendReq(&msg.Message{To: 1}), "backend down"},
		{"short ack", msg.MethodAck, make([]byte, 23), "malformed"},
		{"long ack", msg.MethodAck, make([]byte, 25), "malformed"},
		{"short range", msg.MethodRange, make([]byte, 19), "malformed"},
		{"window without uid", msg.MethodWindow, nil, "malformed"},
		{"window store failure", msg.MethodWindow, make([]byte, 8), "backend down"},
		{"unknown method", 99, nil, "unknown method 99"},
		{"method 0", 0, nil, "unknown method 0"},
	} {
		_, err := lc.Call(ctx, c.method, c.body)
		var re *link.RemoteError
		if !errors.As(err, &re) || !strings.Contains(re.Msg, c.wantErr) {
			t.Errorf("%s: %v, want a remote error with %q", c.name, err, c.wantErr)
		}
	}
	for _, c := range []struct {
		method, result string
		want           float64
	}{
		{"append", "rejected", 2},
		{"append", "failed", 1},
		{"append", "ok", 0},
		{"ack", "rejected", 2},
		{"range", "rejected", 1},
		{"window", "rejected", 1},
		{"window", "failed", 1},
	} {
		if got := promtest.Value(t, reg, "floodgate_msg_requests_total", "method", c.method, "result", c.result); got != c.want {
			t.Errorf("requests_total{method=%q,result=%q} = %v, want %v", c.method, c.result, got, c.want)
		}
	}
}

func TestServerMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	s, _ := startServer(t, msg.ServerConfig{Store: msg.NewMemory(2), Registry: reg})
	c := dial(t, s.Addr())
	var m msg.Message
	for i := range 3 { // the third is a retry of the second, answered although the inbox is full
		m = msg.Message{To: 1, From: 5, ClientMsgID: uint64(min(i, 1) + 1)}
		if err := c.Append(ctx, &m); err != nil {
			t.Fatal(err)
		}
	}
	full := msg.Message{To: 1, From: 5, ClientMsgID: 3}
	if err := c.Append(ctx, &full); !errors.Is(err, msg.ErrRecipientFull) {
		t.Fatalf("append beyond the quota: %v, want ErrRecipientFull", err)
	}
	if err := c.Ack(ctx, 1, 1, m.Epoch); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.Range(ctx, 1, 0, 0); err != nil || len(got) != 1 {
		t.Fatalf("range: %d messages, %v", len(got), err)
	}
	if _, err := c.Window(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"floodgate_msg_requests_total", []string{"method", "append", "result", "ok"}, 3},
		{"floodgate_msg_requests_total", []string{"method", "append", "result", "rejected"}, 1},
		{"floodgate_msg_requests_total", []string{"method", "ack", "result", "ok"}, 1},
		{"floodgate_msg_requests_total", []string{"method", "range", "result", "ok"}, 1},
		{"floodgate_msg_requests_total", []string{"method", "window", "result", "ok"}, 1},
		{"floodgate_msg_request_duration_seconds", []string{"method", "append"}, 4},
		{"floodgate_msg_quota_refusals_total", nil, 1},
		{"floodgate_msg_expired_total", nil, 0},
		{"floodgate_msg_inboxes", nil, 1},
		{"floodgate_msg_inboxes_deleted_total", nil, 0},
		{"floodgate_msg_request_duration_seconds", []string{"method", "range"}, 1},
		{"floodgate_msg_replayed_total", nil, 1},
		{"floodgate_msg_stored_messages", nil, 1},
		{"floodgate_msg_deduplicated_total", nil, 1},
		{"floodgate_msg_pending_messages", nil, -1}, // no router: nothing is tracked
		{"floodgate_msg_router_connected", nil, -1},
	} {
		if got := promtest.Value(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// failingAppends fails every Append with err.
type failingAppends struct {
	msg.Store
	err error
}

func (f failingAppends) Append(context.Context, *msg.Message) error { return f.err }

// A Client's Append error wraps ErrNotStored exactly when the message is certainly
// not stored: the request was never sent, or the server's store said so (whatever
// the wording of its error); a failure of unknown outcome does not.
func TestAppendErrorsSayWhetherStored(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name          string
		storeErr      error
		wantNotStored bool
	}{
		{"the store was not reached", fmt.Errorf("%w: redis dial refused", msg.ErrNotStored), true},
		{"the store wrapped it deeper", fmt.Errorf("pool: %w", msg.ErrNotStored), true},
		{"outcome unknown", errBroken, false},
		{"text that only mentions it", errors.New("backend said: " + msg.ErrNotStored.Error()), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := startServer(t, msg.ServerConfig{Store: failingAppends{msg.NewMemory(10), c.storeErr}})
			err := dial(t, s.Addr()).Append(ctx, &msg.Message{From: 1, To: 2, ClientMsgID: 9})
			if err == nil {
				t.Fatal("Append succeeded")
			}
			if got := errors.Is(err, msg.ErrNotStored); got != c.wantNotStored {
				t.Fatalf("Append: %v; ErrNotStored %v, want %v", err, got, c.wantNotStored)
			}
		})
	}
	t.Run("never sent", func(t *testing.T) {
		c, err := msg.Dial(msg.ClientConfig{Addr: "127.0.0.1:1", Secret: testSecret, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Append(ctx, &msg.Message{From: 1, To: 2}); !errors.Is(err, msg.ErrNotStored) || !errors.Is(err, link.ErrUnavailable) {
			t.Fatalf("Append without a connection: %v; want ErrNotStored wrapping link.ErrUnavailable", err)
		}
	})
}

// MethodWindows answers many users' windows in one round trip, in order, and
// refuses a malformed or oversized request.
func TestServerAnswersWindowsInOneCall(t *testing.T) {
	ctx := context.Background()
	s, _ := startServer(t, msg.ServerConfig{Store: msg.NewMemory(8)})
	c := dial(t, s.Addr())
	for to, n := range map[uint64]int{1: 3, 2: 1} {
		for range n {
			if err := c.Append(ctx, &msg.Message{To: to}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ws, err := c.Windows(ctx, []uint64{2, 9, 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 3 || ws[0].Head != 1 || ws[1].Head != 0 || ws[1].Oldest != 1 || ws[2].Head != 3 || ws[2].Epoch != ws[0].Epoch {
		t.Fatalf("windows %+v, want heads 1, 0, 3 in request order", ws)
	}
	if _, err := c.Windows(ctx, make([]uint64, msg.MaxWindows+1)); err == nil {
		t.Fatal("a request over MaxWindows was sent")
	}
}

// A quota refusal crosses the link as its own error (Append and AppendGo both
// return ErrRecipientFull), and its text starts with ErrNotStored's, so a client
// that knows only ErrNotStored still takes it as certainly not stored.
func TestRecipientFullCrossesTheLink(t *testing.T) {
	ctx := context.Background()
	s, _ := startServer(t, msg.ServerConfig{Store: msg.NewMemory(1)})
	c := dial(t, s.Addr())
	if err := c.Append(ctx, &msg.Message{To: 1}); err != nil {
		t.Fatal(err)
	}
	err := c.Append(ctx, &msg.Message{To: 1})
	var re *link.RemoteError
	if !errors.Is(err, msg.ErrRecipientFull) || !errors.Is(err, msg.ErrNotStored) || !errors.As(err, &re) ||
		!strings.HasPrefix(re.Msg, msg.ErrNotStored.Error()) {
		t.Fatalf("append to a full inbox: %v; want ErrRecipientFull, a remote text starting with %q", err, msg.ErrNotStored)
	}
	done := make(chan error, 1)
	c.AppendGo(&msg.Message{To: 1}, func(err error) { done <- err })
	select {
	case err := <-done:
		if !errors.Is(err, msg.ErrRecipientFull) {
			t.Fatalf("AppendGo to a full inbox: %v, want ErrRecipientFull", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("AppendGo never answered")
	}
}
