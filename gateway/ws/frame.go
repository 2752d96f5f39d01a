package ws

import (
	"encoding/binary"
	"unicode/utf8"
)

// Opcode is a frame's opcode (RFC 6455 §5.2).
type Opcode byte

// The opcodes of RFC 6455; every other value is refused with ErrUnknownOpcode.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// MaxControlPayload is the largest payload of a control frame (RFC 6455 §5.5).
const MaxControlPayload = 125

// MaxHeader is the largest frame header: 2 bytes, 8 of extended length, 4 of mask.
const MaxHeader = 14

const (
	bitFIN  = 0x80
	bitsRSV = 0x70
	bitMask = 0x80
)

// header is a parsed frame header.
type header struct {
	fin    bool
	op     Opcode
	mask   [4]byte
	hlen   int    // header bytes, mask key included
	length uint64 // payload bytes
}

// parseHeader parses the client frame header at b. It returns ok=false, nil while
// the header is incomplete, and an *Error for a header no client may send: reserved
// bits, an unknown opcode, no mask, a 64-bit length with its top bit set, a control
// frame that is fragmented or longer than 125 bytes.
func parseHeader(b []byte) (h header, ok bool, err error) { return parseFrameHeader(b, true) }

// parseFrameHeader parses the frame header at b for either direction: masked says
// whether the mask bit must be set (a client's frame, whose header ends in the mask
// key) or clear (a server's). A mask bit that is not as masked says is ErrUnmasked
// or ErrMasked; the other checks are parseHeader's.
func parseFrameHeader(b []byte, masked bool) (h header, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	b0, b1 := b[0], b[1]
	if b0&bitsRSV != 0 {
		return h, false, ErrReservedBits
	}
	h.fin = b0&bitFIN != 0
	h.op = Opcode(b0 & 0x0F)
	switch h.op {
	case OpContinuation, OpText, OpBinary:
	case OpClose, OpPing, OpPong:
		if !h.fin {
			return h, false, ErrControlFragment
		}
		if b1&0x7F > MaxControlPayload {
			return h, false, ErrControlTooLong
		}
	default:
		return h, false, ErrUnknownOpcode
	}
	switch {
	case masked && b1&bitMask == 0:
		return h, false, ErrUnmasked
	case !masked && b1&bitMask != 0:
		return h, false, ErrMasked
	}
	h.hlen = 2
	switch l7 := b1 & 0x7F; l7 {
	case 126:
		h.hlen = 4
		if len(b) < h.hlen {
			return h, false, nil
		}
		h.length = uint64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		h.hlen = 10
		if len(b) < h.hlen {
			return h, false, nil
		}
		h.length = binary.BigEndian.Uint64(b[2:10])
		if h.length>>63 != 0 {
			return h, false, ErrLengthMSB
		}
	default:
		h.length = uint64(l7)
	}
	if masked {
		h.hlen += 4
		if len(b) < h.hlen {
			return h, false, nil
		}
		copy(h.mask[:], b[h.hlen-4:h.hlen])
	}
	return h, true, nil
}

// FrameSize returns the full size (header included) of the client frame starting at
// b as soon as its header is complete — possibly more than len(b) — or 0 while the
// header is incomplete, or the *Error of a header no client may send, or
// ErrMessageTooBig when the frame's payload alone exceeds maxPayload (if > 0). It
// looks at the header only and does not retain b. Its contract is the reactor's
// Framer's, so the reactor can cut WebSocket frames as it cuts the raw protocol's.
func FrameSize(b []byte, maxPayload int) (int, error) {
	h, ok, err := parseHeader(b)
	if err != nil || !ok {
		return 0, err
	}
	if maxPayload > 0 && h.length > uint64(maxPayload) {
		return 0, ErrMessageTooBig
	}
	if h.length > uint64(maxInt-h.hlen) {
		return 0, ErrMessageTooBig
	}
	return h.hlen + int(h.length), nil
}

const maxInt = int(^uint(0) >> 1)

// Message is one complete data message or one control frame.
//
// Payload aliases either the caller's buffer (a message that came in one frame, and
// every control frame: unmasked in place) or a buffer the Decoder allocated for a
// fragmented message and gave up; either way it stays valid until the caller reuses
// that memory, and the Decoder never touches it again.
type Message struct {
	// Op is OpText, OpBinary, OpClose, OpPing or OpPong. It is OpContinuation (0)
	// when Decode consumed a frame that did not complete a message: a fragment.
	Op Opcode
	// Payload is the message's bytes; for OpClose, the reason (after the code).
	Payload []byte
	// Code is the status code of an OpClose: CloseNoStatus if the frame had no body.
	Code uint16
}

