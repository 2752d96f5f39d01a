package ws

import "testing"

// BenchmarkDecode64 measures decoding 64-byte binary messages (the size of a small
// SEND) from a buffer of 1024 masked frames, as a reactor's read buffer holds them.
// The pristine frames are copied back before each pass because unmasking is in
// place; that copy is included in the figures.
func BenchmarkDecode64(b *testing.B) {
	const frames = 1024
	payload := make([]byte, 64)
	for i := range payload {
		payload[i] = byte(i)
	}
	var pristine []byte
	for range frames {
		pristine = appendClientFrame(pristine, clientFrame{fin: true, op: OpBinary, payload: payload, key: testKey})
	}
	buf := make([]byte, len(pristine))
	d := Decoder{MaxMessage: 1 << 16}
	b.SetBytes(int64(len(pristine) / frames))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		copy(buf, pristine)
		for off := 0; off < len(buf) && i < b.N; i++ {
			m, n, err := d.Decode(buf[off:])
			if err != nil || n == 0 || len(m.Payload) != 64 {
				b.Fatalf("n=%d err=%v", n, err)
			}
			off += n
		}
	}
}

// BenchmarkAppendFrame64 measures encoding 64-byte binary server messages into a
// reused buffer.
func BenchmarkAppendFrame64(b *testing.B) {
	payload := make([]byte, 64)
	dst := make([]byte, 0, 128)
	b.SetBytes(64)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendFrame(dst[:0], OpBinary, payload)
	}
}

// BenchmarkParseUpgrade parses a browser's opening handshake: one per WebSocket
// connection, so what it allocates is what a connection storm leaves to the GC.
func BenchmarkParseUpgrade(b *testing.B) {
	req := []byte("GET /chat HTTP/1.1\r\nHost: 198.18.0.10:7003\r\nConnection: Upgrade\r\nPragma: no-cache\r\n" +
		"Cache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0\r\nUpgrade: websocket\r\n" +
		"Origin: http://198.18.0.10:7003\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: floodgate\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseUpgrade(req); err != nil {
			b.Fatal(err)
		}
	}
}
