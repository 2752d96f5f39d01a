package loadgen

import (
	"context"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/poll"
)

// fakePlan is a small plan against the given gateways: users × rate for secs.
func fakePlan(gateways []string, users int, rate float64, secs int) Plan {
	return Plan{
		Seed: 5, Gateways: gateways, Secret: testSecret, Users: users, ConnectRate: 1000,
		Traffic:  Traffic{Rate: rate, Pattern: "pairs", PayloadBytes: 40},
		Deadline: Duration(5 * time.Second),
		Phases:   []Phase{{Name: "p", Duration: Duration(time.Duration(secs) * time.Second)}},
	}
}

// runAgent runs an agent on plan to its end (bounded) and returns its result.
func runAgent(t *testing.T, a *Agent) *Result {
	t.Helper()
	return startAgent(t, a)()
}

// runOutcome is what an agent's Run returned.
type runOutcome struct {
	res *Result
	err error
}

// startAgent runs a in the background for 60 s at most; the returned func waits
// for its result, failing the test on an error or if the agent was cut short.
// The test's cleanup stops and waits for an agent it never waited for.
func startAgent(t *testing.T, a *Agent) func() *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	done := make(chan runOutcome, 1)
	go func() {
		res, err := a.Run(ctx)
		done <- runOutcome{res, err}
	}()
	var out *runOutcome
	outcome := func() runOutcome {
		if out == nil {
			o := <-done
			out = &o
		}
		return *out
	}
	t.Cleanup(func() { cancel(); outcome() })
	return func() *Result {
		t.Helper()
		o := outcome()
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.res == nil || o.res.Interrupted {
			t.Fatal("the agent did not finish within 60 s")
		}
		return o.res
	}
}

