package ws

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
)

// The client side of the codec: what a WebSocket client (the load generator)
// needs to speak to a server built on the rest of this package. It mirrors the
// server side: AppendRequest and ParseResponse for the opening handshake,
// AppendClientFrame for the frames a client sends (always masked, RFC 6455 §5.3),
// CutClientStream as the Framer of a dialling reactor, and ClientDecoder for the
// frames a server sends (never masked, §5.1).

// Key is a client's Sec-WebSocket-Key: the base64 of 16 random bytes, 24
// characters. It is a value, so a client keeps it per connection without
// allocating, to check the server's Sec-WebSocket-Accept against it.
type Key [24]byte

// NewKey draws a fresh random key (RFC 6455 §4.1: a nonce chosen at random for
// each connection).
func NewKey() Key {
	var raw [16]byte
	rand.Read(raw[:]) // crypto/rand.Read never fails (it crashes the program if the OS cannot supply randomness)
	return KeyOf(raw)
}

// KeyOf is the key whose 16 bytes are raw.
func KeyOf(raw [16]byte) Key {
	var k Key
	base64.StdEncoding.Encode(k[:], raw[:])
	return k
}

// String returns the key as sent in the header.
func (k Key) String() string { return string(k[:]) }

// AppendRequest appends a client's opening handshake (RFC 6455 §4.1) for path on
// host, with key, offering protocols (none: no Sec-WebSocket-Protocol header).
func AppendRequest(dst []byte, host, path string, key Key, protocols ...string) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key[:]...)
	dst = append(dst, "\r\nSec-WebSocket-Version: 13\r\n"...)
	for i, p := range protocols {
		if i == 0 {
			dst = append(dst, "Sec-WebSocket-Protocol: "...)
		} else {
			dst = append(dst, ", "...)
		}
		dst = append(dst, p...)
		if i == len(protocols)-1 {
			dst = append(dst, "\r\n"...)
		}
	}
	return append(dst, "\r\n"...)
}

// MaxResponse is the largest response header block ParseResponse accepts.
const MaxResponse = MaxRequest

// errResponseTooLong refuses a response header block that has not ended within
// MaxResponse bytes.
var errResponseTooLong = &HandshakeError{0, "response header block over " + strconv.Itoa(MaxResponse) + " bytes"}

// Response is a server's valid answer to the opening handshake.
type Response struct {
	// Protocol is the subprotocol the server selected, "" for none.
	Protocol string
}

// ParseResponse parses the server's answer to a handshake sent with key and the
// offered protocols, at the start of buf. It returns n == 0 and a nil error while
// the header block is incomplete; n, the header block's size including its blank
// line, and the response when the server accepted (RFC 6455 §4.1: status 101,
// Upgrade: websocket, Connection: upgrade, Sec-WebSocket-Accept matching key, and
// no subprotocol that was not offered); otherwise a *HandshakeError whose Status is
// the server's status code (0 when the status line itself is malformed or the
// block runs past MaxResponse). Bytes after n are the server's first frames.
func ParseResponse(buf []byte, key Key, offered ...string) (resp Response, n int, err error) {
	if n, err = headerBlockSize(buf, MaxResponse, errResponseTooLong); n == 0 {
		return resp, 0, err
	}
	lines := strings.Split(string(buf[:n-4]), "\r\n")
	version, rest, ok := strings.Cut(lines[0], " ")
	code, _, _ := strings.Cut(rest, " ")
	status, cerr := strconv.Atoi(code)
	if !ok || !httpAtLeast11(version) || cerr != nil || len(code) != 3 {
		return Response{}, 0, &HandshakeError{0, "malformed status line"}
	}
	if status != 101 {
		return Response{}, 0, &HandshakeError{status, "server refused the upgrade"}
	}
	refuse := func(reason string) (Response, int, error) { return Response{}, 0, &HandshakeError{status, reason} }
	var upgrade, connection, accepted bool
	var want [28]byte // base64 of a SHA-1
	AppendAccept(want[:0], key.String())
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return refuse("malformed header line")
		}
		value = strings.Trim(value, " \t")
		switch strings.ToLower(name) {
		case "upgrade":
			upgrade = upgrade || hasToken(value, "websocket")
		case "connection":
			connection = connection || hasToken(value, "upgrade")
		case "sec-websocket-accept":
			if accepted || value != string(want[:]) {
				return refuse("Sec-WebSocket-Accept does not match the key")
			}
			accepted = true
		case "sec-websocket-protocol":
			if resp.Protocol != "" || !offers(offered, value) {
				return refuse("server selected a subprotocol that was not offered")
			}
			resp.Protocol = value
		case "sec-websocket-extensions":
			return refuse("server selected an extension that was not offered")
		}
	}
	switch {
	case !upgrade:
		return refuse("missing Upgrade: websocket")
	case !connection:
		return refuse("Connection lacks the upgrade token")
	case !accepted:
		return refuse("missing Sec-WebSocket-Accept")
	}
	return resp, n, nil
}

func offers(offered []string, p string) bool {
	for _, o := range offered {
		if o == p {
			return true
		}
	}
	return false
}

// MaskSource draws frame mask keys: a splitmix64 generator, one per connection or
// per client process (it is not safe for concurrent use). RFC 6455 §5.3 wants keys
// an intermediary cannot predict; a seed from NewMaskSource's crypto/rand and a
// fresh key per frame serve that for a test client, at the cost of an addition and
// three multiplications instead of a system call per frame.
type MaskSource struct{ s uint64 }

