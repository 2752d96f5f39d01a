package webchat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/internal/headless"
)

// sessionHarness drives the page's compose form like a user and resolves
// window.headlessDone, once the page gives up for good, to what it shows: the
// received texts, the sent ones with their marks, and its notes (kicks).
const sessionHarness = `<script>
(function(){
var st = document.getElementById('status'), list = document.getElementById('messages'), step = 0;
function submit(text){ document.getElementById('to').value = '7'; document.getElementById('text').value = text; document.getElementById('compose').requestSubmit(); }
function texts(sel){ return Array.prototype.map.call(list.querySelectorAll(sel), function(li){ return li.children[1].textContent + (li.children[2].textContent ? ' ' + li.children[2].textContent : ''); }); }
window.headlessDone = new Promise(function(ok){
  var obs = new MutationObserver(function(){
    var s = st.textContent, outs = list.querySelectorAll('li.out');
    if (step === 0 && /logged in/.test(s)) { step = 1; submit('out-1'); }
    if (step === 1 && outs.length === 1 && outs[0].textContent.indexOf('✓') >= 0) { step = 2; submit('out-2'); }
    if (/disconnected for good/.test(s)) {
      obs.disconnect();
      ok(JSON.stringify({in: texts('li.in'), out: texts('li.out'), notes: Array.prototype.map.call(list.querySelectorAll('li.note'), function(li){ return li.textContent; })}));
    }
  });
  obs.observe(document.body, {subtree: true, childList: true, characterData: true});
});
})();
</script>`

// openWithHarness writes the page with harness appended into a new directory
// and opens it in headless Chromium with query.
func openWithHarness(t *testing.T, harness, query string) headless.Result {
	t.Helper()
	p := strings.Replace(string(Page()), "</body>", harness+"</body>", 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "chat.html"), []byte(p), 0o644); err != nil {
		t.Fatal(err)
	}
	return headless.Open(t, dir, "chat.html?"+query, 30*time.Second)
}

