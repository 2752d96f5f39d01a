package ws

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
)

// testClient is a tiny hand-written WebSocket client, independent of the codec's
// server side: it builds its own request, checks the accept value with its own
// hash, masks its frames and parses the server's unmasked frames.
type testClient struct {
	key string
}

func (c *testClient) request(path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
		"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " + c.key + "\r\nSec-WebSocket-Version: 13\r\n\r\n")
}

// checkResponse asserts resp is a 101 whose accept value is base64(SHA-1(key+GUID)).
func (c *testClient) checkResponse(t *testing.T, resp []byte) {
	t.Helper()
	sum := sha1.Sum([]byte(c.key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	want := "Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
	s := string(resp)
	if !strings.HasPrefix(s, "HTTP/1.1 101 ") || !strings.Contains(s, want) || !strings.HasSuffix(s, "\r\n\r\n") {
		t.Fatalf("response %q lacks %q", s, want)
	}
}

// readServerFrame parses one unmasked, final server frame at b.
func readServerFrame(t *testing.T, b []byte) (op Opcode, payload []byte, n int) {
	t.Helper()
	if len(b) < 2 || b[0]&bitFIN == 0 || b[1]&bitMask != 0 {
		t.Fatalf("server frame header % x", b[:min(len(b), 2)])
	}
	op, l, h := Opcode(b[0]&0x0F), int(b[1]&0x7F), 2
	switch l {
	case 126:
		l, h = int(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		l, h = int(binary.BigEndian.Uint64(b[2:])), 10
	}
	return op, b[h : h+l], h + l
}

// TestConversationWithHandWrittenClient runs a whole exchange in memory: handshake,
// client frames delivered in odd-sized reads, server echoes, and the close.
func TestConversationWithHandWrittenClient(t *testing.T) {
	c := &testClient{key: base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))}
	var server []byte // the server's input buffer, as a reactor keeps it
	server = append(server, c.request("/ws")...)
	req, n, err := ParseUpgrade(server)
	if err != nil || n != len(server) || req.Path != "/ws" {
		t.Fatalf("handshake: n=%d err=%v req=%+v", n, err, req)
	}
	server = server[n:]
	c.checkResponse(t, AppendResponse(nil, &req, ""))

	sent := [][]byte{[]byte("a"), bytes.Repeat([]byte{7}, 200), bytes.Repeat([]byte{9}, 70000)}
	var wire []byte
	for i, p := range sent {
		key := [4]byte{byte(i), 0xA5, 0x5A, byte(i * 3)}
		wire = appendClientFrame(wire, clientFrame{fin: true, op: OpBinary, payload: p, key: key})
	}
	wire = appendClientFrame(wire, masked(OpClose, "\x03\xe8"))

	var d Decoder
	var out []byte // the server's output
	closed := false
	for read := 1; len(wire) > 0 && !closed; read = read*3 + 1 { // growing, uneven reads
		chunk := wire[:min(read, len(wire))]
		wire = wire[len(chunk):]
		server = append(server, chunk...)
		for {
			m, n, err := d.Decode(server)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			server = server[n:]
			switch m.Op {
			case OpBinary:
				out = AppendFrame(out, OpBinary, m.Payload)
			case OpClose:
				out = AppendClose(out, m.Code, "")
				closed = true
			}
		}
	}
	if !closed || len(server) != 0 {
		t.Fatalf("closed=%v, %d bytes left", closed, len(server))
	}
	for i, p := range sent {
		op, got, n := readServerFrame(t, out)
		if op != OpBinary || !bytes.Equal(got, p) {
			t.Fatalf("echo %d: op %d, %d bytes, want %d", i, op, len(got), len(p))
		}
		out = out[n:]
	}
	if op, body, _ := readServerFrame(t, out); op != OpClose || binary.BigEndian.Uint16(body) != CloseNormal {
		t.Fatalf("close reply op %d body % x", op, body)
	}
}

// TestDecodeSingleFrameMessagesDoNotAllocate guards the steady state the reactor
// relies on: a message in one frame is returned in place, without allocating.
func TestDecodeSingleFrameMessagesDoNotAllocate(t *testing.T) {
	pristine := stream(masked(OpBinary, strings.Repeat("p", 64)), masked(OpPing, "x"), masked(OpText, "héllo"))
	buf := make([]byte, len(pristine))
	d := Decoder{MaxMessage: 1024}
	allocs := testing.AllocsPerRun(100, func() {
		copy(buf, pristine)
		for off := 0; off < len(buf); {
			_, n, err := d.Decode(buf[off:])
			if err != nil || n == 0 {
				t.Fatalf("n=%d err=%v", n, err)
			}
			off += n
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per pass, want 0", allocs)
	}
}
