package link

import (
	"context"
	"net"
	"sync/atomic"
	"time"
)

// Liveness. A peer that vanishes without a FIN or an RST (its host lost power, a
// partition, a blackholed route) leaves a TCP connection that looks healthy for
// as long as the kernel keeps retransmitting — many minutes — while every call on
// it waits and, after the network heals, the retransmission back-off delays
// recovery by tens of seconds more. So each side watches the other: the client
// sends a ping every PingEvery, which the server answers with a pong, and either
// side closes a connection on which it has read no frame at all for DeadAfter.
// The client then reconnects as after any break, and its calls in flight fail
// with ErrDisconnected (their outcome unknown, as for any broken link).
//
// The pings flow whatever else does, so a busy link and an idle one are judged
// alike, and the server needs no timer of its own to keep a client alive. A
// frame counter, not a clock, marks progress: reading a frame costs one atomic
// add, and the watchdog compares counts once per tick.
const (
	kindPing uint8 = 5 // client → server; empty body, id echoed in the pong
	kindPong uint8 = 6 // server → client
)

// Defaults of the liveness settings.
const (
	DefaultPingEvery = time.Second
	DefaultDeadAfter = 5 * time.Second
)

// watchdog closes nc once no frame has been read on it for deadAfter (read
// counts the frames read), checking every tick; ping, if set, runs every tick
// first, and heard, if set, is told each tick that found new frames. It returns
// when ctx ends.
func watchdog(ctx context.Context, nc net.Conn, read *atomic.Uint64, tick, deadAfter time.Duration,
	ping func(), heard func(time.Time), onDead func()) {
	t := time.NewTicker(tick)
	defer t.Stop()
	last, since := read.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if ping != nil {
				ping()
			}
			if n := read.Load(); n != last {
				last, since = n, now
				if heard != nil {
					heard(now)
				}
				continue
			}
			if now.Sub(since) >= deadAfter {
				onDead()
				nc.Close()
				return
			}
		}
	}
}

// livenessDefaults fills unset liveness settings, keeping DeadAfter above two
// pings so that one late pong is not taken for death.
func livenessDefaults(every, dead time.Duration) (time.Duration, time.Duration) {
	if every <= 0 {
		every = DefaultPingEvery
	}
	if dead <= 0 {
		dead = DefaultDeadAfter
	}
	return every, max(dead, 2*every+every/2)
}
