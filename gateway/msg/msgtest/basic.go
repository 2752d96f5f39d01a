package msgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/floodgate/floodgate/gateway/msg"
)

func seqsStartAtOneWithoutHoles(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, 100)
	ids := map[uint64]bool{}
	for i := 1; i <= 10; i++ {
		for _, to := range []uint64{7, 8} {
			m := &msg.Message{From: 1, To: to, ClientTS: int64(i), Payload: []byte(fmt.Sprint(i))}
			if err := s.Append(ctx, m); err != nil {
				t.Fatal(err)
			}
			if m.Seq != uint64(i) {
				t.Fatalf("message %d to %d got seq %d", i, to, m.Seq)
			}
			if m.ID == 0 || ids[m.ID] {
				t.Fatalf("id %d zero or reused", m.ID)
			}
			ids[m.ID] = true
		}
	}
}

func rangeReplaysInOrderFromAfter(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, 100)
	appendN(t, s, 5, 20)
	got, w, err := s.Range(ctx, 5, 12, 0)
	if err != nil {
		t.Fatal(err)
	}
	if w.Head != 20 || w.Oldest != 1 || w.Epoch == 0 {
		t.Fatalf("window %+v, want head 20, oldest 1, an epoch", w)
	}
	if len(got) != 8 || got[0].Seq != 13 || got[7].Seq != 20 {
		t.Fatalf("range after 12: %d messages, first %v", len(got), got)
	}
	for i, m := range got {
		if m.Seq != uint64(13+i) || string(m.Payload) != fmt.Sprint(13+i) || m.To != 5 {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	if got, _, _ := s.Range(ctx, 5, 12, 3); len(got) != 3 || got[2].Seq != 15 {
		t.Fatalf("limit 3: %v", got)
	}
	if got, _, _ := s.Range(ctx, 5, 20, 0); len(got) != 0 {
		t.Fatalf("after head: %v", got)
	}
}

func ackDropsThroughSeq(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, 100)
	appendN(t, s, 9, 10)
	ack(t, s, 9, 6)
	got, w := rangeAll(t, s, 9, 0)
	if w.Oldest != 7 || len(got) != 4 || got[0].Seq != 7 {
		t.Fatalf("after ack 6: window %+v, %d messages", w, len(got))
	}
	ack(t, s, 9, 3)  // behind: no effect
	ack(t, s, 9, 99) // beyond head: everything
	got, w = rangeAll(t, s, 9, 0)
	if len(got) != 0 || w.Oldest != 11 || w.Head != 10 {
		t.Fatalf("after ack all: window %+v, %d messages", w, len(got))
	}
	m := &msg.Message{To: 9}
	if err := s.Append(ctx, m); err != nil {
		t.Fatal(err)
	}
	if m.Seq != 11 {
		t.Fatalf("seq after full ack = %d, want 11", m.Seq)
	}
}

func unknownUserHasEmptyWindow(t *testing.T, newStore NewStore) {
	s := newStore(t, 4)
	got, w := rangeAll(t, s, 12345, 0)
	if len(got) != 0 || w.Head != 0 || w.Oldest != 1 || w.Epoch == 0 {
		t.Fatalf("window %+v, %d messages; want head 0, oldest 1, an epoch, none", w, len(got))
	}
}

func rejectsUIDZero(t *testing.T, newStore NewStore) {
	s := newStore(t, 4)
	if err := s.Append(context.Background(), &msg.Message{From: 1}); !errors.Is(err, msg.ErrNoRecipient) {
		t.Fatalf("append to uid 0: %v, want ErrNoRecipient", err)
	}
}

func storedPayloadIsACopy(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, 4)
	p := []byte("original")
	if err := s.Append(ctx, &msg.Message{To: 4, Payload: p}); err != nil {
		t.Fatal(err)
	}
	copy(p, "mutated!")
	got, _ := rangeAll(t, s, 4, 0)
	if string(got[0].Payload) != "original" {
		t.Fatalf("payload %q", got[0].Payload)
	}
}

// Every field comes back as appended, payloads of any size up to 64 KiB included.
func fieldsAndPayloadsRoundTrip(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, 16)
	cases := []struct {
		name     string
		from     uint64
		clientTS int64
		size     int
	}{
		{"empty", 1, 0, 0},
		{"one byte", 1<<64 - 1, -1, 1},
		{"small", 42, 1_700_000_000_000, 100},
		{"64KiB-1", 7, -1 << 63, 64<<10 - 1},
		{"64KiB", 1 << 63, 1<<63 - 1, 64 << 10},
	}
	const to = 31
	appended := make([]msg.Message, len(cases))
	for i, c := range cases {
		p := make([]byte, c.size)
		for j := range p {
			p[j] = byte(i*31 + j*7)
		}
		m := &msg.Message{Seq: 999, ID: 999, From: c.from, To: to, ClientTS: c.clientTS, Payload: p}
		if err := s.Append(ctx, m); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if m.Seq != uint64(i+1) {
			t.Fatalf("%s: seq %d, want %d (a caller's Seq is ignored)", c.name, m.Seq, i+1)
		}
		appended[i] = *m
	}
	got, _ := rangeAll(t, s, to, 0)
	if len(got) != len(cases) {
		t.Fatalf("%d messages back, want %d", len(got), len(cases))
	}
	for i, c := range cases {
		g, w := got[i], appended[i]
		if g.Seq != w.Seq || g.ID != w.ID || g.From != w.From || g.To != w.To || g.ClientTS != w.ClientTS {
			t.Errorf("%s: got %+v, want %+v", c.name, g, w)
		}
		if !bytes.Equal(g.Payload, w.Payload) {
			t.Errorf("%s: payload of %d bytes differs from the %d appended", c.name, len(g.Payload), len(w.Payload))
		}
	}
}
