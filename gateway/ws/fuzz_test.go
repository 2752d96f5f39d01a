package ws

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// FuzzDecoder feeds arbitrary bytes, whole and then in two parts: the decoder must
// never panic, never consume more than it is given, and decode the same messages
// however the input is cut.
func FuzzDecoder(f *testing.F) {
	f.Add(stream(masked(OpText, "Hello")), 3, 0)
	f.Add(stream(fragment(OpBinary, false, "ab"), masked(OpPing, "p"), fragment(OpContinuation, true, "c")), 7, 16)
	f.Add(stream(masked(OpClose, "\x03\xe8bye")), 1, 0)
	f.Add(stream(masked(OpBinary, string(make([]byte, 300)))), 5, 100)
	f.Add([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, 2, 0)
	f.Add([]byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}, 0, 0)
	f.Fuzz(func(t *testing.T, raw []byte, split, limit int) {
		if limit < 0 || limit > 1<<16 {
			limit = 0
		}
		var whole Decoder
		whole.MaxMessage = limit
		want, wantN, wantErr := decodeAll(&whole, append([]byte(nil), raw...))
		if wantN > len(raw) {
			t.Fatalf("consumed %d of %d", wantN, len(raw))
		}
		var first Decoder
		if _, n, err := first.Decode(append([]byte(nil), raw...)); err == nil && n > 0 {
			if size, serr := FrameSize(raw, 0); serr != nil || size != n {
				t.Fatalf("FrameSize %d (err %v), Decode consumed %d", size, serr, n)
			}
		}
		if split < 0 || split > len(raw) {
			return
		}
		got := assertSplitDecodesAsWhole(t, &Decoder{MaxMessage: limit}, raw, split, want, wantN, wantErr)
		for _, m := range got {
			if m.Op == OpText && !utf8.Valid(m.Payload) {
				t.Fatal("invalid UTF-8 text accepted")
			}
		}
	})
}

// FuzzRoundTrip encodes a message as a client would, in fragments of a given size
// with pings between them, and checks it decodes back to the same message.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("Hello"), true, 2, uint32(0x37fa213d))
	f.Add(make([]byte, 70000), false, 30000, uint32(1))
	f.Add([]byte{}, false, 0, uint32(0))
	f.Fuzz(func(t *testing.T, payload []byte, text bool, frag int, key uint32) {
		op := OpBinary
		if text {
			op = OpText
			payload = bytes.ToValidUTF8(payload, []byte("?"))
		}
		if frag <= 0 || frag > len(payload) {
			frag = len(payload) + 1
		}
		k := [4]byte{byte(key), byte(key >> 8), byte(key >> 16), byte(key >> 24)}
		var raw []byte
		first := true
		for rest := payload; ; {
			chunk := rest[:min(frag, len(rest))]
			rest = rest[len(chunk):]
			fop := OpContinuation
			if first {
				fop = op
			}
			raw = appendClientFrame(raw, clientFrame{fin: len(rest) == 0, op: fop, payload: chunk, key: k})
			first = false
			if len(rest) == 0 {
				break
			}
			raw = appendClientFrame(raw, clientFrame{fin: true, op: OpPing, payload: []byte("x"), key: k})
		}
		d := Decoder{MaxMessage: len(payload)}
		msgs, n, err := decodeAll(&d, raw)
		if err != nil || n != len(raw) {
			t.Fatalf("consumed %d of %d, err %v", n, len(raw), err)
		}
		last := msgs[len(msgs)-1]
		if last.Op != op || !bytes.Equal(last.Payload, payload) {
			t.Fatalf("got op %d %d bytes, want op %d %d bytes", last.Op, len(last.Payload), op, len(payload))
		}
		for _, m := range msgs[:len(msgs)-1] {
			if m.Op != OpPing || string(m.Payload) != "x" {
				t.Fatalf("interleaved control frame %+v", m)
			}
		}
	})
}
