package router

import (
	"context"
	"testing"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// missingState is a state service that holds no session: every lookup misses at once.
type missingState struct{}

func (missingState) Lookup(context.Context, uint64) (state.Session, bool, error) {
	return state.Session{}, false, nil
}

// The router's request handling (the msg service's feed: msg.RouteMethod carrying a
// stored message) never panics on any method and body from a peer, refuses exactly
// the unknown methods and the bodies that are not a message, and admits the rest.
func FuzzRouterRequests(f *testing.F) {
	r, err := New(Config{Addr: "127.0.0.1:0", Secret: secret, State: missingState{}, Logger: quiet(),
		MaxInFlight: 1024})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(r.cancel)
	f.Add(msg.RouteMethod, msg.AppendMessage(nil, &msg.Message{Seq: 1, Epoch: 2, ID: 3, From: 4, To: 5, Payload: []byte("hi")}))
	f.Add(msg.RouteMethod, msg.AppendMessage(nil, &msg.Message{}))
	f.Add(msg.RouteMethod, msg.AppendMessage(nil, &msg.Message{Seq: 1, Epoch: 2, To: 5, Trace: &msg.Trace{GatewayIn: 1, Stored: 2}}))
	f.Add(msg.RouteMethod, make([]byte, 47))
	f.Add(uint16(0), msg.AppendMessage(nil, &msg.Message{To: 1}))
	f.Add(uint16(1<<16-1), []byte{})
	// The trace bit set (the top bit of the epoch) on a body without the trace.
	f.Add(msg.RouteMethod, append(append(make([]byte, 8), 0xff), make([]byte, 39)...))
	f.Fuzz(func(t *testing.T, method uint16, body []byte) {
		before := testutil.ToFloat64(r.m.received)
		// No peer: a message finished as offline has nobody to settle to.
		_, err := r.handle(context.Background(), &link.Request{Method: method, Body: body, OneWay: true})
		_, derr := msg.DecodeMessage(body) // fuzzed on its own in msg
		wantErr := method != msg.RouteMethod || derr != nil
		if (err != nil) != wantErr {
			t.Fatalf("method %d, body of %d bytes: error %v, want error %v", method, len(body), err, wantErr)
		}
		if got := testutil.ToFloat64(r.m.received) - before; !wantErr && got != 1 {
			t.Fatalf("an accepted message counted %v times as received", got)
		}
	})
}
