package link

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

// appendFrame appends a whole frame as the writer sends it.
func appendFrame(b []byte, kind uint8, id uint64, method uint16, body []byte) []byte {
	h := frameHeader(kind, id, method, len(body))
	return append(append(b, h[:]...), body...)
}

// Frames round-trip, and no input makes readFrame panic or accept a frame that
// does not re-encode to the bytes it consumed: reading a stream frame by frame and
// re-encoding what was read gives back the stream's prefix up to the first error.
func FuzzReadFrame(f *testing.F) {
	var two []byte
	two = appendFrame(two, kindRequest, 1, 7, []byte("hello"))
	two = appendFrame(two, kindNotify, 0, 3, nil)
	f.Add(two)
	f.Add(appendFrame(nil, kindResponse, 1<<64-1, 1<<16-1, bytes.Repeat([]byte{0xa5}, 300)))
	f.Add(appendFrame(nil, kindError, 42, 1, []byte("remote: boom")))
	f.Add([]byte{0, 0, 0, 10, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0})         // length under the header
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})                         // length over MaxBody
	f.Add([]byte{0, 0, 0, 20, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 'x'}) // body cut short
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(b), 64)
		var buf, again []byte
		for range len(b)/headerSize + 1 {
			fr, nb, err := readFrame(r, buf)
			buf = nb
			if err != nil {
				break
			}
			if len(fr.body) > MaxBody {
				t.Fatalf("accepted a body of %d bytes", len(fr.body))
			}
			again = appendFrame(again, fr.kind, fr.id, fr.method, fr.body)
		}
		if !bytes.HasPrefix(b, again) {
			t.Fatalf("frames read from % x re-encode to % x, not a prefix", b, again)
		}
	})
}

// Client hellos round-trip, and no input makes readClientHello panic or accept a
// hello other than the one its name and nonce encode to (a forged MAC included).
func FuzzReadClientHello(f *testing.F) {
	ns := bytes.Repeat([]byte{0x11}, nonceSize)
	nc0 := bytes.Repeat([]byte{0x22}, nonceSize)
	f.Add(appendClientHello(nil, secret, ns, nc0, "gw-1"))
	f.Add(appendClientHello(nil, secret, ns, nc0, ""))
	f.Add(appendClientHello(nil, secret, ns, nc0, string(bytes.Repeat([]byte{'n'}, maxNameLen))))
	f.Add(append(appendClientHello(nil, secret, ns, nc0, "router"), "and a frame after it"...))
	f.Add(appendClientHello(nil, []byte("another secret"), ns, nc0, "impostor"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		name, gotNc, err := readClientHello(r, secret, ns)
		if err != nil {
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("% x: error %v is not ErrAuth", b, err)
			}
			return
		}
		consumed := b[:len(b)-r.Len()]
		if again := appendClientHello(nil, secret, ns, gotNc, name); !bytes.Equal(again, consumed) {
			t.Fatalf("accepted hello % x (name %q) re-encodes to % x", consumed, name, again)
		}
	})
}
