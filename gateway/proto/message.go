package proto

import (
	"encoding/binary"
	"fmt"
)

const (
	// Version is the base protocol version a client announces in LOGIN. Version 2
	// carries the store incarnation (epoch) wherever a seq travels: PUSH,
	// PUSH_ACK, SYNC and SYNC_END (PROTOCOL.md, "Changes from version 1"). A
	// client that announces it never receives a frame of VersionTrace.
	Version = 2

	// VersionTrace is version 3: Version plus the sampled trace, SEND_TRACED
	// (client → server) and PUSH_TRACED (server → client) (PROTOCOL.md, "Changes
	// from version 2"). A client opts in by announcing it in LOGIN; a server
	// accepts both versions.
	VersionTrace = 3

	// MaxTokenLen is the largest login token accepted in LOGIN, in bytes.
	MaxTokenLen = 512
)

// Body sizes: the whole body of fixed-layout frames, the fixed prefix of the
// others.
const (
	loginFixed  = 9  // version u8 | uid u64
	loginOKSize = 48 // session, epoch, last_seq, oldest u64 | heartbeat, idle, max_frame, max_payload u32
	errorFixed  = 10 // code u16 | ref u64
	pingSize    = 8  // ts i64
	sendFixed   = 24 // client_msg_id, to u64 | client_ts i64
	sendAckSize = 16 // client_msg_id, msg_id u64
	pushFixed   = 40 // seq, epoch, msg_id, from u64 | client_ts i64
	traceSize   = 32 // gateway_in, stored, routed, gateway_out i64
	pushAckSize = 16 // seq, epoch u64
	syncSize    = 20 // after_seq, epoch u64 | limit u32
	syncEndSize = 32 // up_to, head, oldest, epoch u64
	kickFixed   = 7  // reason u8 | code u16 | retry_after_ms u32
)

// wantSize is the error for a fixed-layout body of the wrong size.
func wantSize(t Type, body []byte, want int) error {
	return fmt.Errorf("%w: %v body is %d bytes, want %d", ErrMalformed, t, len(body), want)
}

// wantMin is the error for a body shorter than its type's fixed part.
func wantMin(t Type, body []byte, want int) error {
	return fmt.Errorf("%w: %v body is %d bytes, want at least %d", ErrMalformed, t, len(body), want)
}

// tail returns body[off:] with its capacity clipped, so that appending to a
// decoded field can never overwrite the bytes that follow it in a read buffer.
func tail(body []byte, off int) []byte { return body[off:len(body):len(body)] }

// Login is the body of LOGIN, the first frame a client sends.
type Login struct {
	Version uint8  // protocol version: Version or VersionTrace; Append writes it as is
	UID     uint64 // the user logging in
	Token   []byte // login token for UID, 1..MaxTokenLen bytes of ASCII
}

// Decode parses a LOGIN body into m. Token aliases body. It fails with
// ErrUnsupportedVersion if the version byte is neither Version nor
// VersionTrace, whatever follows it, and with ErrMalformed if the body is shorter than its fixed part or the
// token is empty or longer than MaxTokenLen. The token's content is not
// checked here; Signer.Verify does that. On error m is unchanged.
func (m *Login) Decode(body []byte) error {
	if len(body) == 0 {
		return wantMin(TypeLogin, body, loginFixed+1)
	}
	if body[0] != Version && body[0] != VersionTrace {
		return fmt.Errorf("%w %d", ErrUnsupportedVersion, body[0])
	}
	if len(body) < loginFixed {
		return wantMin(TypeLogin, body, loginFixed+1)
	}
	if n := len(body) - loginFixed; n < 1 || n > MaxTokenLen {
		return fmt.Errorf("%w: LOGIN token is %d bytes, want 1..%d", ErrMalformed, n, MaxTokenLen)
	}
	*m = Login{Version: body[0], UID: binary.BigEndian.Uint64(body[1:]), Token: tail(body, loginFixed)}
	return nil
}

// Append appends the complete LOGIN frame to dst.
func (m *Login) Append(dst []byte) []byte {
	dst, b := appendFrame(dst, TypeLogin, loginFixed, len(m.Token))
	b[0] = m.Version
	binary.BigEndian.PutUint64(b[1:], m.UID)
	return append(dst, m.Token...)
}

