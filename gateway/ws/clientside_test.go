package ws

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// rfcAccept is the accept value of RFC 6455 §1.3's example key (rfcKey).
const rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

func keyFromString(t *testing.T, s string) Key {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != 16 {
		t.Fatalf("key %q: %v", s, err)
	}
	return KeyOf([16]byte(raw))
}

func TestKeyIsBase64OfSixteenFreshBytes(t *testing.T) {
	if k := keyFromString(t, rfcKey); k.String() != rfcKey {
		t.Fatalf("KeyOf gives %q, want %q", k.String(), rfcKey)
	}
	a, b := NewKey(), NewKey()
	if !validKey(a.String()) || !validKey(b.String()) || a == b {
		t.Fatalf("NewKey gave %q and %q: want two distinct valid keys", a, b)
	}
}

// TestClientHandshakeIsAcceptedByTheServerSide: the request parses with the
// server's ParseUpgrade, and the server's AppendResponse parses back as accepted.
func TestClientHandshakeIsAcceptedByTheServerSide(t *testing.T) {
	key := keyFromString(t, rfcKey)
	for _, tc := range []struct {
		name    string
		offered []string
		chosen  string
	}{
		{"no subprotocol", nil, ""},
		{"floodgate offered and chosen", []string{"chat", "floodgate"}, "floodgate"},
		{"offered, none chosen", []string{"floodgate"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqb := AppendRequest(nil, "127.0.0.1:9000", "/ws", key, tc.offered...)
			req, n, err := ParseUpgrade(reqb)
			if err != nil || n != len(reqb) {
				t.Fatalf("server refused %q: n=%d err=%v", reqb, n, err)
			}
			if req.Key != rfcKey || req.Path != "/ws" || req.Host != "127.0.0.1:9000" || len(req.Protocols) != len(tc.offered) {
				t.Fatalf("server read %+v", req)
			}
			respb := AppendResponse(nil, &req, tc.chosen)
			if !bytes.Contains(respb, []byte("Sec-WebSocket-Accept: "+rfcAccept+"\r\n")) {
				t.Fatalf("server response %q lacks the RFC accept value", respb)
			}
			respb = append(respb, 0x82, 0x00) // a first frame right behind the block
			resp, n, err := ParseResponse(respb, key, tc.offered...)
			if err != nil || n != len(respb)-2 || resp.Protocol != tc.chosen {
				t.Fatalf("ParseResponse: n=%d of %d, protocol %q, err %v", n, len(respb), resp.Protocol, err)
			}
		})
	}
}

func TestParseResponseWaitsForTheWholeBlock(t *testing.T) {
	key := keyFromString(t, rfcKey)
	full := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + rfcAccept + "\r\n\r\n")
	for i := 0; i < len(full); i++ {
		if _, n, err := ParseResponse(full[:i], key); n != 0 || err != nil {
			t.Fatalf("prefix %d: n=%d err=%v, want 0 and nil", i, n, err)
		}
	}
	if _, n, err := ParseResponse(full, key); n != len(full) || err != nil {
		t.Fatalf("whole: n=%d err=%v", n, err)
	}
}

