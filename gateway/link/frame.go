package link

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Frame kinds.
const (
	kindRequest  uint8 = 1
	kindResponse uint8 = 2
	kindError    uint8 = 3
	kindNotify   uint8 = 4
)

const (
	headerSize = 4 + 1 + 8 + 2
	// MaxBody is the largest frame body a link carries.
	MaxBody = 16 << 20
)

// Errors.
var (
	// ErrClosed: the link was closed locally.
	ErrClosed = errors.New("link: closed")
	// ErrDisconnected: the connection broke; requests in flight may or may not have
	// been applied by the peer.
	ErrDisconnected = errors.New("link: disconnected")
	// ErrUnavailable: not connected at the time of the call.
	ErrUnavailable = errors.New("link: not connected")
	// ErrAuth: the handshake failed (wrong secret, or not a link peer).
	ErrAuth = errors.New("link: handshake failed")
)

// RemoteError is an error returned by the peer's handler.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return "remote: " + e.Msg }

type frame struct {
	kind   uint8
	id     uint64
	method uint16
	body   []byte
}

// readFrame reads one frame. The body is read into buf when it fits (and then
// aliases it), else into a new slice.
func readFrame(r *bufio.Reader, buf []byte) (frame, []byte, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, buf, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n < headerSize-4 || n-(headerSize-4) > MaxBody {
		return frame{}, buf, fmt.Errorf("link: bad frame length %d", n)
	}
	size := int(n) - (headerSize - 4)
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	body := buf[:size]
	if _, err := io.ReadFull(r, body); err != nil {
		return frame{}, buf, err
	}
	return frame{kind: h[4], id: binary.BigEndian.Uint64(h[5:]), method: binary.BigEndian.Uint16(h[13:]), body: body}, buf, nil
}

// frameHeader encodes the header of a frame whose body is n bytes long.
func frameHeader(kind uint8, id uint64, method uint16, n int) [headerSize]byte {
	var h [headerSize]byte
	binary.BigEndian.PutUint32(h[:4], uint32(headerSize-4+n))
	h[4] = kind
	binary.BigEndian.PutUint64(h[5:], id)
	binary.BigEndian.PutUint16(h[13:], method)
	return h
}

// writer batches frames onto a connection without a goroutine of its own. Frames
// are appended to a buffer under a lock; whoever flushes while no write is under
// way becomes the writer: it takes the buffer, writes it out with the lock released,
// and goes on until it finds the buffer empty. Frames appended meanwhile by others
// go out in its next write, so batches grow with load, and an idle link's frame is
// written at once, on its sender's goroutine, with no hand-off to wake.
//
// send appends and flushes; queue only appends, for a caller that flushes once it
// has nothing more to add (the server's reader, when no further request is
// buffered), so that the answers to a burst of pipelined requests leave in one
// write.
//
// The buffer is bounded: a sender that finds maxPending bytes waiting behind a
// write under way waits for it (a peer that takes no data holds its senders up to
// the write deadline, as a full socket buffer would). The write deadline is armed
// per write, and re-armed only once less than timeout of it is left (it is set
// timeout+deadlineSlack ahead), so a busy link re-arms its timer about once a
// second rather than per write: a write may wait up to timeout+deadlineSlack for a
// peer that takes no data.
type writer struct {
	nc       net.Conn
	timeout  time.Duration
	onFailed func(error)

	mu      sync.Mutex
	drained sync.Cond // signalled after each write, for senders waiting on maxPending
	buf     []byte    // frames not yet taken by a write
	spare   []byte    // the buffer of the previous write, for reuse
	writing bool      // a goroutine is writing; it takes buf again before it stops
	// waiting counts the senders waiting on drained.
	waiting  int
	err      error
	deadline time.Time // the write deadline set on nc
	// linger flushes what flushWithin left queued; lingering while it is armed.
	linger    *time.Timer
	lingering bool
}

// maxPending bounds the bytes waiting behind a write under way; a sender waits
// beyond it. maxSpare is the largest buffer kept for reuse: an idle connection
// keeps at most two (the one being filled and the spare), 64 KiB, as much as the
// bufio.Writer it replaced, so a peer still holds 128 KiB of buffers with its
// reader's (see ServerConfig.MaxPeers); a larger burst's buffer is dropped once
// written.
const (
	maxPending = 256 << 10
	maxSpare   = 32 << 10
)

