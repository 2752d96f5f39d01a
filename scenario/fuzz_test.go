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
	f.Add([]byte(netFaultsSrc))
	f.Add([]byte("name: n\ntopology: {gateways: 1, agents: 1}\nphases: [{name: a, duration: 1s, faults: [{at: 0s, partition: [gw-1, [core]], one_way: 1}, {at: 0s, bandwidth: gw-1, rate: 1e9B/s}]}]\n"))
	f.Add([]byte("name: n\nmode: loopback\nphases: [{name: a, duration: 1s, faults: [{at: 0s, loss: cl-0, rate: 0.00001%}, {at: 0s, partition: []}]}]\n"))
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
