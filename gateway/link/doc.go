// Package link is the internal transport between Floodgate's services: long-lived
// TCP connections carrying pipelined requests, responses and one-way notifications,
// so that a message hop costs microseconds rather than a new connection.
//
// # Wire format
//
// After the handshake every frame is
//
//	u32 length | u8 kind | u64 id | u16 method | body
//
// big-endian, where length counts everything after itself. kind is request,
// response, error (body: UTF-8 text), notify (one-way, id 0), ping or pong (empty;
// a pong echoes its ping's id); a response carries its request's id.
//
// # Liveness
//
// The client pings every PingEvery (1s) and each side closes a connection on which
// it read nothing for DeadAfter (5s): a peer that vanished without FIN or RST is
// noticed in seconds, not after the kernel's retransmissions give up (liveness.go).
//
// # Handshake
//
// Peers prove they hold the cluster secret without sending it: the server opens
// with a random nonce Ns; the client answers with its own nonce Nc, its name and
// HMAC-SHA256(secret, "fg-link client" | Ns | Nc | name); the server checks it and
// answers HMAC-SHA256(secret, "fg-link server" | Nc | Ns), which the client checks in
// turn, so neither side talks to an impostor. A failed check closes the connection.
//
// # Limits
//
// A server's listener survives accept errors (out of descriptors, buffers or
// memory): it backs off from 5ms, doubling to 1s, and only a cancelled context or a
// closed listener ends Serve. At most ServerConfig.MaxHandshakes (64) connections
// are in their handshake at once, and at most MaxHandshakesPerIP (16) from one
// remote address: one accepted over either cap is closed before a byte is
// exchanged. A handshake holds a goroutine and a few hundred bytes, never a
// peer's buffers, and ends at HandshakeTimeout (5s) from accept however the client
// stalls or trickles. At most MaxPeers (4096) authenticated peers are connected at
// once: over it the server closes the connection before sending its proof.
//
// # Ordering and batching
//
// A server handles one connection's requests one at a time, in arrival order, so a
// client that sends Register then Unregister on one link sees them applied in that
// order. Writes go into a buffer, and whoever sends while no write is under way
// writes it out on its own goroutine, together with whatever others add meanwhile:
// batches grow with load, and an idle link's frame leaves at once with no
// goroutine to wake. A server's answers (and pongs) are queued, and its reader
// writes them once no further frame is buffered, or once the oldest has waited
// 500µs, so the answers to a burst of pipelined requests leave in one write; an
// answer off the latency path may be let linger longer (Request.Linger). At
// most 256 KiB wait behind a write under way; a sender beyond that waits for it.
// The write deadline (WriteTimeout) is armed per write, not per frame, and re-armed
// only once less than WriteTimeout of it is left: a peer that takes no data is
// dropped after between WriteTimeout and WriteTimeout+1s.
package link
