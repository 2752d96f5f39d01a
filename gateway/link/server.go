package link

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one request or notification received by a Server.
type Request struct {
	Peer   *Peer
	Method uint16
	// Body is valid only until the handler returns; copy what you keep.
	Body []byte
	// OneWay marks a notification: the handler's result is discarded.
	OneWay bool
}

// Handler serves requests. It runs on the connection's reader goroutine, one
// request at a time per connection, so it should not block for long: a slow
// handler holds up that peer's later requests (and only that peer's).
type Handler func(ctx context.Context, req *Request) ([]byte, error)

// ServerConfig configures a Server.
type ServerConfig struct {
	Addr    string // listen address
	Secret  []byte // cluster secret; peers must prove they hold it
	Handler Handler
	// OnConnect and OnDisconnect, if set, are called as authenticated peers come and go.
	OnConnect, OnDisconnect func(*Peer)
	WriteTimeout            time.Duration // default 10s; a peer that takes no data this long is dropped
	HandshakeTimeout        time.Duration // default 5s
	Logger                  *slog.Logger
}

// Server accepts link connections.
type Server struct {
	cfg     ServerConfig
	ln      net.Listener
	log     *slog.Logger
	mu      sync.Mutex
	conns   map[net.Conn]struct{} // every accepted connection, handshaking or not
	peers   map[*Peer]struct{}    // the authenticated ones
	closing bool
	wg      sync.WaitGroup
}

// Listen binds the server's address.
func Listen(cfg ServerConfig) (*Server, error) {
	if len(cfg.Secret) == 0 || cfg.Handler == nil {
		return nil, errors.New("link: ServerConfig needs a Secret and a Handler")
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("link listener: %w", err)
	}
	return &Server{cfg: cfg, ln: ln, log: cfg.Logger, conns: map[net.Conn]struct{}{}, peers: map[*Peer]struct{}{}}, nil
}

// Addr returns the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Peers returns the connected, authenticated peers.
func (s *Server) Peers() []*Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Peer, 0, len(s.peers))
	for p := range s.peers {
		out = append(out, p)
	}
	return out
}

// Serve accepts connections until ctx ends, then closes the listener and every
// connection and returns once their goroutines have finished.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	var err error
	for {
		nc, aerr := s.ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil {
				err = aerr
			}
			break
		}
		if !s.track(nc) {
			nc.Close()
			continue
		}
		s.wg.Go(func() {
			s.serveConn(ctx, nc)
			s.untrack(nc)
		})
	}
	// Close everything, including connections still in their handshake: tracking
	// starts at accept, so none can slip in after this and keep Serve waiting.
	s.mu.Lock()
	s.closing = true
	for nc := range s.conns {
		nc.Close()
	}
	for p := range s.peers {
		p.closedLocally.Store(true)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// track records an accepted connection; false once the server is closing.
func (s *Server) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[nc] = struct{}{}
	return true
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}

func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	r := bufio.NewReaderSize(nc, 64<<10)
	name, err := serverHandshake(nc, r, s.cfg.Secret, s.cfg.HandshakeTimeout)
	if err != nil {
		s.log.Warn("link peer refused", "remote", nc.RemoteAddr().String(), "err", err)
		nc.Close()
		return
	}
	p := &Peer{name: name, remote: nc.RemoteAddr().String(), nc: nc}
	p.w = newWriter(nc, s.cfg.WriteTimeout, func(error) { nc.Close() })
	s.mu.Lock()
	s.peers[p] = struct{}{}
	s.mu.Unlock()
	if s.cfg.OnConnect != nil {
		s.cfg.OnConnect(p)
	}
	err = s.readLoop(ctx, p, r)
	p.Close()
	s.mu.Lock()
	delete(s.peers, p)
	s.mu.Unlock()
	if s.cfg.OnDisconnect != nil {
		s.cfg.OnDisconnect(p)
	}
	if err != nil && !p.closedLocally.Load() {
		s.log.Info("link peer gone", "peer", name, "remote", p.remote, "err", err)
	}
}

func (s *Server) readLoop(ctx context.Context, p *Peer, r *bufio.Reader) error {
	var buf []byte
	req := &Request{Peer: p}
	for {
		f, b, err := readFrame(r, buf)
		buf = b
		if err != nil {
			return err
		}
		switch f.kind {
		case kindRequest, kindNotify:
			req.Method, req.Body, req.OneWay = f.method, f.body, f.kind == kindNotify
			resp, herr := s.cfg.Handler(ctx, req)
			if req.OneWay {
				continue
			}
			if herr != nil {
				err = p.w.send(kindError, f.id, f.method, []byte(herr.Error()))
			} else {
				err = p.w.send(kindResponse, f.id, f.method, resp)
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("link: unexpected frame kind %d from a client", f.kind)
		}
	}
}

// Peer is one authenticated client connection on a Server.
type Peer struct {
	name          string
	remote        string
	nc            net.Conn
	w             *writer
	closedLocally atomic.Bool
	// Value is free for the service to attach per-peer state (set in OnConnect).
	Value atomic.Value
}

// Name returns the name the peer gave in the handshake.
func (p *Peer) Name() string { return p.name }

// Notify sends a one-way message to the peer, batched with its other traffic.
func (p *Peer) Notify(method uint16, body []byte) error {
	return p.w.send(kindNotify, 0, method, body)
}

// Close drops the connection.
func (p *Peer) Close() {
	p.closedLocally.Store(true)
	p.w.stop(ErrClosed)
	p.nc.Close()
}
