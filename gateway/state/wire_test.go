package state

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
)

func TestSessionEncodingRoundTrips(t *testing.T) {
	for _, s := range []Session{
		{},
		{UID: 1, Gateway: "gw-1", Conn: 2, Epoch: 3},
		{UID: 1<<64 - 1, Gateway: "a gateway id with spaces and ünïcode", Conn: 1<<64 - 1, Epoch: 1<<63 + 1},
	} {
		b := appendSession(nil, s)
		if len(b) != sessionHeader+len(s.Gateway) {
			t.Fatalf("%+v encodes to %d bytes", s, len(b))
		}
		if got, err := decodeSession(b); err != nil || got != s {
			t.Fatalf("%+v decodes to %+v, %v", s, got, err)
		}
	}
	if _, err := decodeSession(make([]byte, sessionHeader-1)); err == nil {
		t.Fatal("a short session body decoded")
	}
}

func TestLookupEncodingRoundTrips(t *testing.T) {
	s := Session{UID: 9, Gateway: "gw-9", Conn: 99, Epoch: 999}
	for _, tc := range []struct {
		st   LookupStatus
		want Session
		size int
	}{
		{LookupMiss, Session{}, 1},
		{LookupHit, s, 17 + len(s.Gateway)},
		{LookupInvalid, s, 17 + len(s.Gateway)},
	} {
		b := appendLookup(nil, s, tc.st)
		if len(b) != tc.size {
			t.Fatalf("%v: %d bytes, want %d", tc.st, len(b), tc.size)
		}
		got, st, err := decodeLookup(9, b)
		if err != nil || st != tc.st || got != tc.want {
			t.Fatalf("%v decodes to %v %+v %v", tc.st, st, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {byte(LookupHit)}, {7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, err := decodeLookup(1, bad); err == nil {
			t.Errorf("lookup response %v decoded", bad)
		}
	}
}

// A snapshot carries remaining lease time, which the receiver re-bases on its own
// clock: a receiver whose clock runs an hour ahead still sees the lease live for the
// same remaining time, and a dead lease stays dead.
func TestSnapshotRebasesExpiryOnTheReceiversClock(t *testing.T) {
	sent := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	recv := sent.Add(time.Hour) // skewed receiver
	gws := []Gateway{
		{ID: "live", Epoch: 1, Expires: sent.Add(3 * time.Second), Load: Load{Conns: 5}},
		{ID: "dead", Epoch: 2, Expires: sent.Add(-time.Second)},
	}
	got, err := decodeSnapshot(encodeSnapshot(gws, sent), recv)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Expires != recv.Add(3*time.Second) || got[0].Load.Conns != 5 || got[0].Epoch != 1 {
		t.Fatalf("live gateway decoded as %+v", got[0])
	}
	if got[1].Live(recv) {
		t.Fatalf("dead gateway decoded live: %+v", got[1])
	}
	// A receiver whose clock runs behind must not revive it either.
	got, _ = decodeSnapshot(encodeSnapshot(gws, sent), sent.Add(-time.Hour))
	if got[1].Live(sent.Add(-time.Hour)) {
		t.Fatalf("dead gateway live on a slow clock: %+v", got[1])
	}
}

func TestErrorsSurviveTheWire(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
		is   error
	}{
		{fmt.Errorf("register: %w", ErrLeaseLost), codeLeaseLost, ErrLeaseLost},
		{fmt.Errorf("drain: %w", ErrUnknownGateway), codeUnknownGateway, ErrUnknownGateway},
		{fmt.Errorf("%w: short body", errBadRequest), codeBadRequest, nil},
		{errors.New("redis: connection refused"), codeInternal, nil},
	} {
		// What the link carries is the error's text.
		got := fromWire(fmt.Errorf("call: %w", &link.RemoteError{Msg: toWire(tc.err).Error()}))
		var re *RemoteError
		if !errors.As(got, &re) || re.Code != tc.code || re.Msg != tc.err.Error() {
			t.Fatalf("%v came back as %#v", tc.err, got)
		}
		if tc.is != nil && !errors.Is(got, tc.is) {
			t.Fatalf("%v: errors.Is(%v) is false", tc.err, tc.is)
		}
		if errors.Is(got, ErrLeaseLost) != errors.Is(tc.err, ErrLeaseLost) {
			t.Fatalf("%v: lease-lost mismatch", tc.err)
		}
	}
	if err := fromWire(link.ErrUnavailable); err != link.ErrUnavailable {
		t.Fatalf("a link error was rewritten: %v", err)
	}
}

// Takeover bodies round-trip, and no input makes decodeTakeover panic or accept a
// body whose parts do not re-encode to it.
func FuzzDecodeTakeover(f *testing.F) {
	prev := Session{UID: 7, Gateway: "gw-a", Conn: 1, Epoch: 2}
	by := Session{UID: 7, Gateway: "gw-b", Conn: 5, Epoch: 9}
	f.Add(appendTakeover(nil, prev, by))
	f.Add(appendTakeover(nil, Session{}, Session{}))
	f.Add([]byte{0, 200, 1, 2, 3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, q, err := decodeTakeover(b)
		if err != nil {
			return
		}
		if re := appendTakeover(nil, p, q); string(re) != string(b) {
			t.Fatalf("% x decodes to %+v, %+v, which encode to % x", b, p, q, re)
		}
	})
}

// Reregister batches round-trip, refuse to mix gateways or epochs, and no input
// makes decodeReregisterBatch panic or accept a body that does not re-encode to it.
func FuzzDecodeReregisterBatch(f *testing.F) {
	ss := []Session{{UID: 1, Gateway: "gw-a", Conn: 2, Epoch: 3}, {UID: 4, Gateway: "gw-a", Conn: 5, Epoch: 3}}
	good, err := appendReregisterBatch(nil, ss)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := appendReregisterBatch(nil, append(ss, Session{UID: 6, Gateway: "gw-b", Epoch: 3})); err == nil {
		f.Fatal("a batch mixing gateways encoded")
	}
	f.Add(good)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 9})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeReregisterBatch(b)
		if err != nil {
			return
		}
		re, err := appendReregisterBatch(nil, got)
		if err != nil || string(re) != string(b) {
			t.Fatalf("% x decodes to %+v, which encodes to % x (%v)", b, got, re, err)
		}
	})
}
