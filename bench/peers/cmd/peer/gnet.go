package main

import (
	"context"
	"log"
	"net"
	"os"

	"github.com/panjf2000/gnet/v2"
)

// gnetPeer echoes with gnet v2: a main reactor accepts connections and hands
// them to N event loops, each with its own epoll instance.
type gnetPeer struct {
	gnet.BuiltinEventEngine

	booted chan struct{} // closed by OnBoot
	done   chan error    // receives gnet.Run's result

	// Set by OnBoot before booted is closed.
	eng  gnet.Engine
	addr string
}

// startGnet runs a gnet engine with loops event loops on addr and returns once
// it has booted.
func startGnet(addr string, loops int) (*gnetPeer, error) {
	p := &gnetPeer{booted: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		p.done <- gnet.Run(p, "tcp://"+addr,
			// Multicore with an explicit count: without these gnet runs a
			// single event loop (WithNumEventLoop alone would do, but say so).
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(loops),
			// gnet's default logger writes to stdout, which is reserved
			// for the READY line.
			gnet.WithLogger(stderrLogger{log.New(os.Stderr, "[gnet] ", log.LstdFlags)}),
		)
	}()
	select {
	case <-p.booted:
		return p, nil
	case err := <-p.done:
		return nil, err
	}
}

// OnBoot records the engine and the bound address. gnet calls it once the
// listener is bound, just before it starts the event loops.
func (p *gnetPeer) OnBoot(eng gnet.Engine) gnet.Action {
	p.eng = eng
	addr, err := gnetListenAddr(eng)
	if err != nil {
		log.Printf("gnet: listener address: %v", err)
	}
	p.addr = addr
	close(p.booted)
	return gnet.None
}

// OnTraffic writes everything buffered for c straight back. Next(-1) returns
// a view of the event loop's read buffer (no copy, no allocation) and Write
// sends it at once, copying into c's outbound buffer only what the socket
// does not take.
func (p *gnetPeer) OnTraffic(c gnet.Conn) gnet.Action {
	buf, err := c.Next(-1)
	if err != nil {
		return gnet.Close
	}
	if _, err := c.Write(buf); err != nil {
		return gnet.Close
	}
	return gnet.None
}

// Addr implements peer.
func (p *gnetPeer) Addr() string { return p.addr }

// Stop implements peer. gnet closes the event loops, listener and connections,
// then gnet.Run returns.
func (p *gnetPeer) Stop(ctx context.Context) error {
	// Engine.Stop polls for completion every 500 ms; gnet.Run returning is
	// the earlier and more precise signal, so wait for whichever comes first.
	stopped := make(chan error, 1)
	go func() { stopped <- p.eng.Stop(ctx) }()
	select {
	case err := <-p.done:
		return err
	case err := <-stopped:
		if err != nil {
			return err
		}
		return <-p.done
	}
}

// gnetListenAddr returns the address of eng's listener, which differs from the
// requested one when that had port 0.
func gnetListenAddr(eng gnet.Engine) (string, error) {
	fd, err := eng.Dup()
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), "gnet-listener")
	defer f.Close()
	ln, err := net.FileListener(f) // dups fd again; closing both leaves gnet's own
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// stderrLogger adapts a *log.Logger to gnet's logging.Logger; Fatalf comes
// from the embedded *log.Logger.
type stderrLogger struct{ *log.Logger }

// Debugf discards debug messages.
func (stderrLogger) Debugf(string, ...any) {}

// Infof logs an informational message.
func (l stderrLogger) Infof(format string, args ...any) { l.Printf("INFO "+format, args...) }

// Warnf logs a warning.
func (l stderrLogger) Warnf(format string, args ...any) { l.Printf("WARN "+format, args...) }

// Errorf logs an error.
func (l stderrLogger) Errorf(format string, args ...any) { l.Printf("ERROR "+format, args...) }
