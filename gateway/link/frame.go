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

// writer batches frames onto a connection: send appends under a lock and wakes the
// flusher, which writes out whatever accumulated.
type writer struct {
	nc       net.Conn
	timeout  time.Duration
	mu       sync.Mutex
	bw       *bufio.Writer
	dirty    bool
	err      error
	kick     chan struct{}
	done     chan struct{}
	onFailed func(error)
}

func newWriter(nc net.Conn, timeout time.Duration, onFailed func(error)) *writer {
	w := &writer{nc: nc, timeout: timeout, bw: bufio.NewWriterSize(nc, 64<<10),
		kick: make(chan struct{}, 1), done: make(chan struct{}), onFailed: onFailed}
	go w.flusher()
	return w
}

func (w *writer) send(kind uint8, id uint64, method uint16, body []byte) error {
	if len(body) > MaxBody {
		return fmt.Errorf("link: body of %d bytes over the %d limit", len(body), MaxBody)
	}
	h := frameHeader(kind, id, method, len(body))
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
	w.bw.Write(h[:])
	_, err := w.bw.Write(body) // flushes inline when the buffer fills
	w.dirty = true
	if err != nil {
		w.err = err
	}
	w.mu.Unlock()
	if err != nil {
		w.onFailed(err)
		return ErrDisconnected
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return nil
}

func (w *writer) flusher() {
	for {
		select {
		case <-w.kick:
		case <-w.done:
			return
		}
		w.mu.Lock()
		var err error
		if w.dirty && w.err == nil {
			w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
			err = w.bw.Flush()
			w.dirty = false
			if err != nil {
				w.err = err
			}
		}
		w.mu.Unlock()
		if err != nil {
			w.onFailed(err)
		}
	}
}

// stop ends the flusher and makes further sends fail.
func (w *writer) stop(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	select {
	case <-w.done:
	default:
		close(w.done)
	}
}
