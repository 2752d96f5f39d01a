package ws

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"strconv"
)

// MaxRequest is the largest opening handshake ParseUpgrade accepts: request line and
// headers up to and including the blank line. Browsers send well under 1 KiB.
const MaxRequest = 4096

// acceptGUID is the fixed GUID of RFC 6455 §1.3 appended to the client's key.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Upgrade is a client's valid opening handshake (RFC 6455 §4.2.1).
type Upgrade struct {
	Path      string   // the request target, as sent
	Host      string   // the Host header
	Origin    string   // the Origin header, "" when absent (non-browser clients)
	Key       string   // Sec-WebSocket-Key: 24 characters of base64, 16 bytes
	Protocols []string // Sec-WebSocket-Protocol offers in the client's order
}

// Offers reports whether the client offered subprotocol p.
func (u *Upgrade) Offers(p string) bool {
	for _, o := range u.Protocols {
		if o == p {
			return true
		}
	}
	return false
}

// HandshakeError is a refused opening handshake: Status is the HTTP status to answer
// with (AppendReject), 400 for a malformed request, 426 for a WebSocket version
// other than 13, 431 for a header block over MaxRequest.
type HandshakeError struct {
	Status int
	Reason string
}

// Error implements error.
func (e *HandshakeError) Error() string {
	return fmt.Sprintf("ws: handshake refused (%d): %s", e.Status, e.Reason)
}

func badRequest(reason string) error { return &HandshakeError{400, reason} }

// errHeaderTooLong refuses a header block that has not ended within MaxRequest bytes.
var errHeaderTooLong = &HandshakeError{431, "request header block over " + strconv.Itoa(MaxRequest) + " bytes"}

// headerBlockSize returns the size of the HTTP header block at the start of b, its
// blank line included, once that line has come within limit bytes; 0 and a nil
// error while it has not and b is shorter than limit; 0 and tooLong once b holds
// limit bytes without it.
func headerBlockSize(b []byte, limit int, tooLong error) (int, error) {
	if end := bytes.Index(b[:min(len(b), limit)], []byte("\r\n\r\n")); end >= 0 {
		return end + 4, nil
	}
	if len(b) >= limit {
		return 0, tooLong
	}
	return 0, nil
}

// ParseUpgrade parses the client's opening handshake at the start of buf. It returns
// n == 0 and a nil error while the header block is not complete (the caller reads
// more and calls again with everything so far); a *HandshakeError for a request that
// is not a valid WebSocket upgrade or whose header block runs past MaxRequest; or the
// request and n, the bytes of the header block including its blank line. Bytes after
// n belong to the frame stream. The strings of req are copies: buf may be reused.
//
// It works on buf in place and copies out only the strings it returns: a gateway
// parses one handshake per WebSocket connection, and what a connection storm
// leaves to the collector shows in the process's peak memory.
func ParseUpgrade(buf []byte) (req Upgrade, n int, err error) {
	if n, err = headerBlockSize(buf, MaxRequest, errHeaderTooLong); n == 0 {
		return req, 0, err
	}
	line, rest, _ := bytes.Cut(buf[:n-4], []byte("\r\n"))
	method, after, ok1 := bytes.Cut(line, []byte(" "))
	target, version, ok2 := bytes.Cut(after, []byte(" "))
	if !ok1 || !ok2 || len(target) == 0 || bytes.Contains(version, []byte(" ")) {
		return Upgrade{}, 0, badRequest("malformed request line")
	}
	if string(method) != "GET" {
		return Upgrade{}, 0, badRequest("method is not GET")
	}
	if !httpAtLeast11(version) {
		return Upgrade{}, 0, badRequest("HTTP version below 1.1")
	}
	req.Path = string(target)
	var upgrade, connection, wsVersion bool
	var versionSeen, keySeen bool
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return Upgrade{}, 0, badRequest("malformed header line")
		}
		value = bytes.Trim(value, " \t")
		switch {
		case bytes.EqualFold(name, []byte("host")):
			req.Host = string(value)
		case bytes.EqualFold(name, []byte("upgrade")):
			upgrade = upgrade || hasToken(value, "websocket")
		case bytes.EqualFold(name, []byte("connection")):
			connection = connection || hasToken(value, "upgrade")
		case bytes.EqualFold(name, []byte("sec-websocket-version")):
			versionSeen = true
			wsVersion = string(value) == "13"
		case bytes.EqualFold(name, []byte("sec-websocket-key")):
			if keySeen {
				return Upgrade{}, 0, badRequest("repeated Sec-WebSocket-Key")
			}
			keySeen = true
			req.Key = string(value)
		case bytes.EqualFold(name, []byte("origin")):
			req.Origin = string(value)
		case bytes.EqualFold(name, []byte("sec-websocket-protocol")):
			for len(value) > 0 {
				var p []byte
				p, value, _ = bytes.Cut(value, []byte(","))
				if p = bytes.Trim(p, " \t"); len(p) > 0 {
					req.Protocols = append(req.Protocols, string(p))
				}
			}
		}
	}
	switch {
	case req.Host == "":
		return Upgrade{}, 0, badRequest("missing Host")
	case !upgrade:
		return Upgrade{}, 0, badRequest("missing Upgrade: websocket")
	case !connection:
		return Upgrade{}, 0, badRequest("Connection lacks the upgrade token")
	case !versionSeen || !wsVersion:
		return Upgrade{}, 0, &HandshakeError{426, "Sec-WebSocket-Version is not 13"}
	case !validKey(req.Key):
		return Upgrade{}, 0, badRequest("Sec-WebSocket-Key is not 16 bytes of base64")
	}
	return req, n, nil
}

