// Package proto implements Floodgate's client wire protocol: frame splitting,
// the codec for every frame type, protocol error codes and kick reasons, and
// the signed login tokens.
//
// A frame is
//
//	u32 length | u8 type | body
//
// in network byte order, where length counts the type byte plus the body.
// PROTOCOL.md in this directory is the normative, language-neutral
// specification; this package is its reference implementation.
//
// The codec is built for a reactor that owns one read buffer per connection:
// [Split] finds frame boundaries, [ParseFrame] separates type and body, and
// each message type's Decode fills a concrete struct whose []byte fields alias
// the read buffer. Append methods encode complete frames onto a caller-owned
// buffer. None of these allocate on success (Append only when dst lacks
// capacity). Append does not enforce limits: a server checks Size against
// the peer's maximum frame (see MaxPayload) before encoding caller-supplied
// payloads. Errors on the decode path are rare (the connection is closed
// with a KICK), so they carry detail and wrap the package's sentinel errors;
// use [errors.Is] to match them and [CodeOf] to obtain the wire [Code].
package proto
