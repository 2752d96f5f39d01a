package msg

import (
	"bytes"
	"testing"
)

func TestMessageEncodingRoundTrips(t *testing.T) {
	for _, m := range []Message{
		{},
		{Seq: 1, ID: 2, From: 3, To: 4, ClientTS: -5, Payload: []byte("hello")},
		{Seq: 1<<64 - 1, ID: 1 << 63, From: 9, To: 10, ClientTS: 1 << 62, Payload: bytes.Repeat([]byte{7}, 70000)},
	} {
		b := AppendMessage([]byte("prefix"), &m)
		got, err := DecodeMessage(b[len("prefix"):])
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != m.Seq || got.ID != m.ID || got.From != m.From || got.To != m.To || got.ClientTS != m.ClientTS || !bytes.Equal(got.Payload, m.Payload) {
			t.Fatalf("got %+v, want %+v", got, m)
		}
		if EncodedSize(&m) != len(b)-len("prefix") {
			t.Fatal("EncodedSize disagrees")
		}
	}
	if _, err := DecodeMessage(make([]byte, messageFixed-1)); err != ErrShortMessage {
		t.Fatalf("short: %v", err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(AppendMessage(nil, &Message{Seq: 1, To: 2, Payload: []byte("x")}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendMessage(nil, &m), b) {
			t.Fatal("re-encoding differs")
		}
	})
}
