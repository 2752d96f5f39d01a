package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// clientFrame is a frame as a client sends it: masked with key.
type clientFrame struct {
	fin     bool
	op      Opcode
	payload []byte
	key     [4]byte
}

var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d} // RFC 6455 §5.7's masking key

// appendClientFrame is the test's hand-written client encoder: it masks, and uses
// the shortest length form.
func appendClientFrame(dst []byte, f clientFrame) []byte {
	b0 := byte(f.op)
	if f.fin {
		b0 |= bitFIN
	}
	n := len(f.payload)
	switch {
	case n <= 125:
		dst = append(dst, b0, bitMask|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, b0, bitMask|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, bitMask|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, f.key[:]...)
	for i, c := range f.payload {
		dst = append(dst, c^f.key[i&3])
	}
	return dst
}

func masked(op Opcode, payload string) clientFrame {
	return clientFrame{fin: true, op: op, payload: []byte(payload), key: testKey}
}

func fragment(op Opcode, fin bool, payload string) clientFrame {
	return clientFrame{fin: fin, op: op, payload: []byte(payload), key: testKey}
}

func stream(frames ...clientFrame) []byte {
	var b []byte
	for _, f := range frames {
		b = appendClientFrame(b, f)
	}
	return b
}

// frameDecoder is the Decode method Decoder and ClientDecoder share.
type frameDecoder interface {
	Decode(b []byte) (Message, int, error)
}

// decodeAll feeds all of b to d and returns the messages (fragments left out) with
// their payloads copied, stopping at the first error.
func decodeAll(d frameDecoder, b []byte) (msgs []Message, consumed int, err error) {
	for i := 0; i <= len(b); i++ { // each round consumes at least one byte or stops
		m, n, err := d.Decode(b[consumed:])
		if err != nil {
			return msgs, consumed, err
		}
		if n == 0 {
			return msgs, consumed, nil
		}
		consumed += n
		if m.Op != OpContinuation {
			m.Payload = append([]byte(nil), m.Payload...)
			msgs = append(msgs, m)
		}
	}
	return msgs, consumed, nil
}

// decodeInTwo feeds a copy of raw to d in two reads cut at split, as a reactor's
// carry buffer delivers them: decodeAll on the first part, then on its unconsumed
// tail with the rest appended. It returns the messages of both and the bytes
// consumed, stopping at the first error.
func decodeInTwo(d frameDecoder, raw []byte, split int) (msgs []Message, consumed int, err error) {
	buf := append([]byte(nil), raw[:split]...)
	msgs, consumed, err = decodeAll(d, buf)
	if err != nil {
		return msgs, consumed, err
	}
	buf = append(buf[consumed:], raw[split:]...)
	rest, n, err := decodeAll(d, buf)
	return append(msgs, rest...), consumed + n, err
}

// assertSplitDecodesAsWhole asserts that raw, fed to the fresh decoder d in two
// reads cut at split, is consumed as far as decoding it whole went (wantN), fails
// or not as that did (wantErr), and yields the same messages (want). It returns
// the messages.
func assertSplitDecodesAsWhole(t *testing.T, d frameDecoder, raw []byte, split int, want []Message, wantN int, wantErr error) []Message {
	t.Helper()
	got, off, err := decodeInTwo(d, raw, split)
	if (err == nil) != (wantErr == nil) || off != wantN {
		t.Fatalf("split %d: consumed %d err %v; whole: consumed %d err %v", split, off, err, wantN, wantErr)
	}
	assertSameMessages(t, got, want)
	return got
}

func TestAppendFrameMatchesRFCUnmaskedHello(t *testing.T) {
	tests := []struct {
		name    string
		op      Opcode
		payload []byte
		want    []byte
	}{
		{"text Hello", OpText, []byte("Hello"), []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"pong Hello", OpPong, []byte("Hello"), []byte{0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"binary 256 bytes", OpBinary, make([]byte, 256), append([]byte{0x82, 0x7E, 0x01, 0x00}, make([]byte, 256)...)},
		{"binary 64 KiB", OpBinary, make([]byte, 65536), append([]byte{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}, make([]byte, 65536)...)},
		{"binary 125 bytes", OpBinary, make([]byte, 125), append([]byte{0x82, 125}, make([]byte, 125)...)},
		{"binary 126 bytes", OpBinary, make([]byte, 126), append([]byte{0x82, 126, 0, 126}, make([]byte, 126)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppendFrame(nil, tt.op, tt.payload); !bytes.Equal(got, tt.want) {
				t.Fatalf("got % x…, want % x…", got[:min(len(got), 12)], tt.want[:min(len(tt.want), 12)])
			}
		})
	}
}

func TestDecodeRFCMaskedHello(t *testing.T) {
	raw := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	if got := stream(masked(OpText, "Hello")); !bytes.Equal(got, raw) {
		t.Fatalf("test client encoder: % x, want % x", got, raw)
	}
	var d Decoder
	m, n, err := d.Decode(raw)
	if err != nil || n != len(raw) || m.Op != OpText || string(m.Payload) != "Hello" {
		t.Fatalf("m=%+v n=%d err=%v", m, n, err)
	}
	if string(raw[6:]) != "Hello" {
		t.Fatalf("payload not unmasked in place: %q", raw[6:])
	}
}

func TestDecodeMessages(t *testing.T) {
	big := strings.Repeat("x", 70000)
	mid := strings.Repeat("y", 300)
	tests := []struct {
		name   string
		frames []clientFrame
		want   []Message
	}{
		{"binary", []clientFrame{masked(OpBinary, "\x00\xff\x01")}, []Message{{Op: OpBinary, Payload: []byte("\x00\xff\x01")}}},
		{"empty binary", []clientFrame{masked(OpBinary, "")}, []Message{{Op: OpBinary, Payload: []byte{}}}},
		{"16-bit length", []clientFrame{masked(OpBinary, mid)}, []Message{{Op: OpBinary, Payload: []byte(mid)}}},
		{"64-bit length", []clientFrame{masked(OpBinary, big)}, []Message{{Op: OpBinary, Payload: []byte(big)}}},
		{"fragmented text (RFC 5.7)", []clientFrame{fragment(OpText, false, "Hel"), fragment(OpContinuation, true, "lo")},
			[]Message{{Op: OpText, Payload: []byte("Hello")}}},
		{"ping inside a fragmented message", []clientFrame{
			fragment(OpBinary, false, "ab"), masked(OpPing, "p1"), fragment(OpContinuation, false, "cd"),
			masked(OpPong, ""), fragment(OpContinuation, true, "ef"), masked(OpBinary, "next"),
		}, []Message{
			{Op: OpPing, Payload: []byte("p1")}, {Op: OpPong, Payload: []byte{}},
			{Op: OpBinary, Payload: []byte("abcdef")}, {Op: OpBinary, Payload: []byte("next")},
		}},
		{"text split inside a rune", []clientFrame{fragment(OpText, false, "\xe2\x82"), fragment(OpContinuation, true, "\xac")},
			[]Message{{Op: OpText, Payload: []byte("€")}}},
		{"close with code and reason", []clientFrame{masked(OpClose, "\x03\xe8bye")}, []Message{{Op: OpClose, Code: 1000, Payload: []byte("bye")}}},
		{"close without body", []clientFrame{masked(OpClose, "")}, []Message{{Op: OpClose, Code: CloseNoStatus}}},
		{"close 4999", []clientFrame{masked(OpClose, "\x13\x87")}, []Message{{Op: OpClose, Code: 4999, Payload: []byte{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := stream(tt.frames...)
			var d Decoder
			got, n, err := decodeAll(&d, raw)
			if err != nil || n != len(raw) {
				t.Fatalf("n=%d of %d, err=%v", n, len(raw), err)
			}
			assertSameMessages(t, got, tt.want)
			if d.Fragmented() {
				t.Fatal("decoder still inside a fragmented message")
			}
		})
	}
}

func assertSameMessages(t *testing.T, got, want []Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d: %+v", len(got), len(want), got)
	}
	for i := range got {
		if got[i].Op != want[i].Op || got[i].Code != want[i].Code || !bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Fatalf("message %d: op %d code %d %.40q, want op %d code %d %.40q", i,
				got[i].Op, got[i].Code, got[i].Payload, want[i].Op, want[i].Code, want[i].Payload)
		}
	}
}

func TestDecodeRefusesViolations(t *testing.T) {
	unmasked := []byte{0x82, 0x02, 'h', 'i'}
	rsv := stream(masked(OpBinary, "x"))
	rsv[0] |= 0x40
	msb := []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}
	longPing := stream(masked(OpPing, strings.Repeat("p", 126)))
	fragPing := stream(fragment(OpPing, false, "p"))
	tests := []struct {
		name string
		raw  []byte
		max  int
		want *Error
		code uint16
	}{
		{"unmasked client frame", unmasked, 0, ErrUnmasked, 1002},
		{"reserved bit", rsv, 0, ErrReservedBits, 1002},
		{"opcode 3", stream(masked(3, "x")), 0, ErrUnknownOpcode, 1002},
		{"opcode 0xB", stream(masked(0xB, "x")), 0, ErrUnknownOpcode, 1002},
		{"64-bit length MSB", msb, 0, ErrLengthMSB, 1002},
		{"ping of 126 bytes", longPing, 0, ErrControlTooLong, 1002},
		{"fragmented ping", fragPing, 0, ErrControlFragment, 1002},
		{"continuation first", stream(fragment(OpContinuation, true, "x")), 0, ErrUnexpectedCont, 1002},
		{"new message inside a fragmented one", stream(fragment(OpText, false, "a"), masked(OpText, "b")), 0, ErrExpectedCont, 1002},
		{"close of one byte", stream(masked(OpClose, "\x03")), 0, ErrCloseLength, 1002},
		{"close 999", stream(masked(OpClose, "\x03\xe7")), 0, ErrCloseCode, 1002},
		{"close 1005", stream(masked(OpClose, "\x03\xed")), 0, ErrCloseCode, 1002},
		{"close 1006", stream(masked(OpClose, "\x03\xee")), 0, ErrCloseCode, 1002},
		{"close 2999", stream(masked(OpClose, "\x0b\xb7")), 0, ErrCloseCode, 1002},
		{"close 5000", stream(masked(OpClose, "\x13\x88")), 0, ErrCloseCode, 1002},
		{"close reason not UTF-8", stream(masked(OpClose, "\x03\xe8\xff")), 0, ErrInvalidReason, 1007},
		{"text not UTF-8", stream(masked(OpText, "a\xc3\x28")), 0, ErrInvalidUTF8, 1007},
		{"fragmented text not UTF-8", stream(fragment(OpText, false, "\xed\xa0"), fragment(OpContinuation, true, "\x80")), 0, ErrInvalidUTF8, 1007},
		{"frame over the limit", stream(masked(OpBinary, "12345")), 4, ErrMessageTooBig, 1009},
		{"fragments over the limit", stream(fragment(OpBinary, false, "123"), fragment(OpContinuation, true, "45")), 4, ErrMessageTooBig, 1009},
		{"64-bit length, header incomplete", msb[:2:2], 0, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decoder{MaxMessage: tt.max}
			_, _, err := decodeAll(&d, tt.raw)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err = %v on an incomplete header", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || CloseCode(err) != tt.code {
				t.Fatalf("err = %v (code %d), want %v (code %d)", err, CloseCode(err), tt.want, tt.code)
			}
		})
	}
}

