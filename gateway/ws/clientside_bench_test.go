package ws

import "testing"

// BenchmarkAppendClientFrame64 measures a client's 64-byte binary message (a small
// SEND) masked into a reused buffer with a fresh key from a MaskSource.
func BenchmarkAppendClientFrame64(b *testing.B) {
	payload := make([]byte, 64)
	dst := make([]byte, 0, 128)
	ms := SeededMaskSource(1)
	b.SetBytes(64)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendClientFrame(dst[:0], OpBinary, payload, ms.Next())
	}
}

// BenchmarkClientDecode64 measures decoding 64-byte binary server messages (a
// small PUSH) from a buffer of 1024 frames; nothing is unmasked, so the buffer is
// decoded as it is, pass after pass.
func BenchmarkClientDecode64(b *testing.B) {
	const frames = 1024
	payload := make([]byte, 64)
	var buf []byte
	for range frames {
		buf = AppendFrame(buf, OpBinary, payload)
	}
	var d ClientDecoder
	b.SetBytes(int64(len(buf) / frames))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		for off := 0; off < len(buf) && i < b.N; i++ {
			m, n, err := d.Decode(buf[off:])
			if err != nil || n == 0 || len(m.Payload) != 64 {
				b.Fatalf("n=%d err=%v", n, err)
			}
			off += n
		}
	}
}
