package msg

import (
	"encoding/binary"
	"errors"
)

// messageFixed is the encoded size of a Message without its payload:
// seq | epoch | id | from | to | client_ts (u64 each, big-endian), then the payload.
const messageFixed = 48

// AppendMessage appends m's encoding to b: the form messages take on internal links
// (store requests and replies, the router's feed, pushes to gateways). ClientMsgID
// is not part of it: it travels only in an append request (see MethodAppend).
func AppendMessage(b []byte, m *Message) []byte {
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint64(b, m.Epoch)
	b = binary.BigEndian.AppendUint64(b, m.ID)
	b = binary.BigEndian.AppendUint64(b, m.From)
	b = binary.BigEndian.AppendUint64(b, m.To)
	b = binary.BigEndian.AppendUint64(b, uint64(m.ClientTS))
	return append(b, m.Payload...)
}

// EncodedSize returns the length of m's encoding.
func EncodedSize(m *Message) int { return messageFixed + len(m.Payload) }

// ErrShortMessage is returned for an encoding shorter than a message's fixed part.
var ErrShortMessage = errors.New("msg: encoded message too short")

// DecodeMessage decodes an encoding made by AppendMessage that fills all of b. The
// payload aliases b.
func DecodeMessage(b []byte) (Message, error) {
	if len(b) < messageFixed {
		return Message{}, ErrShortMessage
	}
	return Message{
		Seq:      binary.BigEndian.Uint64(b[0:]),
		Epoch:    binary.BigEndian.Uint64(b[8:]),
		ID:       binary.BigEndian.Uint64(b[16:]),
		From:     binary.BigEndian.Uint64(b[24:]),
		To:       binary.BigEndian.Uint64(b[32:]),
		ClientTS: int64(binary.BigEndian.Uint64(b[40:])),
		Payload:  b[messageFixed:len(b):len(b)],
	}, nil
}
