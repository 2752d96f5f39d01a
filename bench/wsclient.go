package bench

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/floodgate/floodgate/gateway/ws"
)

// The load client's WebSocket transport (ClientConfig.WebSocket), the client side of
// gateway/proto/PROTOCOL.md §2.1: after the TCP connect the client sends one opening
// handshake with a fresh random Sec-WebSocket-Key, and the connection counts as
// established only once the server's 101 has arrived and its Sec-WebSocket-Accept
// matches the key. From then on the server's input is unmasked frames. The client
// answers a ping with a pong and closes on a close frame; it sends no data messages
// (the WebSocket server variant runs the idle test only).

// wsSubprotocol is the subprotocol the client offers, as the browser page does.
const wsSubprotocol = "floodgate"

// wsMaxResponse bounds the server's handshake response (status line and headers).
const wsMaxResponse = 4096

// wsMaxPayload bounds a server frame's payload: one client-protocol frame.
const wsMaxPayload = MaxMsgBytes

// Errors of the client's WebSocket framing and handshake.
var (
	errWSResponseTooLong = fmt.Errorf("websocket: handshake response over %d bytes", wsMaxResponse)
	errWSMasked          = errors.New("websocket: masked server frame")
	errWSReservedBits    = errors.New("websocket: server frame with reserved bits set")
	errWSTooBig          = fmt.Errorf("websocket: server frame payload over %d bytes", wsMaxPayload)
	errWSBadControl      = errors.New("websocket: fragmented or oversized control frame")
)

// newWSKey returns a fresh Sec-WebSocket-Key: 16 random bytes in base64.
func newWSKey() string {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return base64.StdEncoding.EncodeToString(raw[:])
}

// wsRequest returns the client's opening handshake to host with key: a fixed,
// valid RFC 6455 upgrade request offering the floodgate subprotocol.
func wsRequest(host netip.AddrPort, key string) []byte {
	return []byte("GET / HTTP/1.1\r\nHost: " + host.String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + wsSubprotocol + "\r\n\r\n")
}

// checkWSResponse reports whether resp, a whole response header block, accepts the
// handshake sent with key: status 101, Upgrade: websocket, a Connection header with
// the upgrade token, the Sec-WebSocket-Accept that key calls for, and no subprotocol
// other than the one offered.
func checkWSResponse(resp []byte, key string) error {
	head, ok := bytes.CutSuffix(resp, []byte("\r\n\r\n"))
	if !ok {
		return errors.New("websocket: handshake response does not end its header block")
	}
	lines := strings.Split(string(head), "\r\n")
	status := lines[0]
	if proto, rest, ok := strings.Cut(status, " "); !ok || !strings.HasPrefix(proto, "HTTP/1.1") || !strings.HasPrefix(rest, "101 ") {
		return fmt.Errorf("websocket: handshake refused: %q", status)
	}
	var upgrade, connection, accept, protocol string
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return fmt.Errorf("websocket: malformed response header %q", l)
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "upgrade":
			upgrade = value
		case "connection":
			connection = value
		case "sec-websocket-accept":
			accept = value
		case "sec-websocket-protocol":
			protocol = value
		}
	}
	hasUpgradeToken := false
	for tok := range strings.SplitSeq(connection, ",") {
		hasUpgradeToken = hasUpgradeToken || strings.EqualFold(strings.TrimSpace(tok), "upgrade")
	}
	switch want := string(ws.AppendAccept(nil, key)); {
	case !strings.EqualFold(upgrade, "websocket"):
		return fmt.Errorf("websocket: response Upgrade %q", upgrade)
	case !hasUpgradeToken:
		return fmt.Errorf("websocket: response Connection %q lacks the upgrade token", connection)
	case accept != want:
		return fmt.Errorf("websocket: Sec-WebSocket-Accept %q, want %q", accept, want)
	case protocol != "" && protocol != wsSubprotocol:
		return fmt.Errorf("websocket: server selected subprotocol %q, not offered", protocol)
	}
	return nil
}

// wsFramer is the reactor Framer of a WebSocket client connection: the handshake
// response while the input starts with 'H' (of "HTTP/1.1"), otherwise one server
// frame. The two cannot be confused: 'H' (0x48) as a frame's first byte has a
// reserved bit set, which wsFrameSize refuses. Which kind is legal when is the
// handler's per-connection state.
func wsFramer(b []byte) (int, error) {
	if len(b) > 0 && b[0] == 'H' {
		if end := bytes.Index(b[:min(len(b), wsMaxResponse)], []byte("\r\n\r\n")); end >= 0 {
			return end + 4, nil
		}
		if len(b) >= wsMaxResponse {
			return 0, errWSResponseTooLong
		}
		return 0, nil
	}
	return wsFrameSize(b)
}

// wsFrame is a parsed server frame header.
type wsFrame struct {
	fin    bool
	op     ws.Opcode
	hlen   int    // header bytes
	length uint64 // payload bytes
}

// parseWSFrame parses the server frame header at b: ok is false while it is
// incomplete; the error is for a header no server may send (a mask, reserved bits,
// a fragmented or oversized control frame).
func parseWSFrame(b []byte) (f wsFrame, ok bool, err error) {
	if len(b) < 2 {
		return f, false, nil
	}
	if b[0]&0x70 != 0 {
		return f, false, errWSReservedBits
	}
	if b[1]&0x80 != 0 {
		return f, false, errWSMasked
	}
	f.fin, f.op = b[0]&0x80 != 0, ws.Opcode(b[0]&0x0F)
	switch n := b[1] & 0x7F; n {
	case 126:
		if len(b) < 4 {
			return f, false, nil
		}
		f.hlen, f.length = 4, uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return f, false, nil
		}
		f.hlen, f.length = 10, binary.BigEndian.Uint64(b[2:])
	default:
		f.hlen, f.length = 2, uint64(n)
	}
	if f.op.IsControl() && (!f.fin || f.length > ws.MaxControlPayload) {
		return f, false, errWSBadControl
	}
	if f.length > wsMaxPayload {
		return f, false, errWSTooBig
	}
	return f, true, nil
}

// wsFrameSize returns the full size of the server frame at b once its header is
// complete, 0 before, or the header's error.
func wsFrameSize(b []byte) (int, error) {
	f, ok, err := parseWSFrame(b)
	if !ok {
		return 0, err
	}
	return f.hlen + int(f.length), nil
}

// appendWSClientFrame appends one client frame to dst: FIN set, masked with key
// (RFC 6455 §5.3: every client frame is masked), the shortest length form.
func appendWSClientFrame(dst []byte, op ws.Opcode, key [4]byte, payload []byte) []byte {
	b0 := 0x80 | byte(op&0x0F)
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, b0, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, b0, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, key[:]...)
	for i, c := range payload {
		dst = append(dst, c^key[i%4])
	}
	return dst
}

// newWSMask returns a random masking key.
func newWSMask() [4]byte {
	var k [4]byte
	_, _ = rand.Read(k[:]) // never fails, as in newWSKey
	return k
}