func TestParseResponseRefusesBadAnswers(t *testing.T) {
	key := keyFromString(t, rfcKey)
	good := map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": rfcAccept}
	build := func(status string, over map[string]string) []byte {
		s := status + "\r\n"
		for _, h := range []string{"Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"} {
			v, ok := over[h]
			if !ok {
				v, ok = good[h]
			}
			if ok && v != "-" {
				s += h + ": " + v + "\r\n"
			}
		}
		return []byte(s + "\r\n")
	}
	for _, tc := range []struct {
		name    string
		raw     []byte
		offered []string
		status  int
	}{
		{"server full", AppendReject(nil, 503, "gateway full"), nil, 503},
		{"version refused", AppendReject(nil, 426, "version"), nil, 426},
		{"malformed status line", build("HTTP/1.1 1o1 Switching Protocols", nil), nil, 0},
		{"HTTP/1.0", build("HTTP/1.0 101 Switching Protocols", nil), nil, 0},
		{"wrong accept", build("HTTP/1.1 101 Switching Protocols", map[string]string{"Sec-WebSocket-Accept": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}), nil, 101},
		{"no accept", build("HTTP/1.1 101 Switching Protocols", map[string]string{"Sec-WebSocket-Accept": "-"}), nil, 101},
		{"no upgrade", build("HTTP/1.1 101 Switching Protocols", map[string]string{"Upgrade": "-"}), nil, 101},
		{"upgrade to another protocol", build("HTTP/1.1 101 Switching Protocols", map[string]string{"Upgrade": "h2c"}), nil, 101},
		{"no connection token", build("HTTP/1.1 101 Switching Protocols", map[string]string{"Connection": "keep-alive"}), nil, 101},
		{"subprotocol not offered", build("HTTP/1.1 101 Switching Protocols", map[string]string{"Sec-WebSocket-Protocol": "floodgate"}), nil, 101},
		{"extension not offered", build("HTTP/1.1 101 Switching Protocols", map[string]string{"Sec-WebSocket-Extensions": "permessage-deflate"}), nil, 101},
		{"subprotocol other than the one offered", build("HTTP/1.1 101 Switching Protocols", map[string]string{"Sec-WebSocket-Protocol": "chat"}), []string{"floodgate"}, 101},
		{"malformed header line", bytes.Replace(build("HTTP/1.1 101 Switching Protocols", nil), []byte("\r\n\r\n"), []byte("\r\nno colon here\r\n\r\n"), 1), nil, 101},
		{"200", []byte("HTTP/1.1 200 OK\r\n\r\n"), nil, 200},
		{"block too long", []byte("HTTP/1.1 101 Switching Protocols\r\nX: " + strings.Repeat("x", MaxResponse)), nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, n, err := ParseResponse(tc.raw, key, tc.offered...)
			var he *HandshakeError
			if !errors.As(err, &he) || he.Status != tc.status || n != 0 {
				t.Fatalf("n=%d err=%v, want a HandshakeError with status %d", n, err, tc.status)
			}
		})
	}
}

// TestParseResponseReadsHeadersAsHTTPDoes: names in any case, a value with or
// without the space after the colon, the upgrade token in a list, any reason phrase.
func TestParseResponseReadsHeadersAsHTTPDoes(t *testing.T) {
	key := keyFromString(t, rfcKey)
	for _, tc := range []struct {
		name, raw, protocol string
	}{
		{"odd case, token list, no space, subprotocol", "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nCONNECTION: keep-alive, upgrade\r\n" +
			"sec-websocket-accept:" + rfcAccept + "\r\nSec-WebSocket-Protocol: floodgate\r\n\r\n", "floodgate"},
		{"no subprotocol chosen", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + rfcAccept + "\r\n\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, n, err := ParseResponse([]byte(tc.raw), key, "floodgate")
			if err != nil || n != len(tc.raw) || resp.Protocol != tc.protocol {
				t.Fatalf("n=%d of %d, protocol %q, err %v; want all of it, protocol %q", n, len(tc.raw), resp.Protocol, err, tc.protocol)
			}
		})
	}
}

// TestAppendClientFrameMatchesRFCMaskedHello is RFC 6455 §5.7's masked "Hello".
func TestAppendClientFrameMatchesRFCMaskedHello(t *testing.T) {
	want := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	got := AppendClientFrame([]byte("x"), OpText, []byte("Hello"), [4]byte{0x37, 0xfa, 0x21, 0x3d})
	if !bytes.Equal(got[1:], want) || got[0] != 'x' {
		t.Fatalf("got % x, want x then % x", got, want)
	}
}

