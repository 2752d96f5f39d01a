package ws

import (
	"encoding/binary"
	"unicode/utf8"
)

// AppendFrame appends one server frame to dst: FIN set, unmasked (servers never
// mask, RFC 6455 §5.1), with the shortest length form. It does not check op or, for a
// control frame, the 125-byte limit: the caller sends what it built.
func AppendFrame(dst []byte, op Opcode, payload []byte) []byte {
	dst = appendHeader(dst, op, len(payload))
	return append(dst, payload...)
}

// AppendFrameHeader appends only the header of a server frame whose payload of n bytes
// the caller appends itself (to build a message in place without a copy).
func AppendFrameHeader(dst []byte, op Opcode, n int) []byte {
	return appendHeader(dst, op, n)
}

func appendHeader(dst []byte, op Opcode, n int) []byte {
	b0 := bitFIN | byte(op&0x0F)
	switch {
	case n <= 125:
		return append(dst, b0, byte(n))
	case n <= 0xFFFF:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	}
	dst = append(dst, b0, 127)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}

// AppendClose appends a server close frame with code and reason. A reason that would
// not fit a control frame (123 bytes after the code) is cut at the last whole UTF-8
// character that fits. Code CloseNoStatus yields a close frame with an empty body.
func AppendClose(dst []byte, code uint16, reason string) []byte {
	if code == CloseNoStatus {
		return appendHeader(dst, OpClose, 0)
	}
	const maxReason = MaxControlPayload - 2
	if len(reason) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	dst = appendHeader(dst, OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, reason...)
}
