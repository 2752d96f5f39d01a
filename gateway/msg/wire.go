package msg

import (
	"encoding/binary"
	"errors"
)

// messageFixed is the encoded size of a Message without its payload:
// seq | epoch | id | from | to | client_ts (u64 each, big-endian), then the payload.
// A traced message has its trace between the fixed part and the payload (see
// AppendMessage).
const messageFixed = 48

// traceSize is the encoded size of a Trace: gateway_in | stored | routed |
// gateway_out, i64 each.
const traceSize = 32

// traceFlag, set in the encoded epoch, says a trace follows the fixed part. Epochs
// are Unix microseconds (plus a step count), far below 2^63 until the year 294000,
// so the bit is free; an untraced message's encoding is unchanged by it.
const traceFlag = 1 << 63

// AppendMessage appends m's encoding to b: the form messages take on internal links
// (store requests and replies, the router's feed, pushes to gateways). ClientMsgID
// is not part of it: it travels only in an append request (see MethodAppend). A
// message with a Trace has traceFlag set in its epoch and the 32-byte trace after
// the fixed part; an untraced one costs nothing extra. m.Epoch must be below 2^63.
func AppendMessage(b []byte, m *Message) []byte {
	epoch := m.Epoch &^ traceFlag
	if m.Trace != nil {
		epoch |= traceFlag
	}
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = binary.BigEndian.AppendUint64(b, m.ID)
	b = binary.BigEndian.AppendUint64(b, m.From)
	b = binary.BigEndian.AppendUint64(b, m.To)
	b = binary.BigEndian.AppendUint64(b, uint64(m.ClientTS))
	if t := m.Trace; t != nil {
		b = binary.BigEndian.AppendUint64(b, uint64(t.GatewayIn))
		b = binary.BigEndian.AppendUint64(b, uint64(t.Stored))
		b = binary.BigEndian.AppendUint64(b, uint64(t.Routed))
		b = binary.BigEndian.AppendUint64(b, uint64(t.GatewayOut))
	}
	return append(b, m.Payload...)
}

// EncodedSize returns the length of m's encoding.
func EncodedSize(m *Message) int {
	if m.Trace != nil {
		return messageFixed + traceSize + len(m.Payload)
	}
	return messageFixed + len(m.Payload)
}

// ErrShortMessage is returned for an encoding shorter than a message's fixed part
// (and its trace, if it says it has one).
var ErrShortMessage = errors.New("msg: encoded message too short")

// DecodeMessage decodes an encoding made by AppendMessage that fills all of b. The
// payload aliases b; a trace is decoded into a Trace of its own.
func DecodeMessage(b []byte) (Message, error) {
	if len(b) < messageFixed {
		return Message{}, ErrShortMessage
	}
	m := Message{
		Seq:      binary.BigEndian.Uint64(b[0:]),
		Epoch:    binary.BigEndian.Uint64(b[8:]),
		ID:       binary.BigEndian.Uint64(b[16:]),
		From:     binary.BigEndian.Uint64(b[24:]),
		To:       binary.BigEndian.Uint64(b[32:]),
		ClientTS: int64(binary.BigEndian.Uint64(b[40:])),
	}
	off := messageFixed
	if m.Epoch&traceFlag != 0 {
		if len(b) < messageFixed+traceSize {
			return Message{}, ErrShortMessage
		}
		m.Epoch &^= traceFlag
		t := b[messageFixed:]
		m.Trace = &Trace{
			GatewayIn:  int64(binary.BigEndian.Uint64(t[0:])),
			Stored:     int64(binary.BigEndian.Uint64(t[8:])),
			Routed:     int64(binary.BigEndian.Uint64(t[16:])),
			GatewayOut: int64(binary.BigEndian.Uint64(t[24:])),
		}
		off += traceSize
	}
	m.Payload = b[off:len(b):len(b)]
	return m, nil
}
