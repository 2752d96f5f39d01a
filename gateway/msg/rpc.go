package msg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Methods served by the msg server on its link listener (see Server and Client).
// Integers are big-endian; a window is u64 epoch | u64 head | u64 oldest.
const (
	// MethodAppend stores a message. Request: u64 client_msg_id | AppendMessage of
	// the message (its Seq, Epoch and ID are ignored). Reply, sent only once the
	// store holds the message: u64 seq | u64 id | u64 epoch. An error reply whose
	// text starts with ErrNotStored's means certainly not stored; one that starts
	// with ErrRecipientFull's (itself starting with ErrNotStored's) that the
	// recipient's quota refused it; any other error leaves the outcome unknown
	// (retry with the same client_msg_id).
	MethodAppend uint16 = 1
	// MethodAck acknowledges a user's messages through a seq of an epoch. Request:
	// u64 uid | u64 seq | u64 epoch. Reply: empty.
	MethodAck uint16 = 2
	// MethodRange replays a user's messages. Request: u64 uid | u64 after |
	// u32 limit (0: as many as one reply carries). Reply: window | u32 n |
	// n × (u32 len | AppendMessage). A reply carries at most MaxRangeReply messages
	// and at most link.MaxBody bytes, so it may hold fewer than asked for although
	// more are retained; Client.Range asks again from the last seq received.
	MethodRange uint16 = 3
	// MethodWindow reports a user's window. Request: u64 uid. Reply: window.
	MethodWindow uint16 = 4
	// MethodWindows reports many users' windows at once (a gateway telling its
	// sessions their windows after it registered them again). Request: n × u64 uid,
	// 1 ≤ n ≤ MaxWindows. Reply: n × window, in the request's order.
	MethodWindows uint16 = 5
)

// MethodName names a method in logs and metric labels; "" for an unknown one.
func MethodName(m uint16) string {
	switch m {
	case MethodAppend:
		return "append"
	case MethodAck:
		return "ack"
	case MethodRange:
		return "range"
	case MethodWindow:
		return "window"
	case MethodWindows:
		return "windows"
	}
	return ""
}

// MaxWindows is the most uids one MethodWindows request may carry.
const MaxWindows = 1024

// MaxRangeReply is the most messages one MethodRange reply carries. It equals the
// gateway's default SYNC limit, so a default SYNC is one reply and one snapshot
// unless its messages average nearly 64 KiB (256 of 64 KiB overrun link.MaxBody
// by 11 KB; the last then comes in a second reply).
const MaxRangeReply = 256

const (
	windowSize     = 24
	rangeReqSize   = 20
	rangeReplyHead = windowSize + 4
	ackReqSize     = 24
	appendReplyLen = 24
)

// errMalformed reports a link body that does not parse.
var errMalformed = errors.New("msg: malformed link body")

func appendWindow(b []byte, w Window) []byte {
	b = binary.BigEndian.AppendUint64(b, w.Epoch)
	b = binary.BigEndian.AppendUint64(b, w.Head)
	return binary.BigEndian.AppendUint64(b, w.Oldest)
}

func decodeWindow(b []byte) (Window, error) {
	if len(b) != windowSize {
		return Window{}, fmt.Errorf("%w: window of %d bytes", errMalformed, len(b))
	}
	return Window{
		Epoch:  binary.BigEndian.Uint64(b),
		Head:   binary.BigEndian.Uint64(b[8:]),
		Oldest: binary.BigEndian.Uint64(b[16:]),
	}, nil
}

// appendPair appends two u64s.
func appendPair(b []byte, x, y uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(b, x), y)
}

// appendTriple appends three u64s: the Ack request (uid, seq, epoch) and the Append
// reply (seq, id, epoch).
func appendTriple(b []byte, x, y, z uint64) []byte {
	return binary.BigEndian.AppendUint64(appendPair(b, x, y), z)
}

