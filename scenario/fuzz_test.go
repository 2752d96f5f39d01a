package scenario

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse: no input makes the reader panic; every rejection is Errors naming
// the file, each error at a line unless the file is empty or not YAML at all;
// every scenario accepted holds what the checks promise the runner.
func FuzzParse(f *testing.F) {
	for _, file := range shippedFiles(f) {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, src := range []string{valid, minimal, relogin, stepped, hostileSrc, netFaultsSrc, manyMistakes,
		"name: x\nphases: [{name: a, duration: 1s, faults: [{at: 0s, kill: gw-1}]}]\n",
		"gates: [\"worst 1s push p99 < 1ms\"]",
		"name: h\nbehaviours: {hostile: {conns: 5, garbage: {share: 200%}, prelogin: {}}}\n",
		"name: n\ntopology: {gateways: 1, agents: 1}\nphases: [{name: a, duration: 1s, faults: [{at: 0s, partition: [gw-1, [core]], one_way: 1}, {at: 0s, bandwidth: gw-1, rate: 1e9B/s}]}]\n",
		"name: n\nmode: loopback\nphases: [{name: a, duration: 1s, faults: [{at: 0s, loss: cl-0, rate: 0.00001%}, {at: 0s, partition: []}]}]\n",
		"name: s\ntopology: {gateways: 1, agents: 1}\nclients: {count: 1}\nphases: [{name: a, duration: 2s, faults: [{at: 0s, scale_out: -3}, {at: 1s, drain: gw-2}]}]\n",
		"name: s\ntopology: {gateways: 1, agents: 1}\nclients: {count: 1}\nphases: [{name: a, duration: 2s, faults: [{at: 0s, scale_out: -3}]}]\n",
		"name: r\ntopology: {gateways: 1, agents: 1, backend: {msg: redis-replicated}, redis: {mode: cluster, shards: 0, replicas: -1}}\n",
		"name: k\nknee: hostile_close p99 < 1s\nautoscale: {max: -1, every: 0s}\n",
		"&a [*a]",
		"a: &x {b: *x}",
		"name: [\n",
		"\t\x00",
		"--- \n--- \n",
		"",
	} {
		f.Add([]byte(src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		// A file name without an extension: the name need not match it, so
		// that the seeds reach the checks past the name.
		s, err := Parse("fuzzed", src)
		if err == nil {
			acceptedHoldsItsPromises(t, s)
			return
		}
		es, ok := asErrors(err)
		if !ok || len(es) == 0 {
			t.Fatalf("rejection is not Errors: %v", err)
		}
		for _, e := range es {
			placeless := e.Msg == "empty file" || strings.HasPrefix(e.Msg, "not valid YAML")
			if e.File != "fuzzed" || (e.Pos.Line < 1 && !placeless) || !strings.HasPrefix(e.Error(), "fuzzed") {
				t.Fatalf("error without its file or line: %q (%+v)", e.Error(), *e)
			}
		}
	})
}

// acceptedHoldsItsPromises fails unless s, which the checks accepted, has phases
// of positive length, faults of exactly one known action within their phase,
// and the defaults filled in.
func acceptedHoldsItsPromises(t *testing.T, s *Scenario) {
	t.Helper()
	if len(s.Phases) == 0 || s.Duration() <= 0 || s.Mode == "" || s.Traffic.Pattern == "" || s.Topology.Redis.Replicas == nil {
		t.Fatalf("accepted with %d phases, duration %v, mode %q, pattern %q", len(s.Phases), s.Duration(), s.Mode, s.Traffic.Pattern)
	}
	for _, p := range s.Phases {
		for i := range p.Faults {
			f := &p.Faults[i]
			if f.Action() == "" || f.actions() != 1 || f.Offset >= p.Duration {
				t.Fatalf("phase %s: fault %+v accepted", p.Name, *f)
			}
		}
	}
}