// Size reports the size of the complete LOGIN frame.
func (m *Login) Size() int { return HeaderSize + loginFixed + len(m.Token) }

// LoginOK is the body of LOGIN_OK, the server's answer to a valid LOGIN.
type LoginOK struct {
	Session       uint64 // server-assigned id of this connection, for diagnostics
	Epoch         uint64 // the user's store incarnation: seqs compare only within one
	LastSeq       uint64 // the user's newest seq at login, 0 if none
	Oldest        uint64 // the oldest seq still retained, LastSeq+1 if none is
	HeartbeatMS   uint32 // the client sends PING at this interval
	IdleTimeoutMS uint32 // the server kicks after this long without an inbound frame
	MaxFrame      uint32 // largest length field accepted and sent by the server
	MaxPayload    uint32 // largest SEND payload accepted (at most MaxPayload(MaxFrame))
}

// Decode parses a LOGIN_OK body into m; it fails with ErrMalformed unless the
// body is exactly 48 bytes. On error m is unchanged.
func (m *LoginOK) Decode(body []byte) error {
	if len(body) != loginOKSize {
		return wantSize(TypeLoginOK, body, loginOKSize)
	}
	*m = LoginOK{
		Session:       binary.BigEndian.Uint64(body[0:]),
		Epoch:         binary.BigEndian.Uint64(body[8:]),
		LastSeq:       binary.BigEndian.Uint64(body[16:]),
		Oldest:        binary.BigEndian.Uint64(body[24:]),
		HeartbeatMS:   binary.BigEndian.Uint32(body[32:]),
		IdleTimeoutMS: binary.BigEndian.Uint32(body[36:]),
		MaxFrame:      binary.BigEndian.Uint32(body[40:]),
		MaxPayload:    binary.BigEndian.Uint32(body[44:]),
	}
	return nil
}

// Append appends the complete LOGIN_OK frame to dst.
func (m *LoginOK) Append(dst []byte) []byte {
	dst, b := appendFrame(dst, TypeLoginOK, loginOKSize, 0)
	binary.BigEndian.PutUint64(b[0:], m.Session)
	binary.BigEndian.PutUint64(b[8:], m.Epoch)
	binary.BigEndian.PutUint64(b[16:], m.LastSeq)
	binary.BigEndian.PutUint64(b[24:], m.Oldest)
	binary.BigEndian.PutUint32(b[32:], m.HeartbeatMS)
	binary.BigEndian.PutUint32(b[36:], m.IdleTimeoutMS)
	binary.BigEndian.PutUint32(b[40:], m.MaxFrame)
	binary.BigEndian.PutUint32(b[44:], m.MaxPayload)
	return dst
}

// Size reports the size of the complete LOGIN_OK frame.
func (m *LoginOK) Size() int { return HeaderSize + loginOKSize }

// Error is the body of ERROR, a non-fatal failure of one request.
type Error struct {
	Code    Code   // a request error code (40–59)
	Ref     uint64 // client_msg_id of the request it refers to, 0 if none
	Message []byte // optional UTF-8 description for humans
}

// Decode parses an ERROR body into m. Message aliases body. It fails with
// ErrMalformed if the body is shorter than 10 bytes. On error m is unchanged.
func (m *Error) Decode(body []byte) error {
	if len(body) < errorFixed {
		return wantMin(TypeError, body, errorFixed)
	}
	*m = Error{Code: Code(binary.BigEndian.Uint16(body)), Ref: binary.BigEndian.Uint64(body[2:]), Message: tail(body, errorFixed)}
	return nil
}

// Append appends the complete ERROR frame to dst.
func (m *Error) Append(dst []byte) []byte { return appendError(dst, m.Code, m.Ref, m.Message) }

// Size reports the size of the complete ERROR frame.
func (m *Error) Size() int { return HeaderSize + errorFixed + len(m.Message) }

// AppendError appends a complete ERROR frame to dst without building an
// Error first.
func AppendError(dst []byte, c Code, ref uint64, msg string) []byte {
	return appendError(dst, c, ref, msg)
}

func appendError[S string | []byte](dst []byte, c Code, ref uint64, msg S) []byte {
	dst, b := appendFrame(dst, TypeError, errorFixed, len(msg))
	binary.BigEndian.PutUint16(b, uint16(c))
	binary.BigEndian.PutUint64(b[2:], ref)
	return append(dst, msg...)
}

