package proto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

var updateDoc = flag.Bool("update", false, "rewrite the generated examples in PROTOCOL.md")

const docFile = "PROTOCOL.md"

// The worked example of PROTOCOL.md: user 42 logs in and sends "hello" to
// user 7, for whom it is message seq 5; user 7 acknowledges it, reconnects
// later and SYNCs from it.
const (
	exampleSecret   = "floodgate example secret 32 byte"
	exampleUID      = 42
	exampleExpiry   = 1767225600 // 2026-01-01T00:00:00Z
	exampleTo       = 7
	exampleClientTS = 1767225600123
	exampleMsgID    = 1000001
	exampleSeq      = 5
	exampleEpoch    = 1767225000000000 // the store's incarnation: its start time in µs
	exampleSession  = 1
)

// TestProtocolDocExamples checks that every generated example in
// PROTOCOL.md matches what this package produces, so the document cannot
// drift from the code. Run with -update to rewrite them.
func TestProtocolDocExamples(t *testing.T) {
	doc, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	examples := []struct{ name, text string }{
		{"token", tokenExample(t)},
		{"login", loginExample(t)},
		{"login-ok", loginOKExample()},
		{"send", sendExample()},
		{"send-ack", sendAckExample()},
		{"push", pushExample()},
		{"push-ack", pushAckExample()},
		{"sync", syncExample()},
		{"sync-end", syncEndExample()},
		{"push-traced", pushTracedExample()},
	}
	for _, ex := range examples {
		start, end, ok := goldenBlock(doc, ex.name)
		if !ok {
			t.Errorf("%s: no block marked <!-- golden:%s --> followed by a ```text fence", docFile, ex.name)
			continue
		}
		if got := string(doc[start:end]); got != ex.text {
			if *updateDoc {
				doc = append(doc[:start:start], append([]byte(ex.text), doc[end:]...)...)
				continue
			}
			t.Errorf("%s example %q is out of date (run go test -run=ProtocolDoc -update).\ngot:\n%s\nwant:\n%s", docFile, ex.name, got, ex.text)
		}
	}
	if *updateDoc {
		if err := os.WriteFile(docFile, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// goldenBlock locates the contents of the ```text fence that follows the
// marker <!-- golden:name -->.
func goldenBlock(doc []byte, name string) (start, end int, ok bool) {
	marker := []byte("<!-- golden:" + name + " -->\n```text\n")
	i := bytes.Index(doc, marker)
	if i < 0 {
		return 0, 0, false
	}
	start = i + len(marker)
	j := bytes.Index(doc[start:], []byte("```\n"))
	if j < 0 {
		return 0, 0, false
	}
	return start, start + j, true
}

func tokenExample(t *testing.T) string {
	s := newTestSigner(t, []byte(exampleSecret))
	tok := s.Mint(exampleUID, time.Unix(exampleExpiry, 0))
	if err := s.Verify(tok, exampleUID, time.Unix(exampleExpiry-1, 0)); err != nil {
		t.Fatal(err)
	}
	// Recompute independently of Signer, straight from the definition.
	in := []byte("fg1")
	in = binary.BigEndian.AppendUint64(in, exampleUID)
	in = binary.BigEndian.AppendUint64(in, exampleExpiry)
	h := hmac.New(sha256.New, []byte(exampleSecret))
	h.Write(in)
	sum := h.Sum(nil)
	mac := tok[bytes.LastIndexByte(tok, '.')+1:]
	if want := base64.RawURLEncoding.EncodeToString(sum); string(mac) != want {
		t.Fatalf("Mint's mac %q differs from the definition's %q", mac, want)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "secret       %q (%d bytes of ASCII)\n", exampleSecret, len(exampleSecret))
	fmt.Fprintf(&b, "uid          %d\n", exampleUID)
	fmt.Fprintf(&b, "expiry       %d (%s)\n", exampleExpiry, time.Unix(exampleExpiry, 0).UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "\nMAC input    \"fg1\" | u64be(uid) | i64be(expiry), %d bytes:\n", len(in))
	writeHexRows(&b, "             ", in, 19)
	fmt.Fprintf(&b, "HMAC-SHA256  (secret, MAC input), %d bytes:\n", len(sum))
	writeHexRows(&b, "             ", sum, 16)
	fmt.Fprintf(&b, "mac          base64url without padding, %d characters:\n", len(mac))
	fmt.Fprintf(&b, "             %s\n", mac)
	fmt.Fprintf(&b, "\ntoken        %d bytes of ASCII:\n", len(tok))
	fmt.Fprintf(&b, "             %s\n", tok)
	return b.String()
}

func writeHexRows(b *strings.Builder, indent string, p []byte, perRow int) {
	for len(p) > 0 {
		n := min(perRow, len(p))
		fmt.Fprintf(b, "%s% x\n", indent, p[:n])
		p = p[n:]
	}
}

// field describes n bytes of an example frame.
type field struct {
	n    int
	note string
}

// dump renders frame as an annotated hex listing, one row per field (long
// fields wrap at 8 bytes per row), checking that the fields cover it exactly.
func dump(frame []byte, fields ...field) string {
	var b strings.Builder
	fmt.Fprintf(&b, "offset  bytes                     field\n")
	off := 0
	for _, f := range fields {
		for i := 0; i < f.n; i += 8 {
			note := f.note
			if i > 0 {
				note = ""
			}
			row := frame[off+i : off+min(i+8, f.n)]
			line := fmt.Sprintf("%6d  %-24s  %s", off+i, fmt.Sprintf("% x", row), note)
			b.WriteString(strings.TrimRight(line, " ") + "\n")
		}
		off += f.n
	}
	if off != len(frame) {
		panic(fmt.Sprintf("example fields cover %d of %d bytes", off, len(frame)))
	}
	fmt.Fprintf(&b, "\n%d bytes: %x\n", len(frame), frame)
	return b.String()
}

func header(frame []byte) []field {
	return []field{
		{4, fmt.Sprintf("length = %d", binary.BigEndian.Uint32(frame))},
		{1, fmt.Sprintf("type = 0x%02x %v", frame[4], Type(frame[4]))},
	}
}

func loginExample(t *testing.T) string {
	s := newTestSigner(t, []byte(exampleSecret))
	m := Login{Version: Version, UID: exampleUID, Token: s.Mint(exampleUID, time.Unix(exampleExpiry, 0))}
	frame := m.Append(nil)
	return dump(frame, append(header(frame),
		field{1, fmt.Sprintf("version = %d", m.Version)},
		field{8, fmt.Sprintf("uid = %d", m.UID)},
		field{len(m.Token), fmt.Sprintf("token = %q", m.Token)},
	)...)
}

func sendExample() string {
	m := Send{ClientMsgID: 1, To: exampleTo, ClientTS: exampleClientTS, Payload: []byte("hello")}
	frame := m.Append(nil)
	return dump(frame, append(header(frame),
		field{8, fmt.Sprintf("client_msg_id = %d", m.ClientMsgID)},
		field{8, fmt.Sprintf("to = %d", m.To)},
		field{8, fmt.Sprintf("client_ts = %d", m.ClientTS)},
		field{len(m.Payload), fmt.Sprintf("payload = %q", m.Payload)},
	)...)
}

func sendAckExample() string {
	m := SendAck{ClientMsgID: 1, MsgID: exampleMsgID}
	frame := m.Append(nil)
	return dump(frame, append(header(frame),
		field{8, fmt.Sprintf("client_msg_id = %d", m.ClientMsgID)},
		field{8, fmt.Sprintf("msg_id = %d", m.MsgID)},
	)...)
}

func pushExample() string {
	m := Push{Seq: exampleSeq, Epoch: exampleEpoch, MsgID: exampleMsgID, From: exampleUID, ClientTS: exampleClientTS, Payload: []byte("hello")}
	frame := m.Append(nil)
	return dump(frame, append(header(frame),
		field{8, fmt.Sprintf("seq = %d", m.Seq)},
		field{8, fmt.Sprintf("epoch = %d", m.Epoch)},
		field{8, fmt.Sprintf("msg_id = %d", m.MsgID)},
		field{8, fmt.Sprintf("from = %d", m.From)},
		field{8, fmt.Sprintf("client_ts = %d", m.ClientTS)},
		field{len(m.Payload), fmt.Sprintf("payload = %q", m.Payload)},
	)...)
}

// pushTracedExample is §12's PUSH, traced: the message spent 0.4 ms reaching
// its gateway, 1.1 ms being stored, 0.6 ms being routed and 0.2 ms in the
// recipient's gateway.
func pushTracedExample() string {
	in := int64(exampleClientTS)*1_000_000 + 400_000
	m := PushTraced{
		Push:  Push{Seq: exampleSeq, Epoch: exampleEpoch, MsgID: exampleMsgID, From: exampleUID, ClientTS: exampleClientTS, Payload: []byte("hello")},
		Trace: Trace{GatewayIn: in, Stored: in + 1_100_000, Routed: in + 1_700_000, GatewayOut: in + 1_900_000},
	}
	frame := m.Append(nil)
	return dump(frame, append(header(frame),
		field{8, fmt.Sprintf("seq = %d", m.Seq)},
		field{8, fmt.Sprintf("epoch = %d", m.Epoch)},
		field{8, fmt.Sprintf("msg_id = %d", m.MsgID)},
		field{8, fmt.Sprintf("from = %d", m.From)},
		field{8, fmt.Sprintf("client_ts = %d", m.ClientTS)},
		field{8, fmt.Sprintf("gateway_in = %d", m.Trace.GatewayIn)},
		field{8, fmt.Sprintf("stored = %d", m.Trace.Stored)},
		field{8, fmt.Sprintf("routed = %d", m.Trace.Routed)},
		field{8, fmt.Sprintf("gateway_out = %d", m.Trace.GatewayOut)},
		field{len(m.Payload), fmt.Sprintf("payload = %q", m.Payload)},
	)...)
}

func loginOKExample() string {
	m := LoginOK{Session: exampleSession, Epoch: exampleEpoch, LastSeq: 0, Oldest: 1, HeartbeatMS: 30000,
		IdleTimeoutMS: 90000, MaxFrame: DefaultMaxFrame, MaxPayload: uint32(MaxPayload(DefaultMaxFrame))}
	frame := m.Append(nil)
	return dump(frame, append(header(frame),
		field{8, fmt.Sprintf("session = %d", m.Session)},
		field{8, fmt.Sprintf("epoch = %d", m.Epoch)},
		field{8, fmt.Sprintf("last_seq = %d", m.LastSeq)},
		field{8, fmt.Sprintf("oldest = %d", m.Oldest)},
		field{4, fmt.Sprintf("heartbeat_ms = %d", m.HeartbeatMS)},
		field{4, fmt.Sprintf("idle_timeout_ms = %d", m.IdleTimeoutMS)},
		field{4, fmt.Sprintf("max_frame = %d", m.MaxFrame)},
		field{4, fmt.Sprintf("max_payload = %d", m.MaxPayload)},
	)...)
}

func pushAckExample() string {
	m := PushAck{Seq: exampleSeq, Epoch: exampleEpoch}
	frame := m.Append(nil)
	return dump(frame, append(header(frame),
		field{8, fmt.Sprintf("seq = %d", m.Seq)},
		field{8, fmt.Sprintf("epoch = %d", m.Epoch)},
	)...)
}

func syncExample() string {
	m := Sync{AfterSeq: exampleSeq, Epoch: exampleEpoch}
	frame := m.Append(nil)
	return dump(frame, append(header(frame),
		field{8, fmt.Sprintf("after_seq = %d", m.AfterSeq)},
		field{8, fmt.Sprintf("epoch = %d", m.Epoch)},
		field{4, fmt.Sprintf("limit = %d", m.Limit)},
	)...)
}

func syncEndExample() string {
	m := SyncEnd{UpTo: exampleSeq, Head: exampleSeq, Oldest: exampleSeq + 1, Epoch: exampleEpoch}
	frame := m.Append(nil)
	return dump(frame, append(header(frame),
		field{8, fmt.Sprintf("up_to = %d", m.UpTo)},
		field{8, fmt.Sprintf("head = %d", m.Head)},
		field{8, fmt.Sprintf("oldest = %d", m.Oldest)},
		field{8, fmt.Sprintf("epoch = %d", m.Epoch)},
	)...)
}
