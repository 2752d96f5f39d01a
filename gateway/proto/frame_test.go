package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

func TestSplit(t *testing.T) {
	ping := (&Ping{TS: 1}).Append(nil)
	tests := []struct {
		name     string
		in       []byte
		maxFrame int
		want     int
		err      error
	}{
		{"empty", nil, DefaultMaxFrame, 0, nil},
		{"1 byte", []byte{0}, DefaultMaxFrame, 0, nil},
		{"3 bytes", []byte{0, 0, 0}, DefaultMaxFrame, 0, nil},
		{"header only", ping[:4], DefaultMaxFrame, 0, nil},
		{"header and type", ping[:5], DefaultMaxFrame, 0, nil},
		{"one byte short", ping[:len(ping)-1], DefaultMaxFrame, 0, nil},
		{"complete", ping, DefaultMaxFrame, len(ping), nil},
		{"complete with more", append(ping[:len(ping):len(ping)], 0, 0, 0, 9, 4), DefaultMaxFrame, len(ping), nil},
		{"length 1", []byte{0, 0, 0, 1, 4}, DefaultMaxFrame, 5, nil},
		{"zero length", []byte{0, 0, 0, 0}, DefaultMaxFrame, 0, ErrZeroLength},
		{"zero length with more", []byte{0, 0, 0, 0, 4, 4, 4}, DefaultMaxFrame, 0, ErrZeroLength},
		{"length = max", binary.BigEndian.AppendUint32(nil, DefaultMaxFrame), DefaultMaxFrame, 0, nil},
		{"length = max+1, prefix only", binary.BigEndian.AppendUint32(nil, DefaultMaxFrame+1), DefaultMaxFrame, 0, ErrFrameTooLarge},
		{"length = 2^32-1, prefix only", []byte{0xff, 0xff, 0xff, 0xff}, DefaultMaxFrame, 0, ErrFrameTooLarge},
		{"small max", ping, 8, 0, ErrFrameTooLarge},
		{"exact small max", ping, 9, len(ping), nil},
		{"max 0 means default", binary.BigEndian.AppendUint32(nil, DefaultMaxFrame+1), 0, 0, ErrFrameTooLarge},
		{"max -1 means default", ping, -1, len(ping), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Split(tc.in, tc.maxFrame)
			if n != tc.want || err != tc.err { // Split returns bare sentinels
				t.Errorf("Split(% x, %d) = %d, %v; want %d, %v", tc.in, tc.maxFrame, n, err, tc.want, tc.err)
			}
		})
	}
}

// testStream returns several frames of different types and sizes,
// concatenated, and the frames themselves.
func testStream() ([]byte, [][]byte) {
	msgs := []message{
		&Login{Version: Version, UID: 42, Token: []byte("42.1767225600.tok")},
		&Ping{TS: 7},
		&Send{ClientMsgID: 1, To: 7, Payload: bytes.Repeat([]byte("x"), 300)},
		&Sync{AfterSeq: 9},
		&PushAck{Seq: 3},
		&Send{ClientMsgID: 2, To: 8, Payload: []byte{}},
	}
	var stream []byte
	var frames [][]byte
	for _, m := range msgs {
		frames = append(frames, m.Append(nil))
		stream = m.Append(stream)
	}
	return stream, frames
}

// TestSplitEveryBoundary checks that every strict prefix of a frame yields 0
// and that a reader fed the stream in chunks of any size recovers exactly the
// frames that were written.
func TestSplitEveryBoundary(t *testing.T) {
	stream, frames := testStream()
	for i := 0; i <= len(stream); i++ {
		n, err := Split(stream[:i], DefaultMaxFrame)
		want := 0
		if i >= len(frames[0]) {
			want = len(frames[0])
		}
		if n != want || err != nil {
			t.Fatalf("Split(stream[:%d]) = %d, %v; want %d, nil", i, n, err, want)
		}
	}
	for chunk := 1; chunk <= len(stream); chunk++ {
		var buf []byte
		var got [][]byte
		for off := 0; off < len(stream); off += chunk {
			buf = append(buf, stream[off:min(off+chunk, len(stream))]...)
			for {
				n, err := Split(buf, DefaultMaxFrame)
				if err != nil {
					t.Fatalf("chunk %d: Split: %v", chunk, err)
				}
				if n == 0 {
					break
				}
				got = append(got, bytes.Clone(buf[:n]))
				buf = buf[n:]
			}
		}
		if len(buf) != 0 || len(got) != len(frames) {
			t.Fatalf("chunk %d: got %d frames and %d leftover bytes, want %d frames", chunk, len(got), len(buf), len(frames))
		}
		for i := range got {
			if !bytes.Equal(got[i], frames[i]) {
				t.Fatalf("chunk %d: frame %d differs", chunk, i)
			}
		}
	}
}