// Ping is the body of PING, the client's heartbeat.
type Ping struct {
	TS int64 // opaque to the server, echoed in PONG
}

// Decode parses a PING body into m; it fails with ErrMalformed unless the
// body is exactly 8 bytes. On error m is unchanged.
func (m *Ping) Decode(body []byte) error {
	if len(body) != pingSize {
		return wantSize(TypePing, body, pingSize)
	}
	m.TS = int64(binary.BigEndian.Uint64(body))
	return nil
}

// Append appends the complete PING frame to dst.
func (m *Ping) Append(dst []byte) []byte {
	dst, b := appendFrame(dst, TypePing, pingSize, 0)
	binary.BigEndian.PutUint64(b, uint64(m.TS))
	return dst
}

// Size reports the size of the complete PING frame.
func (m *Ping) Size() int { return HeaderSize + pingSize }

// Pong is the body of PONG, the server's answer to PING.
type Pong struct {
	TS int64 // the TS of the PING being answered
}

// Decode parses a PONG body into m; it fails with ErrMalformed unless the
// body is exactly 8 bytes. On error m is unchanged.
func (m *Pong) Decode(body []byte) error {
	if len(body) != pingSize {
		return wantSize(TypePong, body, pingSize)
	}
	m.TS = int64(binary.BigEndian.Uint64(body))
	return nil
}

// Append appends the complete PONG frame to dst.
func (m *Pong) Append(dst []byte) []byte {
	dst, b := appendFrame(dst, TypePong, pingSize, 0)
	binary.BigEndian.PutUint64(b, uint64(m.TS))
	return dst
}

// Size reports the size of the complete PONG frame.
func (m *Pong) Size() int { return HeaderSize + pingSize }

// Send is the body of SEND, a message from the client to another user.
type Send struct {
	ClientMsgID uint64 // chosen by the client, echoed in SEND_ACK or ERROR
	To          uint64 // recipient uid
	ClientTS    int64  // sender's timestamp, opaque to the server, copied into PUSH
	Payload     []byte // message content, opaque to the server
}

// Decode parses a SEND body into m. Payload aliases body. It fails with
// ErrMalformed if the body is shorter than 24 bytes. On error m is unchanged.
func (m *Send) Decode(body []byte) error { return m.decode(TypeSend, body) }

// decode parses the body of SEND or SEND_TRACED (type t, for errors), which
// share one layout.
func (m *Send) decode(t Type, body []byte) error {
	if len(body) < sendFixed {
		return wantMin(t, body, sendFixed)
	}
	*m = Send{
		ClientMsgID: binary.BigEndian.Uint64(body[0:]),
		To:          binary.BigEndian.Uint64(body[8:]),
		ClientTS:    int64(binary.BigEndian.Uint64(body[16:])),
		Payload:     tail(body, sendFixed),
	}
	return nil
}

// Append appends the complete SEND frame to dst.
func (m *Send) Append(dst []byte) []byte { return m.append(dst, TypeSend) }

// append appends m as a complete frame of type t: SEND or SEND_TRACED.
func (m *Send) append(dst []byte, t Type) []byte {
	dst, b := appendFrame(dst, t, sendFixed, len(m.Payload))
	binary.BigEndian.PutUint64(b[0:], m.ClientMsgID)
	binary.BigEndian.PutUint64(b[8:], m.To)
	binary.BigEndian.PutUint64(b[16:], uint64(m.ClientTS))
	return append(dst, m.Payload...)
}

// Size reports the size of the complete SEND frame.
func (m *Send) Size() int { return HeaderSize + sendFixed + len(m.Payload) }

// SendTraced is the body of SEND_TRACED (version 3): a SEND, with SEND's
// layout, whose message the server traces. It is answered like SEND, and its
// recipient gets it as PUSH_TRACED if it logged in with VersionTrace.
// Convert with SendTraced(s) and Send(t).
type SendTraced Send

// Decode parses a SEND_TRACED body into m, as Send.Decode does.
func (m *SendTraced) Decode(body []byte) error { return (*Send)(m).decode(TypeSendTraced, body) }

// Append appends the complete SEND_TRACED frame to dst.
func (m *SendTraced) Append(dst []byte) []byte { return (*Send)(m).append(dst, TypeSendTraced) }

