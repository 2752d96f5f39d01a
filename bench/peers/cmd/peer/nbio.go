package main

import (
	"context"

	"github.com/lesismal/nbio"
)

// nbioPeer echoes with nbio: one listener goroutine accepts connections and
// spreads them over N poller goroutines, each with its own epoll instance.
type nbioPeer struct {
	eng *nbio.Engine
}

// startNbio starts an nbio engine with pollers poller goroutines on addr.
func startNbio(addr string, pollers int) (*nbioPeer, error) {
	eng := nbio.NewEngine(nbio.Config{
		Network: "tcp",
		Addrs:   []string{addr},
		NPoller: pollers, // nbio's default is runtime.NumCPU()/4
	})
	// data is the poller's shared read buffer; Write sends it at once and
	// copies only what the socket does not take.
	eng.OnData(func(c *nbio.Conn, data []byte) { _, _ = c.Write(data) })
	if err := eng.Start(); err != nil {
		return nil, err
	}
	return &nbioPeer{eng: eng}, nil
}

// Addr implements peer. Start replaces the configured address with the bound one.
func (p *nbioPeer) Addr() string { return p.eng.Addrs[0] }

// Stop implements peer.
func (p *nbioPeer) Stop(ctx context.Context) error { return p.eng.Shutdown(ctx) }