// The page's session against a scripted gateway, two connections long: LOGIN
// first; SYNC after LOGIN_OK; replayed and live PUSHes delivered once each in
// seq order, a gap filled by SYNC, acks cumulative and never above a gap; a SEND
// refused UNAVAILABLE resent unchanged; after KICK SHUTDOWN a reconnect that
// acks then SYNCs and resends the unanswered SEND with its client_msg_id; after
// KICK REPLACED no reconnect, and both kicks shown.
func TestPageSessionAgainstScriptedGateway(t *testing.T) {
	headless.Binary(t)
	g := startFakeGateway(t)
	const epoch = uint64(1767225000000000)
	push := func(seq uint64, text string) []byte {
		return (&proto.Push{Seq: seq, Epoch: epoch, MsgID: 1000 + seq, From: 7, ClientTS: 1, Payload: []byte(text)}).Append(nil)
	}
	loginOK := func(last uint64) []byte {
		return (&proto.LoginOK{Session: 1, Epoch: epoch, LastSeq: last, Oldest: 1, HeartbeatMS: 60000, IdleTimeoutMS: 180000,
			MaxFrame: 65536, MaxPayload: 65495}).Append(nil)
	}
	syncEnd := func(upTo, head uint64) []byte {
		return (&proto.SyncEnd{UpTo: upTo, Head: head, Oldest: 1, Epoch: epoch}).Append(nil)
	}
	expectSync := func(s *script, c *fakeConn, after uint64) {
		var y proto.Sync
		if err := y.Decode(c.expect(s, proto.TypeSync).Body); err != nil || y.AfterSeq != after || y.Epoch != epoch {
			s.Fatalf("SYNC %+v (%v), want after %d of epoch %d", y, err, after, epoch)
		}
	}
	expectSend := func(s *script, c *fakeConn, text string) proto.Send {
		var m proto.Send
		if err := m.Decode(c.expect(s, proto.TypeSend).Body); err != nil || m.To != 7 || string(m.Payload) != text || m.ClientMsgID == 0 {
			s.Fatalf("SEND %+v (%v), want %q to 7", m, err, text)
		}
		return m
	}
	sc := runScript(func(s *script) {
		c := g.next(s)
		var l proto.Login
		if err := l.Decode(c.expect(s, proto.TypeLogin).Body); err != nil || l.UID != 42 || string(l.Token) != "tok-42" || l.Version != proto.Version {
			s.Fatalf("LOGIN %+v (%v)", l, err)
		}
		c.write(s, loginOK(0))
		expectSync(s, c, 0)
		c.write(s, push(1, "m1"), push(2, "m2"), syncEnd(2, 2))
		c.expectAckUpTo(s, 2, epoch)

		first := expectSend(s, c, "out-1")
		c.write(s, (&proto.Error{Code: proto.CodeUnavailable, Ref: first.ClientMsgID}).Append(nil))
		again := expectSend(s, c, "out-1")
		if again.ClientMsgID != first.ClientMsgID || again.ClientTS != first.ClientTS {
			s.Fatalf("resend %+v differs from the SEND %+v", again, first)
		}
		c.write(s, (&proto.SendAck{ClientMsgID: first.ClientMsgID, MsgID: 99}).Append(nil))

		c.write(s, push(4, "m4")) // a gap at 3: the page must SYNC after 2
		expectSync(s, c, 2)
		c.write(s, push(3, "m3"), push(4, "m4"), syncEnd(4, 4))
		c.expectAckUpTo(s, 4, epoch)

		second := expectSend(s, c, "out-2") // left unanswered: the kick makes its outcome unknown
		c.kick(s, proto.ReasonShutdown, proto.CodeShuttingDown, 100, 1001)

		c = g.next(s)
		if err := l.Decode(c.expect(s, proto.TypeLogin).Body); err != nil || l.UID != 42 {
			s.Fatalf("second LOGIN %+v (%v)", l, err)
		}
		if len(c.queued) != 0 {
			s.Fatalf("frames %v pipelined behind LOGIN", c.queuedTypes())
		}
		c.write(s, loginOK(4))
		c.expectAckUpTo(s, 4, epoch)
		expectSync(s, c, 4)
		resent := expectSend(s, c, "out-2")
		if resent.ClientMsgID != second.ClientMsgID {
			s.Fatalf("after reconnecting out-2 went as %d, first as %d", resent.ClientMsgID, second.ClientMsgID)
		}
		c.write(s, (&proto.SendAck{ClientMsgID: resent.ClientMsgID, MsgID: 100}).Append(nil), syncEnd(4, 4))
		c.kick(s, proto.ReasonReplaced, proto.CodeSessionReplaced, 0, 1000)
	})
	defer func() { // also when Open fails the test: the script's failure says why
		for _, f := range sc.failures(ioTimeout) {
			t.Error("gateway script: " + f)
		}
	}()
	res := openWithHarness(t, sessionHarness, "uid=42&token=tok-42&ws=ws://"+g.ln.Addr().String()+"/")
	if probs := res.Problems(); len(probs) != 0 {
		t.Errorf("page problems: %q", probs)
	}
	var shown struct{ In, Out, Notes []string }
	if err := json.Unmarshal([]byte(res.Value), &shown); err != nil {
		t.Fatalf("page value %q: %v", res.Value, err)
	}
	if want := []string{"m1", "m2", "m3", "m4"}; !slices.Equal(shown.In, want) {
		t.Errorf("page shows received %q, want %q", shown.In, want)
	}
	if want := []string{"out-1 ✓", "out-2 ✓"}; !slices.Equal(shown.Out, want) {
		t.Errorf("page shows sent %q, want %q", shown.Out, want)
	}
	if len(shown.Notes) != 3 || !strings.Contains(shown.Notes[0], "SHUTDOWN") || !strings.Contains(shown.Notes[1], "REPLACED") ||
		!strings.Contains(shown.Notes[2], "disconnected for good") {
		t.Errorf("page notes %q, want the SHUTDOWN kick, the REPLACED kick, then giving up", shown.Notes)
	}
	if n := g.accepted(); n != 2 {
		t.Errorf("the page opened %d connections, want 2 (none after REPLACED)", n)
	}
}

// watchHarness only watches: it resolves window.headlessDone, once the page
// gives up for good, to the texts it received.
const watchHarness = `<script>
(function(){
var st = document.getElementById('status'), list = document.getElementById('messages');
window.headlessDone = new Promise(function(ok){
  var obs = new MutationObserver(function(){
    if (!/disconnected for good/.test(st.textContent)) { return; }
    obs.disconnect();
    ok(JSON.stringify(Array.prototype.map.call(list.querySelectorAll('li.in'), function(li){ return li.children[1].textContent; })));
  });
  obs.observe(document.body, {subtree: true, childList: true, characterData: true});
});
})();
</script>`