func decodeTriple(b []byte) (x, y, z uint64, err error) {
	if len(b) != 24 {
		return 0, 0, 0, fmt.Errorf("%w: %d bytes, want 24", errMalformed, len(b))
	}
	return binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[16:]), nil
}

// appendAppendRequest encodes an Append request: client_msg_id, then the message.
func appendAppendRequest(b []byte, m *Message) []byte {
	return AppendMessage(binary.BigEndian.AppendUint64(b, m.ClientMsgID), m)
}

// decodeAppendRequest decodes an Append request; the payload aliases b.
func decodeAppendRequest(b []byte) (Message, error) {
	if len(b) < 8 {
		return Message{}, fmt.Errorf("%w: append request of %d bytes", errMalformed, len(b))
	}
	m, err := DecodeMessage(b[8:])
	if err != nil {
		return Message{}, fmt.Errorf("%w: %w", errMalformed, err)
	}
	m.ClientMsgID = binary.BigEndian.Uint64(b)
	return m, nil
}

func appendUID(b []byte, uid uint64) []byte { return binary.BigEndian.AppendUint64(b, uid) }

func decodeUID(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %d bytes, want a uid", errMalformed, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func appendRangeRequest(b []byte, uid, after uint64, limit uint32) []byte {
	b = appendPair(b, uid, after)
	return binary.BigEndian.AppendUint32(b, limit)
}

func decodeRangeRequest(b []byte) (uid, after uint64, limit uint32, err error) {
	if len(b) != rangeReqSize {
		return 0, 0, 0, fmt.Errorf("%w: range request of %d bytes", errMalformed, len(b))
	}
	return binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint32(b[16:]), nil
}

// appendRangeReply encodes w and as many of msgs, from the first, as keep the reply
// within budget bytes; it returns the reply and how many messages it holds.
func appendRangeReply(b []byte, w Window, msgs []Message, budget int) ([]byte, int) {
	size, n := rangeReplyHead, 0
	for n < len(msgs) && size+4+EncodedSize(&msgs[n]) <= budget {
		size += 4 + EncodedSize(&msgs[n])
		n++
	}
	b = slices.Grow(b, size)
	b = appendWindow(b, w)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	for i := range msgs[:n] {
		b = binary.BigEndian.AppendUint32(b, uint32(EncodedSize(&msgs[i])))
		b = AppendMessage(b, &msgs[i])
	}
	return b, n
}

// decodeRangeReply decodes a MethodRange reply; the payloads alias b.
func decodeRangeReply(b []byte) ([]Message, Window, error) {
	if len(b) < rangeReplyHead {
		return nil, Window{}, fmt.Errorf("%w: range reply of %d bytes", errMalformed, len(b))
	}
	w, _ := decodeWindow(b[:windowSize])
	n := binary.BigEndian.Uint32(b[windowSize:])
	b = b[rangeReplyHead:]
	if uint64(n) > uint64(len(b))/(4+messageFixed) {
		return nil, Window{}, fmt.Errorf("%w: %d messages in %d bytes", errMalformed, n, len(b))
	}
	msgs := make([]Message, n)
	for i := range msgs {
		if len(b) < 4 {
			return nil, Window{}, fmt.Errorf("%w: range reply cut short", errMalformed)
		}
		size := binary.BigEndian.Uint32(b)
		if uint64(size) > uint64(len(b)-4) {
			return nil, Window{}, fmt.Errorf("%w: message of %d bytes in %d", errMalformed, size, len(b)-4)
		}
		m, err := DecodeMessage(b[4 : 4+size])
		if err != nil {
			return nil, Window{}, fmt.Errorf("%w: %w", errMalformed, err)
		}
		msgs[i] = m
		b = b[4+size:]
	}
	if len(b) != 0 {
		return nil, Window{}, fmt.Errorf("%w: %d bytes after the messages", errMalformed, len(b))
	}
	return msgs, w, nil
}
