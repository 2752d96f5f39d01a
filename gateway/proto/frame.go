package proto

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
)

const (
	// HeaderSize is the size of the frame header: u32 length followed by u8 type.
	HeaderSize = 5

	// DefaultMaxFrame is the default maximum value of a frame's length field
	// (type byte plus body), in bytes.
	DefaultMaxFrame = 64 << 10

	// MinMaxFrame is the smallest maximum frame size a server may announce. A
	// client sends LOGIN before it learns the limit, so every valid LOGIN
	// (at most 1+9+MaxTokenLen = 522 bytes of length) must fit.
	MinMaxFrame = 1 << 10
)

// MaxPayload reports the largest SEND or PUSH payload allowed under a maximum
// frame size: the PUSH that carries a payload must itself fit in maxFrame,
// and PUSH has the larger fixed part. A non-positive maxFrame means
// DefaultMaxFrame.
func MaxPayload(maxFrame int) int {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return max(maxFrame-1-pushFixed, 0)
}

// Type is a frame type, the byte that follows the length prefix.
type Type uint8

// Frame types. The comment gives the direction.
const (
	TypeLogin   Type = 0x01 // client → server
	TypeLoginOK Type = 0x02 // server → client
	TypeError   Type = 0x03 // server → client
	TypePing    Type = 0x04 // client → server
	TypePong    Type = 0x05 // server → client
	TypeSend    Type = 0x06 // client → server
	TypeSendAck Type = 0x07 // server → client
	TypePush    Type = 0x08 // server → client
	TypePushAck Type = 0x09 // client → server
	TypeSync    Type = 0x0A // client → server
	TypeSyncEnd Type = 0x0B // server → client
	TypeKick    Type = 0x0C // server → client

	// Version 3 (VersionTrace) only: on a version 2 connection these types are
	// undefined.
	TypeSendTraced Type = 0x0D // client → server
	TypePushTraced Type = 0x0E // server → client

	// TypeMax is the largest defined type, for tables indexed by type.
	TypeMax = TypePushTraced
)

// clientTypes has bit t set for every type a client may send.
const clientTypes uint64 = 1<<TypeLogin | 1<<TypePing | 1<<TypeSend | 1<<TypePushAck | 1<<TypeSync | 1<<TypeSendTraced

// Known reports whether t is a defined frame type (of version 3: see
// KnownIn for what a connection's version defines).
func (t Type) Known() bool { return t >= TypeLogin && t <= TypeMax }

// KnownIn reports whether t is a defined frame type in protocol version v:
// SEND_TRACED and PUSH_TRACED exist from VersionTrace on.
func (t Type) KnownIn(v uint8) bool {
	if t >= TypeSendTraced {
		return v >= VersionTrace && t.Known()
	}
	return t.Known()
}

// ClientToServer reports whether t is a type that clients send. It is false
// for server-to-client types and for unknown types.
func (t Type) ClientToServer() bool { return clientTypes>>t&1 != 0 }

// String returns the protocol name of t, such as "LOGIN" or "PUSH_ACK", or
// "Type(0x42)" for an unknown type.
func (t Type) String() string {
	switch t {
	case TypeLogin:
		return "LOGIN"
	case TypeLoginOK:
		return "LOGIN_OK"
	case TypeError:
		return "ERROR"
	case TypePing:
		return "PING"
	case TypePong:
		return "PONG"
	case TypeSend:
		return "SEND"
	case TypeSendAck:
		return "SEND_ACK"
	case TypePush:
		return "PUSH"
	case TypePushAck:
		return "PUSH_ACK"
	case TypeSync:
		return "SYNC"
	case TypeSyncEnd:
		return "SYNC_END"
	case TypeKick:
		return "KICK"
	case TypeSendTraced:
		return "SEND_TRACED"
	case TypePushTraced:
		return "PUSH_TRACED"
	}
	return "Type(0x" + strconv.FormatUint(uint64(t)|0x100, 16)[1:] + ")"
}