// Heartbeats, the client's idle timeout and incarnations, against a scripted
// gateway: PINGs every heartbeat_ms; a LOGIN_OK of a newer epoch resets the
// page (SYNC from 0 of the new epoch, no ack of the old one), a late PUSH of the
// retired epoch above its contiguous is delivered and a duplicate of it is not;
// a connection silent for idle_timeout_ms is closed and replaced.
func TestPageHeartbeatIdleAndIncarnations(t *testing.T) {
	headless.Binary(t)
	g := startFakeGateway(t)
	const e1, e2 = uint64(1767225000000000), uint64(1767225000000777)
	push := func(seq, epoch uint64, text string) []byte {
		return (&proto.Push{Seq: seq, Epoch: epoch, MsgID: seq, From: 7, ClientTS: 1, Payload: []byte(text)}).Append(nil)
	}
	loginOK := func(epoch, last uint64, hbMS, idleMS uint32) []byte {
		return (&proto.LoginOK{Session: 1, Epoch: epoch, LastSeq: last, Oldest: 1, HeartbeatMS: hbMS, IdleTimeoutMS: idleMS,
			MaxFrame: 65536, MaxPayload: 65495}).Append(nil)
	}
	expectSync := func(s *script, c *fakeConn, after, epoch uint64) {
		var y proto.Sync
		if err := y.Decode(c.expect(s, proto.TypeSync).Body); err != nil || y.AfterSeq != after || y.Epoch != epoch {
			s.Fatalf("SYNC %+v (%v), want after %d of epoch %d", y, err, after, epoch)
		}
	}
	login := func(s *script, c *fakeConn) {
		var l proto.Login
		if err := l.Decode(c.expect(s, proto.TypeLogin).Body); err != nil || l.UID != 42 {
			s.Fatalf("LOGIN %+v (%v)", l, err)
		}
	}
	sc := runScript(func(s *script) {
		c := g.next(s)
		login(s, c)
		c.write(s, loginOK(e1, 1, 100, 60000))
		expectSync(s, c, 0, e1)
		c.write(s, push(1, e1, "e1-1"), (&proto.SyncEnd{UpTo: 1, Head: 1, Oldest: 1, Epoch: e1}).Append(nil))
		c.expectAckUpTo(s, 1, e1)
		c.expectPings(s, 3)
		c.kick(s, proto.ReasonShutdown, proto.CodeShuttingDown, 0, 1001)

		c = g.next(s)
		login(s, c)
		c.write(s, loginOK(e2, 0, 60000, 500))
		expectSync(s, c, 0, e2)
		c.write(s, push(2, e1, "e1-2-late"), push(2, e1, "e1-2-late"), push(1, e1, "e1-1"), push(1, e2, "e2-1"))
		c.expectAckUpTo(s, 1, e2)
		c.expectClose(s) // silent for idle_timeout_ms: the page gives up on the connection
		for _, f := range c.queued {
			if f.Type == proto.TypePushAck {
				var a proto.PushAck
				if a.Decode(f.Body); a.Epoch != e2 {
					s.Fatalf("PUSH_ACK %+v of the retired epoch", a)
				}
			}
		}

		c = g.next(s)
		login(s, c)
		c.write(s, loginOK(e2, 1, 60000, 60000))
		c.expectAckUpTo(s, 1, e2)
		expectSync(s, c, 1, e2)
		c.kick(s, proto.ReasonReplaced, proto.CodeSessionReplaced, 0, 1000)
	})
	defer func() {
		for _, f := range sc.failures(ioTimeout) {
			t.Error("gateway script: " + f)
		}
	}()
	res := openWithHarness(t, watchHarness, "uid=42&token=tok-42&ws=ws://"+g.ln.Addr().String()+"/")
	if probs := res.Problems(); len(probs) != 0 {
		t.Errorf("page problems: %q", probs)
	}
	var in []string
	if err := json.Unmarshal([]byte(res.Value), &in); err != nil {
		t.Fatalf("page value %q: %v", res.Value, err)
	}
	if want := []string{"e1-1", "e1-2-late", "e2-1"}; !slices.Equal(in, want) {
		t.Errorf("page shows received %q, want %q", in, want)
	}
	if n := g.accepted(); n != 3 {
		t.Errorf("the page opened %d connections, want 3", n)
	}
}
