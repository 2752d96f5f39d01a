// Package keys holds the rules every Floodgate key follows: the token-signing key
// (client LOGIN tokens), the cluster key (internal links) and the admin token
// (control's mutating endpoints) are each at least MinLen bytes, and no two of
// them that one process holds are equal — a holder of one must not gain what
// another authorises.
package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// MinLen is the least length, in bytes, of every key and of the admin token.
const MinLen = 32

// Named is one key with the name an operator knows it by (a flag or variable),
// which errors quote.
type Named struct {
	Name string
	Key  []byte
}

// Validate checks that each key is at least MinLen bytes and that no two are
// equal. The error names the offending keys.
func Validate(ks ...Named) error {
	for i, k := range ks {
		if len(k.Key) < MinLen {
			return fmt.Errorf("%s: the key is %d bytes, need at least %d (e.g. head -c 32 /dev/urandom | base64)",
				k.Name, len(k.Key), MinLen)
		}
		for _, o := range ks[:i] {
			if bytes.Equal(k.Key, o.Key) {
				return fmt.Errorf("%s and %s are the same key: each must be generated on its own", o.Name, k.Name)
			}
		}
	}
	return nil
}

// Generate returns a fresh random key: 32 random bytes, base64url-encoded
// (43 bytes), so it can travel in an environment variable or a text file.
func Generate() []byte {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return []byte(base64.RawURLEncoding.EncodeToString(b))
}