// Size reports the size of the complete SEND_TRACED frame.
func (m *SendTraced) Size() int { return (*Send)(m).Size() }

// SendAck is the body of SEND_ACK: the message of one SEND is stored.
type SendAck struct {
	ClientMsgID uint64 // the SEND's client_msg_id
	MsgID       uint64 // server-assigned message id, also carried by the PUSH
}

// Decode parses a SEND_ACK body into m; it fails with ErrMalformed unless the
// body is exactly 16 bytes. On error m is unchanged.
func (m *SendAck) Decode(body []byte) error {
	if len(body) != sendAckSize {
		return wantSize(TypeSendAck, body, sendAckSize)
	}
	*m = SendAck{ClientMsgID: binary.BigEndian.Uint64(body[0:]), MsgID: binary.BigEndian.Uint64(body[8:])}
	return nil
}

// Append appends the complete SEND_ACK frame to dst.
func (m *SendAck) Append(dst []byte) []byte {
	dst, b := appendFrame(dst, TypeSendAck, sendAckSize, 0)
	binary.BigEndian.PutUint64(b[0:], m.ClientMsgID)
	binary.BigEndian.PutUint64(b[8:], m.MsgID)
	return dst
}

// Size reports the size of the complete SEND_ACK frame.
func (m *SendAck) Size() int { return HeaderSize + sendAckSize }

// Push is the body of PUSH, a message delivered to its recipient, live or
// replayed by SYNC.
type Push struct {
	Seq      uint64 // recipient's sequence number: 1, 2, 3, … without holes
	Epoch    uint64 // the store incarnation Seq belongs to
	MsgID    uint64 // server-assigned message id (as in the sender's SEND_ACK)
	From     uint64 // sender uid
	ClientTS int64  // the sender's ClientTS
	Payload  []byte // the sender's payload
}

// Decode parses a PUSH body into m. Payload aliases body. It fails with
// ErrMalformed if the body is shorter than 40 bytes. On error m is unchanged.
func (m *Push) Decode(body []byte) error {
	if len(body) < pushFixed {
		return wantMin(TypePush, body, pushFixed)
	}
	m.decodeFixed(body, pushFixed)
	return nil
}

// decodeFixed fills m from PUSH's fixed part at the start of body, and its
// payload from body[payloadAt:].
func (m *Push) decodeFixed(body []byte, payloadAt int) {
	*m = Push{
		Seq:      binary.BigEndian.Uint64(body[0:]),
		Epoch:    binary.BigEndian.Uint64(body[8:]),
		MsgID:    binary.BigEndian.Uint64(body[16:]),
		From:     binary.BigEndian.Uint64(body[24:]),
		ClientTS: int64(binary.BigEndian.Uint64(body[32:])),
		Payload:  tail(body, payloadAt),
	}
}

// Append appends the complete PUSH frame to dst.
func (m *Push) Append(dst []byte) []byte {
	dst, b := appendFrame(dst, TypePush, pushFixed, len(m.Payload))
	m.putFixed(b)
	return append(dst, m.Payload...)
}

// putFixed writes PUSH's fixed part to b.
func (m *Push) putFixed(b []byte) {
	binary.BigEndian.PutUint64(b[0:], m.Seq)
	binary.BigEndian.PutUint64(b[8:], m.Epoch)
	binary.BigEndian.PutUint64(b[16:], m.MsgID)
	binary.BigEndian.PutUint64(b[24:], m.From)
	binary.BigEndian.PutUint64(b[32:], uint64(m.ClientTS))
}

// Size reports the size of the complete PUSH frame.
func (m *Push) Size() int { return HeaderSize + pushFixed + len(m.Payload) }

// Trace is the trace block of PUSH_TRACED: the server's clock, in Unix
// nanoseconds, when the message passed four points on its way; 0 for a point
// it did not pass (a message replayed by SYNC was not routed). Stamps taken on
// different hosts compare only as well as their clocks are synchronised.
type Trace struct {
	GatewayIn  int64 // the sender's gateway decoded the SEND_TRACED
	Stored     int64 // the message store accepted the message
	Routed     int64 // the router handed the push to the recipient's gateway link
	GatewayOut int64 // the recipient's gateway encoded the PUSH_TRACED
}

