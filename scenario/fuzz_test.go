package scenario

import (
	"errors"
	"testing"
)

// FuzzParse: no input makes the parser panic, and every rejection is an Errors
// with a file name.
func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("name: x\nphases: [{name: a, duration: 1s, faults: [{at: 0s, kill: gw-1}]}]\n"))
	f.Add([]byte("gates: [\"worst 1s push p99 < 1ms\"]"))
	f.Add([]byte(relogin))
	f.Add([]byte(hostileSrc))
	f.Add([]byte("name: h\nbehaviours: {hostile: {conns: 5, garbage: {share: 200%}, prelogin: {}}}\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, src []byte) {
		_, err := Parse("f.yaml", src)
		if err == nil {
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 || es[0].File != "f.yaml" {
			t.Fatalf("rejection is not Errors with a file: %v", err)
		}
	})
}
