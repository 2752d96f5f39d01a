package ws

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestDecodeOneUnmasksOneWholeFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		op      Opcode
		fin     bool
		payload string
		err     error
	}{
		{"binary", appendClientFrame(nil, masked(OpBinary, "hello")), OpBinary, true, "hello", nil},
		{"fragment", appendClientFrame(nil, fragment(OpBinary, false, "he")), OpBinary, false, "he", nil},
		{"ping", appendClientFrame(nil, masked(OpPing, "p")), OpPing, true, "p", nil},
		{"16-bit length", appendClientFrame(nil, masked(OpBinary, strings.Repeat("x", 300))), OpBinary, true, strings.Repeat("x", 300), nil},
		{"truncated", appendClientFrame(nil, masked(OpBinary, "hello"))[:6], 0, false, "", ErrNotOneFrame},
		{"two frames", stream(masked(OpBinary, "a"), masked(OpBinary, "b")), 0, false, "", ErrNotOneFrame},
		{"unmasked", []byte{0x82, 0x01, 'x'}, 0, false, "", ErrUnmasked},
		{"reserved bit", []byte{0x92, 0x80, 0, 0, 0, 0}, 0, false, "", ErrReservedBits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, fin, p, err := DecodeOne(tt.in)
			if !errors.Is(err, tt.err) || err == nil && (op != tt.op || fin != tt.fin || string(p) != tt.payload) {
				t.Fatalf("DecodeOne = %v %v %q %v; want %v %v %q %v", op, fin, p, err, tt.op, tt.fin, tt.payload, tt.err)
			}
		})
	}
}

// A frame Decode consumed and MarkDecoded marked is told apart from every frame a
// client can send: CutStream refuses the mark's bit.
func TestMarkDecodedIsNeverAClientFrame(t *testing.T) {
	b := appendClientFrame(nil, masked(OpBinary, "payload"))
	var d Decoder
	if _, n, err := d.Decode(b); err != nil || n != len(b) {
		t.Fatalf("Decode: %d %v", n, err)
	}
	if Decoded(b) {
		t.Fatal("an unmarked frame reads as decoded")
	}
	MarkDecoded(b)
	if !Decoded(b) || !bytes.HasSuffix(b, []byte("payload")) {
		t.Fatalf("marked frame % x", b)
	}
	if _, err := CutStream(b, 0); !errors.Is(err, ErrReservedBits) {
		t.Fatalf("CutStream on a marked frame: %v, want ErrReservedBits", err)
	}
}

func TestAppendUnavailableCarriesRetryAfter(t *testing.T) {
	got := string(AppendUnavailable(nil, 0, "server full"))
	for _, want := range []string{"HTTP/1.1 503 Service Unavailable\r\n", "Retry-After: 1\r\n", "Connection: close\r\n",
		"Content-Length: 12\r\n\r\nserver full\n"} {
		if !strings.Contains(got, want) {
			t.Fatalf("%q lacks %q", got, want)
		}
	}
}

func FuzzDecodeOne(f *testing.F) {
	f.Add(appendClientFrame(nil, masked(OpBinary, "hello")))
	f.Add(appendClientFrame(nil, fragment(OpContinuation, true, "x")))
	f.Add([]byte{0x82, 0xFE, 0x00})
	f.Add([]byte{0x88, 0x80, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append([]byte(nil), b...)
		op, _, p, err := DecodeOne(b)
		if err != nil {
			return
		}
		n, ferr := FrameSize(in, 0)
		if ferr != nil || n != len(in) || len(p) > len(in) || op > OpPong {
			t.Fatalf("DecodeOne accepted % x (FrameSize %d %v)", in, n, ferr)
		}
	})
}