// Complete reports whether every point of t was passed (no stamp is 0).
func (t *Trace) Complete() bool {
	return t.GatewayIn != 0 && t.Stored != 0 && t.Routed != 0 && t.GatewayOut != 0
}

// PushTraced is the body of PUSH_TRACED (version 3): a PUSH of a traced
// message, sent instead of PUSH to a client that logged in with VersionTrace.
// Its layout is PUSH's fixed part, then the 32-byte trace block, then the
// payload; seq, acknowledgement and replay are PUSH's.
type PushTraced struct {
	Push
	Trace Trace
}

// Decode parses a PUSH_TRACED body into m. Payload aliases body. It fails with
// ErrMalformed if the body is shorter than 72 bytes. On error m is unchanged.
func (m *PushTraced) Decode(body []byte) error {
	if len(body) < pushFixed+traceSize {
		return wantMin(TypePushTraced, body, pushFixed+traceSize)
	}
	m.Push.decodeFixed(body, pushFixed+traceSize)
	t := body[pushFixed:]
	m.Trace = Trace{
		GatewayIn:  int64(binary.BigEndian.Uint64(t[0:])),
		Stored:     int64(binary.BigEndian.Uint64(t[8:])),
		Routed:     int64(binary.BigEndian.Uint64(t[16:])),
		GatewayOut: int64(binary.BigEndian.Uint64(t[24:])),
	}
	return nil
}

// Append appends the complete PUSH_TRACED frame to dst.
func (m *PushTraced) Append(dst []byte) []byte {
	dst, b := appendFrame(dst, TypePushTraced, pushFixed+traceSize, len(m.Payload))
	m.Push.putFixed(b)
	t := b[pushFixed:]
	binary.BigEndian.PutUint64(t[0:], uint64(m.Trace.GatewayIn))
	binary.BigEndian.PutUint64(t[8:], uint64(m.Trace.Stored))
	binary.BigEndian.PutUint64(t[16:], uint64(m.Trace.Routed))
	binary.BigEndian.PutUint64(t[24:], uint64(m.Trace.GatewayOut))
	return append(dst, m.Payload...)
}

// Size reports the size of the complete PUSH_TRACED frame: 32 bytes more than
// the PUSH of the same message, so the PUSH_TRACED of a payload near
// MaxPayload may not fit in the maximum frame (a server sends a plain PUSH
// then).
func (m *PushTraced) Size() int { return HeaderSize + pushFixed + traceSize + len(m.Payload) }

// PushAck is the body of PUSH_ACK, the client's cumulative acknowledgement.
type PushAck struct {
	Seq   uint64 // the client holds every seq <= Seq
	Epoch uint64 // of this incarnation; the server ignores an ack of another
}

// Decode parses a PUSH_ACK body into m; it fails with ErrMalformed unless the
// body is exactly 16 bytes. On error m is unchanged.
func (m *PushAck) Decode(body []byte) error {
	if len(body) != pushAckSize {
		return wantSize(TypePushAck, body, pushAckSize)
	}
	*m = PushAck{Seq: binary.BigEndian.Uint64(body), Epoch: binary.BigEndian.Uint64(body[8:])}
	return nil
}

// Append appends the complete PUSH_ACK frame to dst.
func (m *PushAck) Append(dst []byte) []byte {
	dst, b := appendFrame(dst, TypePushAck, pushAckSize, 0)
	binary.BigEndian.PutUint64(b, m.Seq)
	binary.BigEndian.PutUint64(b[8:], m.Epoch)
	return dst
}

// Size reports the size of the complete PUSH_ACK frame.
func (m *PushAck) Size() int { return HeaderSize + pushAckSize }

// Sync is the body of SYNC, the client's request to replay stored messages.
type Sync struct {
	AfterSeq uint64 // replay seqs > AfterSeq, in order
	Epoch    uint64 // the incarnation AfterSeq belongs to; 0 or another than the store's: replay from the start
	Limit    uint32 // at most this many; 0 means the server's default
}

// Decode parses a SYNC body into m; it fails with ErrMalformed unless the
// body is exactly 20 bytes. On error m is unchanged.
func (m *Sync) Decode(body []byte) error {
	if len(body) != syncSize {
		return wantSize(TypeSync, body, syncSize)
	}
	*m = Sync{AfterSeq: binary.BigEndian.Uint64(body), Epoch: binary.BigEndian.Uint64(body[8:]), Limit: binary.BigEndian.Uint32(body[16:])}
	return nil
}

