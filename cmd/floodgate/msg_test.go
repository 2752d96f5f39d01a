package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/internal/poll"
	"github.com/floodgate/floodgate/internal/redistest"
	"github.com/floodgate/floodgate/internal/testbin"
)

func TestMsgCommandRejectsBadFlags(t *testing.T) {
	t.Setenv("FLOODGATE_CLUSTER_KEY", testClusterKey)
	for _, args := range [][]string{
		{"-backend", "disk"},
		{"-backend", "redis", "-redis-mode", "ring"},
		{"-backend", "redis", "-redis-addr", "a:1,b:2"},
		{"-backend", "redis-replicated", "-replica-timeout", "0s"},
		{"-backend", "redis-replicated", "-replica-timeout", "2s"},
		{"-backend", "redis", "-redis-prefix", "fg:{msg}:", "-redis-addr", "127.0.0.1:1"},
		{"-inbox", "0"},
		{"-inbox-bytes", "0"},
		{"-retention", "0s"},
		{"-dedupe-window", "0s"},
		{"-resend-min", "0s"},
		{"-resend-min", "2s", "-resend-max", "1s"},
		{"-router-reconnect-max", "-1s"},
		{"stray"},
	} {
		var out, errb bytes.Buffer
		if code := dispatch(append([]string{"msg"}, args...), &out, &errb); code != exitcode.Failure {
			t.Errorf("msg %q: exit %d, want 1 (stderr %q)", args, code, errb.String())
		}
	}
}

// msgProcess is a running `floodgate msg`.
type msgProcess struct {
	*testbin.Proc
	link, adminAddr string
}

func startMsg(t *testing.T, args ...string) *msgProcess {
	t.Helper()
	p := testbin.Start(t, []string{"FLOODGATE_CLUSTER_KEY=" + testClusterKey},
		append([]string{"msg", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, args...)...)
	if len(p.Ready) != 4 || p.Ready[1] != "msg" {
		t.Fatalf("READY line %q; stderr:\n%s", p.Ready, p.Stderr())
	}
	return &msgProcess{Proc: p, link: p.Addr(), adminAddr: p.Admin()}
}

// waitMetric polls /metrics until it holds line, failing the test after within.
func (p *msgProcess) waitMetric(t *testing.T, line string, within time.Duration) {
	t.Helper()
	if !poll.Wait(within, func() bool { return strings.Contains(p.get(t, "/metrics"), line) }) {
		t.Fatalf("/metrics never held %q within %v; stderr:\n%s", line, within, p.Stderr())
	}
}

// get returns the body of GET path on the admin listener, failing t unless 200.
func (p *msgProcess) get(t *testing.T, path string) string {
	t.Helper()
	return httpGetOK(t, "http://"+p.adminAddr+path)
}

// routerStub is a link server recording the RouteMethod notifications it gets;
// connected receives each peer that connects.
func routerStub(t *testing.T) (addr string, connected <-chan string, got <-chan []byte) {
	t.Helper()
	routed := make(chan []byte, 16)
	peers := make(chan string, 16)
	srv, err := link.Listen(link.ServerConfig{Addr: "127.0.0.1:0", Secret: []byte(testClusterKey),
		OnConnect: func(p *link.Peer) { peers <- p.Name() },
		Handler: func(_ context.Context, r *link.Request) ([]byte, error) {
			if r.Method == msg.RouteMethod && r.OneWay {
				routed <- bytes.Clone(r.Body)
			}
			return nil, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.Addr(), peers, routed
}

func dialMsg(t *testing.T, addr string) *msg.Client {
	t.Helper()
	c, err := msg.Dial(msg.ClientConfig{Addr: addr, Secret: []byte(testClusterKey)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// The msg command end to end, on each backend and Redis deployment: READY line, a
// stored message reaches the router, metrics and health, SIGTERM → exit 0. On
// Redis a second process continues the first one's inboxes under the same epoch.
func TestMsgCommandServesStoresAndRoutes(t *testing.T) {
	for _, c := range []struct {
		name, backend string
		redis         func(t *testing.T) []string // the -redis-* flags
	}{
		{"memory", "memory", nil},
		{"redis", "redis", func(t *testing.T) []string { return []string{"-redis-addr", redistest.Start(t).Addr} }},
		{"redis-replicated/sentinel", "redis-replicated", func(t *testing.T) []string {
			d := redistest.StartSentinel(t)
			return []string{"-redis-mode", "sentinel", "-redis-addr", strings.Join(d.SentinelAddrs, ","), "-redis-master", d.Master}
		}},
		{"redis/cluster", "redis", func(t *testing.T) []string {
			return []string{"-redis-mode", "cluster", "-redis-addr", strings.Join(redistest.StartCluster(t, 3, 0).Addrs, ",")}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			routerAddr, connected, routed := routerStub(t)
			args := []string{"-backend", c.backend, "-router", routerAddr, "-inbox", "8"}
			if c.redis != nil {
				args = append(append(args, c.redis(t)...), "-redis-prefix", "e2e:")
			}
			p := startMsg(t, args...)
			select {
			case name := <-connected:
				if name != "msg-1" {
					t.Fatalf("the router's peer is %q, want msg-1", name)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("msg never connected to the router; stderr:\n%s", p.Stderr())
			}
			// The router sees the peer before msg sees its side of the link up; until
			// msg does, stored messages are not routed (they stay stored).
			p.waitMetric(t, "floodgate_msg_router_connected 1", 5*time.Second)
			mc := dialMsg(t, p.link)
			m := &msg.Message{From: 1, To: 2, Payload: []byte("hello")}
			if err := mc.Append(ctx, m); err != nil {
				t.Fatal(err)
			}
			select {
			case b := <-routed:
				got, err := msg.DecodeMessage(b)
				if err != nil || got.Seq != 1 || got.ID != m.ID || string(got.Payload) != "hello" {
					t.Fatalf("routed %+v, %v", got, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("the router got nothing; stderr:\n%s", p.Stderr())
			}
			w, err := mc.Window(ctx, 2)
			if err != nil || w.Head != 1 {
				t.Fatalf("window %+v, %v", w, err)
			}
			metrics := p.get(t, "/metrics")
			for _, want := range []string{`floodgate_msg_requests_total{method="append",result="ok"} 1`,
				`floodgate_msg_stored_messages 1`, `floodgate_msg_pending_messages 1`} { // the stub never settles
				if !strings.Contains(metrics, want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
			if h := p.get(t, "/healthz"); strings.TrimSpace(h) != "ok" {
				t.Errorf("/healthz: %q", h)
			}
			mc.Close()
			p.Stop(t)
			if c.redis == nil {
				return
			}
			p2 := startMsg(t, args...)
			w2, err := dialMsg(t, p2.link).Window(ctx, 2)
			if err != nil || w2 != w {
				t.Fatalf("after a restart: window %+v, %v; want %+v", w2, err, w)
			}
			p2.Stop(t)
		})
	}
}
