package proto

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func newTestSigner(t testing.TB, secret []byte) *Signer {
	t.Helper()
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawToken builds a token from its text parts with a correct MAC over
// (uid, exp), bypassing Mint's formatting.
func rawToken(s *Signer, uidText, expText string, uid uint64, exp int64) []byte {
	st := s.macs.Get().(*macState)
	defer s.macs.Put(st)
	return fmt.Appendf(nil, "%s.%s.%s", uidText, expText, st.mac(uid, exp))
}

func TestNewSigner(t *testing.T) {
	tests := []struct {
		n  int
		ok bool
	}{{0, false}, {1, false}, {MinSecretLen - 1, false}, {MinSecretLen, true}, {64, true}}
	for _, tc := range tests {
		s, err := NewSigner(bytes.Repeat([]byte{'k'}, tc.n))
		if (err == nil) != tc.ok || (s != nil) != tc.ok {
			t.Errorf("NewSigner(%d bytes) = %v, %v; want ok=%v", tc.n, s, err, tc.ok)
		}
	}
	if _, err := NewSigner(nil); err == nil {
		t.Error("NewSigner(nil) succeeded")
	}
}

func TestToken(t *testing.T) {
	s := newTestSigner(t, []byte(testSecret))
	other := newTestSigner(t, []byte("another-secret-of-32-bytes-long!"))
	now := time.Unix(1767225600, 0)
	exp := now.Add(time.Hour)
	good := s.Mint(42, exp)
	e := strconv.FormatInt(exp.Unix(), 10)
	mac := string(good[bytes.LastIndexByte(good, '.')+1:])

	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return b
	}
	tests := []struct {
		name  string
		token []byte
		uid   uint64
		now   time.Time
		want  error
	}{
		{"valid", good, 42, now, nil},
		{"valid 1ns before expiry", good, 42, exp.Add(-time.Nanosecond), nil},
		{"valid long before", good, 42, time.Unix(0, 0), nil},
		{"expired at expiry", good, 42, exp, ErrTokenExpired},
		{"expired after", good, 42, exp.Add(time.Second), ErrTokenExpired},
		{"wrong uid", good, 43, now, ErrUIDMismatch},
		{"wrong uid and expired", good, 43, exp, ErrUIDMismatch},
		{"wrong secret", other.Mint(42, exp), 42, now, ErrBadToken},
		{"tampered mac first", flip(good, len(good)-macTextLen), 42, now, ErrBadToken},
		{"tampered mac last", flip(good, len(good)-1), 42, now, ErrBadToken},
		{"tampered uid", []byte("43." + e + "." + mac), 43, now, ErrBadToken},
		{"tampered expiry", []byte("42." + strconv.FormatInt(exp.Unix()+3600, 10) + "." + mac), 42, now, ErrBadToken},
		{"leading zero uid", []byte("042." + e + "." + mac), 42, now, ErrBadToken},
		{"leading zero expiry", []byte("42.0" + e + "." + mac), 42, now, ErrBadToken},
		{"plus sign", []byte("+42." + e + "." + mac), 42, now, ErrBadToken},
		{"mac with padding", []byte(string(good) + "="), 42, now, ErrBadToken},
		{"mac truncated", good[:len(good)-1], 42, now, ErrBadToken},
		{"extra field", []byte(string(good) + ".x"), 42, now, ErrBadToken},
		{"std base64 alphabet", []byte(strings.NewReplacer("-", "+", "_", "/").Replace(string(good))), 42, now, ErrBadToken},
		{"uid overflow", rawToken(s, "18446744073709551616", e, 0, exp.Unix()), 0, now, ErrBadToken},
		{"expiry overflow", rawToken(s, "42", "9223372036854775808", 42, math.MinInt64), 42, now, ErrBadToken},
		{"negative expiry", rawToken(s, "42", "-1", 42, -1), 42, now, ErrBadToken},
		{"max uid and expiry", rawToken(s, "18446744073709551615", "9223372036854775807", math.MaxUint64, math.MaxInt64), math.MaxUint64, now, nil},
		{"zero uid and expiry", rawToken(s, "0", "0", 0, 0), 0, time.Unix(-1, 0), nil},
		{"empty", nil, 42, now, ErrBadToken},
		{"dots", []byte(".."), 42, now, ErrBadToken},
		{"no mac", []byte("42." + e + "."), 42, now, ErrBadToken},
		{"no expiry", []byte("42.." + mac), 42, now, ErrBadToken},
		{"garbage", []byte("not a token at all"), 42, now, ErrBadToken},
		{"binary", []byte{0xff, 0x00, '.', 0x80, '.', 0x01}, 42, now, ErrBadToken},
		{"long", bytes.Repeat([]byte{'9'}, MaxTokenLen), 42, now, ErrBadToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Verify(tc.token, tc.uid, tc.now); err != tc.want { // bare sentinels
				t.Errorf("Verify(%q, %d) = %v, want %v", tc.token, tc.uid, err, tc.want)
			}
		})
	}
}

func TestMint(t *testing.T) {
	s := newTestSigner(t, []byte(testSecret))
	tests := []struct {
		uid    uint64
		expiry time.Time
		prefix string
	}{
		{42, time.Unix(1767225600, 999_999_999), "42.1767225600."},
		{0, time.Unix(1, 0), "0.1."},
		{math.MaxUint64, time.Unix(1<<40, 0), "18446744073709551615.1099511627776."},
		{7, time.Unix(-100, 0), "7.0."}, // before the epoch: clamped, already expired
		{7, time.Time{}, "7.0."},
	}
	for _, tc := range tests {
		tok := s.Mint(tc.uid, tc.expiry)
		if !bytes.HasPrefix(tok, []byte(tc.prefix)) || len(tok) != len(tc.prefix)+macTextLen || len(tok) > maxTokenLen {
			t.Errorf("Mint(%d, %v) = %q, want prefix %q and a %d-byte mac", tc.uid, tc.expiry, tok, tc.prefix, macTextLen)
		}
		if err := s.Verify(tok, tc.uid, time.Unix(0, 0)); tc.expiry.Unix() > 0 && err != nil {
			t.Errorf("Verify(Mint(%d)) = %v", tc.uid, err)
		}
	}
}

func TestSignerCopiesSecret(t *testing.T) {
	secret := []byte(testSecret)
	s := newTestSigner(t, secret)
	tok := s.Mint(1, time.Unix(2e9, 0))
	secret[0] ^= 0xff
	if err := s.Verify(tok, 1, time.Unix(0, 0)); err != nil {
		t.Errorf("Verify after mutating the caller's secret: %v", err)
	}
}

func TestSignerConcurrent(t *testing.T) {
	s := newTestSigner(t, []byte(testSecret))
	now := time.Unix(1e9, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				uid := uint64(g*1000 + i)
				tok := s.Mint(uid, now.Add(time.Minute))
				if err := s.Verify(tok, uid, now); err != nil {
					t.Errorf("Verify(%q): %v", tok, err)
					return
				}
				if err := s.Verify(tok, uid+1, now); err != ErrUIDMismatch {
					t.Errorf("Verify(%q, other uid) = %v", tok, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
