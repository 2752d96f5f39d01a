package webchat

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/internal/headless"
)

// Field values above 2^53 and negative i64s: the page must carry u64 and i64
// exactly (BigInt), not as JavaScript numbers.
const (
	bigUID   = uint64(1)<<63 | 5
	bigEpoch = uint64(1767225000000000)
	bigID    = uint64(1)<<62 + 12345
	negTS    = int64(-1767225600123)
)

// codecVectors are the frames the page's codec is checked against, built with
// the reference codec in package proto.
type codecVectors struct {
	UID, To, ID, Seq, Epoch, TS string // the client frames' fields, decimal
	Token                       string
	Limit                       int
	Want                        map[string]string // client frame → hex the page must encode
	Server                      []string          // server frames (hex) the page must decode
	Decoded                     []map[string]any  // what each must decode to
	Bad                         map[string]string // name → server message (hex) the page must refuse
}

// buildVectors encodes one of each client frame and each server frame.
func buildVectors(t *testing.T) codecVectors {
	t.Helper()
	h := func(b []byte) string { return hex.EncodeToString(b) }
	tok := "42.1767225600.G8ZIeeRAwDi_D7T2eZxqS3eEau6oDYDyex-WTOnfpWg"
	v := codecVectors{
		UID: "9223372036854775813", To: "7", ID: "4611686018427400249", Seq: "5", Epoch: "1767225000000000",
		TS: "-1767225600123", Token: tok, Limit: 0,
		Want: map[string]string{
			"login":   h((&proto.Login{Version: proto.Version, UID: bigUID, Token: []byte(tok)}).Append(nil)),
			"ping":    h((&proto.Ping{TS: negTS}).Append(nil)),
			"send":    h((&proto.Send{ClientMsgID: bigID, To: 7, ClientTS: negTS, Payload: []byte("héllo")}).Append(nil)),
			"pushAck": h((&proto.PushAck{Seq: 5, Epoch: bigEpoch}).Append(nil)),
			"sync":    h((&proto.Sync{AfterSeq: 5, Epoch: bigEpoch}).Append(nil)),
		},
		Bad: map[string]string{},
	}
	server := []struct {
		frame []byte
		want  map[string]any
	}{
		{(&proto.LoginOK{Session: bigID, Epoch: bigEpoch, LastSeq: 9, Oldest: 3, HeartbeatMS: 30000, IdleTimeoutMS: 90000,
			MaxFrame: 65536, MaxPayload: 65495}).Append(nil),
			map[string]any{"type": 2.0, "session": "4611686018427400249", "epoch": "1767225000000000", "lastSeq": "9",
				"oldest": "3", "heartbeatMS": 30000.0, "idleTimeoutMS": 90000.0, "maxFrame": 65536.0, "maxPayload": 65495.0}},
		{(&proto.Error{Code: proto.CodeBadRecipient, Ref: bigID, Message: []byte("no such user")}).Append(nil),
			map[string]any{"type": 3.0, "code": 40.0, "ref": "4611686018427400249", "message": "no such user"}},
		{(&proto.Pong{TS: negTS}).Append(nil), map[string]any{"type": 5.0, "ts": "-1767225600123"}},
		{(&proto.SendAck{ClientMsgID: bigID, MsgID: 1000001}).Append(nil),
			map[string]any{"type": 7.0, "clientMsgID": "4611686018427400249", "msgID": "1000001"}},
		{(&proto.Push{Seq: 5, Epoch: bigEpoch, MsgID: 1000001, From: bigUID, ClientTS: negTS, Payload: []byte("héllo")}).Append(nil),
			map[string]any{"type": 8.0, "seq": "5", "epoch": "1767225000000000", "msgID": "1000001",
				"from": "9223372036854775813", "clientTS": "-1767225600123", "payload": h([]byte("héllo"))}},
		{(&proto.SyncEnd{UpTo: 5, Head: 9, Oldest: 2, Epoch: bigEpoch}).Append(nil),
			map[string]any{"type": 11.0, "upTo": "5", "head": "9", "oldest": "2", "epoch": "1767225000000000"}},
		{(&proto.Kick{Reason: proto.ReasonReplaced, Code: proto.CodeSessionReplaced, RetryAfterMS: 1500, Message: []byte("bye")}).Append(nil),
			map[string]any{"type": 12.0, "reason": 8.0, "code": 65.0, "retryAfterMS": 1500.0, "message": "bye"}},
	}
	for _, s := range server {
		v.Server = append(v.Server, h(s.frame))
		v.Decoded = append(v.Decoded, s.want)
	}
	ok := (&proto.SendAck{ClientMsgID: 1, MsgID: 2}).Append(nil)
	pushTraced := (&proto.PushTraced{Push: proto.Push{Seq: 1, Epoch: 1, From: 2}}).Append(nil)
	v.Bad["empty"] = ""
	v.Bad["shorter than a header"] = h(ok[:4])
	v.Bad["length 0"] = "0000000007"
	v.Bad["cut inside the frame"] = h(ok[:len(ok)-1])
	v.Bad["a byte after the frame"] = h(append(ok[:len(ok):len(ok)], 0))
	v.Bad["two frames in one message"] = h(append(ok[:len(ok):len(ok)], ok...))
	v.Bad["length above max_frame"] = "00010001" + "07" + strings.Repeat("00", 65536)
	v.Bad["client type LOGIN"] = h((&proto.Login{Version: 2, UID: 1, Token: []byte("t")}).Append(nil))
	v.Bad["PUSH_TRACED on version 2"] = h(pushTraced)
	v.Bad["undefined type"] = "0000000163"
	v.Bad["SEND_ACK one byte short"] = "000000100700000000000000010000000000000002"[:len("0000001007")] + strings.Repeat("00", 15)
	v.Bad["LOGIN_OK one byte long"] = "0000003202" + strings.Repeat("00", 49)
	v.Bad["PUSH below its fixed part"] = "0000002808" + strings.Repeat("00", 39)
	v.Bad["KICK below its fixed part"] = "000000070c" + strings.Repeat("00", 6)
	return v
}

