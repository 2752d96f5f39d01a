package msg

import (
	"bytes"
	"errors"
	"testing"
)

func TestRangeReplyRoundTripsWithinItsBudget(t *testing.T) {
	w := Window{Epoch: 1<<64 - 1, Head: 9, Oldest: 4}
	msgs := []Message{
		{Seq: 4, ID: 40, From: 1, To: 2, ClientTS: -3, Payload: []byte("four")},
		{Seq: 5, ID: 50, To: 2},
		{Seq: 6, ID: 60, To: 2, Payload: bytes.Repeat([]byte{6}, 1000)},
	}
	per := func(m *Message) int { return 4 + EncodedSize(m) }
	all := rangeReplyHead + per(&msgs[0]) + per(&msgs[1]) + per(&msgs[2])
	for _, c := range []struct {
		name   string
		budget int
		want   int
	}{
		{"roomy", 1 << 20, 3},
		{"exact", all, 3},
		{"one byte short", all - 1, 2},
		{"first only", rangeReplyHead + per(&msgs[0]), 1},
		{"header only", rangeReplyHead, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, n := appendRangeReply(nil, w, msgs, c.budget)
			if n != c.want || len(b) > c.budget {
				t.Fatalf("%d messages in %d bytes, want %d within %d", n, len(b), c.want, c.budget)
			}
			got, gw, err := decodeRangeReply(b)
			if err != nil || gw != w || len(got) != n {
				t.Fatalf("decoded %d messages, window %+v: %v", len(got), gw, err)
			}
			for i := range got {
				if !bytes.Equal(AppendMessage(nil, &got[i]), AppendMessage(nil, &msgs[i])) {
					t.Fatalf("message %d: %+v, want %+v", i, got[i], msgs[i])
				}
			}
		})
	}
}

func TestRequestBodiesRejectWrongLengths(t *testing.T) {
	for _, c := range []struct {
		name   string
		decode func([]byte) error
		good   int
	}{
		{"triple", func(b []byte) error { _, _, _, err := decodeTriple(b); return err }, 24},
		{"uid", func(b []byte) error { _, err := decodeUID(b); return err }, 8},
		{"range request", func(b []byte) error { _, _, _, err := decodeRangeRequest(b); return err }, rangeReqSize},
		{"window", func(b []byte) error { _, err := decodeWindow(b); return err }, windowSize},
		{"range reply", func(b []byte) error { _, _, err := decodeRangeReply(b); return err }, rangeReplyHead},
	} {
		for _, n := range []int{0, c.good - 1, c.good, c.good + 1} {
			err := c.decode(make([]byte, n))
			if (n == c.good) != (err == nil) || err != nil && !errors.Is(err, errMalformed) {
				t.Errorf("%s of %d bytes: %v", c.name, n, err)
			}
		}
	}
}

func FuzzDecodeRangeReply(f *testing.F) {
	b, _ := appendRangeReply(nil, Window{Epoch: 1, Head: 2, Oldest: 1}, []Message{{Seq: 1, To: 3, Payload: []byte("x")}, {Seq: 2}}, 1<<20)
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, w, err := decodeRangeReply(b)
		if err != nil {
			return
		}
		again, n := appendRangeReply(nil, w, msgs, len(b))
		if n != len(msgs) || !bytes.Equal(again, b) {
			t.Fatal("re-encoding differs")
		}
	})
}