// Decoder parses the frames a client sends (RFC 6455 §5) from byte slices the
// caller owns, one frame per Decode call, and assembles fragmented messages. Its
// zero value accepts messages of any size; set MaxMessage to bound them. A Decoder
// is not safe for concurrent use; it belongs to one connection.
//
// Between messages a Decoder holds no buffer: only during a fragmented message does
// it keep the fragments so far (at most MaxMessage bytes).
type Decoder struct {
	// MaxMessage is the largest message payload accepted, in bytes, summed over the
	// fragments; 0 means unlimited. Larger ones fail with ErrMessageTooBig, judged on
	// the frame header, before any payload is kept.
	MaxMessage int

	asm assembler // the message in progress
}

// Fragmented reports whether the Decoder is inside a fragmented message (has kept
// fragments and waits for the rest).
func (d *Decoder) Fragmented() bool { return d.asm.frag }

// Decode parses the frame at the start of b.
//
// While b holds less than one whole frame it returns n == 0 and a nil error and
// changes nothing, neither b nor its own state: the caller appends more bytes and
// calls again with the same start. Otherwise it consumes exactly one frame (n > 0,
// never more than len(b)), unmasking its payload in place in b, and returns either a
// complete message or control frame, or — for a fragment that does not end its
// message — a Message with Op == OpContinuation. Control frames between the
// fragments of a message are returned as they come, without disturbing the message.
//
// A non-nil error is an *Error carrying the close code to send; the connection must
// then be failed: the Decoder's state, and n, mean nothing after it (a header error
// consumes nothing; a bad payload — close code, UTF-8 — is found after consuming).
func (d *Decoder) Decode(b []byte) (m Message, n int, err error) {
	return d.asm.decode(b, true, d.MaxMessage)
}

// parseClose validates the body of a close frame (RFC 6455 §5.5.1, §7.4).
func parseClose(p []byte) (Message, error) {
	m := Message{Op: OpClose, Code: CloseNoStatus}
	switch len(p) {
	case 0:
		return m, nil
	case 1:
		return Message{}, ErrCloseLength
	}
	m.Code = binary.BigEndian.Uint16(p)
	if !ValidCloseCode(m.Code) {
		return Message{}, ErrCloseCode
	}
	m.Payload = p[2:]
	if !utf8.Valid(m.Payload) {
		return Message{}, ErrInvalidReason
	}
	return m, nil
}

// ValidCloseCode reports whether a peer may send code in a close frame: the codes
// RFC 6455 §7.4.1 defines for the wire and the IANA registry adds (1000–1003,
// 1007–1014), and the ranges for libraries and applications (3000–4999). 1004,
// 1005, 1006 and 1015 are reserved and never sent.
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// unmask XORs p with the repeating 4-byte key, 8 bytes at a time. Its position in
// the key starts at 0: it is always given a whole frame's payload.
func unmask(p []byte, key [4]byte) {
	k32 := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k32) | uint64(k32)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		v := binary.LittleEndian.Uint64(p[i:])
		binary.LittleEndian.PutUint64(p[i:], v^k64)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}

// DecodeOne decodes b, exactly one whole client frame as CutStream cuts it, without
// a Decoder: it unmasks the payload in place and returns the frame's opcode, FIN bit
// and payload. It is for a frame handled outside its connection's Decoder — one a
// rate limit refuses, which is dropped — so it checks the header only (no UTF-8, no
// close code) and leaves fragmentation to the caller. The unmasking-once rule of
// Decode holds here too.
func DecodeOne(b []byte) (op Opcode, fin bool, payload []byte, err error) {
	h, ok, err := parseHeader(b)
	if err != nil {
		return 0, false, nil, err
	}
	if !ok || uint64(len(b)-h.hlen) != h.length {
		return 0, false, nil, ErrNotOneFrame
	}
	p := b[h.hlen:]
	unmask(p, h.mask)
	return h.op, h.fin, p, nil
}

// bitDecoded is RSV3, the reserved bit MarkDecoded uses.
const bitDecoded = 0x10

// MarkDecoded sets a reserved bit in the header of the frame at b, which Decode has
// consumed (and unmasked), so that a later look at the same bytes — the copy a
// reactor hands a worker after the handler deferred the frame — knows not to decode
// it again. No frame a client sends can carry the mark: parseHeader, hence
// CutStream and FrameSize, refuse reserved bits, so a marked frame was marked here.
func MarkDecoded(b []byte) { b[0] |= bitDecoded }

// Decoded reports whether MarkDecoded marked the frame at b.
func Decoded(b []byte) bool { return len(b) > 0 && b[0]&bitDecoded != 0 }