// TestClientFramesDecodeOnTheServerSide: every length form, masked with a fresh
// key per frame, reads back through the server's Decoder (which refuses unmasked
// frames), and the payload the caller passed is left as it was.
func TestClientFramesDecodeOnTheServerSide(t *testing.T) {
	ms := SeededMaskSource(1)
	var wire []byte
	var sent [][]byte
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 70001} {
		p := bytes.Repeat([]byte{byte(n), 0x5A}, n/2+1)[:n]
		orig := append([]byte(nil), p...)
		wire = AppendClientFrame(wire, OpBinary, p, ms.Next())
		if !bytes.Equal(p, orig) {
			t.Fatalf("%d bytes: AppendClientFrame changed its payload", n)
		}
		sent = append(sent, orig)
	}
	wire = AppendClientFrame(wire, OpPong, []byte("pp"), ms.Next())
	wire = AppendClientClose(wire, CloseGoingAway, strings.Repeat("é", 80), ms.Next())
	var d Decoder
	got, consumed, err := decodeAll(&d, wire)
	if err != nil || consumed != len(wire) || len(got) != len(sent)+2 {
		t.Fatalf("decoded %d messages, %d of %d bytes, err %v", len(got), consumed, len(wire), err)
	}
	for i, p := range sent {
		if got[i].Op != OpBinary || !bytes.Equal(got[i].Payload, p) {
			t.Fatalf("message %d: op %d, %d bytes, want %d", i, got[i].Op, len(got[i].Payload), len(p))
		}
	}
	if m := got[len(sent)]; m.Op != OpPong || string(m.Payload) != "pp" {
		t.Fatalf("pong read as %+v", m)
	}
	c := got[len(sent)+1]
	if c.Op != OpClose || c.Code != CloseGoingAway || len(c.Payload) != 122 || c.Payload[0] != 0xC3 {
		t.Fatalf("close read as op %d code %d, reason of %d bytes", c.Op, c.Code, len(c.Payload))
	}
}

func TestMaskSourceGivesFreshReproducibleKeys(t *testing.T) {
	a, b := SeededMaskSource(42), SeededMaskSource(42)
	seen := map[[4]byte]bool{}
	for i := 0; i < 1000; i++ {
		k := a.Next()
		if k != b.Next() {
			t.Fatalf("key %d differs between two sources with one seed", i)
		}
		seen[k] = true
	}
	if len(seen) < 999 {
		t.Fatalf("%d distinct keys of 1000", len(seen))
	}
}

