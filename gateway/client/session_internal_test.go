package client

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/internal/poll"
)

const (
	epoch1 = 1767225000000000 // a store incarnation: its start time in µs
	epoch2 = epoch1 + 3_000_000
)

// The store restarts under a connected client: its pushes switch to a newer
// incarnation whose seqs start again at 1. The session resets, SYNCs from 0 in
// the new incarnation, delivers its messages once, and acknowledges them with
// the new epoch — never the old incarnation's seqs.
func TestSessionFollowsANewIncarnationMidConnection(t *testing.T) {
	g := newFakeGateway(t)
	var r received
	s, _ := runSession(t, g, &r)
	fc := g.accept()
	fc.login(proto.LoginOK{Epoch: epoch1, LastSeq: 3, Oldest: 1})
	if m := fc.expectSync(); m != (proto.Sync{AfterSeq: 0, Epoch: epoch1}) {
		t.Fatalf("first SYNC %+v", m)
	}
	fc.write(append(pushes(epoch1, 1, 3), (&proto.SyncEnd{UpTo: 3, Head: 3, Oldest: 1, Epoch: epoch1}).Append(nil))...)
	poll.True(t, testWait, "ack of seq 3 in the first incarnation", func() bool {
		return slices.Contains(fc.ackList(), proto.PushAck{Seq: 3, Epoch: epoch1})
	})
	switched := len(fc.ackList())

	// The new incarnation's seq 2 arrives first, then a late push of the old one
	// already delivered, and one it never had.
	fc.write(slices.Concat(pushes(epoch2, 2, 2), pushes(epoch1, 3, 4))...)
	if m := fc.expectSync(); m != (proto.Sync{AfterSeq: 0, Epoch: epoch2}) {
		t.Fatalf("SYNC after the switch %+v, want after_seq 0 of epoch %d", m, uint64(epoch2))
	}
	fc.write(append(pushes(epoch2, 1, 2), (&proto.SyncEnd{UpTo: 2, Head: 2, Oldest: 1, Epoch: epoch2}).Append(nil))...)
	poll.True(t, testWait, "ack of seq 2 in the new incarnation", func() bool {
		return slices.Contains(fc.ackList(), proto.PushAck{Seq: 2, Epoch: epoch2})
	})

	want := [][2]uint64{{epoch1, 1}, {epoch1, 2}, {epoch1, 3}, {epoch1, 4}, {epoch2, 1}, {epoch2, 2}}
	if got := r.keys(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	for _, a := range fc.ackList()[switched:] {
		if a.Epoch != epoch2 || a.Seq > 2 {
			t.Errorf("ack %+v after the switch: want epoch %d, seq <= 2", a, uint64(epoch2))
		}
	}
	if st := s.Stats(); st.Resets != 1 || st.Stale != 1 || st.Duplicates != 2 || s.Epoch() != epoch2 {
		t.Errorf("stats %+v epoch %d", st, s.Epoch())
	}
}

// A SYNC_END the client did not ask for (a gateway that re-registered it after
// a lease loss tells it its window) makes it fetch what it missed — in the same
// incarnation, or from the start of a new one.
func TestSessionUnpromptedSyncEndFetchesWhatWasMissed(t *testing.T) {
	tests := []struct {
		name      string
		end       proto.SyncEnd
		wantAfter uint64
		replay    [][]byte
		want      [][2]uint64
	}{
		{
			name: "same incarnation", end: proto.SyncEnd{Head: 8, Oldest: 1, Epoch: epoch1}, wantAfter: 5,
			replay: pushes(epoch1, 6, 8),
			want:   [][2]uint64{{epoch1, 6}, {epoch1, 7}, {epoch1, 8}},
		},
		{
			name: "new incarnation", end: proto.SyncEnd{Head: 3, Oldest: 1, Epoch: epoch2}, wantAfter: 0,
			replay: pushes(epoch2, 1, 3),
			want:   [][2]uint64{{epoch2, 1}, {epoch2, 2}, {epoch2, 3}},
		},
		{
			name: "same incarnation, some evicted", end: proto.SyncEnd{Head: 9, Oldest: 8, Epoch: epoch1}, wantAfter: 7,
			replay: pushes(epoch1, 8, 9),
			want:   [][2]uint64{{epoch1, 8}, {epoch1, 9}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newFakeGateway(t)
			var r received
			runSession(t, g, &r)
			fc := g.accept()
			fc.login(proto.LoginOK{Epoch: epoch1, LastSeq: 5, Oldest: 1})
			fc.expectSync()
			fc.write(append(pushes(epoch1, 1, 5), (&proto.SyncEnd{UpTo: 5, Head: 5, Oldest: 1, Epoch: epoch1}).Append(nil))...)
			poll.True(t, testWait, "the first 5 delivered", func() bool { return r.count() == 5 })

			fc.write(tt.end.Append(nil))
			m := fc.expectSync()
			if m.AfterSeq != tt.wantAfter || m.Epoch != tt.end.Epoch {
				t.Fatalf("SYNC %+v, want after_seq %d of epoch %d", m, tt.wantAfter, tt.end.Epoch)
			}
			last := tt.replay[len(tt.replay)-1]
			var lp proto.Push
			if err := lp.Decode(last[proto.HeaderSize:]); err != nil {
				t.Fatal(err)
			}
			fc.write(append(tt.replay, (&proto.SyncEnd{UpTo: lp.Seq, Head: tt.end.Head, Oldest: tt.end.Oldest, Epoch: tt.end.Epoch}).Append(nil))...)
			poll.True(t, testWait, "the missed messages delivered", func() bool { return r.count() == 5+len(tt.want) })
			if got := r.keys()[5:]; !slices.Equal(got, tt.want) {
				t.Fatalf("delivered %v, want %v", got, tt.want)
			}
		})
	}
}

// A SEND whose connection drops before its answer is written again, with the
// same client_msg_id, after the session reconnects; the caller gets the one
// msg_id of the answer.
func TestSessionResendsAnUnansweredSendAfterReconnect(t *testing.T) {
	g := newFakeGateway(t)
	s, _ := runSession(t, g, nil)
	fc := g.accept()
	fc.loginAndSync(epoch1)
	res := sendAsync(s, 9, "hello")
	first := fc.expectSend()
	fc.close() // no answer: the outcome is unknown to the client

	fc2 := g.accept()
	fc2.loginAndSync(epoch1)
	again := fc2.expectSend()
	if again.ClientMsgID != first.ClientMsgID || again.To != 9 || string(again.Payload) != "hello" {
		t.Fatalf("resent %+v, first %+v", again, first)
	}
	fc2.write((&proto.SendAck{ClientMsgID: again.ClientMsgID, MsgID: 777}).Append(nil))
	if got := waitResult(t, res); got.err != nil || got.msgID != 777 {
		t.Fatalf("Send = %d, %v; want 777", got.msgID, got.err)
	}
	if st := s.Stats(); st.Resent != 1 || st.Logins != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// What Send does with each ERROR: retry the same id after backoff when the
// message was certainly not stored but may be later, give up when it never
// will be.
func TestSessionSendErrors(t *testing.T) {
	tests := []struct {
		code  proto.Code
		retry bool
	}{
		{proto.CodeUnavailable, true},
		{proto.CodeRateLimited, true},
		{proto.CodeBadRecipient, false},
		{proto.CodePayloadTooLarge, false},
		{proto.Code(59), false}, // a request error the client does not know
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			g := newFakeGateway(t)
			s, _ := runSession(t, g, nil)
			fc := g.accept()
			fc.loginAndSync(epoch1)
			res := sendAsync(s, 9, "hello")
			m := fc.expectSend()
			fc.write(proto.AppendError(nil, tt.code, m.ClientMsgID, ""))
			if !tt.retry {
				got := waitResult(t, res)
				se, ok := errors.AsType[*ServerError](got.err)
				if !ok || se.Code != tt.code || se.Ref != m.ClientMsgID {
					t.Fatalf("Send = %d, %v; want a ServerError %v", got.msgID, got.err, tt.code)
				}
				return
			}
			again := fc.expectSend()
			if again.ClientMsgID != m.ClientMsgID {
				t.Fatalf("retried with id %d, want %d", again.ClientMsgID, m.ClientMsgID)
			}
			fc.write((&proto.SendAck{ClientMsgID: m.ClientMsgID, MsgID: 42}).Append(nil))
			if got := waitResult(t, res); got.err != nil || got.msgID != 42 {
				t.Fatalf("Send = %d, %v; want 42", got.msgID, got.err)
			}
		})
	}
}