// deadlineSlack is how far beyond timeout a write deadline is set, so that it
// needs setting again only once that much time has passed.
const deadlineSlack = time.Second

func newWriter(nc net.Conn, timeout time.Duration, onFailed func(error)) *writer {
	w := &writer{nc: nc, timeout: timeout, onFailed: onFailed}
	w.drained.L = &w.mu
	return w
}

// send appends a frame and flushes.
func (w *writer) send(kind uint8, id uint64, method uint16, body []byte) error {
	if err := w.queue(kind, id, method, body); err != nil {
		return err
	}
	return w.flush()
}

// queue appends a frame without writing it: it goes out with the next flush (the
// caller's, or that of a write under way).
func (w *writer) queue(kind uint8, id uint64, method uint16, body []byte) error {
	return w.enqueue(kind, id, method, body, true)
}

// enqueue is queue; with wait false it fails with ErrBacklogged rather than wait
// for room.
func (w *writer) enqueue(kind uint8, id uint64, method uint16, body []byte, wait bool) error {
	if len(body) > MaxBody {
		return fmt.Errorf("link: body of %d bytes over the %d limit", len(body), MaxBody)
	}
	h := frameHeader(kind, id, method, len(body))
	w.mu.Lock()
	if !wait && w.err == nil && w.writing && len(w.buf) >= maxPending {
		w.mu.Unlock()
		return ErrBacklogged
	}
	for w.err == nil && w.writing && len(w.buf) >= maxPending {
		w.waiting++
		w.drained.Wait()
		w.waiting--
	}
	if err := w.err; err != nil {
		w.mu.Unlock()
		return err
	}
	w.buf = append(append(w.buf, h[:]...), body...)
	w.mu.Unlock()
	return nil
}

// flush writes out what was queued, on the caller's goroutine, unless a write is
// under way: that one takes it. It fails with ErrDisconnected if its write did.
func (w *writer) flush() error {
	w.mu.Lock()
	if w.writing || len(w.buf) == 0 || w.err != nil {
		w.mu.Unlock()
		return nil
	}
	w.writing = true
	var err error
	for len(w.buf) > 0 && w.err == nil {
		out := w.buf
		w.buf = w.spare[:0]
		w.spare = nil
		w.armDeadline()
		w.mu.Unlock()
		_, err = w.nc.Write(out)
		w.mu.Lock()
		if cap(out) <= maxSpare {
			w.spare = out[:0]
		}
		if err != nil {
			w.err = err
		}
		if w.waiting > 0 {
			w.drained.Broadcast()
		}
	}
	w.writing = false
	if w.waiting > 0 {
		w.drained.Broadcast()
	}
	w.mu.Unlock()
	if err != nil {
		w.onFailed(err)
		return ErrDisconnected
	}
	return nil
}

// flushWithin makes sure what is queued is written within d: by a write that
// happens meanwhile, or else by a timer, one per d at most however many frames
// wait for it.
func (w *writer) flushWithin(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lingering || w.err != nil {
		return
	}
	w.lingering = true
	if w.linger == nil {
		w.linger = time.AfterFunc(d, w.lingerDone)
		return
	}
	w.linger.Reset(d)
}

func (w *writer) lingerDone() {
	w.mu.Lock()
	w.lingering = false
	w.mu.Unlock()
	w.flush()
}

// armDeadline makes sure the write deadline is at least timeout away. The caller
// holds w.mu.
func (w *writer) armDeadline() {
	now := time.Now()
	if w.deadline.Sub(now) >= w.timeout {
		return
	}
	w.deadline = now.Add(w.timeout + deadlineSlack)
	w.nc.SetWriteDeadline(w.deadline)
}

// stop makes further sends fail with err and wakes the senders waiting for room.
func (w *writer) stop(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	if w.linger != nil {
		w.linger.Stop()
	}
	w.drained.Broadcast()
	w.mu.Unlock()
}
