package proto

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// roundTrip is a message and, where known, its exact encoding written out
// field by field from the spec.
type roundTrip struct {
	name string
	typ  Type
	msg  message
	wire string
}

// roundTrips returns one or more messages of every type.
func roundTrips() []roundTrip {
	return []roundTrip{
		{"login", TypeLogin, &Login{Version: 2, UID: 0x0102030405060708, Token: []byte("abc")},
			"0000000d 01 | 02 | 0102030405060708 | 616263"},
		{"login/max-token", TypeLogin, &Login{Version: 2, UID: 1, Token: bytes.Repeat([]byte{'t'}, MaxTokenLen)}, ""},
		{"login-ok", TypeLoginOK, &LoginOK{Session: 1, Epoch: 2, LastSeq: 3, Oldest: 4, HeartbeatMS: 25000, IdleTimeoutMS: 75000, MaxFrame: 65536, MaxPayload: 65495},
			"00000031 02 | 0000000000000001 | 0000000000000002 | 0000000000000003 | 0000000000000004 | 000061a8 | 000124f8 | 00010000 | 0000ffd7"},
		{"error", TypeError, &Error{Code: CodeRateLimited, Ref: 0xff, Message: []byte("slow down")},
			"00000014 03 | 002b | 00000000000000ff | 736c6f7720646f776e"},
		{"error/empty", TypeError, &Error{Code: CodeUnavailable, Message: []byte{}},
			"0000000b 03 | 002a | 0000000000000000"},
		{"ping", TypePing, &Ping{TS: -1},
			"00000009 04 | ffffffffffffffff"},
		{"pong", TypePong, &Pong{TS: 0x0102030405060708},
			"00000009 05 | 0102030405060708"},
		{"send", TypeSend, &Send{ClientMsgID: 1, To: 7, ClientTS: -2, Payload: []byte("hi")},
			"0000001b 06 | 0000000000000001 | 0000000000000007 | fffffffffffffffe | 6869"},
		{"send/empty", TypeSend, &Send{ClientMsgID: 2, To: 3, Payload: []byte{}},
			"00000019 06 | 0000000000000002 | 0000000000000003 | 0000000000000000"},
		{"send-ack", TypeSendAck, &SendAck{ClientMsgID: 1, MsgID: 0x1122334455667788},
			"00000011 07 | 0000000000000001 | 1122334455667788"},
		{"push", TypePush, &Push{Seq: 5, Epoch: 6, MsgID: 9, From: 42, ClientTS: 1, Payload: []byte("hi")},
			"0000002b 08 | 0000000000000005 | 0000000000000006 | 0000000000000009 | 000000000000002a | 0000000000000001 | 6869"},
		{"push/large", TypePush, &Push{Seq: 1 << 63, Epoch: 1<<64 - 1, MsgID: 1, From: 2, ClientTS: -1 << 63, Payload: bytes.Repeat([]byte{0xAB}, MaxPayload(DefaultMaxFrame))}, ""},
		{"push-ack", TypePushAck, &PushAck{Seq: 0xfffffffffffffffe, Epoch: 3},
			"00000011 09 | fffffffffffffffe | 0000000000000003"},
		{"sync", TypeSync, &Sync{AfterSeq: 10, Epoch: 7, Limit: 500},
			"00000015 0a | 000000000000000a | 0000000000000007 | 000001f4"},
		{"sync-end", TypeSyncEnd, &SyncEnd{UpTo: 20, Head: 30, Oldest: 3, Epoch: 8},
			"00000021 0b | 0000000000000014 | 000000000000001e | 0000000000000003 | 0000000000000008"},
		{"login/version-3", TypeLogin, &Login{Version: VersionTrace, UID: 9, Token: []byte("t")},
			"0000000b 01 | 03 | 0000000000000009 | 74"},
		{"send-traced", TypeSendTraced, &SendTraced{ClientMsgID: 1, To: 7, ClientTS: -2, Payload: []byte("hi")},
			"0000001b 0d | 0000000000000001 | 0000000000000007 | fffffffffffffffe | 6869"},
		{"send-traced/empty", TypeSendTraced, &SendTraced{ClientMsgID: 2, To: 3, Payload: []byte{}},
			"00000019 0d | 0000000000000002 | 0000000000000003 | 0000000000000000"},
		{"push-traced", TypePushTraced, &PushTraced{
			Push:  Push{Seq: 5, Epoch: 6, MsgID: 9, From: 42, ClientTS: 1, Payload: []byte("hi")},
			Trace: Trace{GatewayIn: 0x11, Stored: 0x22, Routed: 0x33, GatewayOut: 0x44}},
			"0000004b 0e | 0000000000000005 | 0000000000000006 | 0000000000000009 | 000000000000002a | 0000000000000001 | " +
				"0000000000000011 | 0000000000000022 | 0000000000000033 | 0000000000000044 | 6869"},
		{"push-traced/replayed", TypePushTraced, &PushTraced{
			Push:  Push{Seq: 1, Epoch: 2, MsgID: 3, From: 4, Payload: []byte{}},
			Trace: Trace{GatewayIn: -1, Stored: 1 << 62, GatewayOut: 7}},
			"00000049 0e | 0000000000000001 | 0000000000000002 | 0000000000000003 | 0000000000000004 | 0000000000000000 | " +
				"ffffffffffffffff | 4000000000000000 | 0000000000000000 | 0000000000000007"},
		{"kick", TypeKick, &Kick{Reason: ReasonSlow, Code: CodeSlowConsumer, RetryAfterMS: 1000, Message: []byte("bye")},
			"0000000b 0c | 01 | 003c | 000003e8 | 627965"},
		{"kick/unknown-enums", TypeKick, &Kick{Reason: 200, Code: 9999, Message: []byte{}},
			"00000008 0c | c8 | 270f | 00000000"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTrips() {
		t.Run(tc.name, func(t *testing.T) {
			frame := tc.msg.Append(nil)
			if tc.wire != "" {
				if want := unhex(t, tc.wire); !bytes.Equal(frame, want) {
					t.Fatalf("Append = % x\nwant     % x", frame, want)
				}
			}
			if got := tc.msg.Size(); got != len(frame) {
				t.Errorf("Size() = %d, Append wrote %d bytes", got, len(frame))
			}
			prefixed := tc.msg.Append([]byte("prefix"))
			if !bytes.HasPrefix(prefixed, []byte("prefix")) || !bytes.Equal(prefixed[6:], frame) {
				t.Errorf("Append to a non-empty dst did not preserve the prefix or changed the frame")
			}

			n, err := Split(frame, DefaultMaxFrame)
			if n != len(frame) || err != nil {
				t.Fatalf("Split = %d, %v; want %d, nil", n, err, len(frame))
			}
			f, err := ParseFrame(frame)
			if err != nil || f.Type != tc.typ {
				t.Fatalf("ParseFrame = %v, %v; want type %v", f.Type, err, tc.typ)
			}
			got := newMessage(f.Type)
			if err := got.Decode(f.Body); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Errorf("Decode = %+v\nwant     %+v", got, tc.msg)
			}
		})
	}
}

// TestDecodeAliases checks that variable fields alias the body without copying
// and that their capacity is clipped, so appending to them cannot clobber the
// bytes that follow in the read buffer.
func TestDecodeAliases(t *testing.T) {
	tests := []struct {
		name  string
		msg   message
		field func(message) []byte
		off   int
	}{
		{"login", &Login{Version: Version, Token: []byte("tok")}, func(m message) []byte { return m.(*Login).Token }, loginFixed},
		{"error", &Error{Message: []byte("msg")}, func(m message) []byte { return m.(*Error).Message }, errorFixed},
		{"send", &Send{Payload: []byte("pay")}, func(m message) []byte { return m.(*Send).Payload }, sendFixed},
		{"push", &Push{Payload: []byte("pay")}, func(m message) []byte { return m.(*Push).Payload }, pushFixed},
		{"send-traced", &SendTraced{Payload: []byte("pay")}, func(m message) []byte { return m.(*SendTraced).Payload }, sendFixed},
		{"push-traced", &PushTraced{Push: Push{Payload: []byte("pay")}}, func(m message) []byte { return m.(*PushTraced).Payload }, pushFixed + traceSize},
		{"kick", &Kick{Message: []byte("msg")}, func(m message) []byte { return m.(*Kick).Message }, kickFixed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf := tc.msg.Append(nil)
			buf = append(buf, "NEXT"...) // the following frame in a read buffer
			f, err := ParseFrame(buf[:len(buf)-4])
			if err != nil {
				t.Fatal(err)
			}
			m := newMessage(f.Type)
			if err := m.Decode(f.Body); err != nil {
				t.Fatal(err)
			}
			field := tc.field(m)
			if &field[0] != &f.Body[tc.off] {
				t.Errorf("field does not alias the body")
			}
			if cap(field) != len(field) {
				t.Errorf("cap(field) = %d, want %d", cap(field), len(field))
			}
			_ = append(field, 'X')
			if !bytes.HasSuffix(buf, []byte("NEXT")) {
				t.Errorf("appending to the decoded field overwrote the next frame")
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	fixed := []struct {
		typ  Type
		size int
	}{
		{TypeLoginOK, 48}, {TypePing, 8}, {TypePong, 8}, {TypeSendAck, 16},
		{TypePushAck, 16}, {TypeSync, 20}, {TypeSyncEnd, 32},
	}
	prefixed := []struct {
		typ   Type
		fixed int
	}{
		{TypeError, 10}, {TypeSend, 24}, {TypePush, 40}, {TypeKick, 7},
		{TypeSendTraced, 24}, {TypePushTraced, 72},
	}
	login := func(version byte, tokenLen int) []byte {
		b := append([]byte{version}, make([]byte, 8)...)
		return append(b, bytes.Repeat([]byte{'a'}, tokenLen)...)
	}
	type badBody struct {
		name string
		typ  Type
		body []byte
		want error
	}
	tests := []badBody{
		{"login/empty", TypeLogin, nil, ErrMalformed},
		{"login/short", TypeLogin, []byte{Version, 0, 0, 0}, ErrMalformed},
		{"login/empty-token", TypeLogin, login(Version, 0), ErrMalformed},
		{"login/long-token", TypeLogin, login(Version, MaxTokenLen+1), ErrMalformed},
		{"login/version-0", TypeLogin, login(0, 3), ErrUnsupportedVersion},
		{"login/version-1", TypeLogin, login(1, 3), ErrUnsupportedVersion}, // version 1 had no epochs on the wire
		{"login/version-4", TypeLogin, login(4, 3), ErrUnsupportedVersion},
		{"login/version-4-short", TypeLogin, []byte{4}, ErrUnsupportedVersion},
		{"login/version-3-short", TypeLogin, []byte{VersionTrace}, ErrMalformed},
	}
	for _, f := range fixed {
		tests = append(tests,
			badBody{f.typ.String() + "/empty", f.typ, nil, ErrMalformed},
			badBody{f.typ.String() + "/short", f.typ, make([]byte, f.size-1), ErrMalformed},
			badBody{f.typ.String() + "/long", f.typ, make([]byte, f.size+1), ErrMalformed},
		)
	}
	for _, p := range prefixed {
		tests = append(tests,
			badBody{p.typ.String() + "/empty", p.typ, nil, ErrMalformed},
			badBody{p.typ.String() + "/short", p.typ, make([]byte, p.fixed-1), ErrMalformed},
		)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMessage(tc.typ)
			err := m.Decode(tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, want %v", err, tc.want)
			}
			if CodeOf(err) != tc.want.(*CodeError).Code {
				t.Errorf("CodeOf(%v) = %v", err, CodeOf(err))
			}
			if !strings.Contains(err.Error(), tc.typ.String()) && tc.want == ErrMalformed {
				t.Errorf("error %q does not name the frame type", err)
			}
			if !reflect.DeepEqual(m, newMessage(tc.typ)) {
				t.Errorf("failed Decode modified the message: %+v", m)
			}
		})
	}
}

func TestAppendKickAndError(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want message
	}{
		{"kick", AppendKick(nil, ReasonProtocol, CodeMalformed, 0, "bad SEND"),
			&Kick{Reason: ReasonProtocol, Code: CodeMalformed, Message: []byte("bad SEND")}},
		{"kick/retry", AppendKick(nil, ReasonDrain, CodeDraining, 5000, ""),
			&Kick{Reason: ReasonDrain, Code: CodeDraining, RetryAfterMS: 5000, Message: []byte{}}},
		{"error", AppendError(nil, CodeBadRecipient, 77, "no such user"),
			&Error{Code: CodeBadRecipient, Ref: 77, Message: []byte("no such user")}},
		{"error/empty", AppendError(nil, CodeRateLimited, 0, ""),
			&Error{Code: CodeRateLimited, Message: []byte{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if want := tc.want.Append(nil); !bytes.Equal(tc.got, want) {
				t.Errorf("got  % x\nwant % x", tc.got, want)
			}
		})
	}
}

func TestMaxPayload(t *testing.T) {
	tests := []struct{ maxFrame, want int }{
		{DefaultMaxFrame, DefaultMaxFrame - 41},
		{0, DefaultMaxFrame - 41},
		{-1, DefaultMaxFrame - 41},
		{MinMaxFrame, MinMaxFrame - 41},
		{41, 0},
		{10, 0},
	}
	for _, tc := range tests {
		if got := MaxPayload(tc.maxFrame); got != tc.want {
			t.Errorf("MaxPayload(%d) = %d, want %d", tc.maxFrame, got, tc.want)
		}
	}
	// The largest PUSH fits, and so does the SEND it came from.
	p := Push{Payload: make([]byte, MaxPayload(DefaultMaxFrame))}
	if got := p.Size() - 4; got != DefaultMaxFrame {
		t.Errorf("largest PUSH has length %d, want %d", got, DefaultMaxFrame)
	}
	s := Send{Payload: p.Payload}
	if n, err := Split(s.Append(nil), DefaultMaxFrame); err != nil || n != s.Size() {
		t.Errorf("largest SEND: Split = %d, %v", n, err)
	}
	// A LOGIN with the longest token fits in the smallest allowed max frame.
	l := Login{Version: Version, Token: make([]byte, MaxTokenLen)}
	if got := l.Size() - 4; got > MinMaxFrame {
		t.Errorf("largest LOGIN has length %d > MinMaxFrame", got)
	}
}