// A payload above the limit LOGIN_OK announced is refused by the client itself:
// writing it would get the connection kicked, and the retry kicked again.
func TestSessionRefusesAPayloadAboveTheAnnouncedLimit(t *testing.T) {
	g := newFakeGateway(t)
	s, _ := runSession(t, g, nil)
	fc := g.accept()
	fc.login(proto.LoginOK{Epoch: epoch1, MaxPayload: 4})
	fc.expectSync()
	got := waitResult(t, sendAsync(s, 9, "hello"))
	if se, ok := errors.AsType[*ServerError](got.err); !ok || se.Code != proto.CodePayloadTooLarge {
		t.Fatalf("Send = %v, want PAYLOAD_TOO_LARGE", got.err)
	}
	sendAsync(s, 9, "hi")
	if m := fc.expectSend(); string(m.Payload) != "hi" {
		t.Fatalf("the next SEND carries %q", m.Payload)
	}
}

// At most 256 SENDs are unanswered on a connection; the rest wait for answers.
func TestSessionLeavesAtMost256SendsUnanswered(t *testing.T) {
	g := newFakeGateway(t)
	s, _ := runSession(t, g, nil)
	fc := g.accept()
	fc.loginAndSync(epoch1)
	const total = 300
	results := make([]<-chan sendResult, total)
	for i := range results {
		results[i] = sendAsync(s, 9, fmt.Sprint(i))
	}
	var ids []uint64
	for range maxUnanswered {
		ids = append(ids, fc.expectSend().ClientMsgID)
	}
	poll.True(t, testWait, "every send queued", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.sends) == total
	})
	s.mu.Lock()
	inflight, queued := s.inflight, s.queued
	s.mu.Unlock()
	if inflight != maxUnanswered || queued != total-maxUnanswered {
		t.Fatalf("%d unanswered and %d waiting, want %d and %d", inflight, queued, maxUnanswered, total-maxUnanswered)
	}
	for _, id := range ids {
		fc.write((&proto.SendAck{ClientMsgID: id, MsgID: id}).Append(nil))
	}
	for range total - maxUnanswered {
		id := fc.expectSend().ClientMsgID
		fc.write((&proto.SendAck{ClientMsgID: id, MsgID: id}).Append(nil))
	}
	seen := map[uint64]bool{}
	for _, ch := range results {
		r := waitResult(t, ch)
		if r.err != nil || seen[r.msgID] {
			t.Fatalf("Send = %d, %v (duplicate id: %v)", r.msgID, r.err, seen[r.msgID])
		}
		seen[r.msgID] = true
	}
}

