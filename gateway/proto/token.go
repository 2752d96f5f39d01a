package proto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"math"
	"strconv"
	"sync"
	"time"
)

// MinSecretLen is the minimum length of a Signer's secret, in bytes.
const MinSecretLen = 16

const (
	tokenDomain = "fg1"                        // MAC domain separator and format version
	macInputLen = len(tokenDomain) + 8 + 8     // "fg1" | u64be(uid) | i64be(expiry)
	macTextLen  = (sha256.Size*8 + 5) / 6      // unpadded base64 of the MAC: 43
	maxTokenLen = 20 + 1 + 19 + 1 + macTextLen // longest token Mint produces: 84
)

// Signer mints and verifies login tokens under a cluster-wide secret. It is
// safe for concurrent use. The zero value is not usable; call NewSigner.
//
// A token is the ASCII text
//
//	<uid>.<expiry>.<mac>
//
// where uid and expiry (Unix seconds) are canonical decimal numbers (no sign,
// no leading zeros) and mac is the unpadded base64url encoding of
// HMAC-SHA256(secret, "fg1" || u64be(uid) || i64be(expiry)).
type Signer struct {
	secret []byte
	macs   sync.Pool // of *macState
}

// macState is a pooled HMAC together with scratch space, so that computing
// a MAC through the hash.Hash interface lets nothing escape to the heap.
type macState struct {
	h   hash.Hash
	in  [macInputLen]byte
	sum [sha256.Size]byte
	txt [macTextLen]byte
}

// NewSigner returns a Signer for secret, which must be at least MinSecretLen
// bytes long. The secret is copied.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("proto: token secret is %d bytes, need at least %d", len(secret), MinSecretLen)
	}
	s := &Signer{secret: bytes.Clone(secret)}
	s.macs.New = func() any { return &macState{h: hmac.New(sha256.New, s.secret)} }
	return s, nil
}

// Mint returns a token for uid that expires at expiry (truncated to whole
// seconds; instants before the Unix epoch are encoded as 0).
func (s *Signer) Mint(uid uint64, expiry time.Time) []byte {
	exp := max(expiry.Unix(), 0)
	tok := make([]byte, 0, maxTokenLen)
	tok = strconv.AppendUint(tok, uid, 10)
	tok = append(tok, '.')
	tok = strconv.AppendInt(tok, exp, 10)
	tok = append(tok, '.')
	st := s.macs.Get().(*macState)
	tok = append(tok, st.mac(uid, exp)...)
	s.macs.Put(st)
	return tok
}

// Verify checks that token was minted by s for uid and has not expired at
// now. It returns ErrBadToken if the token is malformed or its MAC is wrong
// (compared in constant time), then ErrUIDMismatch if it was minted for
// another uid, then ErrTokenExpired if its expiry is not after now. It
// does not allocate in the steady state.
func (s *Signer) Verify(token []byte, uid uint64, now time.Time) error {
	tuid, rest, ok := parseDecimal(token, math.MaxUint64)
	if !ok {
		return ErrBadToken
	}
	exp, mac, ok := parseDecimal(rest, math.MaxInt64)
	if !ok || len(mac) != macTextLen {
		return ErrBadToken
	}
	st := s.macs.Get().(*macState)
	good := subtle.ConstantTimeCompare(st.mac(tuid, int64(exp)), mac) == 1
	s.macs.Put(st)
	switch {
	case !good:
		return ErrBadToken
	case tuid != uid:
		return ErrUIDMismatch
	case int64(exp) <= now.Unix():
		return ErrTokenExpired
	}
	return nil
}

// mac returns the text form of the MAC of (uid, expiry), valid until the
// next use of st.
func (st *macState) mac(uid uint64, expiry int64) []byte {
	copy(st.in[:], tokenDomain)
	binary.BigEndian.PutUint64(st.in[len(tokenDomain):], uid)
	binary.BigEndian.PutUint64(st.in[len(tokenDomain)+8:], uint64(expiry))
	st.h.Reset()
	st.h.Write(st.in[:])
	base64.RawURLEncoding.Encode(st.txt[:], st.h.Sum(st.sum[:0]))
	return st.txt[:]
}

// parseDecimal parses the canonical decimal number (at least one digit, no
// sign, no leading zero) that starts b and is terminated by '.'. It fails if
// the number exceeds limit. It returns the value and the bytes after the '.'.
func parseDecimal(b []byte, limit uint64) (v uint64, rest []byte, ok bool) {
	for i, c := range b {
		if c == '.' {
			if i == 0 || (i > 1 && b[0] == '0') {
				return 0, nil, false
			}
			return v, b[i+1:], true
		}
		d := uint64(c - '0')
		if d > 9 || v > (limit-d)/10 {
			return 0, nil, false
		}
		v = v*10 + d
	}
	return 0, nil, false
}
