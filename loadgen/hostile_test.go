package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/internal/poll"
)

// hostileServer is a one-connection fake gateway for the hostile behaviours: its
// serve function reads what the client sends, checks it, and closes the way the
// test decides. Connections after the first are closed at once.
type hostileServer struct {
	ln    net.Listener
	serve func(t *testing.T, c *net.TCPConn, r *bufio.Reader)
	wg    sync.WaitGroup
	once  sync.Once
}

func newHostileServer(t *testing.T, serve func(t *testing.T, c *net.TCPConn, r *bufio.Reader)) *hostileServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &hostileServer{ln: ln, serve: serve}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			first := false
			s.once.Do(func() { first = true })
			if !first {
				nc.Close()
				continue
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer nc.Close()
				s.serve(t, nc.(*net.TCPConn), bufio.NewReader(nc))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

// kickAndDrain sends a KICK, shuts its side down and reads until the client
// closes: the client sees the KICK, then EOF.
func kickAndDrain(c *net.TCPConn, r *bufio.Reader, reason proto.Reason, code proto.Code, before ...[]byte) {
	var b []byte
	for _, f := range before {
		b = append(b, f...)
	}
	c.Write(proto.AppendKick(b, reason, code, 0, ""))  //nolint:errcheck // the client may be gone
	c.CloseWrite()                                     //nolint:errcheck // as above
	c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // a fresh socket
	io.Copy(io.Discard, r)                             //nolint:errcheck // until the client closes
}

// readFrame reads one frame, failing the test on error.
func readFrame(t *testing.T, c *net.TCPConn, r *bufio.Reader) proto.Frame {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // a fresh socket
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Errorf("read header: %v", err)
		return proto.Frame{}
	}
	frame := make([]byte, 4+binary.BigEndian.Uint32(hdr[:]))
	copy(frame, hdr[:])
	if _, err := io.ReadFull(r, frame[4:]); err != nil {
		t.Errorf("read body: %v", err)
		return proto.Frame{}
	}
	f, err := proto.ParseFrame(frame)
	if err != nil {
		t.Errorf("parse: %v", err)
	}
	return f
}

// acceptLogin reads a LOGIN, checks its token and uid range, and answers
// LOGIN_OK announcing maxPayload; it returns the uid.
func acceptLogin(t *testing.T, c *net.TCPConn, r *bufio.Reader, maxPayload uint32) uint64 {
	t.Helper()
	f := readFrame(t, c, r)
	var m proto.Login
	if f.Type != proto.TypeLogin || m.Decode(f.Body) != nil {
		t.Errorf("first frame %v, want a LOGIN", f.Type)
		return 0
	}
	signer, _ := proto.NewSigner([]byte(testSecret))
	if err := signer.Verify(m.Token, m.UID, time.Now()); err != nil {
		t.Errorf("hostile login token: %v", err)
	}
	if m.UID < hostileUIDBase {
		t.Errorf("hostile login uid %d is within a user range (want >= 2^40)", m.UID)
	}
	ok := proto.LoginOK{Session: m.UID, MaxFrame: 1 << 16, MaxPayload: maxPayload}
	c.Write(ok.Append(nil)) //nolint:errcheck // the test's reads report a dead client
	return m.UID
}