// After a RATE_LIMITED the session writes no SEND until the refused one may be
// retried (PROTOCOL.md §7.5): answers that free its window do not let the queue
// behind it out, so a long queue is paced by the server's rate rather than
// refused window after window.
func TestSessionPausesItsQueueAfterRateLimited(t *testing.T) {
	g := newFakeGateway(t)
	s, _ := runSession(t, g, nil)
	s.mu.Lock()
	s.cfg.Backoff = Backoff{Base: 2 * time.Second, Max: 2 * time.Second, Jitter: 0.1} // a retry 1.8–2 s away
	s.mu.Unlock()
	fc := g.accept()
	fc.loginAndSync(epoch1)
	const total = 300
	for i := range total {
		sendAsync(s, 9, fmt.Sprint(i))
	}
	var ids []uint64
	for range maxUnanswered {
		ids = append(ids, fc.expectSend().ClientMsgID)
	}
	fc.write(proto.AppendError(nil, proto.CodeRateLimited, ids[0], ""))
	for _, id := range ids[1:] {
		fc.write((&proto.SendAck{ClientMsgID: id, MsgID: id}).Append(nil))
	}
	poll.True(t, testWait, "every answer taken", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.sends) == total-maxUnanswered+1
	})
	s.mu.Lock()
	inflight, refused := s.inflight, s.sends[ids[0]].retryAt
	var early int
	for _, p := range s.sends {
		if p.retryAt.Before(refused) {
			early++
		}
	}
	s.mu.Unlock()
	if inflight != 0 || early != 0 {
		t.Fatalf("%d SENDs written and %d due before the refused one after RATE_LIMITED, want 0 and 0", inflight, early)
	}
	if m := fc.expectSend(); m.ClientMsgID != ids[0] {
		t.Fatalf("first SEND after the pause is %d, want the refused %d", m.ClientMsgID, ids[0])
	}
}

