package gwlink

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
)

// Push bodies round-trip, and no input makes DecodePush panic or accept a body that
// does not re-encode to itself.
func FuzzDecodePush(f *testing.F) {
	f.Add(AppendPush(nil, 7, &msg.Message{Seq: 1, Epoch: 2, ID: 3, From: 4, To: 5, ClientTS: -6, Payload: []byte("hi")}))
	f.Add(AppendPush(nil, 1<<64-1, &msg.Message{}))
	f.Add(AppendPush(nil, 0, &msg.Message{Payload: bytes.Repeat([]byte{0xee}, 1000)}))
	f.Add(make([]byte, 8+47)) // one byte short of an empty message
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		conn, m, err := DecodePush(b)
		if err != nil {
			return
		}
		if again := AppendPush(nil, conn, &m); !bytes.Equal(again, b) {
			t.Fatalf("% x decodes to conn %d %+v, which encodes to % x", b, conn, m, again)
		}
	})
}

// A drain request body, as the gateway decodes it (JSON, then Validate), never
// panics, and one that validates re-encodes to a body that decodes to the same
// request; drain statuses (what control decodes) round-trip the same way.
func FuzzDecodeDrainBodies(f *testing.F) {
	f.Add(Marshal(DrainRequest{Batch: 100, Interval: time.Second, RetryAfter: 2 * time.Second}))
	f.Add(Marshal(DrainStatus{Sessions: 12345, Started: true}))
	f.Add([]byte(`{"batch":-1,"interval_ns":0}`))
	f.Add([]byte(`{"batch":1e30}`))
	f.Add([]byte(`{"Batch":1,"INTERVAL_NS":5,"retry_after_ns":9223372036854775807}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var dr DrainRequest
		if json.Unmarshal(b, &dr) == nil && dr.Validate() == nil {
			var again DrainRequest
			if err := json.Unmarshal(Marshal(dr), &again); err != nil || again != dr {
				t.Fatalf("%s decodes to %+v, which re-decodes to %+v (%v)", b, dr, again, err)
			}
		}
		var st DrainStatus
		if json.Unmarshal(b, &st) == nil {
			var again DrainStatus
			if err := json.Unmarshal(Marshal(st), &again); err != nil || again != st {
				t.Fatalf("%s decodes to %+v, which re-decodes to %+v (%v)", b, st, again, err)
			}
		}
	})
}
