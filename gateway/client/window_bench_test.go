package client

import (
	"testing"

	"github.com/floodgate/floodgate/gateway/proto"
)

// The in-order path — a push that is next, its ack, the sync check — does not
// allocate, whatever T is.
func TestWindowInOrderPathDoesNotAllocate(t *testing.T) {
	var w Window[proto.Push]
	w.Login(proto.LoginOK{Epoch: 1})
	w.Sync(0)
	w.SyncEnd(&proto.SyncEnd{Oldest: 1, Epoch: 1}, func(uint64, proto.Push) {})
	var n uint64
	deliver := func(uint64, proto.Push) { n++ }
	p := proto.Push{Epoch: 1, Payload: []byte("hello")}
	allocs := testing.AllocsPerRun(1000, func() {
		p.Seq++
		if w.Push(&p, p, int64(p.Seq), deliver) != Delivered {
			t.Fatalf("push %d not delivered", p.Seq)
		}
		w.Ack(32)
		w.NeedSync(int64(p.Seq), testGapWait)
	})
	if allocs != 0 || n == 0 {
		t.Fatalf("%v allocs per push (%d delivered), want 0", allocs, n)
	}
}

func BenchmarkWindowInOrder(b *testing.B) {
	var w Window[struct{}]
	w.Login(proto.LoginOK{Epoch: 1})
	deliver := func(uint64, struct{}) {}
	p := proto.Push{Epoch: 1}
	b.ReportAllocs()
	for b.Loop() {
		p.Seq++
		w.Push(&p, struct{}{}, int64(p.Seq), deliver)
		w.Ack(32)
	}
}

func BenchmarkWindowDuplicate(b *testing.B) {
	var w Window[struct{}]
	w.Login(proto.LoginOK{Epoch: 1})
	deliver := func(uint64, struct{}) {}
	p := proto.Push{Epoch: 1, Seq: 1}
	w.Push(&p, struct{}{}, 0, deliver)
	b.ReportAllocs()
	for b.Loop() {
		w.Push(&p, struct{}{}, 0, deliver)
	}
}

// Pairs of pushes swapped (2, 1, 4, 3, …): a one-message gap opens and closes
// each time, which is what allocates.
func BenchmarkWindowSwappedPairs(b *testing.B) {
	var w Window[struct{}]
	w.Login(proto.LoginOK{Epoch: 1})
	deliver := func(uint64, struct{}) {}
	p := proto.Push{Epoch: 1}
	b.ReportAllocs()
	for b.Loop() {
		base := w.Contiguous()
		p.Seq = base + 2
		w.Push(&p, struct{}{}, 0, deliver)
		p.Seq = base + 1
		w.Push(&p, struct{}{}, 0, deliver)
	}
}