// KICK REPLACED and AUTH end Run; BUSY (including BACKEND_UNAVAILABLE), SLOW
// and DRAIN are followed by a reconnect.
func TestSessionKicks(t *testing.T) {
	tests := []struct {
		reason  proto.Reason
		code    proto.Code
		returns bool
	}{
		{proto.ReasonReplaced, proto.CodeSessionReplaced, true},
		{proto.ReasonAuth, proto.CodeTokenExpired, true},
		{proto.ReasonBusy, proto.CodeBackendUnavailable, false},
		{proto.ReasonBusy, proto.CodeServerFull, false},
		{proto.ReasonSlow, proto.CodeSlowConsumer, false},
		{proto.ReasonDrain, proto.CodeDraining, false},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			g := newFakeGateway(t)
			s, runErr := runSession(t, g, nil)
			fc := g.accept()
			fc.loginAndSync(epoch1)
			fc.write(proto.AppendKick(nil, tt.reason, tt.code, 10, "bye"))
			fc.close()
			if !tt.returns {
				fc2 := g.accept()
				fc2.loginAndSync(epoch1)
				poll.True(t, testWait, "logged in again", func() bool { return s.Stats().Logins == 2 })
				return
			}
			select {
			case err := <-runErr:
				if k, ok := errors.AsType[*KickError](err); !ok || k.Reason != tt.reason || k.Code != tt.code {
					t.Fatalf("Run = %v, want the KICK", err)
				}
			case <-g.accepted:
				t.Fatal("the session reconnected")
			case <-time.After(testWait):
				t.Fatal("Run did not return")
			}
			if _, err := s.Send(t.Context(), 9, 0, nil); !errors.Is(err, ErrSessionClosed) {
				t.Fatalf("Send after Run returned: %v", err)
			}
		})
	}
}

// A replay of 256 messages written at once costs a handful of PUSH_ACKs, the
// last of which covers it all.
func TestSessionBatchesAcks(t *testing.T) {
	g := newFakeGateway(t)
	var r received
	runSession(t, g, &r)
	fc := g.accept()
	fc.login(proto.LoginOK{Epoch: epoch1, LastSeq: 256, Oldest: 1})
	fc.expectSync()
	fc.write(append(pushes(epoch1, 1, 256), (&proto.SyncEnd{UpTo: 256, Head: 256, Oldest: 1, Epoch: epoch1}).Append(nil))...)
	poll.True(t, testWait, "ack of the whole replay", func() bool {
		return slices.Contains(fc.ackList(), proto.PushAck{Seq: 256, Epoch: epoch1})
	})
	if n := len(fc.ackList()); n > 256/ackEvery+8 {
		t.Fatalf("%d acks for 256 messages", n)
	}
	// OnMessage runs after the frame's acks are written (outside the lock).
	poll.True(t, testWait, "all 256 delivered", func() bool { return r.count() == 256 })
}

// A SYNC answered with ERROR UNAVAILABLE is asked again after GapWait.
func TestSessionRetriesARefusedSync(t *testing.T) {
	g := newFakeGateway(t)
	var r received
	runSession(t, g, &r)
	fc := g.accept()
	fc.login(proto.LoginOK{Epoch: epoch1, LastSeq: 2, Oldest: 1})
	fc.expectSync()
	fc.write(proto.AppendError(nil, proto.CodeUnavailable, 0, "store unreachable"))
	if m := fc.expectSync(); m != (proto.Sync{Epoch: epoch1}) {
		t.Fatalf("SYNC again %+v", m)
	}
	fc.write(append(pushes(epoch1, 1, 2), (&proto.SyncEnd{UpTo: 2, Head: 2, Oldest: 1, Epoch: epoch1}).Append(nil))...)
	poll.True(t, testWait, "both delivered", func() bool { return r.count() == 2 })
}

// A gateway that goes silent — it stops answering, with no FIN or RST, as a host
// that vanished — is given up and the session reconnects: after PongTimeout
// without a frame following a PING, or after the idle timeout LOGIN_OK announced
// without any frame.
func TestSessionLeavesASilentGateway(t *testing.T) {
	tests := []struct {
		name   string
		ok     proto.LoginOK
		pong   time.Duration
		within time.Duration // the reconnect comes no sooner than this after LOGIN_OK
	}{
		{"no PONG after a PING", proto.LoginOK{Epoch: epoch1, HeartbeatMS: 50, IdleTimeoutMS: 60_000}, 300 * time.Millisecond, 300 * time.Millisecond},
		{"nothing for the idle timeout", proto.LoginOK{Epoch: epoch1, HeartbeatMS: 60_000, IdleTimeoutMS: 400}, time.Minute, 400 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newFakeGateway(t)
			s, _ := runSessionWith(t, g, nil, func(c *SessionConfig) { c.PongTimeout = tt.pong })
			fc := g.accept()
			fc.login(tt.ok)
			fc.expectSync()
			loggedIn := time.Now()
			// The fake answers nothing more: no SYNC_END, no PONG.
			g.accept()
			if d := time.Since(loggedIn); d < tt.within {
				t.Fatalf("reconnected %v after LOGIN_OK, before the gateway could be silent for %v", d, tt.within)
			}
			if st := s.Stats(); st.Silent != 1 {
				t.Fatalf("Silent = %d, want 1", st.Silent)
			}
		})
	}
}
