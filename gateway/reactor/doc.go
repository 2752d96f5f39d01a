// Package reactor is Floodgate's epoll engine: edge-triggered, non-blocking TCP on
// golang.org/x/sys/unix, with no goroutine and no buffer per idle connection. It hands
// complete frames (as cut by a Framer) to a Handler and offers Write and Close on a
// Conn; it knows nothing about what the frames mean.
//
// # Shape
//
// Accept loops (one SO_REUSEPORT listener each) admit connections under an atomic
// limit and deal them round-robin to epollers. Each epoller is one goroutine with one
// epoll fd and a table of the connections it owns; nothing else touches that table,
// the read path, the timers or a connection's fd lifetime. Frames are parsed in place
// in the epoller's shared read buffer and offered to Handler.OnFrame inline; the
// handler either handles them there (cheap frames) or defers them to a worker pool
// that keeps each connection's frames in order and on one worker at a time.
//
// # Invariants worth knowing before changing anything
//
//   - Edge-triggered epoll reports readiness once. A read loop must therefore run until
//     the socket is drained (EAGAIN, or a read shorter than asked, which epoll(7) allows
//     as proof), and whenever it stops early — the per-event byte cap that keeps one
//     flooding connection from starving the rest, or a pause for backpressure — the
//     connection is put on the epoller's ready list by whoever ends the stop, because
//     the kernel will not report the waiting bytes again.
//   - epoll data is (slot, generation), never a pointer or an fd. Tearing a connection
//     down bumps its slot's generation, so an event already fetched for it in the same
//     batch, or a slot reused by the next accept, can never be applied to the wrong
//     connection: a stale event is counted and dropped.
//   - A Conn is never reused; its fd is closed exactly once, by its epoller, under the
//     Conn's mutex, after EPOLL_CTL_DEL, so a writer on another goroutine can never
//     write to a closed or recycled descriptor. Close from anywhere only marks the
//     connection closing and asks the epoller to finish.
//   - Closing is graceful: queued output (and the farewell) is flushed, the write side
//     is shut down, and input is read and dropped until the peer's FIN or a linger
//     deadline. Closing a socket with unread input would send a reset that can destroy
//     the farewell before the peer reads it.
//   - Handler callbacks for one connection are serialised: OnOpen, frames in order,
//     OnClose last. An inline frame is offered only when no deferred frame of that
//     connection is pending, and OnClose waits behind the deferred ones. Once this
//     side decides to close a connection (the handler's Close, a kick), no further
//     frame reaches the handler: not the rest of the read, not those queued for a
//     worker. A peer that merely closes still has all its frames handled.
//   - Per-connection limits are generic and set by the handler: Config.OpenLimits
//     until the handler admits the connection (Conn.Admit), with an admission
//     deadline (AdmitTimeout) on the same lazy timing wheel as the idle timer,
//     which counts complete frames only; then the Limits the handler installs.
//     A frame size limit is checked at the header, so a partial frame is never
//     carried in a buffer larger than the limit's size class; rate limits are token
//     buckets of one word each, charged on the epoller's clock.
//   - A Write is never torn. Once part of it is on the wire the rest is queued even
//     past the hard cap (the connection then closes as slow, farewell last), and a
//     connection whose linger runs out with output still queued is reset, not ended
//     with a FIN: a peer never reads half a frame followed by a clean end of stream.
//   - Memory is bounded everywhere: the outbound queue by WriteHardCap (the connection
//     is kicked as slow, with a farewell, never silently truncated), deferred input by
//     MaxDeferred (reading pauses; the kernel's window pushes back on the peer), a
//     partial frame by the connection's MaxFrame, and an idle connection holds no
//     buffer at all: only its Conn.
package reactor
