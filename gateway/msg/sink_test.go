package msg_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/msg"
)

// fakeRouter is a link server that hands on every notification it receives.
func fakeRouter(t *testing.T) (addr string, got <-chan link.Request) {
	t.Helper()
	ch := make(chan link.Request, 100)
	srv, err := link.Listen(link.ServerConfig{Addr: "127.0.0.1:0", Secret: testSecret, Logger: quiet(),
		Handler: func(_ context.Context, r *link.Request) ([]byte, error) {
			ch <- link.Request{Method: r.Method, OneWay: r.OneWay, Body: bytes.Clone(r.Body)}
			return nil, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.Addr(), ch
}

func dialLink(t *testing.T, addr string) *link.Client {
	t.Helper()
	c := link.Dial(link.ClientConfig{Addr: addr, Secret: testSecret, Name: "msg", Logger: quiet(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	t.Cleanup(c.Close)
	return c
}

// A message stored through the server reaches the router as a RouteMethod
// notification carrying the stored message, seq and id included.
func TestLinkSinkRoutesStoredMessages(t *testing.T) {
	ctx := context.Background()
	routerAddr, routed := fakeRouter(t)
	rc := dialLink(t, routerAddr)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rc.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}
	sink := msg.NewLinkSink(rc, quiet())
	s, _ := startServer(t, msg.ServerConfig{Store: msg.NewMemory(10), Sink: sink})
	c := dial(t, s.Addr())
	var sent []msg.Message
	for i, to := range []uint64{3, 3, 4} {
		m := &msg.Message{From: 9, To: to, ClientTS: int64(i), Payload: []byte{byte(i)}}
		if err := c.Append(ctx, m); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, *m)
	}
	for _, want := range sent { // one sender connection per recipient: in order
		var r link.Request
		select {
		case r = <-routed:
		case <-time.After(5 * time.Second):
			t.Fatalf("the router never got message %d", want.ID)
		}
		got, err := msg.DecodeMessage(r.Body)
		if err != nil || r.Method != msg.RouteMethod || !r.OneWay {
			t.Fatalf("router got method %d one-way %v: %v", r.Method, r.OneWay, err)
		}
		if got.Seq != want.Seq || got.ID != want.ID || got.From != want.From || got.To != want.To ||
			got.ClientTS != want.ClientTS || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("routed %+v, stored %+v", got, want)
		}
	}
	if sink.Dropped() != 0 {
		t.Fatalf("%d dropped", sink.Dropped())
	}
}

// Without a router the message is still stored and acknowledged; the drop is counted.
func TestLinkSinkCountsDropsWhileTheRouterIsDown(t *testing.T) {
	ctx := context.Background()
	rc := link.Dial(link.ClientConfig{Addr: "127.0.0.1:1", Secret: testSecret, Logger: quiet()})
	defer rc.Close()
	sink := msg.NewLinkSink(rc, quiet())
	s, _ := startServer(t, msg.ServerConfig{Store: msg.NewMemory(10), Sink: sink})
	c := dial(t, s.Addr())
	for range 3 {
		if err := c.Append(ctx, &msg.Message{To: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if sink.Dropped() != 3 {
		t.Fatalf("%d dropped, want 3", sink.Dropped())
	}
	if _, w, _ := c.Range(ctx, 1, 0, 0); w.Head != 3 {
		t.Fatalf("window %+v: the messages were not stored", w)
	}
}
