package main

import (
	"context"
	"errors"
	"log"
	"net"
	"sync"
	"time"
)

// netstdBufSize is the per-connection read buffer of the netstd peer.
const netstdBufSize = 1024

// netstdPeer is the classic Go baseline: one goroutine and one 1 KiB buffer
// per connection, blocking reads and writes on the runtime's netpoller.
type netstdPeer struct {
	ln net.Listener
	wg sync.WaitGroup // accept loop and connection goroutines

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // open connections, closed by Stop
	closed bool
}

// startNetstd listens on addr and starts accepting connections.
func startNetstd(addr string) (*netstdPeer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &netstdPeer{ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr implements peer.
func (p *netstdPeer) Addr() string { return p.ln.Addr().String() }

// Stop implements peer.
func (p *netstdPeer) Stop(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	err := p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()

	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *netstdPeer) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// For example EMFILE: keep the listener alive and retry.
			log.Printf("netstd: accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !p.track(c) {
			_ = c.Close()
			return
		}
		p.wg.Add(1)
		go p.echo(c)
	}
}

// track records c as open; it reports false if the peer is stopping.
func (p *netstdPeer) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// echo copies c's input back to c until either direction fails.
func (p *netstdPeer) echo(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		_ = c.Close()
	}()

	buf := make([]byte, netstdBufSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
