package ws

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
)

const rfcKey = "dGhlIHNhbXBsZSBub25jZQ=="

// request builds a handshake from the RFC 6455 §1.3 example with header overrides:
// a value of "-" drops the header.
func request(first string, over map[string]string) string {
	hdr := [][2]string{
		{"Host", "server.example.com"},
		{"Upgrade", "websocket"},
		{"Connection", "Upgrade"},
		{"Sec-WebSocket-Key", rfcKey},
		{"Origin", "http://example.com"},
		{"Sec-WebSocket-Protocol", "chat, superchat"},
		{"Sec-WebSocket-Version", "13"},
	}
	var b strings.Builder
	b.WriteString(first + "\r\n")
	for _, h := range hdr {
		v := h[1]
		if o, ok := over[h[0]]; ok {
			v = o
		}
		if v != "-" {
			b.WriteString(h[0] + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

const rfcFirst = "GET /chat HTTP/1.1"

func TestAppendAcceptMatchesRFCExample(t *testing.T) {
	got := string(AppendAccept(nil, rfcKey))
	if want := "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Fatalf("accept = %q, want %q", got, want)
	}
}

func TestParseUpgradeCapturesRFCExample(t *testing.T) {
	raw := request(rfcFirst, nil) + "\x81\x85tail"
	req, n, err := ParseUpgrade([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Index(raw, "\r\n\r\n") + 4; n != want {
		t.Fatalf("n = %d, want %d (the header block only)", n, want)
	}
	if req.Path != "/chat" || req.Host != "server.example.com" || req.Origin != "http://example.com" || req.Key != rfcKey {
		t.Fatalf("req = %+v", req)
	}
	if len(req.Protocols) != 2 || req.Protocols[0] != "chat" || req.Protocols[1] != "superchat" || !req.Offers("superchat") || req.Offers("x") {
		t.Fatalf("protocols = %q", req.Protocols)
	}
}

func TestParseUpgradeWaitsForEveryPrefix(t *testing.T) {
	raw := []byte(request(rfcFirst, nil))
	for i := 0; i < len(raw); i++ {
		if _, n, err := ParseUpgrade(raw[:i]); n != 0 || err != nil {
			t.Fatalf("prefix %d: n=%d err=%v, want 0, nil", i, n, err)
		}
	}
}

func TestParseUpgradeRefusesBadRequests(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		status int
	}{
		{"POST", request("POST /chat HTTP/1.1", nil), 400},
		{"HTTP/1.0", request("GET /chat HTTP/1.0", nil), 400},
		{"HTTP/2 line", request("GET /chat HTTP/2.0", nil), 400},
		{"no target", request("GET  HTTP/1.1", nil), 400},
		{"no Host", request(rfcFirst, map[string]string{"Host": "-"}), 400},
		{"no Upgrade", request(rfcFirst, map[string]string{"Upgrade": "-"}), 400},
		{"Upgrade h2c", request(rfcFirst, map[string]string{"Upgrade": "h2c"}), 400},
		{"no Connection", request(rfcFirst, map[string]string{"Connection": "-"}), 400},
		{"Connection keep-alive only", request(rfcFirst, map[string]string{"Connection": "keep-alive"}), 400},
		{"Connection upgraded (not a token)", request(rfcFirst, map[string]string{"Connection": "upgraded"}), 400},
		{"version 8", request(rfcFirst, map[string]string{"Sec-WebSocket-Version": "8"}), 426},
		{"no version", request(rfcFirst, map[string]string{"Sec-WebSocket-Version": "-"}), 426},
		{"no key", request(rfcFirst, map[string]string{"Sec-WebSocket-Key": "-"}), 400},
		{"key of 15 bytes", request(rfcFirst, map[string]string{"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25j"}), 400},
		{"key not base64", request(rfcFirst, map[string]string{"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ!!"}), 400},
		{"header without colon", rfcFirst + "\r\nHost server\r\n\r\n", 400},
		{"header block over the limit", rfcFirst + "\r\nX: " + strings.Repeat("a", MaxRequest), 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, n, err := ParseUpgrade([]byte(tt.raw))
			var he *HandshakeError
			if !errors.As(err, &he) || he.Status != tt.status || n != 0 {
				t.Fatalf("n=%d err=%v, want a HandshakeError %d", n, err, tt.status)
			}
		})
	}
}

func TestParseUpgradeAcceptsTokenListsAnyCase(t *testing.T) {
	raw := request("GET /ws?x=1 HTTP/1.1", map[string]string{
		"Connection": "keep-alive, UPGRADE", "Upgrade": "WebSocket", "Origin": "-", "Sec-WebSocket-Protocol": "-",
	})
	raw = strings.Replace(raw, "Sec-WebSocket-Key", "sec-websocket-key", 1)
	req, n, err := ParseUpgrade([]byte(raw))
	if err != nil || n != len(raw) {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if req.Path != "/ws?x=1" || req.Origin != "" || req.Protocols != nil || req.Key != rfcKey {
		t.Fatalf("req = %+v", req)
	}
}

// TestHandshakeResponsesParseAsHTTP cross-checks the responses with Go's HTTP
// response parser, as a hand-written client would read them.
func TestHandshakeResponsesParseAsHTTP(t *testing.T) {
	req, _, err := ParseUpgrade([]byte(request(rfcFirst, nil)))
	if err != nil {
		t.Fatal(err)
	}
	resp := readResponse(t, AppendResponse(nil, &req, "chat"))
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
		resp.Header.Get("Sec-WebSocket-Protocol") != "chat" || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
		!strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
		t.Fatalf("101 response: %d %v", resp.StatusCode, resp.Header)
	}
	if got := readResponse(t, AppendResponse(nil, &req, "")); got.Header.Get("Sec-WebSocket-Protocol") != "" {
		t.Fatalf("no protocol chosen, yet the response names one: %v", got.Header)
	}
	rej := readResponse(t, AppendReject(nil, 426, "Sec-WebSocket-Version is not 13"))
	if rej.StatusCode != 426 || rej.Header.Get("Sec-WebSocket-Version") != "13" || !rej.Close {
		t.Fatalf("426 response: %d %v", rej.StatusCode, rej.Header)
	}
	bad := readResponse(t, AppendReject(nil, 400, "missing Host"))
	if bad.StatusCode != 400 || bad.Header.Get("Sec-WebSocket-Version") != "" || bad.ContentLength != int64(len("missing Host\n")) {
		t.Fatalf("400 response: %d %v", bad.StatusCode, bad.Header)
	}
}

func readResponse(t *testing.T, raw []byte) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	return resp
}

func FuzzParseUpgrade(f *testing.F) {
	f.Add([]byte(request(rfcFirst, nil)))
	f.Add([]byte(request("GET / HTTP/1.1", map[string]string{"Connection": "a, upgrade ,b"})))
	f.Add([]byte(request(rfcFirst, map[string]string{"Sec-WebSocket-Version": "8"})))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, n, err := ParseUpgrade(b)
		if n < 0 || n > len(b) || n > MaxRequest {
			t.Fatalf("n = %d of %d", n, len(b))
		}
		if err != nil && n != 0 {
			t.Fatalf("error %v with n = %d", err, n)
		}
		if err == nil && n > 0 && (!validKey(req.Key) || req.Host == "") {
			t.Fatalf("accepted %+v", req)
		}
		if err == nil && n > 0 {
			if size, cerr := CutStream(b, 0); cerr != nil || size != n {
				t.Fatalf("CutStream cut %d (err %v), ParseUpgrade consumed %d", size, cerr, n)
			}
		}
	})
}