// httpAtLeast11 reports whether version is HTTP/1.1 or a later HTTP/1.x.
func httpAtLeast11[S string | []byte](version S) bool {
	const prefix = "HTTP/1."
	if len(version) <= len(prefix) || string(version[:len(prefix)]) != prefix {
		return false
	}
	v := 0
	for _, c := range []byte(version[len(prefix):]) {
		if c < '0' || c > '9' || v > 1e6 {
			return false
		}
		v = v*10 + int(c-'0')
	}
	return v >= 1
}

// hasToken reports whether the comma-separated list value holds token, compared
// case-insensitively (RFC 9110 §5.6.1; "Connection: keep-alive, Upgrade").
func hasToken[S string | []byte](value S, token string) bool {
	b := []byte(value)
	for len(b) > 0 {
		var t []byte
		t, b, _ = bytes.Cut(b, []byte(","))
		if bytes.EqualFold(bytes.Trim(t, " \t"), []byte(token)) {
			return true
		}
	}
	return false
}

// validKey reports whether key is base64 (standard alphabet, padded) of 16 bytes.
func validKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Decode(raw[:], []byte(key))
	return err == nil && n == 16
}

// AppendAccept appends the Sec-WebSocket-Accept value for key: base64 of the SHA-1 of
// key and the RFC 6455 GUID.
func AppendAccept(dst []byte, key string) []byte {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(acceptGUID))
	var sum [sha1.Size]byte
	return base64.StdEncoding.AppendEncode(dst, h.Sum(sum[:0]))
}

// AppendResponse appends the 101 response accepting req. protocol is the chosen
// subprotocol, "" for none; it must be one req.Offers (RFC 6455 §4.2.2: a server may
// only select an offered one), which the caller checks.
func AppendResponse(dst []byte, req *Upgrade, protocol string) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = AppendAccept(dst, req.Key)
	dst = append(dst, "\r\n"...)
	if protocol != "" {
		dst = append(dst, "Sec-WebSocket-Protocol: "...)
		dst = append(dst, protocol...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// AppendReject appends an HTTP response refusing a handshake, with reason as a
// plain-text body, and "Connection: close": the caller closes after writing it. A 426
// carries "Sec-WebSocket-Version: 13", the version this server speaks (RFC 6455
// §4.4). reason should be one line of ASCII (HandshakeError.Reason is).
func AppendReject(dst []byte, status int, reason string) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(status)...)
	dst = append(dst, "\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"...)
	if status == 426 {
		dst = append(dst, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"...)
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(reason)+1), 10)
	dst = append(dst, "\r\n\r\n"...)
	dst = append(dst, reason...)
	return append(dst, '\n')
}

// AppendUnavailable appends a 503 response refusing a connection the server cannot
// take now, with a Retry-After of retryAfter seconds (at least 1), reason as a
// plain-text body and "Connection: close".
func AppendUnavailable(dst []byte, retryAfter int, reason string) []byte {
	dst = append(dst, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: "...)
	dst = strconv.AppendInt(dst, int64(max(retryAfter, 1)), 10)
	dst = append(dst, "\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(reason)+1), 10)
	dst = append(dst, "\r\n\r\n"...)
	dst = append(dst, reason...)
	return append(dst, '\n')
}

// statusText is the reason phrase of the statuses a handshake is refused with.
func statusText(status int) string {
	switch status {
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 426:
		return "Upgrade Required"
	case 431:
		return "Request Header Fields Too Large"
	case 503:
		return "Service Unavailable"
	}
	return "Error"
}
