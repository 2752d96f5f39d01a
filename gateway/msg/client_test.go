package msg_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/msg/msgtest"
	"github.com/floodgate/floodgate/internal/promtest"
	"github.com/prometheus/client_golang/prometheus"
)

// The key check: a Client in front of a server passes the same suite as the store
// behind it.
func TestClientStore(t *testing.T) {
	msgtest.Run(t, func(t *testing.T, perUser int, opts ...msg.StoreOption) msg.Store {
		s, _ := startServer(t, msg.ServerConfig{Store: msg.NewMemory(perUser, opts...)})
		return dial(t, s.Addr())
	})
}

// Over Redis, served one call at a time per connection and side by side
// (Workers: in order per user), the client passes the suite.
func TestClientStoreOverRedis(t *testing.T) {
	_, rdb := startRedis(t)
	for _, workers := range []int{0, 8} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			msgtest.Run(t, func(t *testing.T, perUser int, opts ...msg.StoreOption) msg.Store {
				s, _ := startServer(t, msg.ServerConfig{Store: newRedis(t, rdb, t.Name()+":", perUser, opts...), Workers: workers})
				return dial(t, s.Addr())
			})
		})
	}
}

// A Range larger than one reply (by count or by bytes) is assembled from several,
// each within the link's frame limit.
func TestClientRangeSpansReplies(t *testing.T) {
	ctx := context.Background()
	big := bytes.Repeat([]byte{'x'}, 64<<10)
	for _, c := range []struct {
		name        string
		n           int
		payload     []byte
		after       uint64
		limit       int
		wantFirst   uint64
		wantN       int
		wantReplies float64
	}{
		{"count: all", 1000, []byte("small"), 0, 0, 1, 1000, 4},
		{"count: one reply", 1000, []byte("small"), 0, msg.MaxRangeReply, 1, msg.MaxRangeReply, 1},
		{"count: limit", 1000, []byte("small"), 100, 300, 101, 300, 2},
		{"count: tail", 1000, []byte("small"), 900, 0, 901, 100, 1},
		{"bytes: all", 300, big, 0, 0, 1, 300, 2}, // 64 KiB payloads: 255 fit in 16 MiB
		{"bytes: limit", 300, big, 10, 260, 11, 260, 2},
		{"bytes: under", 300, big, 0, 200, 1, 200, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			s, _ := startServer(t, msg.ServerConfig{Store: msg.NewMemory(c.n, msg.WithQuotaBytes(1<<30)), Registry: reg})
			cl := dial(t, s.Addr())
			for range c.n {
				if err := cl.Append(ctx, &msg.Message{To: 1, Payload: c.payload}); err != nil {
					t.Fatal(err)
				}
			}
			got, w, err := cl.Range(ctx, 1, c.after, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if w.Head != uint64(c.n) || w.Oldest != 1 || len(got) != c.wantN {
				t.Fatalf("window %+v, %d messages; want head %d, %d messages", w, len(got), c.n, c.wantN)
			}
			for i, m := range got {
				if m.Seq != c.wantFirst+uint64(i) || !bytes.Equal(m.Payload, c.payload) {
					t.Fatalf("message %d: seq %d, %d-byte payload", i, m.Seq, len(m.Payload))
				}
			}
			if r := promtest.Value(t, reg, "floodgate_msg_requests_total", "method", "range", "result", "ok"); r != c.wantReplies {
				t.Errorf("%v range requests, want %v", r, c.wantReplies)
			}
		})
	}
}

// pagedStore is a Store whose Range answers from a script of replies, for the
// Client's handling of replies that move between pages.
type pagedStore struct {
	msg.Store
	mu      sync.Mutex
	replies []pagedReply
	asked   []uint64 // the after of each Range
}

type pagedReply struct {
	w    msg.Window
	seqs []uint64
}

func (p *pagedStore) Range(_ context.Context, uid, after uint64, limit int) ([]msg.Message, msg.Window, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, after)
	if len(p.replies) == 0 {
		return nil, msg.Window{}, errors.New("no more replies scripted")
	}
	r := p.replies[0]
	p.replies = p.replies[1:]
	ms := make([]msg.Message, len(r.seqs))
	for i, s := range r.seqs {
		ms[i] = msg.Message{Seq: s, ID: s, To: uid}
	}
	return ms, r.w, nil
}

