package proto

import (
	"testing"
	"time"
)

// benchPayload is a typical small chat message.
const benchPayload = "the quick brown fox jumps over the lazy dog, twice: the quick brown fox jumps over the lazy dog"

func BenchmarkSplit(b *testing.B) {
	stream, _ := testStream()
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		for buf := stream; len(buf) > 0; {
			n, err := Split(buf, DefaultMaxFrame)
			if err != nil || n == 0 {
				b.Fatal(n, err)
			}
			buf = buf[n:]
		}
	}
}

func BenchmarkEncodePush(b *testing.B) {
	m := Push{Seq: 1234567, MsgID: 987654321, From: 42, ClientTS: 1767225600123, Payload: []byte(benchPayload)}
	buf := make([]byte, 0, m.Size())
	b.ReportAllocs()
	b.SetBytes(int64(m.Size()))
	for b.Loop() {
		buf = m.Append(buf[:0])
	}
}

func BenchmarkDecodePush(b *testing.B) {
	frame := (&Push{Seq: 1234567, MsgID: 987654321, From: 42, ClientTS: 1767225600123, Payload: []byte(benchPayload)}).Append(nil)
	var m Push
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		f, err := ParseFrame(frame)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Decode(f.Body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSend(b *testing.B) {
	frame := (&Send{ClientMsgID: 77, To: 7, ClientTS: 1767225600123, Payload: []byte(benchPayload)}).Append(nil)
	var m Send
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		f, err := ParseFrame(frame)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Decode(f.Body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyToken(b *testing.B) {
	s := newTestSigner(b, []byte(testSecret))
	now := time.Unix(1767225600, 0)
	tok := s.Mint(42, now.Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Verify(tok, 42, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMintToken(b *testing.B) {
	s := newTestSigner(b, []byte(testSecret))
	exp := time.Unix(1767225600, 0)
	b.ReportAllocs()
	for b.Loop() {
		s.Mint(42, exp)
	}
}