// NewMaskSource returns a MaskSource seeded from crypto/rand.
func NewMaskSource() MaskSource {
	var b [8]byte
	rand.Read(b[:])
	return MaskSource{binary.LittleEndian.Uint64(b[:])}
}

// SeededMaskSource returns a MaskSource with a fixed seed (tests, reproducible runs).
func SeededMaskSource(seed uint64) MaskSource { return MaskSource{seed} }

// Next returns the next mask key.
func (m *MaskSource) Next() [4]byte {
	m.s += 0x9E3779B97F4A7C15
	z := m.s
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	z ^= z >> 31
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], uint32(z))
	return k
}

// AppendClientFrame appends one client frame to dst: FIN set, masked with key (a
// client masks every frame, RFC 6455 §5.3), the shortest length form, the payload
// masked as it is copied. Like AppendFrame it checks neither op nor a control
// frame's 125-byte limit. It allocates only when dst must grow.
func AppendClientFrame(dst []byte, op Opcode, payload []byte, key [4]byte) []byte {
	dst = appendClientHeader(dst, op, len(payload), key)
	start := len(dst)
	dst = append(dst, payload...)
	unmask(dst[start:], key) // XOR: masking and unmasking are the same operation
	return dst
}

func appendClientHeader(dst []byte, op Opcode, n int, key [4]byte) []byte {
	start := len(dst)
	dst = appendHeader(dst, op, n)
	dst[start+1] |= bitMask
	return append(dst, key[:]...)
}

// AppendClientClose appends a masked client close frame with code and reason, the
// reason cut as AppendClose cuts it; CloseNoStatus yields an empty body.
func AppendClientClose(dst []byte, code uint16, reason string, key [4]byte) []byte {
	start := len(dst)
	dst = AppendClose(dst, code, reason)
	body := dst[start+2:] // AppendClose's frames are at most 125 bytes: a 2-byte header
	var tmp [MaxControlPayload]byte
	n := copy(tmp[:], body)
	dst = appendClientHeader(dst[:start], OpClose, n, key)
	p := len(dst)
	dst = append(dst, tmp[:n]...)
	unmask(dst[p:], key)
	return dst
}

// Errors in a server's frames, beside the ones the server side reports.
var (
	// ErrMasked is a server frame with the mask bit set (RFC 6455 §5.1: a client
	// closes the connection on one).
	ErrMasked = &Error{CloseProtocolError, "server frame masked"}
	// ErrBadResponse is a unit that starts like an HTTP response after the
	// handshake is over, or a frame before it.
	ErrBadResponse = &Error{CloseProtocolError, "handshake response out of place"}
)

// parseServerHeader is parseHeader for a server's frames: the same checks, except
// that the mask bit must be clear (ErrMasked) and there is no mask key.
func parseServerHeader(b []byte) (h header, ok bool, err error) { return parseFrameHeader(b, false) }

// ServerFrameSize is FrameSize for the frames a server sends (unmasked).
func ServerFrameSize(b []byte, maxPayload int) (int, error) {
	h, ok, err := parseServerHeader(b)
	if err != nil || !ok {
		return 0, err
	}
	if (maxPayload > 0 && h.length > uint64(maxPayload)) || h.length > uint64(maxInt-h.hlen) {
		return 0, ErrMessageTooBig
	}
	return h.hlen + int(h.length), nil
}

// CutClientStream is CutStream for the client's side of a connection: the
// server's handshake response while b starts with "H" (of "HTTP/"), otherwise one
// server frame (ServerFrameSize with maxPayload). Its contract is the reactor's
// Framer's, so a reactor that dials WebSocket servers cuts its input with it and
// hands the response block, then each frame, to its handler, which keeps whether
// the handshake is done (ParseResponse once, then a ClientDecoder).
//
// As with CutStream the kinds cannot be confused: 'H' (0x48) as a frame's first
// byte has RSV1 set, which ServerFrameSize refuses.
func CutClientStream(b []byte, maxPayload int) (int, error) {
	if len(b) > 0 && b[0] == 'H' {
		return headerBlockSize(b, MaxResponse, errResponseTooLong)
	}
	return ServerFrameSize(b, maxPayload)
}

// IsResponse reports whether unit, as cut by CutClientStream, is a handshake
// response block rather than a frame.
func IsResponse(unit []byte) bool { return len(unit) > 0 && unit[0] == 'H' }

// ClientDecoder parses the frames a server sends (unmasked, RFC 6455 §5.1), one
// frame per Decode call, and assembles fragmented messages. It is the Decoder of
// the other direction, with the same contract and invariants — whole frames or
// nothing, control frames between fragments, MaxMessage judged on the header,
// UTF-8 checked for text and close reasons — except that there is nothing to
// unmask: Decode never writes to b. Its zero value accepts messages of any size.
// A ClientDecoder belongs to one connection.
type ClientDecoder struct {
	// MaxMessage is the largest message payload accepted, summed over fragments;
	// 0: unlimited.
	MaxMessage int

	asm assembler // the message in progress
}

// Fragmented reports whether the decoder holds the fragments of a message.
func (d *ClientDecoder) Fragmented() bool { return d.asm.frag }

// Decode parses the server frame at the start of b. It returns n == 0 and a nil
// error while b holds less than one whole frame; otherwise it consumes exactly
// one frame and returns a message, a control frame, or for a fragment that does
// not end its message Op == OpContinuation. Payload aliases b (one-frame messages,
// control frames) or a buffer the decoder gave up (an assembled message). A
// non-nil error is an *Error carrying the close code to send; the connection is
// then failed.
func (d *ClientDecoder) Decode(b []byte) (m Message, n int, err error) {
	return d.asm.decode(b, false, d.MaxMessage)
}
