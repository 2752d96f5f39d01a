package msg

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
)

// sameMessage reports whether a and b are the same message, payload bytes compared.
func sameMessage(a, b Message) bool {
	return a.Seq == b.Seq && a.Epoch == b.Epoch && a.ID == b.ID && a.From == b.From && a.To == b.To &&
		a.ClientTS == b.ClientTS && a.ClientMsgID == b.ClientMsgID && bytes.Equal(a.Payload, b.Payload)
}

// Windows (the Window and Windows replies) round-trip, and no input makes
// decodeWindow panic or accept a body that does not re-encode to itself.
func FuzzDecodeWindow(f *testing.F) {
	f.Add(appendWindow(nil, Window{Epoch: 1, Head: 2, Oldest: 3}))
	f.Add(appendWindow(nil, Window{Epoch: 1<<64 - 1, Head: 1 << 63}))
	f.Add(make([]byte, windowSize-1))
	f.Add(make([]byte, windowSize+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeWindow(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("% x: error %v is not errMalformed", b, err)
			}
			return
		}
		if again := appendWindow(nil, w); !bytes.Equal(again, b) {
			t.Fatalf("% x decodes to %+v, which encodes to % x", b, w, again)
		}
	})
}

// Triples (the Ack request, the Append reply) round-trip, and no input makes
// decodeTriple panic or accept a body that does not re-encode to itself.
func FuzzDecodeTriple(f *testing.F) {
	f.Add(appendTriple(nil, 1, 2, 3))
	f.Add(appendTriple(nil, 1<<64-1, 0, 1<<63))
	f.Add(make([]byte, 23))
	f.Add(make([]byte, 25))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, y, z, err := decodeTriple(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("% x: error %v is not errMalformed", b, err)
			}
			return
		}
		if again := appendTriple(nil, x, y, z); !bytes.Equal(again, b) {
			t.Fatalf("% x decodes to %d %d %d, which encode to % x", b, x, y, z, again)
		}
	})
}

// Append requests round-trip, and no input makes decodeAppendRequest panic or
// accept a body that does not re-encode to itself.
func FuzzDecodeAppendRequest(f *testing.F) {
	f.Add(appendAppendRequest(nil, &Message{ClientMsgID: 9, From: 1, To: 2, ClientTS: -3, Payload: []byte("hello")}))
	f.Add(appendAppendRequest(nil, &Message{}))
	f.Add(appendAppendRequest(nil, &Message{ClientMsgID: 1<<64 - 1, Seq: 5, Epoch: 6, ID: 7, Payload: bytes.Repeat([]byte{1}, 500)}))
	f.Add(make([]byte, 8+messageFixed-1))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeAppendRequest(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("% x: error %v is not errMalformed", b, err)
			}
			return
		}
		if again := appendAppendRequest(nil, &m); !bytes.Equal(again, b) {
			t.Fatalf("% x decodes to %+v, which encodes to % x", b, m, again)
		}
	})
}

// Uid bodies (the Window request) round-trip, and no input makes decodeUID panic or
// accept a body that does not re-encode to itself.
func FuzzDecodeUID(f *testing.F) {
	f.Add(appendUID(nil, 42))
	f.Add(appendUID(nil, 1<<64-1))
	f.Add(make([]byte, 7))
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		uid, err := decodeUID(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("% x: error %v is not errMalformed", b, err)
			}
			return
		}
		if again := appendUID(nil, uid); !bytes.Equal(again, b) {
			t.Fatalf("% x decodes to %d, which encodes to % x", b, uid, again)
		}
	})
}

// Range requests round-trip, and no input makes decodeRangeRequest panic or accept
// a body that does not re-encode to itself.
func FuzzDecodeRangeRequest(f *testing.F) {
	f.Add(appendRangeRequest(nil, 7, 100, MaxRangeReply))
	f.Add(appendRangeRequest(nil, 1<<64-1, 1<<64-1, 1<<32-1))
	f.Add(appendRangeRequest(nil, 0, 0, 0))
	f.Add(make([]byte, rangeReqSize-1))
	f.Fuzz(func(t *testing.T, b []byte) {
		uid, after, limit, err := decodeRangeRequest(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("% x: error %v is not errMalformed", b, err)
			}
			return
		}
		if again := appendRangeRequest(nil, uid, after, limit); !bytes.Equal(again, b) {
			t.Fatalf("% x decodes to %d %d %d, which encode to % x", b, uid, after, limit, again)
		}
	})
}

// Stored messages (what the Redis store reads back from its inbox lists) round-trip,
// and no input makes decodeStored panic or accept a value that does not re-encode
// to itself.
func FuzzDecodeStored(f *testing.F) {
	f.Add(appendStored(nil, &Message{Seq: 1, ID: 2, From: 3, To: 4, ClientTS: -5, Payload: []byte("stored")}))
	f.Add(appendStored(nil, &Message{}))
	f.Add(make([]byte, storedFixed-1))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeStored(b)
		if err != nil {
			if len(b) >= storedFixed {
				t.Fatalf("% x (%d bytes) refused: %v", b, len(b), err)
			}
			return
		}
		if m.Epoch != 0 {
			t.Fatalf("% x decodes with epoch %d, want 0", b, m.Epoch)
		}
		// Bytes 16–31 (the time and bytes-before the append script writes) are not
		// part of the Message: appendStored writes them as zeros.
		want := append([]byte(nil), b...)
		clear(want[16:32])
		if again := appendStored(nil, &m); !bytes.Equal(again, want) {
			t.Fatalf("% x decodes to %+v, which encodes to % x", b, m, again)
		}
		if back, err := DecodeMessage(AppendMessage(nil, &m)); err != nil || !sameMessage(back, m) {
			t.Fatalf("%+v does not survive the link encoding: %+v %v", m, back, err)
		}
	})
}

// The server's request handling never panics on any method and body from a peer,
// and answers a malformed body with errMalformed.
func FuzzServerRequests(f *testing.F) {
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Secret: []byte("fuzz-secret"),
		Store: NewMemory(64), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(MethodAppend, appendAppendRequest(nil, &Message{ClientMsgID: 1, From: 1, To: 2, Payload: []byte("x")}))
	f.Add(MethodAppend, appendAppendRequest(nil, &Message{ClientMsgID: 2, From: 1, To: 2, Payload: []byte("x"), Trace: &Trace{GatewayIn: 1}}))
	f.Add(MethodAck, appendTriple(nil, 2, 1, 0))
	f.Add(MethodRange, appendRangeRequest(nil, 2, 0, 10))
	f.Add(MethodWindow, appendUID(nil, 2))
	f.Add(MethodWindows, append(appendUID(nil, 2), appendUID(nil, 3)...))
	f.Add(MethodWindows, make([]byte, 8*(MaxWindows+1)))
	f.Add(MethodAppend, []byte{1})
	f.Add(uint16(77), []byte{})
	peer := &link.Peer{}
	f.Fuzz(func(t *testing.T, method uint16, body []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := srv.handle(ctx, &link.Request{Peer: peer, Method: method, Body: body})
		malformed := false
		switch method {
		case MethodAppend:
			malformed = len(body) < 8+messageFixed
		case MethodAck:
			malformed = len(body) != ackReqSize
		case MethodRange:
			malformed = len(body) != rangeReqSize
		case MethodWindow:
			malformed = len(body) != 8
		case MethodWindows:
			malformed = len(body) == 0 || len(body)%8 != 0 || len(body)/8 > MaxWindows
		}
		if malformed && !errors.Is(err, errMalformed) {
			t.Fatalf("method %d, malformed body % x: answered %v, want errMalformed", method, body, err)
		}
	})
}
