package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"testing"
	"time"
)

func FuzzSplit(f *testing.F) {
	stream, frames := testStream()
	f.Add(stream, DefaultMaxFrame)
	for _, fr := range frames {
		f.Add(fr, DefaultMaxFrame)
		f.Add(fr[:len(fr)-1], DefaultMaxFrame)
		f.Add(fr, len(fr)-4)
		f.Add(fr, len(fr)-5)
	}
	f.Add([]byte{}, DefaultMaxFrame)
	f.Add([]byte{0, 0, 0, 0}, DefaultMaxFrame)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, DefaultMaxFrame)
	f.Add([]byte{0, 1, 0, 1}, 0)
	f.Add([]byte{0, 0, 0, 9, 4}, -5)
	f.Fuzz(func(t *testing.T, b []byte, maxFrame int) {
		n, err := Split(b, maxFrame)
		// FrameSize agrees with Split, and knows the size as soon as the prefix is in.
		size, serr := FrameSize(b, maxFrame)
		if serr != err || (err == nil && n != 0 && size != n) || (err == nil && n == 0 && size != 0 && size <= len(b)) ||
			(err == nil && len(b) >= 4 && size == 0) {
			t.Fatalf("FrameSize = %d, %v; Split = %d, %v (len %d)", size, serr, n, err, len(b))
		}
		limit := maxFrame
		if limit <= 0 {
			limit = DefaultMaxFrame
		}
		switch {
		case err != nil:
			if n != 0 || (err != ErrZeroLength && err != ErrFrameTooLarge) {
				t.Fatalf("Split = %d, %v", n, err)
			}
		case n == 0:
			if len(b) >= 4 && int64(binary.BigEndian.Uint32(b))+4 <= int64(len(b)) {
				t.Fatalf("Split = 0 with a complete frame present")
			}
		default:
			if n < HeaderSize || n > len(b) || int64(n-4) > int64(limit) {
				t.Fatalf("Split = %d out of bounds (len %d, max %d)", n, len(b), limit)
			}
			// A frame Split accepts is well-formed apart from its type.
			if _, err := ParseFrame(b[:n]); err != nil && !errors.Is(err, ErrUnknownType) {
				t.Fatalf("ParseFrame of a split frame: %v", err)
			}
		}
	})
}

func FuzzDecode(f *testing.F) {
	for _, rt := range roundTrips() {
		frame := rt.msg.Append(nil)
		f.Add(frame)
		f.Add(frame[4:]) // as type | body, see below
		f.Add(frame[:len(frame)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 0xff})
	f.Add([]byte{0, 0, 0, 2, byte(TypeLogin), 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
		// Mutations rarely keep the length prefix right, so also treat the
		// input as type | body and give it a correct prefix.
		if len(data) > 0 && len(data) < 1<<20 {
			checkDecode(t, frameOf(Type(data[0]), data[1:]))
		}
	})
}

// checkDecode parses frame and decodes its body: nothing may panic, every
// error must carry a protocol code, and a successful decode must re-encode to
// exactly the same bytes.
func checkDecode(t *testing.T, frame []byte) {
	f, err := ParseFrame(frame)
	if err != nil {
		if CodeOf(err) == 0 {
			t.Fatalf("ParseFrame error without a code: %v", err)
		}
		return
	}
	m := newMessage(f.Type)
	if err := m.Decode(f.Body); err != nil {
		if c := CodeOf(err); c != CodeMalformed && c != CodeUnsupportedVersion {
			t.Fatalf("Decode(%v) error %v has code %v", f.Type, err, c)
		}
		return
	}
	if got := m.Append(nil); !bytes.Equal(got, frame) {
		t.Fatalf("re-encoded %v differs:\n got % x\nwant % x", f.Type, got, frame)
	}
	if m.Size() != len(frame) {
		t.Fatalf("Size() = %d, frame is %d bytes", m.Size(), len(frame))
	}
}

func FuzzToken(f *testing.F) {
	s := newTestSigner(f, []byte(testSecret))
	now := time.Unix(1767225600, 0).Unix()
	for _, uid := range []uint64{0, 1, 42, 1 << 63} {
		f.Add(s.Mint(uid, time.Unix(now+60, 0)), uid, now)
	}
	f.Add([]byte(""), uint64(0), int64(0))
	f.Add([]byte("1.2.3"), uint64(1), int64(0))
	f.Add([]byte("18446744073709551616.9223372036854775808."), uint64(0), int64(0))
	f.Fuzz(func(t *testing.T, token []byte, uid uint64, now int64) {
		err := s.Verify(token, uid, time.Unix(now, 0))
		if err == nil || err == ErrUIDMismatch || err == ErrTokenExpired {
			// The MAC verified, which for fuzzed input means the token is
			// one Mint produced: it must be canonical.
			parts := bytes.Split(token, []byte("."))
			if len(parts) != 3 {
				t.Fatalf("accepted token %q has %d parts", token, len(parts))
			}
			tuid, err1 := strconv.ParseUint(string(parts[0]), 10, 64)
			exp, err2 := strconv.ParseInt(string(parts[1]), 10, 64)
			if err1 != nil || err2 != nil || !bytes.Equal(token, s.Mint(tuid, time.Unix(exp, 0))) {
				t.Fatalf("accepted non-canonical token %q", token)
			}
			return
		}
		if err != ErrBadToken {
			t.Fatalf("Verify = %v", err)
		}
	})
}
