package loadgen

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
)

// FuzzFirstReceipt: whatever a PUSH carries (payload, claimed sender), its first
// receipt never panics and lands in exactly one count: delivered, late, duplicate,
// phantom, misdelivered, or a protocol error (a payload too short for the header).
func FuzzFirstReceipt(f *testing.F) {
	seed := func(id uint64, intended int64, from uint64) []byte {
		p := make([]byte, MinPayload)
		binary.BigEndian.PutUint64(p[0:], id)
		binary.BigEndian.PutUint64(p[8:], uint64(intended))
		binary.BigEndian.PutUint64(p[16:], from)
		return p
	}
	f.Add(seed(testBase|1, 100, 1), uint64(1), uint8(1))         // a message as sent: delivered
	f.Add(seed(testBase|1, 100, 1), uint64(1), uint8(2))         // at another user: misdelivered
	f.Add(seed(1, 100, 1), uint64(1), uint8(1))                  // another agent's id: phantom
	f.Add(seed(testBase|1, 100, 1), uint64(2), uint8(1))         // claimed by another sender: phantom
	f.Add(seed(testBase|99, 100, 3), uint64(3), uint8(1))        // a number never handed out: phantom
	f.Add([]byte{1, 2, 3}, uint64(1), uint8(1))                  // too short
	f.Add(seed(testBase|1, 100, 1<<63), uint64(1<<63), uint8(0)) // a uid far outside the agent's
	f.Fuzz(func(t *testing.T, payload []byte, from uint64, to uint8) {
		m, err := newMeters(nil, time.Now(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		a := &Agent{ledger: newLedger(0, testBase), meters: m, gwPush: newGatewayPush(nil)}
		for i := range 4 {
			a.users = append(a.users, &user{uid: uint64(i + 1), idx: int32(i)})
		}
		a.ledger.add(100, 0, 1, nil) // k 1: uid 1 → uid 2
		a.ledger.add(200, 1, 2, nil) // k 2: uid 2 → uid 3
		u := a.users[int(to)%len(a.users)]
		before := a.ledger.c
		protoErrors := a.protoErrors
		a.firstReceipt(u, &proto.Push{Seq: 1, Epoch: 1, From: from, Payload: payload}, 1000)
		d := a.ledger.c.Sub(before)
		moved := d.Delivered + d.Late + d.Duplicates + d.Phantom + d.Misdelivered + (a.protoErrors - protoErrors)
		if moved != 1 {
			t.Fatalf("one receipt moved %d counts: %+v", moved, d)
		}
	})
}