func TestDecodeRefusesOversizeOnTheHeader(t *testing.T) {
	d := Decoder{MaxMessage: 1 << 20}
	hdr := []byte{0x82, 0xFF, 0, 0, 0, 0, 0x10, 0, 0, 0, 1, 2, 3, 4} // 256 MiB announced
	if _, n, err := d.Decode(hdr); !errors.Is(err, ErrMessageTooBig) || n != 0 {
		t.Fatalf("n=%d err=%v, want ErrMessageTooBig before the payload", n, err)
	}
	if _, err := FrameSize(hdr, 1<<20); !errors.Is(err, ErrMessageTooBig) {
		t.Fatalf("FrameSize err = %v", err)
	}
}

// TestDecodeEverySplitPoint feeds a multi-frame stream in two parts at every split
// point, as a reactor's reads may cut it, and checks the same messages come out and
// nothing is consumed or unmasked before its frame is whole.
func TestDecodeEverySplitPoint(t *testing.T) {
	frames := []clientFrame{
		masked(OpBinary, "one"), fragment(OpText, false, "fr"), masked(OpPing, "ping"),
		fragment(OpContinuation, false, "ag"), fragment(OpContinuation, true, "ment €"),
		masked(OpBinary, strings.Repeat("m", 200)), masked(OpClose, "\x03\xe8done"),
	}
	pristine := stream(frames...)
	var whole Decoder
	want, _, err := decodeAll(&whole, append([]byte(nil), pristine...))
	if err != nil || len(want) != 5 {
		t.Fatalf("whole stream: %d messages, err %v", len(want), err)
	}
	for split := 0; split <= len(pristine); split++ {
		buf := append(make([]byte, 0, len(pristine)), pristine[:split]...)
		var d Decoder
		got, off, err := decodeAll(&d, buf)
		if err != nil {
			t.Fatalf("split %d, first part: %v", split, err)
		}
		if !bytes.Equal(buf[off:], pristine[off:split]) {
			t.Fatalf("split %d: the unconsumed tail was modified", split)
		}
		// As the reactor does: keep the unconsumed tail, append the next read.
		buf = append(buf[off:], pristine[split:]...)
		rest, n, err := decodeAll(&d, buf)
		if err != nil || n != len(buf) {
			t.Fatalf("split %d, second part: n=%d of %d, err %v", split, n, len(buf), err)
		}
		assertSameMessages(t, append(got, rest...), want)
	}
}

