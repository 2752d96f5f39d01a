package link

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"time"
)

const (
	magic      = "FGL1"
	nonceSize  = 32
	maxNameLen = 255
	// handshakeTimeout bounds the client's side of the handshake.
	handshakeTimeout = 5 * time.Second
)

func mac(secret []byte, label string, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(label))
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// serverHandshake authenticates a connecting client and returns its name. It reads
// exactly the handshake's bytes from nc, unbuffered, and holds at most 4+32+1+255+32
// bytes of the client's; one deadline, ttl from the start, bounds the whole of it.
// admit is called with the authenticated name before the server's proof goes out;
// its error ends the handshake there. admitted reports whether admit accepted the
// client (true with a non-nil error when the proof could not be sent).
func serverHandshake(nc net.Conn, secret []byte, ttl time.Duration, admit func(name string) error) (name string, admitted bool, err error) {
	nc.SetDeadline(time.Now().Add(ttl))
	defer nc.SetDeadline(time.Time{})
	ns := make([]byte, nonceSize)
	rand.Read(ns)
	if _, err := nc.Write(append([]byte(magic), ns...)); err != nil {
		return "", false, err
	}
	name, nc0, err := readClientHello(nc, secret, ns)
	if err != nil {
		return "", false, err
	}
	if err := admit(name); err != nil {
		return "", false, err
	}
	if _, err := nc.Write(mac(secret, "fg-link server", nc0, ns)); err != nil {
		return name, true, err
	}
	return name, true, nil
}

// readClientHello reads and checks the client's half of the handshake,
//
//	magic | Nc | u8 name length | name | HMAC(secret, "fg-link client" | Ns | Nc | name)
//
// reading exactly its bytes from r, and returns the client's name and nonce. The
// magic is checked first, so a stray HTTP client or port scanner is turned away at
// once.
func readClientHello(r io.Reader, secret, ns []byte) (name string, nc0 []byte, err error) {
	head := make([]byte, len(magic)+nonceSize+1)
	if _, err := io.ReadFull(r, head[:len(magic)]); err != nil || string(head[:len(magic)]) != magic {
		return "", nil, fmt.Errorf("%w: not a link client", ErrAuth)
	}
	if _, err := io.ReadFull(r, head[len(magic):]); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrAuth, err)
	}
	nc0 = head[len(magic) : len(magic)+nonceSize]
	rest := make([]byte, int(head[len(head)-1])+sha256.Size)
	if _, err := io.ReadFull(r, rest); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrAuth, err)
	}
	nm, got := rest[:len(rest)-sha256.Size], rest[len(rest)-sha256.Size:]
	if !hmac.Equal(got, mac(secret, "fg-link client", ns, nc0, nm)) {
		return "", nil, fmt.Errorf("%w: client %q does not hold the cluster secret", ErrAuth, nm)
	}
	return string(nm), nc0, nil
}

// appendClientHello appends the client's half of the handshake (see readClientHello);
// name is at most maxNameLen bytes.
func appendClientHello(b, secret, ns, nc0 []byte, name string) []byte {
	b = append(b, magic...)
	b = append(b, nc0...)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, mac(secret, "fg-link client", ns, nc0, []byte(name))...)
}

// clientHandshake proves the secret to the server and checks the server's proof.
func clientHandshake(nc net.Conn, r *bufio.Reader, secret []byte, name string) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("link: name %q longer than %d bytes", name, maxNameLen)
	}
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	defer nc.SetDeadline(time.Time{})
	hello := make([]byte, len(magic)+nonceSize)
	if _, err := io.ReadFull(r, hello); err != nil {
		return fmt.Errorf("%w: %v", ErrAuth, err)
	}
	if string(hello[:len(magic)]) != magic {
		return fmt.Errorf("%w: not a link server", ErrAuth)
	}
	ns := hello[len(magic):]
	nc0 := make([]byte, nonceSize)
	rand.Read(nc0)
	if _, err := nc.Write(appendClientHello(nil, secret, ns, nc0, name)); err != nil {
		return err
	}
	proof := make([]byte, sha256.Size)
	if _, err := io.ReadFull(r, proof); err != nil {
		return fmt.Errorf("%w: server closed during the handshake (wrong secret, or the server at a cap?): %v", ErrAuth, err)
	}
	if !hmac.Equal(proof, mac(secret, "fg-link server", nc0, ns)) {
		return fmt.Errorf("%w: server does not hold the cluster secret", ErrAuth)
	}
	return nil
}