// runHostileClass runs one slot of class against addr until the fake has served
// it and the connection has ended (or, with stillOpen, is open), then finishes
// the fleet and returns the class's result and how long finish took.
func runHostileClass(t *testing.T, class string, bound time.Duration, addr string, served <-chan struct{}, stillOpen bool) (HostileResult, time.Duration) {
	t.Helper()
	p := Plan{Seed: 1, Users: 10, Hostile: []HostileClass{{Class: class, Conns: 1, Bound: Duration(bound)}}}
	signer, err := proto.NewSigner([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	dial := func(ctx context.Context, _, _ int) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	f := newHostileFleet(&p, Segment{0, 1}, signer, dial)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f.start(ctx)
	select {
	case <-served:
	case <-ctx.Done():
		t.Fatal("the fake gateway was not served within 20s")
	}
	poll.True(t, 10*time.Second, "the connection's end recorded", func() bool {
		c := f.classes[0]
		c.mu.Lock()
		defer c.mu.Unlock()
		if stillOpen {
			return c.open > 0
		}
		return c.res.Closed > 0
	})
	t0 := time.Now()
	res := f.finish()
	return res[0], time.Since(t0)
}

// Each hostile class sends what it should and records how the server ended it.
func TestHostileBehavioursSendTheirAbuseAndRecordTheClose(t *testing.T) {
	tests := []struct {
		class  string
		bound  time.Duration
		serve  func(t *testing.T, c *net.TCPConn, r *bufio.Reader)
		ending string
		errors map[string]uint64
		within bool
	}{
		{HostilePrelogin, 5 * time.Second, func(t *testing.T, c *net.TCPConn, r *bufio.Reader) {
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) //nolint:errcheck // a fresh socket
			if n, _ := r.Read(make([]byte, 1)); n != 0 {
				t.Errorf("prelogin sent %d bytes, want none", n)
			}
			kickAndDrain(c, r, proto.ReasonIdle, proto.CodeLoginTimeout)
		}, "KICK IDLE/LOGIN_TIMEOUT", nil, true},
		{HostileSlowloris, 5 * time.Second, func(t *testing.T, c *net.TCPConn, r *bufio.Reader) {
			c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // a fresh socket
			var got []byte
			var at []time.Time
			for range 3 {
				b, err := r.ReadByte()
				if err != nil {
					t.Errorf("slowloris byte: %v", err)
					return
				}
				got, at = append(got, b), append(at, time.Now())
				if r.Buffered() > 0 {
					t.Errorf("slowloris sent more than one byte at once")
				}
			}
			if want := loginHeader(slowlorisLength)[:3]; string(got) != string(want) {
				t.Errorf("slowloris bytes %x, want the start of a LOGIN header %x", got, want)
			}
			if gap := at[2].Sub(at[1]); gap < 900*time.Millisecond {
				t.Errorf("slowloris bytes %v apart, want about a second", gap)
			}
			// Close without a KICK: the client sees EOF.
		}, EndEOF, nil, true},
		{HostileGarbage, 5 * time.Second, func(t *testing.T, c *net.TCPConn, r *bufio.Reader) {
			b := make([]byte, 64)
			c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // a fresh socket
			if _, err := io.ReadFull(r, b); err != nil {
				t.Errorf("garbage: %v", err)
			}
			if n := binary.BigEndian.Uint32(b); n < 1<<24 {
				t.Errorf("garbage length prefix %d, want at least 16 MiB", n)
			}
			kickAndDrain(c, r, proto.ReasonProtocol, proto.CodeFrameTooLarge)
		}, "KICK PROTOCOL/FRAME_TOO_LARGE", nil, true},
		{HostileOversized, 5 * time.Second, func(t *testing.T, c *net.TCPConn, r *bufio.Reader) {
			b := make([]byte, 5+oversizedChunk)
			c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // a fresh socket
			if _, err := io.ReadFull(r, b); err != nil {
				t.Errorf("oversized: %v", err)
			}
			if n := binary.BigEndian.Uint32(b); n != oversizedLength || proto.Type(b[4]) != proto.TypeLogin {
				t.Errorf("oversized header: length %d type %v, want %d LOGIN", n, proto.Type(b[4]), oversizedLength)
			}
			c.SetLinger(0) //nolint:errcheck // close with a reset
		}, EndReset, nil, true},
		{HostileSendFlood, 5 * time.Second, func(t *testing.T, c *net.TCPConn, r *bufio.Reader) {
			acceptLogin(t, c, r, 1000)
			victim := hostileUIDBase | hostileVictimBit // segment 0's
			for range 3 {
				var m proto.Send
				if f := readFrame(t, c, r); f.Type != proto.TypeSend || m.Decode(f.Body) != nil {
					t.Errorf("send_flood frame %v, want SEND", f.Type)
					return
				}
				if m.To != victim || len(m.Payload) != 1000 {
					t.Errorf("send_flood SEND to %d with %d bytes, want %d with the announced 1000", m.To, len(m.Payload), victim)
				}
			}
			kickAndDrain(c, r, proto.ReasonPolicy, proto.CodeRateExceeded, proto.AppendError(nil, proto.CodeRateLimited, 1, ""))
		}, "KICK POLICY/RATE_EXCEEDED", map[string]uint64{"RATE_LIMITED": 1}, true},
		{HostileSyncLoop, 5 * time.Second, func(t *testing.T, c *net.TCPConn, r *bufio.Reader) {
			acceptLogin(t, c, r, 1000)
			for range 100 {
				var m proto.Sync
				if f := readFrame(t, c, r); f.Type != proto.TypeSync || m.Decode(f.Body) != nil || m.AfterSeq != 0 || m.Epoch != 0 {
					t.Errorf("sync_loop frame %v %+v, want SYNC from 0", f.Type, m)
					return
				}
			}
			kickAndDrain(c, r, proto.ReasonPolicy, proto.CodeRateExceeded)
		}, "KICK POLICY/RATE_EXCEEDED", nil, true},
		{HostileMadeUpRecipients, 5 * time.Second, func(t *testing.T, c *net.TCPConn, r *bufio.Reader) {
			acceptLogin(t, c, r, 1000)
			tos := map[uint64]bool{}
			for range 10 {
				var m proto.Send
				if f := readFrame(t, c, r); f.Type != proto.TypeSend || m.Decode(f.Body) != nil {
					t.Errorf("made_up_recipients frame %v, want SEND", f.Type)
					return
				}
				if m.To < hostileMadeUpBase || m.To >= 2*hostileMadeUpBase {
					t.Errorf("made-up recipient %d outside [2^41, 2^42)", m.To)
				}
				tos[m.To] = true
			}
			if len(tos) < 9 {
				t.Errorf("made-up recipients repeat: %d distinct of 10", len(tos))
			}
			kickAndDrain(c, r, proto.ReasonPolicy, proto.CodeRateExceeded,
				proto.AppendError(nil, proto.CodeRecipientFull, 1, ""), proto.AppendError(nil, proto.CodeRateLimited, 2, ""))
		}, "KICK POLICY/RATE_EXCEEDED", map[string]uint64{"RECIPIENT_FULL": 1, "RATE_LIMITED": 1}, true},
		{HostilePrelogin + " closed late", 100 * time.Millisecond, func(t *testing.T, c *net.TCPConn, r *bufio.Reader) {
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) //nolint:errcheck // a fresh socket
			r.ReadByte()                                              //nolint:errcheck // waits out the deadline
			kickAndDrain(c, r, proto.ReasonIdle, proto.CodeLoginTimeout)
		}, "KICK IDLE/LOGIN_TIMEOUT", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.class, func(t *testing.T) {
			served := make(chan struct{})
			srv := newHostileServer(t, func(t *testing.T, c *net.TCPConn, r *bufio.Reader) {
				defer close(served)
				tt.serve(t, c, r)
			})
			class := tt.class
			if class == HostilePrelogin+" closed late" {
				class = HostilePrelogin
			}
			res, _ := runHostileClass(t, class, tt.bound, srv.ln.Addr().String(), served, false)
			if res.Opened != 1 || res.Closed != 1 || res.OpenAtEnd != 0 {
				t.Fatalf("opened %d closed %d open at end %d, want 1 1 0", res.Opened, res.Closed, res.OpenAtEnd)
			}
			if res.Endings[tt.ending] != 1 {
				t.Errorf("endings %v, want one %q", res.Endings, tt.ending)
			}
			if within := res.WithinBound == 1 && res.OverBound == 0; within != tt.within {
				t.Errorf("within bound %d, over %d: want within=%v (close took %dµs, bound %v)",
					res.WithinBound, res.OverBound, tt.within, res.CloseUS.Max, tt.bound)
			}
			for code, n := range tt.errors {
				if res.Errors[code] != n {
					t.Errorf("errors %v, want %s %d", res.Errors, code, n)
				}
			}
			if res.CloseUS.Count != 1 || res.CloseHist == "" {
				t.Errorf("close time not recorded: %+v", res.CloseUS)
			}
		})
	}
}

