// Package ws is an RFC 6455 (WebSocket) codec made to be driven by an event loop
// such as the gateway's reactor: no goroutine per connection, no net package, no
// io.Reader. It works on byte slices the caller owns and keeps, per connection,
// only a Decoder (a few words, plus the fragments of a message while one is being
// assembled). The server side (ParseUpgrade, Decoder, CutStream, AppendFrame) is
// described below; the client side (AppendRequest, ParseResponse,
// AppendClientFrame, ClientDecoder, CutClientStream) mirrors it for the load
// agents, the benchmark client and the Go client library.
//
// # What is supported
//
// RFC 6455 version 13 without extensions: the opening handshake (ParseUpgrade,
// AppendResponse, AppendReject), client frames of every length form, fragmentation,
// ping, pong and close, and unmasked server frames (AppendFrame, AppendClose).
// Subprotocols are offered to the caller, which picks one. No extension is
// negotiated: a client's Sec-WebSocket-Extensions offer is ignored, so reserved bits
// stay illegal. permessage-deflate (RFC 7692) in particular is left out for memory:
// with context takeover each connection keeps a sliding window per direction (32 KiB
// at the default window size) and the compressor's state across messages, where an
// idle reactor connection holds no buffer at all; without takeover it saves little
// on messages as small as most of the client protocol's frames.
//
// # State machine
//
// A connection is first in the handshake: its input is an HTTP request, parsed by
// ParseUpgrade, which waits (n == 0) until the header block ends and refuses one
// over MaxRequest bytes. A valid request is answered with AppendResponse; any other
// with AppendReject and a close. From then on the input is frames. The Decoder has
// two states: between messages, and inside a fragmented message (Fragmented). A
// text or binary frame without FIN enters the second state; continuation frames add
// to the message and the one with FIN completes it and returns to the first. A
// continuation frame between messages, or a new text or binary frame inside one, is
// a protocol error. Control frames are legal in both states and leave it unchanged.
// A close frame ends the exchange: the server answers with its own close
// (AppendClose, echoing the code) and closes; frames after it are not to be decoded.
//
// # Invariants
//
//   - Decode consumes whole frames or nothing. While a frame is incomplete it neither
//     touches the bytes nor changes state, so the caller may append more input and
//     call again with the same start — the reactor's carry buffer does exactly that.
//   - Unmasking in place is safe because it happens once, on a whole frame, at the
//     moment the frame is consumed: the masked bytes are never looked at again, and
//     the payload returned is the unmasked region itself (no copy, no allocation for
//     a message that came in one frame). The converse is the caller's duty: bytes
//     Decode has consumed must not be decoded again (unmasking twice restores the
//     masked bytes).
//   - Control frames may interleave with the fragments of a message (RFC 6455 §5.4)
//     so that a ping or a close is not stuck behind a large message. They are
//     returned as they come and the message's fragments stay in the Decoder, which
//     is why fragments are copied out of the caller's buffer (that buffer is reused
//     for the next read) while single-frame messages and control frames are not.
//   - Memory is bounded by MaxMessage, judged on each frame header before any payload
//     is kept, over the sum of a message's fragments; control frames are at most 125
//     bytes and never fragmented. An assembled message's buffer is handed to the
//     caller, not kept: between messages the Decoder holds nothing.
//   - Text messages and close reasons are checked to be UTF-8 once whole (a rune may
//     be split across fragments). Close codes are checked against the ranges a peer
//     may send (ValidCloseCode).
//   - Every violation is an *Error carrying the close code to send: 1002 protocol
//     error, 1007 invalid payload, 1009 too big. The connection is then failed: the
//     server sends AppendClose(code) and closes.
//
// # Driving it from the reactor
//
// The reactor cuts its input with a Framer and hands each unit to its Handler.
// CutStream is that Framer for a WebSocket port: the handshake block first, then one
// client frame per unit, with the per-frame size checked on the header. The handler
// keeps, per connection, whether the handshake is done and a Decoder. For the
// handshake unit it calls ParseUpgrade and writes AppendResponse (or AppendReject
// and closes); for each later unit it calls Decode, which consumes exactly that
// frame. A binary message carries one frame of the client protocol
// (gateway/proto/PROTOCOL.md §2, length prefix included), handled exactly as if it
// had come over raw TCP; the server's frames go out the same way, each in one binary
// message built with AppendFrameHeader and the frame appended. Pings are answered
// with a pong of the same payload; text messages are refused (the client protocol
// is binary).
//
// Decode unmasks in place, so it must run exactly once per frame: either inline in
// the reactor's OnFrame, or only on the deferred copy — never in OnFrame before
// returning Defer, whose copy would then be unmasked a second time.
package ws