func TestParseFrame(t *testing.T) {
	ping := (&Ping{TS: 1}).Append(nil)
	tests := []struct {
		name string
		in   []byte
		want Frame
		err  error
	}{
		{"ping", ping, Frame{TypePing, ping[5:]}, nil},
		{"empty body", []byte{0, 0, 0, 1, byte(TypeKick)}, Frame{TypeKick, []byte{}}, nil},
		{"empty", nil, Frame{}, ErrTruncated},
		{"3 bytes", []byte{0, 0, 0}, Frame{}, ErrTruncated},
		{"zero length", []byte{0, 0, 0, 0}, Frame{}, ErrZeroLength},
		{"no type", []byte{0, 0, 0, 1}, Frame{}, ErrTruncated},
		{"short body", ping[:len(ping)-1], Frame{}, ErrTruncated},
		{"trailing bytes", append(ping[:len(ping):len(ping)], 0), Frame{}, ErrMalformed},
		{"type 0", frameOf(0, nil), Frame{}, ErrUnknownType},
		{"type 0x0d", frameOf(0x0d, []byte{1}), Frame{TypeSendTraced, []byte{1}}, nil},
		{"type 0x0f", frameOf(0x0f, []byte{1}), Frame{}, ErrUnknownType},
		{"type 0xff", frameOf(0xff, nil), Frame{}, ErrUnknownType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFrame(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("ParseFrame(% x) error = %v, want %v", tc.in, err, tc.err)
			}
			if f.Type != tc.want.Type || !bytes.Equal(f.Body, tc.want.Body) {
				t.Errorf("ParseFrame(% x) = %v % x, want %v % x", tc.in, f.Type, f.Body, tc.want.Type, tc.want.Body)
			}
			if err == nil && cap(f.Body) != len(f.Body) {
				t.Errorf("cap(Body) = %d, want %d", cap(f.Body), len(f.Body))
			}
		})
	}
}

// The version 3 types are defined only on a connection of version 3; every
// other type is defined in both versions or in neither.
func TestTypeKnownInVersion(t *testing.T) {
	tests := []struct {
		typ     Type
		version uint8
		want    bool
	}{
		{TypeSend, Version, true},
		{TypeSend, VersionTrace, true},
		{TypeKick, Version, true},
		{TypeSendTraced, Version, false},
		{TypeSendTraced, VersionTrace, true},
		{TypePushTraced, Version, false},
		{TypePushTraced, VersionTrace, true},
		{TypeMax + 1, VersionTrace, false},
		{0, VersionTrace, false},
		{0xff, VersionTrace, false},
	}
	for _, tc := range tests {
		if got := tc.typ.KnownIn(tc.version); got != tc.want {
			t.Errorf("%v.KnownIn(%d) = %v, want %v", tc.typ, tc.version, got, tc.want)
		}
	}
}

func TestParseFrameUnknownTypeMessage(t *testing.T) {
	_, err := ParseFrame(frameOf(0x42, nil))
	if want := "proto: unknown frame type 0x42"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestType(t *testing.T) {
	tests := []struct {
		typ            Type
		name           string
		clientToServer bool
	}{
		{TypeLogin, "LOGIN", true},
		{TypeLoginOK, "LOGIN_OK", false},
		{TypeError, "ERROR", false},
		{TypePing, "PING", true},
		{TypePong, "PONG", false},
		{TypeSend, "SEND", true},
		{TypeSendAck, "SEND_ACK", false},
		{TypePush, "PUSH", false},
		{TypePushAck, "PUSH_ACK", true},
		{TypeSync, "SYNC", true},
		{TypeSyncEnd, "SYNC_END", false},
		{TypeKick, "KICK", false},
		{TypeSendTraced, "SEND_TRACED", true},
		{TypePushTraced, "PUSH_TRACED", false},
	}
	known := make(map[Type]bool)
	for i, tc := range tests {
		if want := Type(i + 1); tc.typ != want {
			t.Errorf("%s = %#x, want %#x", tc.name, uint8(tc.typ), uint8(want))
		}
		if got := tc.typ.String(); got != tc.name {
			t.Errorf("%#x.String() = %q, want %q", uint8(tc.typ), got, tc.name)
		}
		if got := tc.typ.ClientToServer(); got != tc.clientToServer {
			t.Errorf("%v.ClientToServer() = %v, want %v", tc.typ, got, tc.clientToServer)
		}
		if newMessage(tc.typ) == nil {
			t.Errorf("no message type for %v", tc.typ)
		}
		known[tc.typ] = true
	}
	for i := range 256 {
		typ := Type(i)
		if typ.Known() != known[typ] {
			t.Errorf("%#x.Known() = %v", i, typ.Known())
		}
		if !known[typ] {
			if typ.ClientToServer() {
				t.Errorf("unknown %#x.ClientToServer() = true", i)
			}
			if got, want := typ.String(), fmt.Sprintf("Type(0x%02x)", i); got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
		}
	}
}