// A Range over several replies keeps to the first reply's window: later replies'
// messages past its head are left out, and a changed epoch ends it.
func TestClientRangeAcrossRepliesKeepsTheFirstWindow(t *testing.T) {
	full := func(from uint64) []uint64 {
		s := make([]uint64, msg.MaxRangeReply)
		for i := range s {
			s[i] = from + uint64(i)
		}
		return s
	}
	w1 := msg.Window{Epoch: 7, Head: 300, Oldest: 1}
	for _, c := range []struct {
		name      string
		replies   []pagedReply
		wantLast  uint64
		wantN     int
		wantAsked []uint64
	}{
		{"stops at the first head", []pagedReply{
			{w1, full(1)},
			{msg.Window{Epoch: 7, Head: 400, Oldest: 1}, full(257)},
		}, 300, 300, []uint64{0, 256}},
		{"gap from an ack between replies", []pagedReply{
			{w1, full(1)},
			{msg.Window{Epoch: 7, Head: 300, Oldest: 280}, []uint64{280, 281}},
			{msg.Window{Epoch: 7, Head: 300, Oldest: 280}, nil},
		}, 281, 258, []uint64{0, 256, 281}},
		{"new epoch ends it", []pagedReply{
			{w1, full(1)},
			{msg.Window{Epoch: 8, Head: 3, Oldest: 1}, []uint64{1, 2, 3}},
		}, 256, 256, []uint64{0, 256}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps := &pagedStore{Store: msg.NewMemory(1), replies: c.replies}
			s, _ := startServer(t, msg.ServerConfig{Store: ps})
			got, w, err := dial(t, s.Addr()).Range(context.Background(), 1, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if w != w1 || len(got) != c.wantN || got[len(got)-1].Seq != c.wantLast {
				t.Fatalf("window %+v, %d messages ending at %d; want %+v, %d ending at %d",
					w, len(got), got[len(got)-1].Seq, w1, c.wantN, c.wantLast)
			}
			if fmt.Sprint(ps.asked) != fmt.Sprint(c.wantAsked) {
				t.Fatalf("asked after %v, want %v", ps.asked, c.wantAsked)
			}
		})
	}
}

// logSignal is a slog.Handler that reports each record's message on a channel.
type logSignal chan string

func (l logSignal) Enabled(context.Context, slog.Level) bool { return true }
func (l logSignal) Handle(_ context.Context, r slog.Record) error {
	select {
	case l <- r.Message:
	default:
	}
	return nil
}
func (l logSignal) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logSignal) WithGroup(string) slog.Handler      { return l }

func TestWrongSecretIsRefused(t *testing.T) {
	logs := make(logSignal, 64)
	s, _ := startServer(t, msg.ServerConfig{Store: msg.NewMemory(10), Logger: slog.New(logs)})
	cfg := msg.ClientConfig{Addr: s.Addr(), Secret: []byte("not-the-cluster-secret"), Conns: 1, Logger: quiet()}
	c, err := msg.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.After(5 * time.Second)
	for refused := false; !refused; {
		select {
		case m := <-logs:
			refused = m == "link peer refused"
		case <-deadline:
			t.Fatal("the server never refused the client")
		}
	}
	if _, err := c.Window(context.Background(), 1); !errors.Is(err, link.ErrUnavailable) {
		t.Fatalf("call without a connection: %v, want link.ErrUnavailable", err)
	}
	if _, err := dial(t, s.Addr()).Window(context.Background(), 1); err != nil {
		t.Fatalf("a client with the secret: %v", err)
	}
}

// A client rides out a server restart: calls fail fast while it is down, then work
// again on the reconnected links, against the same store.
func TestClientSurvivesServerRestart(t *testing.T) {
	ctx := context.Background()
	store := msg.NewMemory(10)
	s1, stop1 := startServer(t, msg.ServerConfig{Store: store})
	c := dial(t, s1.Addr())
	if err := c.Append(ctx, &msg.Message{To: 1, Payload: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	stop1()
	if err := c.Append(ctx, &msg.Message{To: 1}); !errors.Is(err, link.ErrUnavailable) && !errors.Is(err, link.ErrDisconnected) {
		t.Fatalf("append with the server down: %v, want unavailable or disconnected", err)
	}
	startServer(t, msg.ServerConfig{Addr: s1.Addr(), Store: store})
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		// Until the client has seen the old connections close, a call may still take
		// one and fail; each failure means it has, and WaitConnected then waits.
		if err := c.WaitConnected(wctx); err != nil {
			t.Fatal(err)
		}
		err := c.Append(ctx, &msg.Message{To: 1, Payload: []byte("after")})
		if err == nil {
			break
		}
		if !errors.Is(err, link.ErrUnavailable) && !errors.Is(err, link.ErrDisconnected) {
			t.Fatal(err)
		}
	}
	got, _, err := c.Range(ctx, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0].Payload) != "before" || string(got[1].Payload) != "after" || got[1].Seq != 2 {
		t.Fatalf("after the restart: %+v", got)
	}
}

// AppendGo classifies failures as Append does: a request that could not be sent is
// certainly not stored.
func TestAppendGoClassifiesLikeAppend(t *testing.T) {
	c, err := msg.Dial(msg.ClientConfig{Addr: "127.0.0.1:1", Secret: []byte("msg-client-test-secret"),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	c.AppendGo(&msg.Message{To: 1, Payload: []byte("x")}, func(err error) { errc <- err })
	if err := <-errc; !errors.Is(err, msg.ErrNotStored) {
		t.Fatalf("AppendGo with no connection: %v, want ErrNotStored", err)
	}
	c.AppendGo(&msg.Message{}, func(err error) { errc <- err })
	if err := <-errc; !errors.Is(err, msg.ErrNoRecipient) {
		t.Fatalf("AppendGo to uid 0: %v, want ErrNoRecipient", err)
	}
}