// FrameSize reports the size, header included, of the frame that starts at b as
// soon as its length prefix is complete — the result may exceed len(b) — or 0
// while fewer than four bytes are present, or an error if the length prefix is
// invalid: ErrZeroLength when it is 0 and ErrFrameTooLarge when it exceeds
// maxFrame. This is the reactor's framer: knowing the size early lets it read a
// large frame straight into a buffer of the right size. A non-positive maxFrame
// means DefaultMaxFrame. It does not allocate.
func FrameSize(b []byte, maxFrame int) (int, error) {
	if len(b) < 4 {
		return 0, nil
	}
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	switch n := uint64(binary.BigEndian.Uint32(b)); {
	case n == 0:
		return 0, ErrZeroLength
	case n > uint64(maxFrame):
		return 0, ErrFrameTooLarge
	default:
		return 4 + int(n), nil
	}
}

// Split reports the size, header included, of the first complete frame at
// the start of b; 0 if b holds only part of a frame; or an error if the
// length prefix is invalid, as FrameSize judges it: as soon as its four bytes
// are present, without waiting for the body.
//
// Split is meant to be called on every read; it does not allocate, and its
// errors are the bare sentinels.
func Split(b []byte, maxFrame int) (int, error) {
	n, err := FrameSize(b, maxFrame)
	if err != nil || n > len(b) {
		return 0, err
	}
	return n, nil
}

// Frame is a view of one complete frame as returned by Split. Body aliases
// the input (with its capacity clipped to its length, so appending to it
// cannot overwrite what follows in the read buffer).
type Frame struct {
	Type Type
	Body []byte
}

// ParseFrame splits a complete frame, exactly one as sized by Split, into
// its type and body. It fails with ErrUnknownType for an undefined type
// byte, and with ErrTruncated, ErrZeroLength or ErrMalformed if frame is not
// exactly one frame. It does not check the maximum frame size; Split does.
func ParseFrame(frame []byte) (Frame, error) {
	if len(frame) < HeaderSize || uint64(binary.BigEndian.Uint32(frame)) != uint64(len(frame)-4) || !Type(frame[4]).Known() {
		return Frame{}, frameError(frame)
	}
	return Frame{Type: Type(frame[4]), Body: frame[HeaderSize:len(frame):len(frame)]}, nil
}

// frameError explains why ParseFrame rejected frame. It is kept out of
// ParseFrame so that the success path stays short and free of fmt.
func frameError(frame []byte) error {
	if len(frame) < 4 {
		return fmt.Errorf("%w: %d bytes, shorter than the length prefix", ErrTruncated, len(frame))
	}
	switch n, have := uint64(binary.BigEndian.Uint32(frame)), uint64(len(frame)-4); {
	case n == 0:
		return ErrZeroLength
	case n > have:
		return fmt.Errorf("%w: length %d, have %d bytes", ErrTruncated, n, have)
	case n < have:
		return fmt.Errorf("%w: length %d, have %d bytes", ErrMalformed, n, have)
	}
	return fmt.Errorf("%w 0x%02x", ErrUnknownType, frame[4])
}

// appendFrame grows dst by a whole frame of type t whose body is a fixed
// part of fixed bytes followed by rest variable bytes. It writes the header,
// extends dst over the fixed part and returns dst together with that window,
// which the caller must fill completely before appending the rest bytes.
// Reserving room for the whole frame up front keeps that append from
// reallocating; with enough capacity in dst nothing allocates.
func appendFrame(dst []byte, t Type, fixed, rest int) ([]byte, []byte) {
	off := len(dst)
	dst = slices.Grow(dst, HeaderSize+fixed+rest)[:off+HeaderSize+fixed]
	binary.BigEndian.PutUint32(dst[off:], uint32(1+fixed+rest))
	dst[off+4] = byte(t)
	return dst, dst[off+HeaderSize:]
}