// codecHarness is appended to the page for the codec test: it encodes the client
// frames, decodes the server frames, and resolves window.headlessDone to the
// results as JSON.
const codecHarness = `<script>
(function(){
var V = %VECTORS%, c = window.floodgateChat.codec;
function hex(buf){ return Array.prototype.map.call(new Uint8Array(buf), function(x){ return (x < 16 ? '0' : '') + x.toString(16); }).join(''); }
function unhex(h){ var b = new Uint8Array(h.length / 2); for (var i = 0; i < b.length; i++) { b[i] = parseInt(h.substr(2 * i, 2), 16); } return b.buffer; }
function plain(k, x){ return typeof x === 'bigint' ? x.toString() : x instanceof Uint8Array ? hex(x) : x; }
var out = {
  encoded: {
    login: hex(c.login(BigInt(V.UID), V.Token)),
    ping: hex(c.ping(BigInt(V.TS))),
    send: hex(c.send(BigInt(V.ID), BigInt(V.To), BigInt(V.TS), new TextEncoder().encode('héllo'))),
    pushAck: hex(c.pushAck(BigInt(V.Seq), BigInt(V.Epoch))),
    sync: hex(c.sync(BigInt(V.Seq), BigInt(V.Epoch), V.Limit))
  },
  decoded: V.Server.map(function(h){ return JSON.parse(JSON.stringify(c.parse(unhex(h)), plain)); }),
  accepted: Object.keys(V.Bad).filter(function(k){ try { c.parse(unhex(V.Bad[k])); return true; } catch (e) { return false; } })
};
window.headlessDone = Promise.resolve(JSON.stringify(out));
})();
</script>`

// The page's codec encodes every client frame byte for byte as the reference
// codec does, decodes every server frame to the reference's fields (u64 and i64
// exact), and refuses each malformed or unexpected server message; run in
// headless Chromium, the page's script otherwise idle (no uid in the query).
func TestPageCodecMatchesReference(t *testing.T) {
	headless.Binary(t)
	v := buildVectors(t)
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := string(Page())
	harness := strings.Replace(codecHarness, "%VECTORS%", string(js), 1)
	p = strings.Replace(p, "</body>", harness+"</body>", 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "codec.html"), []byte(p), 0o644); err != nil {
		t.Fatal(err)
	}
	res := headless.Open(t, dir, "codec.html", 30*time.Second)
	if probs := res.Problems(); len(probs) != 0 {
		t.Fatalf("page problems: %q", probs)
	}
	var got struct {
		Encoded  map[string]string
		Decoded  []map[string]any
		Accepted []string
	}
	if err := json.Unmarshal([]byte(res.Value), &got); err != nil {
		t.Fatalf("page value %q: %v", res.Value, err)
	}
	for name, want := range v.Want {
		if got.Encoded[name] != want {
			t.Errorf("%s: page encodes\n %s\nreference\n %s", name, got.Encoded[name], want)
		}
	}
	if len(got.Decoded) != len(v.Decoded) {
		t.Fatalf("page decoded %d frames, want %d", len(got.Decoded), len(v.Decoded))
	}
	for i, want := range v.Decoded {
		if !reflect.DeepEqual(got.Decoded[i], want) {
			t.Errorf("frame %s: page decodes\n %v\nwant\n %v", v.Server[i], got.Decoded[i], want)
		}
	}
	if len(got.Accepted) != 0 {
		t.Errorf("page accepted malformed server messages: %q", got.Accepted)
	}
}
