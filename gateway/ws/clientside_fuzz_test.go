package ws

import (
	"bytes"
	"testing"
)

// FuzzClientDecoder feeds arbitrary bytes as server frames, whole and then in two
// parts: the decoder must never panic, never consume more than it is given, agree
// with ServerFrameSize on the first frame, and decode the same messages however the
// input is cut.
func FuzzClientDecoder(f *testing.F) {
	f.Add(AppendFrame(nil, OpBinary, []byte("Hello")), 3, 0)
	f.Add(serverStream(serverFragment(OpBinary, false, "ab"), AppendFrame(nil, OpPing, []byte("p")), serverFragment(OpContinuation, true, "c")), 5, 16)
	f.Add(AppendClose(nil, CloseGoingAway, "drain"), 1, 0)
	f.Add(AppendFrame(nil, OpBinary, make([]byte, 300)), 5, 100)
	f.Add([]byte{0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1}, 2, 0)
	f.Add(AppendClientFrame(nil, OpBinary, []byte("masked"), [4]byte{1, 2, 3, 4}), 0, 0)
	f.Fuzz(func(t *testing.T, raw []byte, split, limit int) {
		if limit < 0 || limit > 1<<16 {
			limit = 0
		}
		orig := append([]byte(nil), raw...)
		whole := ClientDecoder{MaxMessage: limit}
		want, wantN, wantErr := decodeAll(&whole, raw)
		if wantN > len(raw) {
			t.Fatalf("consumed %d of %d", wantN, len(raw))
		}
		if !bytes.Equal(raw, orig) {
			t.Fatal("Decode wrote to its input")
		}
		var first ClientDecoder
		if _, n, err := first.Decode(raw); err == nil && n > 0 {
			if size, serr := ServerFrameSize(raw, 0); serr != nil || size != n {
				t.Fatalf("ServerFrameSize %d (err %v), Decode consumed %d", size, serr, n)
			}
		}
		if split < 0 || split > len(raw) {
			return
		}
		assertSplitDecodesAsWhole(t, &ClientDecoder{MaxMessage: limit}, raw, split, want, wantN, wantErr)
	})
}

// FuzzParseResponse: any bytes as a handshake response never panic, an accepted
// one is a 101 carrying the key's accept value, with a subprotocol only if offered,
// in a whole block CutClientStream cuts the same, and a refusal consumes nothing.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + rfcAccept + "\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-accept: " + rfcAccept + "\r\nSec-WebSocket-Protocol: floodgate\r\n\r\n"))
	f.Add(AppendReject(nil, 503, "full"))
	f.Add([]byte("HTTP/1.1 101\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		key := KeyOf([16]byte([]byte("the sample nonce")))
		resp, n, err := ParseResponse(b, key, "floodgate")
		if n < 0 || n > len(b) || n > MaxResponse {
			t.Fatalf("n = %d of %d", n, len(b))
		}
		if err != nil && n != 0 {
			t.Fatalf("error %v with n = %d", err, n)
		}
		if err == nil && n > 0 {
			if !bytes.Contains(b[:n], []byte(" 101")) || !bytes.Contains(b[:n], AppendAccept(nil, key.String())) {
				t.Fatalf("accepted %q: no 101, or not the accept value of the key", b[:n])
			}
			if resp.Protocol != "" && resp.Protocol != "floodgate" {
				t.Fatalf("accepted protocol %q, not offered", resp.Protocol)
			}
			if size, cerr := CutClientStream(b, 0); cerr != nil || size != n {
				t.Fatalf("CutClientStream cut %d (err %v), ParseResponse consumed %d", size, cerr, n)
			}
		}
	})
}