// A connection the server never closes is closed by the agent at its bound once
// the run stops, and counted open at the end and over its bound.
func TestHostileConnectionNeverClosedIsOpenAtEnd(t *testing.T) {
	served := make(chan struct{})
	srv := newHostileServer(t, func(t *testing.T, c *net.TCPConn, r *bufio.Reader) {
		close(served)
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a fresh socket
		io.Copy(io.Discard, r)                              //nolint:errcheck // until the client closes
	})
	const bound = 300 * time.Millisecond
	res, took := runHostileClass(t, HostilePrelogin, bound, srv.ln.Addr().String(), served, true)
	if res.Opened != 1 || res.OpenAtEnd != 1 || res.OverBound != 1 || res.Closed != 0 || res.Endings[EndOpenAtEnd] != 1 {
		t.Fatalf("opened %d, open at end %d, over bound %d, closed %d, endings %v: want 1 1 1 0 open_at_end",
			res.Opened, res.OpenAtEnd, res.OverBound, res.Closed, res.Endings)
	}
	if took > bound+2*time.Second {
		t.Errorf("finish took %v: it should wait at most the bound (%v)", took, bound)
	}
}

// A plan names each hostile class once, known, with a positive bound.
func TestPlanRejectsBadHostileClasses(t *testing.T) {
	base := func() Plan {
		return Plan{Gateways: []string{"127.0.0.1:1"}, Secret: testSecret, Users: 1, Phases: []Phase{{Name: "p", Duration: Duration(time.Second)}}}
	}
	tests := map[string][]HostileClass{
		"unknown class": {{Class: "teapot", Conns: 1, Bound: Duration(time.Second)}},
		"twice":         {{Class: HostileGarbage, Conns: 1, Bound: Duration(time.Second)}, {Class: HostileGarbage, Conns: 1, Bound: Duration(time.Second)}},
		"no bound":      {{Class: HostileGarbage, Conns: 1}},
		"negative":      {{Class: HostileGarbage, Conns: -1, Bound: Duration(time.Second)}},
	}
	for name, hs := range tests {
		t.Run(name, func(t *testing.T) {
			p := base()
			p.Hostile = hs
			if err := p.Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	p := base()
	p.Hostile = []HostileClass{{Class: HostileSyncLoop, Conns: 3, Bound: Duration(time.Second)}}
	if err := p.Validate(); err != nil {
		t.Fatalf("a good hostile class rejected: %v", err)
	}
}

// Segments share a class's connections exactly.
func TestHostileConnsSplitOverSegments(t *testing.T) {
	p := Plan{Hostile: []HostileClass{{Class: HostilePrelogin, Conns: 1001, Bound: Duration(time.Second)}}}
	total := 0
	for i := range 3 {
		total += newHostileFleet(&p, Segment{i, 3}, nil, nil).conns()
	}
	if total != 1001 {
		t.Fatalf("segments hold %d connections, want 1001", total)
	}
}

// Hostile connections beside the users, against a real gateway, leave the users'
// accounting untouched: every message acknowledged and delivered once, nothing
// phantom or misdelivered, the push histogram exactly the deliveries, no kick or
// ERROR counted for a user; and every class ran and recorded its connections.
func TestHostileConnectionsStayOutOfTheUsersAccounting(t *testing.T) {
	addr := startGateway(t, nil)
	var hostile []HostileClass
	for _, c := range HostileClassNames() {
		hostile = append(hostile, HostileClass{Class: c, Conns: 2, Bound: Duration(time.Second)})
	}
	plan := Plan{
		Seed: 3, Gateways: []string{addr}, Secret: testSecret, Users: 100, ConnectRate: 2000,
		Traffic:  Traffic{Rate: 300, Pattern: "pairs", PayloadBytes: 64},
		Deadline: Duration(3 * time.Second),
		Phases:   []Phase{{Name: "steady", Duration: Duration(2 * time.Second)}},
		Hostile:  hostile,
	}
	a, err := New(Options{Plan: plan, Name: "h0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	res := runAgent(t, a)
	m := res.Messages
	if res.Established != 100 || m.Sent < 400 {
		t.Fatalf("established %d of 100, sent %d", res.Established, m.Sent)
	}
	if m.Acked != m.Sent || m.Delivered != m.Sent || m.Lost+m.Failed+m.Duplicates+m.Phantom+m.Misdelivered != 0 {
		t.Fatalf("the users' accounting is disturbed: %+v", m)
	}
	if p := res.Latency[TagPush]; p.Count != int64(m.Delivered) {
		t.Fatalf("push samples %d for %d deliveries", p.Count, m.Delivered)
	}
	if len(res.Kicks) != 0 || len(res.Errors) != 0 || res.ConnectFailures != 0 {
		t.Fatalf("users counted kicks %v, errors %v, connect failures %d", res.Kicks, res.Errors, res.ConnectFailures)
	}
	if len(res.Hostile) != len(hostile) {
		t.Fatalf("%d hostile classes in the result, want %d", len(res.Hostile), len(hostile))
	}
	for _, h := range res.Hostile {
		ended := uint64(0)
		for _, n := range h.Endings {
			ended += n
		}
		if h.Opened == 0 || ended != h.Opened || h.Closed+h.OpenAtEnd != h.Opened || h.CloseUS.Count != int64(h.Opened) {
			t.Errorf("%s: opened %d, ended %d, closed %d + open at end %d, close times %d", h.Class, h.Opened, ended, h.Closed, h.OpenAtEnd, h.CloseUS.Count)
		}
	}
}