// Append appends the complete SYNC frame to dst.
func (m *Sync) Append(dst []byte) []byte {
	dst, b := appendFrame(dst, TypeSync, syncSize, 0)
	binary.BigEndian.PutUint64(b, m.AfterSeq)
	binary.BigEndian.PutUint64(b[8:], m.Epoch)
	binary.BigEndian.PutUint32(b[16:], m.Limit)
	return dst
}

// Size reports the size of the complete SYNC frame.
func (m *Sync) Size() int { return HeaderSize + syncSize }

// SyncEnd is the body of SYNC_END, which closes the replay of one SYNC (or,
// unprompted, tells the client its inbox window).
type SyncEnd struct {
	UpTo   uint64 // last seq replayed by this SYNC, or its AfterSeq if none was (0 when unprompted)
	Head   uint64 // the user's newest seq
	Oldest uint64 // oldest seq still retained, Head+1 if none is; seqs in (AfterSeq, Oldest) are lost
	Epoch  uint64 // the incarnation the three seqs belong to
}

// Decode parses a SYNC_END body into m; it fails with ErrMalformed unless the
// body is exactly 32 bytes. On error m is unchanged.
func (m *SyncEnd) Decode(body []byte) error {
	if len(body) != syncEndSize {
		return wantSize(TypeSyncEnd, body, syncEndSize)
	}
	*m = SyncEnd{UpTo: binary.BigEndian.Uint64(body[0:]), Head: binary.BigEndian.Uint64(body[8:]),
		Oldest: binary.BigEndian.Uint64(body[16:]), Epoch: binary.BigEndian.Uint64(body[24:])}
	return nil
}

// Append appends the complete SYNC_END frame to dst.
func (m *SyncEnd) Append(dst []byte) []byte {
	dst, b := appendFrame(dst, TypeSyncEnd, syncEndSize, 0)
	binary.BigEndian.PutUint64(b[0:], m.UpTo)
	binary.BigEndian.PutUint64(b[8:], m.Head)
	binary.BigEndian.PutUint64(b[16:], m.Oldest)
	binary.BigEndian.PutUint64(b[24:], m.Epoch)
	return dst
}

// Size reports the size of the complete SYNC_END frame.
func (m *SyncEnd) Size() int { return HeaderSize + syncEndSize }

// Kick is the body of KICK, always the last frame before the server closes
// the connection.
type Kick struct {
	Reason       Reason // broad cause
	Code         Code   // specific cause
	RetryAfterMS uint32 // wait at least this long before reconnecting; 0 = no hint
	Message      []byte // optional UTF-8 description for humans
}

// Decode parses a KICK body into m. Message aliases body. It fails with
// ErrMalformed if the body is shorter than 7 bytes. On error m is unchanged.
func (m *Kick) Decode(body []byte) error {
	if len(body) < kickFixed {
		return wantMin(TypeKick, body, kickFixed)
	}
	*m = Kick{
		Reason:       Reason(body[0]),
		Code:         Code(binary.BigEndian.Uint16(body[1:])),
		RetryAfterMS: binary.BigEndian.Uint32(body[3:]),
		Message:      tail(body, kickFixed),
	}
	return nil
}

// Append appends the complete KICK frame to dst.
func (m *Kick) Append(dst []byte) []byte {
	return appendKick(dst, m.Reason, m.Code, m.RetryAfterMS, m.Message)
}

// Size reports the size of the complete KICK frame.
func (m *Kick) Size() int { return HeaderSize + kickFixed + len(m.Message) }

// AppendKick appends a complete KICK frame to dst without building a Kick
// first. Use c.KickReason() for r when c is a fatal code.
func AppendKick(dst []byte, r Reason, c Code, retryAfterMS uint32, msg string) []byte {
	return appendKick(dst, r, c, retryAfterMS, msg)
}

func appendKick[S string | []byte](dst []byte, r Reason, c Code, retryAfterMS uint32, msg S) []byte {
	dst, b := appendFrame(dst, TypeKick, kickFixed, len(msg))
	b[0] = byte(r)
	binary.BigEndian.PutUint16(b[1:], uint16(c))
	binary.BigEndian.PutUint32(b[3:], retryAfterMS)
	return append(dst, msg...)
}
