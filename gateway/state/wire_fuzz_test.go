package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
)

// Session bodies (Register, Reregister, Unregister requests; the Register reply
// after its flags byte) round-trip, and no input makes decodeSession panic or
// accept a body that does not re-encode to itself.
func FuzzDecodeSession(f *testing.F) {
	f.Add(appendSession(nil, Session{UID: 1, Gateway: "gw-1", Conn: 2, Epoch: 3}))
	f.Add(appendSession(nil, Session{}))
	f.Add(appendSession(nil, Session{UID: 1<<64 - 1, Gateway: "ünïcode \x00\xff", Conn: 1<<64 - 1, Epoch: 1 << 63}))
	f.Add(make([]byte, sessionHeader-1))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSession(b)
		if err != nil {
			if len(b) >= sessionHeader {
				t.Fatalf("% x (%d bytes) refused: %v", b, len(b), err)
			}
			return
		}
		if again := appendSession(nil, s); !bytes.Equal(again, b) {
			t.Fatalf("% x decodes to %+v, which encodes to % x", b, s, again)
		}
	})
}

// Lookup replies round-trip, and no input makes decodeLookup panic, accept an
// unknown status, or accept a reply that does not re-encode to itself.
func FuzzDecodeLookup(f *testing.F) {
	s := Session{UID: 9, Gateway: "gw-9", Conn: 99, Epoch: 999}
	for _, st := range []LookupStatus{LookupMiss, LookupHit, LookupInvalid} {
		f.Add(uint64(9), appendLookup(nil, s, st))
	}
	f.Add(uint64(1), []byte{byte(LookupHit)})
	f.Add(uint64(1), append([]byte{7}, make([]byte, 16)...))
	f.Add(uint64(0), []byte{})
	f.Fuzz(func(t *testing.T, uid uint64, b []byte) {
		got, st, err := decodeLookup(uid, b)
		if err != nil {
			return
		}
		if st != LookupMiss && st != LookupHit && st != LookupInvalid {
			t.Fatalf("% x decodes to status %d", b, st)
		}
		if st != LookupMiss && got.UID != uid {
			t.Fatalf("% x decodes to uid %d for %d", b, got.UID, uid)
		}
		if again := appendLookup(nil, got, st); !bytes.Equal(again, b) {
			t.Fatalf("% x decodes to %v %+v, which encodes to % x", b, st, got, again)
		}
	})
}

// sameGateways reports whether a and b list the same gateways, comparing expiry
// instants (not their time zones).
func sameGateways(a, b []Gateway) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.Expires.Equal(y.Expires) {
			return false
		}
		x.Expires, y.Expires = time.Time{}, time.Time{}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// Snapshots (the Gateways reply and the MethodSnapshot notification) never make
