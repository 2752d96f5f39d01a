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
		{Seq: 3, Epoch: 1<<63 - 1, ID: 4, From: 5, To: 6, Payload: []byte("traced"),
			Trace: &Trace{GatewayIn: 1, Stored: 2, Routed: -3, GatewayOut: 1 << 62}},
		{Seq: 7, Epoch: 8, To: 9, Trace: &Trace{}},
	} {
		b := AppendMessage([]byte("prefix"), &m)
		got, err := DecodeMessage(b[len("prefix"):])
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != m.Seq || got.Epoch != m.Epoch || got.ID != m.ID || got.From != m.From || got.To != m.To ||
			got.ClientTS != m.ClientTS || !bytes.Equal(got.Payload, m.Payload) {
			t.Fatalf("got %+v, want %+v", got, m)
		}
		if (got.Trace == nil) != (m.Trace == nil) || (m.Trace != nil && *got.Trace != *m.Trace) {
			t.Fatalf("trace: got %+v, want %+v", got.Trace, m.Trace)
		}
		if EncodedSize(&m) != len(b)-len("prefix") {
			t.Fatal("EncodedSize disagrees")
		}
	}
	if _, err := DecodeMessage(make([]byte, messageFixed-1)); err != ErrShortMessage {
		t.Fatalf("short: %v", err)
	}
	// The trace flag promises a trace: an encoding cut inside it is short.
	traced := AppendMessage(nil, &Message{Epoch: 2, Trace: &Trace{GatewayIn: 1}})
	if _, err := DecodeMessage(traced[:messageFixed+traceSize-1]); err != ErrShortMessage {
		t.Fatalf("cut trace: %v", err)
	}
}

// An untraced message's encoding is what it was before traces existed: 48 bytes
// and the payload; a traced one adds exactly the trace.
func TestTraceCostsUntracedMessagesNothing(t *testing.T) {
	m := Message{Seq: 1, Epoch: 2, ID: 3, From: 4, To: 5, ClientTS: 6, Payload: []byte("x")}
	if n := len(AppendMessage(nil, &m)); n != messageFixed+1 || EncodedSize(&m) != n {
		t.Fatalf("untraced: %d bytes, EncodedSize %d; want %d", n, EncodedSize(&m), messageFixed+1)
	}
	m.Trace = &Trace{GatewayIn: 1}
	if n := len(AppendMessage(nil, &m)); n != messageFixed+traceSize+1 || EncodedSize(&m) != n {
		t.Fatalf("traced: %d bytes, EncodedSize %d; want %d", n, EncodedSize(&m), messageFixed+traceSize+1)
	}
}

func TestTraceWithStampsACopy(t *testing.T) {
	var none *Trace
	if none.With(func(t *Trace) { t.Routed = 1 }) != nil {
		t.Fatal("an untraced message became traced")
	}
	orig := &Trace{GatewayIn: 1, Stored: 2}
	got := orig.With(func(t *Trace) { t.Routed = 3 })
	if *orig != (Trace{GatewayIn: 1, Stored: 2}) {
		t.Fatalf("With changed the original: %+v", orig)
	}
	if *got != (Trace{GatewayIn: 1, Stored: 2, Routed: 3}) {
		t.Fatalf("With = %+v", got)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(AppendMessage(nil, &Message{Seq: 1, To: 2, Payload: []byte("x")}))
	f.Add(AppendMessage(nil, &Message{Seq: 1, Epoch: 5, To: 2, Payload: []byte("x"), Trace: &Trace{GatewayIn: 1, Stored: 2, Routed: 3, GatewayOut: 4}}))
	f.Add(AppendMessage(nil, &Message{Epoch: 5, Trace: &Trace{}})[:messageFixed+traceSize-1])
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