func TestFrameSizeAgreesWithDecode(t *testing.T) {
	raw := stream(masked(OpBinary, "a"), masked(OpBinary, strings.Repeat("b", 300)), masked(OpBinary, strings.Repeat("c", 70000)))
	var d Decoder
	for off := 0; off < len(raw); {
		size, err := FrameSize(raw[off:], 0)
		if err != nil {
			t.Fatal(err)
		}
		for cut := 0; cut < min(MaxHeader, size); cut++ {
			if s, err := FrameSize(raw[off:off+cut], 0); err != nil || (s != 0 && s != size) {
				t.Fatalf("frame at %d cut at %d: size %d err %v, want 0 or %d", off, cut, s, err, size)
			}
		}
		_, n, err := d.Decode(raw[off:])
		if err != nil || n != size {
			t.Fatalf("frame at %d: Decode consumed %d (err %v), FrameSize said %d", off, n, err, size)
		}
		off += n
	}
}

func TestAppendCloseDecodesBack(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes: cut to 61 runes (122 bytes)
	tests := []struct {
		code   uint16
		reason string
		want   string
	}{
		{CloseNormal, "", ""},
		{CloseProtocolError, "client frame not masked", "client frame not masked"},
		{CloseTooBig, long, strings.Repeat("é", 61)},
	}
	for _, tt := range tests {
		frame := AppendClose(nil, tt.code, tt.reason)
		if len(frame) > 2+MaxControlPayload {
			t.Fatalf("close frame of %d bytes", len(frame))
		}
		// Parse the body as the decoder parses a close frame's.
		m, err := parseClose(frame[2:])
		if err != nil || m.Code != tt.code || string(m.Payload) != tt.want {
			t.Fatalf("code %d: got %d %q err %v", tt.code, m.Code, m.Payload, err)
		}
	}
	if got := AppendClose(nil, CloseNoStatus, "ignored"); !bytes.Equal(got, []byte{0x88, 0}) {
		t.Fatalf("no-status close = % x", got)
	}
}

