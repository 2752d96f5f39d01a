package link

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// recordingConn is a net.Conn that keeps each Write and each write deadline set;
// a Write blocks while hold is non-nil and open.
type recordingConn struct {
	net.Conn  // nil: only what the writer uses is implemented
	mu        sync.Mutex
	writes    [][]byte
	deadlines []time.Time
	hold      chan struct{}
	entered   chan struct{} // receives once per Write that blocks on hold
}

func (c *recordingConn) Write(b []byte) (int, error) {
	if c.hold != nil {
		c.entered <- struct{}{}
		<-c.hold
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(b))
	return len(b), nil
}

func (c *recordingConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadlines = append(c.deadlines, t)
	return nil
}

func (c *recordingConn) Close() error { return nil }

func (c *recordingConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (c *recordingConn) recorded() (writes [][]byte, deadlines []time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.deadlines
}

// readAllFrames decodes every frame in b, in order.
func readAllFrames(t *testing.T, b []byte) []frame {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(b))
	var out []frame
	for {
		f, _, err := readFrame(r, nil)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading frame %d: %v", len(out), err)
		}
		out = append(out, f)
	}
}

func TestQueuedFramesLeaveInOneWriteInOrder(t *testing.T) {
	c := &recordingConn{}
	w := newWriter(c, 10*time.Second, func(error) {})
	for id := range uint64(5) {
		if err := w.queue(kindResponse, id+1, 7, []byte{byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	if writes, _ := c.recorded(); len(writes) != 0 {
		t.Fatalf("queue wrote %d times before any flush", len(writes))
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	writes, _ := c.recorded()
	if len(writes) != 1 {
		t.Fatalf("%d writes for 5 queued frames, want 1", len(writes))
	}
	for i, f := range readAllFrames(t, writes[0]) {
		if f.id != uint64(i+1) || !bytes.Equal(f.body, []byte{byte(i)}) {
			t.Fatalf("frame %d is id %d body %v", i, f.id, f.body)
		}
	}
}

func TestFramesSentDuringAWriteLeaveTogetherInTheNext(t *testing.T) {
	c := &recordingConn{hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	w := newWriter(c, 10*time.Second, func(error) {})
	first := make(chan error, 1)
	go func() { first <- w.send(kindRequest, 1, 1, nil) }()
	<-c.entered // the first send is writing, on its own goroutine
	for id := uint64(2); id <= 4; id++ {
		if err := w.send(kindRequest, id, 1, nil); err != nil { // returns at once: the writer takes them
			t.Fatal(err)
		}
	}
	close(c.hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	writes, _ := c.recorded()
	if len(writes) != 2 {
		t.Fatalf("%d writes, want 2 (the first frame, then the three sent meanwhile)", len(writes))
	}
	if n := len(readAllFrames(t, writes[1])); n != 3 {
		t.Fatalf("second write carries %d frames, want 3", n)
	}
}

func TestFramesLeftToLingerAreWrittenByTheTimer(t *testing.T) {
	c := &recordingConn{}
	w := newWriter(c, 10*time.Second, func(error) {})
	for id := uint64(1); id <= 3; id++ {
		if err := w.queue(kindRequest, id, 1, nil); err != nil {
			t.Fatal(err)
		}
		w.flushWithin(time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		writes, _ := c.recorded()
		if len(writes) == 1 {
			if n := len(readAllFrames(t, writes[0])); n != 3 {
				t.Fatalf("the lingered write carries %d frames, want 3", n)
			}
			return
		}
		if len(writes) > 1 || time.Now().After(deadline) {
			t.Fatalf("%d writes of 3 lingering frames, want 1", len(writes))
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWriteDeadlineIsArmedOncePerSlackNotPerFrame(t *testing.T) {
	c := &recordingConn{}
	w := newWriter(c, 10*time.Second, func(error) {})
	start := time.Now()
	for id := range uint64(100) {
		if err := w.send(kindNotify, id, 1, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	writes, deadlines := c.recorded()
	if len(writes) != 100 {
		t.Fatalf("%d writes for 100 sends on an idle writer, want 100", len(writes))
	}
	if len(deadlines) != 1 {
		t.Fatalf("%d write deadlines set for 100 sends, want 1", len(deadlines))
	}
	if d := deadlines[0].Sub(start); d < 10*time.Second || d > 10*time.Second+deadlineSlack+time.Second {
		t.Fatalf("deadline %v after the first send, want between the timeout and the timeout plus its slack", d)
	}
}

func TestSenderBeyondTheBoundWaitsAndStopReleasesIt(t *testing.T) {
	c := &recordingConn{hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	w := newWriter(c, 10*time.Second, func(error) {})
	go w.send(kindRequest, 1, 1, nil)
	<-c.entered
	big := make([]byte, maxPending)
	if err := w.queue(kindRequest, 2, 1, big); err != nil { // fills the buffer behind the write
		t.Fatal(err)
	}
	if err := w.enqueue(kindRequest, 3, 1, nil, false); !errors.Is(err, ErrBacklogged) {
		t.Fatalf("a send that may not wait got %v beyond the bound, want ErrBacklogged", err)
	}
	blocked := make(chan error, 1)
	go func() { blocked <- w.queue(kindRequest, 3, 1, nil) }()
	waitForWaitingSenders(t, w, 1)
	w.stop(ErrClosed)
	select {
	case err := <-blocked:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("released sender got %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not release the waiting sender")
	}
	close(c.hold)
}

func TestServerAnswersABurstOfRequestsInOneWrite(t *testing.T) {
	var in []byte
	for id := uint64(1); id <= 10; id++ {
		in = appendFrame(in, kindRequest, id, 5, []byte{byte(id)})
	}
	in = appendFrame(in, kindPing, 11, 0, nil)
	c := &recordingConn{}
	drained := 0
	s := &Server{cfg: ServerConfig{Handler: echoHandler, OnDrained: func(*Peer) { drained++ }}}
	p := &Peer{nc: c, w: newWriter(c, 10*time.Second, func(error) {})}
	err := s.readLoop(context.Background(), p, bufio.NewReaderSize(bytes.NewReader(in), 64<<10))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("readLoop ended with %v, want EOF", err)
	}
	writes, _ := c.recorded()
	if len(writes) != 1 {
		t.Fatalf("%d writes answering a burst of 11 frames, want 1", len(writes))
	}
	if drained != 1 {
		t.Fatalf("OnDrained called %d times for one burst, want 1", drained)
	}
	frames := readAllFrames(t, writes[0])
	if len(frames) != 11 {
		t.Fatalf("%d answers, want 11", len(frames))
	}
	for i, f := range frames[:10] {
		if f.kind != kindResponse || f.id != uint64(i+1) || !bytes.Equal(f.body, []byte{'5', ':', byte(i + 1)}) {
			t.Fatalf("answer %d: kind %d id %d body %q", i, f.kind, f.id, f.body)
		}
	}
	if f := frames[10]; f.kind != kindPong || f.id != 11 {
		t.Fatalf("last answer kind %d id %d, want the pong of ping 11", f.kind, f.id)
	}
}

// waitForWaitingSenders polls until n senders wait for room in w's buffer.
func waitForWaitingSenders(t *testing.T, w *writer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		got := w.waiting
		w.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d senders waiting for room, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Answers the handler lets linger are not written when the reader drains; an
// ordinary answer behind them takes them along.
func TestLingeringAnswersWaitForTheNextWrite(t *testing.T) {
	lingering := func(ctx context.Context, r *Request) ([]byte, error) {
		if r.Method == 7 {
			r.Linger = time.Hour
		}
		return echoHandler(ctx, r)
	}
	for _, tc := range []struct {
		name       string
		methods    []uint16
		wantWrites int
		wantFrames int
	}{
		{"only lingering", []uint16{7, 7, 7}, 0, 0},
		{"ordinary behind lingering", []uint16{7, 7, 7, 5}, 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in []byte
			for i, m := range tc.methods {
				in = appendFrame(in, kindRequest, uint64(i+1), m, nil)
			}
			c := &recordingConn{}
			s := &Server{cfg: ServerConfig{Handler: lingering}}
			p := &Peer{nc: c, w: newWriter(c, 10*time.Second, func(error) {})}
			defer p.w.stop(ErrClosed)
			if err := s.readLoop(context.Background(), p, bufio.NewReader(bytes.NewReader(in))); !errors.Is(err, io.EOF) {
				t.Fatalf("readLoop ended with %v, want EOF", err)
			}
			writes, _ := c.recorded()
			if len(writes) != tc.wantWrites {
				t.Fatalf("%d writes, want %d", len(writes), tc.wantWrites)
			}
			if tc.wantWrites > 0 {
				if n := len(readAllFrames(t, writes[0])); n != tc.wantFrames {
					t.Fatalf("the write carries %d answers, want %d", n, tc.wantFrames)
				}
			}
		})
	}
}

// After a burst larger than maxSpare an idle writer keeps at most two buffers of
// maxSpare, as much as the 64 KiB bufio.Writer it replaced.
func TestIdleWriterKeepsNoLargeBuffers(t *testing.T) {
	c := &recordingConn{}
	w := newWriter(c, 10*time.Second, func(error) {})
	defer w.stop(ErrClosed)
	for _, size := range []int{100, 200 << 10, 100, 100} {
		if err := w.send(kindNotify, 0, 1, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	w.mu.Lock()
	kept := cap(w.buf) + cap(w.spare)
	w.mu.Unlock()
	if kept > 2*maxSpare {
		t.Fatalf("an idle writer keeps %d bytes of buffers, want at most %d", kept, 2*maxSpare)
	}
}