func newAgent(t *testing.T, plan Plan) *Agent {
	t.Helper()
	a, err := New(Options{Plan: plan, Name: "t", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// assertEveryMessageDelivered fails unless every message sent was acknowledged
// and delivered once, with nothing lost, failed, duplicated or misplaced.
func assertEveryMessageDelivered(t *testing.T, m Counts) {
	t.Helper()
	if m.Sent == 0 || m.Delivered != m.Sent || m.Acked != m.Sent || m.Lost+m.Failed+m.Duplicates+m.Phantom+m.Misdelivered != 0 {
		t.Fatalf("want every message acknowledged and delivered once: %+v", m)
	}
}

// A sender whose SEND is refused (UNAVAILABLE: certainly not stored), or left
// unanswered by a connection that ended (maybe stored), sends it again with the
// same client message id and the same bytes; a store that deduplicates by
// (sender, id) then holds each message once, and nothing is counted failed.
// A store that does not deduplicate shows as duplicates.
func TestSendersRetryWithTheSameID(t *testing.T) {
	tests := []struct {
		name   string
		onSend func(from, id uint64, n int) sendAction
		check  func(t *testing.T, m Counts, ids, sends int)
	}{
		{"refused once each", func(_, _ uint64, n int) sendAction {
			if n == 1 {
				return sendUnavailable
			}
			return sendStore
		}, func(t *testing.T, m Counts, ids, sends int) {
			assertEveryMessageDelivered(t, m)
			if m.Retried != m.Sent || sends != 2*ids {
				t.Fatalf("retried %d of %d sent; the gateway saw %d SENDs of %d identities, want two each", m.Retried, m.Sent, sends, ids)
			}
		}},
		{"stored, unanswered, connection closed", func(_, id uint64, n int) sendAction {
			if n == 1 && id%5 == 0 {
				return sendStoreSilent
			}
			return sendStore
		}, func(t *testing.T, m Counts, ids, sends int) {
			assertEveryMessageDelivered(t, m)
			if m.Retried == 0 || sends <= ids {
				t.Fatalf("retried %d; the gateway saw %d SENDs of %d identities", m.Retried, sends, ids)
			}
		}},
		{"a store without dedupe", func(_, id uint64, n int) sendAction {
			switch {
			case n == 1 && id%5 == 0:
				return sendStoreSilent
			case n > 1:
				return sendStoreTwice
			}
			return sendStore
		}, func(t *testing.T, m Counts, ids, sends int) {
			if m.Duplicates == 0 || m.Delivered != m.Sent || m.Phantom+m.Misdelivered != 0 {
				t.Fatalf("a message stored twice must show as a duplicate: %+v", m)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeGateway(t, func(g *fakeGateway) { g.onSend = tc.onSend })
			res := runAgent(t, newAgent(t, fakePlan([]string{g.addr()}, 20, 100, 2)))
			ids, sends, changed := g.identities()
			t.Logf("messages %+v; gateway: %d identities, %d SENDs", res.Messages, ids, sends)
			if uint64(ids) != res.Messages.Sent {
				t.Fatalf("the gateway saw %d identities, the agent sent %d", ids, res.Messages.Sent)
			}
			if changed != 0 {
				t.Fatalf("%d retries carried other bytes than their first attempt", changed)
			}
			tc.check(t, res.Messages, ids, sends)
		})
	}
}

// Messages the agent never sent, or sent to someone else, or received twice
// under two seqs, are counted as such (phantom, misdelivered, duplicates), never
// as delivered.
func TestAgentCountsWhatTheStoreGotWrong(t *testing.T) {
	g := newFakeGateway(t, nil)
	plan := fakePlan([]string{g.addr()}, 10, 50, 3)
	a := newAgent(t, plan)
	wait := startAgent(t, a)
	var m struct {
		payload  []byte
		from, to uint64
	}
	poll.True(t, 20*time.Second, "a stored message to an online user", func() bool {
		p, to, ok := g.storedMessage()
		m.payload, m.from, m.to = p.Payload, p.From, to
		return ok && g.online() == 10
	})
	other := m.to%10 + 1 // another of the ten users (uids 1..10)
	foreign := append([]byte(nil), m.payload...)
	binary.BigEndian.PutUint64(foreign, binary.BigEndian.Uint64(foreign)^1<<(kBits+2))
	g.inject(m.to, m.from, m.payload)      // the same message again, under a new seq: a duplicate
	g.inject(other, m.from, m.payload)     // to someone else: misdelivered
	g.inject(m.to, m.from, foreign)        // an id this agent never used: phantom
	g.inject(m.to, m.from%10+1, m.payload) // attributed to another sender: phantom
	res := wait()
	c := res.Messages
	t.Logf("messages %+v", c)
	if c.Duplicates != 1 || c.Misdelivered != 1 || c.Phantom != 2 {
		t.Fatalf("duplicates %d, misdelivered %d, phantom %d; want 1, 1, 2", c.Duplicates, c.Misdelivered, c.Phantom)
	}
	if c.Delivered != c.Sent || c.Lost != 0 {
		t.Fatalf("the store's mistakes must not count as deliveries: %+v", c)
	}
}

// A KICK REPLACED on a connection nobody replaced from the agent's side is
// counted, and the user reconnects.
func TestUnexpectedReplaceIsCountedAndTheUserReconnects(t *testing.T) {
	g := newFakeGateway(t, nil)
	plan := fakePlan([]string{g.addr()}, 8, 20, 3)
	a := newAgent(t, plan)
	wait := startAgent(t, a)
	poll.True(t, 20*time.Second, "every user online", func() bool { return g.online() == 8 })
	kicked := g.kickAll()
	res := wait()
	c := res.Messages
	if c.ReplacedUnexpected != uint64(kicked) || res.Reconnects < uint64(kicked) || c.Lost+c.Failed != 0 {
		t.Fatalf("kicked %d: replaced unexpectedly %d, reconnects %d; %+v", kicked, c.ReplacedUnexpected, res.Reconnects, c)
	}
}

// A relogin's old connection kicked REPLACED as the new one logs in measures a
// replace time of about 0 and is not late; one never kicked is late.
func TestReloginMeasuresTheReplacement(t *testing.T) {
	for _, tc := range []struct {
		name   string
		noKick bool
	}{{"kicked", false}, {"never kicked", true}} {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeGateway(t, func(g *fakeGateway) { g.noKick = tc.noKick })
			plan := fakePlan([]string{g.addr()}, 20, 50, 3)
			plan.Behaviour.ReloginPerSec = 10
			zero := 0.0
			plan.Phases = []Phase{{Name: "relogin", Duration: Duration(1500 * time.Millisecond)},
				{Name: "settle", Duration: Duration(2 * time.Second), ReloginPerSec: &zero}}
			res := runAgent(t, newAgent(t, plan))
			c := res.Messages
			rep := res.Latency[TagReplace]
			t.Logf("messages %+v; replace %+v; gateway kicked %d", c, rep, g.kicks())
			if c.Relogins < 5 || c.ReplacedUnexpected != 0 {
				t.Fatalf("relogins %d (want >= 5), replaced unexpectedly %d", c.Relogins, c.ReplacedUnexpected)
			}
			if tc.noKick {
				if c.ReplaceLate != c.Relogins || rep.Count != 0 {
					t.Fatalf("no kicks: replace late %d of %d relogins, %d samples", c.ReplaceLate, c.Relogins, rep.Count)
				}
				return
			}
			if c.ReplaceLate != 0 || rep.Count != int64(c.Relogins) || rep.Max > int64(replaceBound/time.Microsecond) {
				t.Fatalf("kicked at once: replace late %d, %d samples for %d relogins, max %d µs", c.ReplaceLate, rep.Count, c.Relogins, rep.Max)
			}
			assertEveryMessageDelivered(t, c)
		})
	}
}

// On a real gateway a second login of a user kicks the first session REPLACED
// before the new one is answered: every relogin is measured, none is late, and no
// message is lost or doubled while sessions change hands.
func TestReloginOnANodeGateway(t *testing.T) {
	addr := startGateway(t, nil)
	plan := fakePlan([]string{addr}, 50, 200, 3)
	plan.Behaviour.ReloginPerSec = 20
	res := runAgent(t, newAgent(t, plan))
	c := res.Messages
	rep := res.Latency[TagReplace]
	t.Logf("messages %+v; replace %+v", c, rep)
	if c.Relogins < 20 || rep.Count != int64(c.Relogins) || c.ReplaceLate != 0 || c.ReplacedUnexpected != 0 {
		t.Fatalf("relogins %d, replace samples %d, late %d, unexpected %d", c.Relogins, rep.Count, c.ReplaceLate, c.ReplacedUnexpected)
	}
	assertEveryMessageDelivered(t, c)
}

// A memory store that restarts under connected clients starts every inbox again
// at seq 1 in a new incarnation: what it held undelivered is lost (counted lost,
// never as duplicates), and the new incarnation's messages are delivered although
// their seqs are ones the clients already had in the old one.
func TestStoreRestartShowsAsLossNeverAsDuplicates(t *testing.T) {
	g := newFakeGateway(t, nil)
	plan := fakePlan([]string{g.addr()}, 10, 100, 4)
	plan.Deadline = Duration(2 * time.Second)
	a := newAgent(t, plan)
	wait := startAgent(t, a)
	poll.True(t, 20*time.Second, "100 messages stored", func() bool { return g.storedCount() >= 100 })
	g.setHold(true) // stored, not pushed: pending when the store restarts
	held := g.storedCount()
	poll.True(t, 10*time.Second, "30 messages held", func() bool { return g.storedCount() >= held+30 })
	g.restartStore()
	g.setHold(false)
	res := wait()
	c := res.Messages
	t.Logf("messages %+v", c)
	if c.Duplicates+c.Phantom+c.Misdelivered != 0 || c.Lost < 30 || c.Delivered+c.Lost+c.Failed != c.Sent || c.Delivered < c.Sent/2 {
		t.Fatalf("want the held messages lost, the rest delivered, no duplicates: %+v", c)
	}
}

// A gateway that goes silent (it reads but answers nothing, with no FIN or RST)
// is given up by every user within the PONG timeout of a PING, and counted.
func TestUsersLeaveASilentGateway(t *testing.T) {
	g := newFakeGateway(t, nil)
	plan := fakePlan([]string{g.addr()}, 8, 0, 4)
	plan.Heartbeat, plan.PongTimeout = Duration(100*time.Millisecond), Duration(300*time.Millisecond)
	a := newAgent(t, plan)
	wait := startAgent(t, a)
	poll.True(t, 20*time.Second, "every user online", func() bool { return g.online() == 8 })
	g.mu.Lock()
	g.mute = true
	g.mu.Unlock()
	res := wait()
	if res.SilentCloses < 8 {
		t.Fatalf("result %+v: want every one of the 8 users to have left the silent gateway", res)
	}
	if res.SilentCloses > res.Disconnects {
		t.Fatalf("%d silent closes but %d disconnects: a close counted more than once", res.SilentCloses, res.Disconnects)
	}
}