// serverStream is the bytes of server frames, some fragmented by hand.
func serverStream(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// serverFragment is an unmasked frame with FIN as given.
func serverFragment(op Opcode, fin bool, payload string) []byte {
	f := AppendFrame(nil, op, []byte(payload))
	if !fin {
		f[0] &^= bitFIN
	}
	return f
}

func TestClientDecoderReadsServerFrames(t *testing.T) {
	big := strings.Repeat("b", 70000)
	wire := serverStream(
		AppendFrame(nil, OpBinary, []byte("one")),
		AppendFrame(nil, OpBinary, []byte(big)),
		serverFragment(OpText, false, "hé"), AppendFrame(nil, OpPing, []byte("p")), serverFragment(OpContinuation, true, "llo"),
		AppendClose(nil, CloseGoingAway, "drain"),
	)
	want := []Message{
		{Op: OpBinary, Payload: []byte("one")},
		{Op: OpBinary, Payload: []byte(big)},
		{Op: OpPing, Payload: []byte("p")},
		{Op: OpText, Payload: []byte("héllo")},
		{Op: OpClose, Payload: []byte("drain"), Code: CloseGoingAway},
	}
	// Every split point: the first part, then the rest appended, as a reactor's
	// carry buffer delivers it.
	for split := 0; split <= len(wire); split += 1 + split/3 {
		var d ClientDecoder
		got, n, err := decodeInTwo(&d, wire, split)
		if err != nil || n != len(wire) || d.Fragmented() {
			t.Fatalf("split %d: consumed %d of %d, err %v", split, n, len(wire), err)
		}
		assertSameMessages(t, got, want)
	}
}

func TestClientDecoderRefusesViolations(t *testing.T) {
	maskedBinary := AppendClientFrame(nil, OpBinary, []byte("x"), [4]byte{1, 2, 3, 4})
	for _, tc := range []struct {
		name string
		raw  []byte
		lim  int
		want *Error
	}{
		{"masked frame", maskedBinary, 0, ErrMasked},
		{"reserved bit", []byte{0xC2, 0x00}, 0, ErrReservedBits},
		{"unknown opcode", []byte{0x83, 0x00}, 0, ErrUnknownOpcode},
		{"fragmented ping", []byte{0x09, 0x00}, 0, ErrControlFragment},
		{"long ping", []byte{0x89, 126, 0, 126}, 0, ErrControlTooLong},
		{"length MSB", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, 0, ErrLengthMSB},
		{"continuation first", serverFragment(OpContinuation, true, "x"), 0, ErrUnexpectedCont},
		{"new message inside one", serverStream(serverFragment(OpBinary, false, "a"), serverFragment(OpBinary, true, "b")), 0, ErrExpectedCont},
		{"too big on the header", []byte{0x82, 126, 0x01, 0x00}, 255, ErrMessageTooBig},
		{"bad UTF-8", AppendFrame(nil, OpText, []byte{0xff}), 0, ErrInvalidUTF8},
		{"bad close code", AppendClose(nil, 1005+1, ""), 0, ErrCloseCode},
		{"one-byte close", []byte{0x88, 0x01, 0x03}, 0, ErrCloseLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := ClientDecoder{MaxMessage: tc.lim}
			_, _, err := decodeAll(&d, tc.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// TestCutClientStreamCutsResponseThenFrames: the framer gives the response block,
// then each frame, and sizes agree with ClientDecoder.
func TestCutClientStreamCutsResponseThenFrames(t *testing.T) {
	resp := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + rfcAccept + "\r\n\r\n")
	frames := [][]byte{AppendFrame(nil, OpBinary, []byte("abc")), AppendFrame(nil, OpBinary, make([]byte, 300)), AppendClose(nil, CloseNormal, "")}
	wire := serverStream(append([][]byte{resp}, frames...)...)
	for i := 0; i < len(resp); i++ {
		if n, err := CutClientStream(wire[:i], 0); n != 0 || err != nil {
			t.Fatalf("response prefix %d: n=%d err=%v", i, n, err)
		}
	}
	n, err := CutClientStream(wire, 0)
	if err != nil || n != len(resp) || !IsResponse(wire[:n]) {
		t.Fatalf("response cut at %d (err %v), want %d", n, err, len(resp))
	}
	off := n
	for i, f := range frames {
		n, err := CutClientStream(wire[off:], 0)
		if err != nil || n != len(f) || IsResponse(wire[off:off+n]) {
			t.Fatalf("frame %d cut at %d (err %v), want %d", i, n, err, len(f))
		}
		off += n
	}
	if _, err := CutClientStream(frames[1], 100); !errors.Is(err, ErrMessageTooBig) {
		t.Fatalf("a 300-byte frame under a 100-byte limit: err %v", err)
	}
	if _, err := CutClientStream([]byte("HTTP/1.1 101 x\r\n"+strings.Repeat("x", MaxResponse)), 0); err == nil {
		t.Fatal("a response block past MaxResponse was not refused")
	}
}

// TestClientSteadyPathDoesNotAllocate: building masked frames into a reused buffer
// and decoding one-frame server messages allocate nothing.
func TestClientSteadyPathDoesNotAllocate(t *testing.T) {
	payload := bytes.Repeat([]byte{'p'}, 64)
	in := serverStream(AppendFrame(nil, OpBinary, payload), AppendFrame(nil, OpPing, []byte("x")))
	out := make([]byte, 0, 256)
	ms := SeededMaskSource(7)
	var d ClientDecoder
	allocs := testing.AllocsPerRun(100, func() {
		out = AppendClientFrame(out[:0], OpBinary, payload, ms.Next())
		for off := 0; off < len(in); {
			m, n, err := d.Decode(in[off:])
			if err != nil || n == 0 {
				t.Fatalf("n=%d err=%v", n, err)
			}
			if m.Op == OpPing {
				out = AppendClientFrame(out, OpPong, m.Payload, ms.Next())
			}
			off += n
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per pass, want 0", allocs)
	}
}