func TestUnmaskMatchesBytewiseXOR(t *testing.T) {
	for n := 0; n <= 40; n++ {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		want := make([]byte, n)
		for i := range want {
			want[i] = p[i] ^ testKey[i%4]
		}
		unmask(p, testKey)
		if !bytes.Equal(p, want) {
			t.Fatalf("n=%d: % x, want % x", n, p, want)
		}
	}
}

func TestCloseCodeOfErrors(t *testing.T) {
	if CloseCode(nil) != CloseNormal || CloseCode(errors.New("x")) != CloseInternalError || CloseCode(ErrMessageTooBig) != CloseTooBig {
		t.Fatal("CloseCode mapping")
	}
}

// TestCutStreamCutsHandshakeThenFrames cuts a connection's whole input (handshake,
// then frames) at every unit, as the reactor's Framer loop does, fed one byte more
// at a time.
func TestCutStreamCutsHandshakeThenFrames(t *testing.T) {
	hs := request(rfcFirst, nil)
	frames := [][]byte{stream(masked(OpBinary, "abc")), stream(masked(OpBinary, strings.Repeat("z", 1000))), stream(masked(OpClose, ""))}
	in := []byte(hs)
	wantSizes := []int{len(hs)}
	for _, f := range frames {
		in = append(in, f...)
		wantSizes = append(wantSizes, len(f))
	}
	var got []int
	off := 0
	for end := 1; end <= len(in); end++ {
		size, err := CutStream(in[off:end], 1<<16)
		if err != nil {
			t.Fatalf("at %d..%d: %v", off, end, err)
		}
		if size > 0 && off+size <= end {
			got = append(got, size)
			off += size
		}
	}
	if len(got) != len(wantSizes) || off != len(in) {
		t.Fatalf("cut %v, want %v", got, wantSizes)
	}
	for i := range got {
		if got[i] != wantSizes[i] {
			t.Fatalf("cut %v, want %v", got, wantSizes)
		}
	}
	if _, err := CutStream([]byte("GET /"+strings.Repeat("a", MaxRequest)), 0); CloseCode(err) == CloseNormal {
		t.Fatal("an endless request line was not refused")
	}
	if _, err := CutStream([]byte{0x82, 0x05, 1, 2, 3, 4, 5}, 0); !errors.Is(err, ErrUnmasked) {
		t.Fatalf("unmasked frame: %v", err)
	}
}