// decodeSnapshot panic, and what it accepts re-encodes at the same instant to a
// snapshot that decodes to the same table, lease liveness included.
func FuzzDecodeSnapshot(f *testing.F) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f.Add(encodeSnapshot([]Gateway{
		{ID: "live", Addr: "127.0.0.1:7000", LinkAddr: "127.0.0.1:7001", WSAddr: "127.0.0.1:7080", Epoch: 1, Expires: now.Add(3 * time.Second), Load: Load{Conns: 5, CPU: 0.5}},
		{ID: "dead", Epoch: 2, Expires: now.Add(-time.Second), Draining: true},
	}, now))
	f.Add(encodeSnapshot(nil, now))
	f.Add([]byte(`{"gateways":[{"id":"x","expires":"9999-12-31T23:59:59Z","remaining_ns":-5}]}`))
	f.Add([]byte(`{"gateways":[{"remaining_ns":9223372036854775807}]}`))
	f.Add([]byte(`{"gateways":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		gws, err := decodeSnapshot(b, now)
		if err != nil {
			return
		}
		again, err := decodeSnapshot(encodeSnapshot(gws, now), now)
		if err != nil || !sameGateways(gws, again) {
			t.Fatalf("%s decodes to %+v, which re-decodes to %+v (%v)", b, gws, again, err)
		}
	})
}

// The JSON request bodies of the lease methods never make the server's decoding
// panic, and what it accepts re-encodes to a body that decodes to the same request.
func FuzzDecodeLeaseRequests(f *testing.F) {
	f.Add(byte(0), mustJSON(acquireRequest{Gateway: Gateway{ID: "gw-1", Addr: "127.0.0.1:7000", Expires: time.Unix(1, 5).UTC()}, TTL: time.Second}))
	f.Add(byte(1), mustJSON(renewRequest{ID: "gw-1", Epoch: 3, Load: Load{Conns: 1, AcceptRate: 2.5}, TTL: time.Second}))
	f.Add(byte(2), mustJSON(releaseRequest{ID: "gw-1", Epoch: 3}))
	f.Add(byte(3), mustJSON(drainingRequest{ID: "gw-1", Draining: true}))
	f.Add(byte(0), []byte(`{"gateway":{"expires":"2026-01-01T12:00:00+05:30"},"ttl_ns":1}`))
	f.Add(byte(1), []byte(`{"load":{"cpu":1e308,"conns":-1}}`))
	f.Add(byte(2), []byte(`{"epoch":-1}`))
	f.Fuzz(func(t *testing.T, which byte, b []byte) {
		var v, again any
		switch which % 4 {
		case 0:
			v, again = new(acquireRequest), new(acquireRequest)
		case 1:
			v, again = new(renewRequest), new(renewRequest)
		case 2:
			v, again = new(releaseRequest), new(releaseRequest)
		default:
			v, again = new(drainingRequest), new(drainingRequest)
		}
		if err := decodeJSON(b, v); err != nil {
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("%s: error %v is not a bad request", b, err)
			}
			return
		}
		re, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s decodes to %+v, which does not encode: %v", b, v, err)
		}
		if err := decodeJSON(re, again); err != nil || !sameRequest(v, again) {
			t.Fatalf("%s decodes to %+v, which re-decodes to %+v (%v)", b, v, again, err)
		}
	})
}

// sameRequest compares two decoded lease requests, expiry instants by Equal.
func sameRequest(a, b any) bool {
	if x, ok := a.(*acquireRequest); ok {
		y := b.(*acquireRequest)
		return x.TTL == y.TTL && sameGateways([]Gateway{x.Gateway}, []Gateway{y.Gateway})
	}
	return reflect.DeepEqual(a, b)
}

// The server's request handling never panics on any method and body from a peer,
// and answers a malformed body with a bad-request error: session bodies shorter
// than a session, lookups other than 8 bytes, JSON that does not parse.
func FuzzServerRequests(f *testing.F) {
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Secret: []byte("fuzz-secret"),
		Store: NewMemory(MemoryConfig{}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	ses := Session{UID: 5, Gateway: "gw-1", Conn: 6, Epoch: 1}
	f.Add(MethodAcquire, false, mustJSON(acquireRequest{Gateway: Gateway{ID: "gw-1"}, TTL: time.Minute}))
	f.Add(MethodRenew, false, mustJSON(renewRequest{ID: "gw-1", Epoch: 1, TTL: time.Minute}))
	f.Add(MethodRelease, false, mustJSON(releaseRequest{ID: "gw-1", Epoch: 1}))
	f.Add(MethodSetDraining, false, mustJSON(drainingRequest{ID: "gw-1", Draining: true}))
	f.Add(MethodGateways, false, []byte{})
	f.Add(MethodRegister, false, appendSession(nil, ses))
	f.Add(MethodReregister, false, appendSession(nil, ses))
	f.Add(MethodUnregister, false, appendSession(nil, ses))
	f.Add(MethodLookup, false, binary.BigEndian.AppendUint64(nil, 5))
	batch, _ := appendReregisterBatch(nil, []Session{ses})
	f.Add(MethodReregisterBatch, false, batch)
	f.Add(MethodKicked, true, appendTakeover(nil, ses, Session{UID: 5, Gateway: "gw-2", Conn: 1, Epoch: 2}))
	f.Add(MethodKicked, true, []byte{0xff, 0xff})
	f.Add(MethodRegister, false, []byte{1, 2})
	f.Add(uint16(999), false, []byte("?"))
	peer := &link.Peer{}
	f.Fuzz(func(t *testing.T, method uint16, oneWay bool, body []byte) {
		if method == MethodWatch {
			return // registers the peer for pushes: nothing to decode
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := srv.handle(ctx, &link.Request{Peer: peer, Method: method, Body: body, OneWay: oneWay})
		if oneWay && method == MethodKicked {
			if err != nil {
				t.Fatalf("a kicked notification was answered: %v", err)
			}
			return
		}
		malformed := false
		switch method {
		case MethodRegister, MethodReregister, MethodUnregister:
			malformed = len(body) < sessionHeader
		case MethodLookup:
			malformed = len(body) != 8
		case MethodAcquire, MethodRenew, MethodRelease, MethodSetDraining:
			malformed = !json.Valid(body)
		}
		var we *wireError
		if malformed && (!errors.As(err, &we) || we.code != codeBadRequest) {
			t.Fatalf("method %d, malformed body % x: answered %v, want a bad request", method, body, err)
		}
	})
}
