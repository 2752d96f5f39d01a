package client

import (
	"fmt"
	"slices"
	"testing"

	"github.com/floodgate/floodgate/gateway/proto"
)

const testGapWait = 100

// wstep is one thing that happens to a Window in a scripted test, with what it
// must answer.
type wstep struct {
	kind       byte // 'L' login, 'P' push, 'E' SYNC_END, 'S' sync, 'N' need-sync, 'A' ack, 'D' disconnected, 'F' sync failed, 'T' clock
	epoch      uint64
	a, b, c    uint64 // P: seq; L: last_seq; E: up_to, head, oldest; S: want after_seq; A: every, want seq
	verdict    Verdict
	n          uint64 // E: want evicted
	ok         bool   // N: want NeedSync; L: want reset; A: want an ack
	now        int64  // T
	wantEpochS uint64 // S, A: the epoch the SYNC or PUSH_ACK must carry
}

func login(epoch, last uint64, reset bool) wstep {
	return wstep{kind: 'L', epoch: epoch, a: last, ok: reset}
}
func push(epoch, seq uint64, v Verdict) wstep {
	return wstep{kind: 'P', epoch: epoch, a: seq, verdict: v}
}
func syncEnd(epoch, upTo, head, oldest, evicted uint64) wstep {
	return wstep{kind: 'E', epoch: epoch, a: upTo, b: head, c: oldest, n: evicted}
}
func syncs(after, epoch uint64) wstep { return wstep{kind: 'S', a: after, wantEpochS: epoch} }
func needSync(want bool) wstep        { return wstep{kind: 'N', ok: want} }
func ack(every, seq, epoch uint64, want bool) wstep {
	return wstep{kind: 'A', a: every, b: seq, wantEpochS: epoch, ok: want}
}
func clock(now int64) wstep { return wstep{kind: 'T', now: now} }

var (
	disconnected = wstep{kind: 'D'}
	syncFailed   = wstep{kind: 'F'}
)

// runWindow plays steps on a fresh Window and returns what it delivered, as
// "epoch/seq" in delivery order, failing t at the first step whose answer is
// not the one the step wants.
func runWindow(t *testing.T, w *Window[string], steps []wstep) []string {
	t.Helper()
	var got []string
	deliver := func(seq uint64, v string) {
		got = append(got, v)
		if want := fmt.Sprintf("/%d", seq); v[len(v)-len(want):] != want {
			t.Fatalf("deliver(%d, %q): the seq is not the held message's", seq, v)
		}
	}
	var now int64
	for i, s := range steps {
		switch s.kind {
		case 'L':
			if reset := w.Login(proto.LoginOK{Epoch: s.epoch, LastSeq: s.a, Oldest: 1}); reset != s.ok {
				t.Fatalf("step %d: Login(epoch %d) reset = %v, want %v", i, s.epoch, reset, s.ok)
			}
		case 'P':
			p := proto.Push{Seq: s.a, Epoch: s.epoch}
			if v := w.Push(&p, fmt.Sprintf("%d/%d", s.epoch, s.a), now, deliver); v != s.verdict {
				t.Fatalf("step %d: Push(%d/%d) = %v, want %v (delivered %v)", i, s.epoch, s.a, v, s.verdict, got)
			}
		case 'E':
			e := proto.SyncEnd{UpTo: s.a, Head: s.b, Oldest: s.c, Epoch: s.epoch}
			if n := w.SyncEnd(&e, deliver); n != s.n {
				t.Fatalf("step %d: SyncEnd(%+v) evicted %d, want %d", i, e, n, s.n)
			}
		case 'S':
			if m := w.Sync(0); m.AfterSeq != s.a || m.Epoch != s.wantEpochS {
				t.Fatalf("step %d: Sync() = %+v, want after_seq %d epoch %d", i, m, s.a, s.wantEpochS)
			}
		case 'N':
			if got := w.NeedSync(now, testGapWait); got != s.ok {
				t.Fatalf("step %d: NeedSync at %d = %v, want %v", i, now, got, s.ok)
			}
		case 'A':
			m, ok := w.Ack(s.a)
			if ok != s.ok || (ok && (m.Seq != s.b || m.Epoch != s.wantEpochS)) {
				t.Fatalf("step %d: Ack(%d) = %+v %v, want seq %d epoch %d %v", i, s.a, m, ok, s.b, s.wantEpochS, s.ok)
			}
		case 'D':
			w.Disconnected()
		case 'F':
			w.SyncFailed()
		case 'T':
			now = s.now
		}
	}
	return got
}

func TestWindowRules(t *testing.T) {
	const D, H, X = Delivered, Held, Duplicate
	tests := []struct {
		name       string
		steps      []wstep
		delivered  []string
		contiguous uint64
		epoch      uint64
		held       int
	}{
		{
			name:       "in order: each delivered at once",
			steps:      []wstep{login(1, 0, false), push(1, 1, D), push(1, 2, D), push(1, 3, D)},
			delivered:  []string{"1/1", "1/2", "1/3"},
			contiguous: 3, epoch: 1,
		},
		{
			name:       "a seq at or below contiguous is a duplicate",
			steps:      []wstep{login(1, 0, false), push(1, 1, D), push(1, 2, D), push(1, 2, X), push(1, 1, X), push(1, 0, X)},
			delivered:  []string{"1/1", "1/2"},
			contiguous: 2, epoch: 1,
		},
		{
			name: "ahead of a gap: held, deduplicated, released in order when the gap fills",
			steps: []wstep{login(1, 0, false), push(1, 1, D), push(1, 4, H), push(1, 3, H), push(1, 4, X),
				push(1, 2, D), push(1, 5, D)},
			delivered:  []string{"1/1", "1/2", "1/3", "1/4", "1/5"},
			contiguous: 5, epoch: 1,
		},
		{
			name:       "a partly filled gap keeps the rest held",
			steps:      []wstep{login(1, 0, false), push(1, 2, H), push(1, 5, H), push(1, 1, D)},
			delivered:  []string{"1/1", "1/2"},
			contiguous: 2, epoch: 1, held: 1,
		},
		{
			name: "a push of a larger epoch resets: contiguous 0, held dropped, SYNC from 0 in the new epoch",
			steps: []wstep{login(1, 0, false), syncs(0, 1), syncEnd(1, 0, 0, 1, 0), push(1, 1, D), push(1, 2, D),
				push(1, 4, H), needSync(false), push(2, 2, H), needSync(true), syncs(0, 2), push(2, 1, D)},
			delivered:  []string{"1/1", "1/2", "2/1", "2/2"},
			contiguous: 2, epoch: 2,
		},
		{
			name: "late pushes of the retired epoch: delivered once, in increasing order",
			steps: []wstep{login(1, 0, false), push(1, 1, D), push(1, 2, D), push(1, 4, H), push(2, 1, D),
				push(1, 2, X), push(1, 4, D), push(1, 4, X), push(1, 3, X), push(1, 5, D)},
			delivered:  []string{"1/1", "1/2", "2/1", "1/4", "1/5"},
			contiguous: 1, epoch: 2,
		},
		{
			name: "pushes older than the retired epoch are stale: delivered every time",
			steps: []wstep{login(1, 0, false), push(1, 1, D), push(2, 1, D), push(3, 1, D), push(1, 1, D),
				push(1, 1, D), push(2, 1, X), push(3, 1, X)},
			delivered:  []string{"1/1", "2/1", "3/1", "1/1", "1/1"},
			contiguous: 1, epoch: 3,
		},
		{
			name: "login of the same epoch keeps the window and re-acknowledges",
			steps: []wstep{login(1, 0, false), push(1, 1, D), push(1, 2, D), ack(0, 2, 1, true), ack(0, 0, 0, false),
				disconnected, login(1, 2, false), ack(0, 2, 1, true), push(1, 2, X)},
			delivered:  []string{"1/1", "1/2"},
			contiguous: 2, epoch: 1,
		},
		{
			name: "login of a new epoch resets, and acks carry the new epoch",
			steps: []wstep{login(1, 0, false), push(1, 1, D), push(1, 2, D), push(1, 3, D), disconnected,
				login(2, 1, true), ack(0, 0, 0, false), needSync(true), syncs(0, 2), push(2, 1, D), ack(0, 1, 2, true)},
			delivered:  []string{"1/1", "1/2", "1/3", "2/1"},
			contiguous: 1, epoch: 2,
		},
		{
			name: "login of a smaller epoch follows the server; back to the retired one restores it",
			steps: []wstep{login(5, 0, false), push(5, 1, D), push(5, 2, D), disconnected, login(3, 0, true),
				push(3, 1, D), push(5, 3, D), disconnected, login(5, 0, true), push(5, 3, X), push(5, 4, D)},
			delivered:  []string{"5/1", "5/2", "3/1", "5/3", "5/4"},
			contiguous: 4, epoch: 5,
		},
		{
			name: "SYNC_END of a larger epoch resets; the up_to of a SYNC of another epoch does not count",
			steps: []wstep{login(1, 0, false), push(1, 1, D), syncs(1, 1), syncEnd(2, 7, 7, 1, 0), needSync(true),
				syncs(0, 2)},
			delivered:  []string{"1/1"},
			contiguous: 0, epoch: 2,
		},
		{
			name: "a SYNC answered after a reset: up_to of the old epoch's SYNC does not count",
			steps: []wstep{login(1, 0, false), syncs(0, 1), push(2, 1, D), syncEnd(2, 7, 7, 1, 0), needSync(true),
				syncs(1, 2)},
			delivered:  []string{"2/1"},
			contiguous: 1, epoch: 2,
		},
		{
			name: "SYNC_END skips evicted seqs, delivering the held ones it passes, in order",
			steps: []wstep{login(1, 6, false), push(1, 1, D), push(1, 6, H), syncs(1, 1), push(1, 5, H), push(1, 6, X),
				syncEnd(1, 6, 6, 5, 3), needSync(false)},
			delivered:  []string{"1/1", "1/5", "1/6"},
			contiguous: 6, epoch: 1,
		},
		{
			name: "unprompted SYNC_END: up_to is ignored, oldest still skips",
			steps: []wstep{login(1, 0, false), syncs(0, 1), syncEnd(1, 0, 0, 1, 0), push(1, 6, H),
				syncEnd(1, 0, 6, 5, 4), needSync(true), syncs(4, 1)},
			contiguous: 4, epoch: 1, held: 1,
		},
		{
			name:       "SYNC_END with nothing retained: caught up at head",
			steps:      []wstep{login(1, 9, false), syncs(0, 1), syncEnd(1, 0, 9, 10, 9), needSync(false)},
			contiguous: 9, epoch: 1,
		},
		{
			name:       "SYNC_END never moves contiguous past head",
			steps:      []wstep{login(1, 0, false), syncs(0, 1), syncEnd(1, 50, 3, 40, 3), needSync(false)},
			contiguous: 3, epoch: 1,
		},
		{
			name: "SYNC_END of the retired epoch changes nothing but the outstanding SYNC",
			steps: []wstep{login(1, 0, false), push(1, 1, D), push(2, 1, D), syncs(1, 2), needSync(false),
				syncEnd(1, 9, 9, 9, 0), needSync(false), clock(testGapWait), needSync(false), syncEnd(3, 0, 0, 1, 0),
				needSync(true)},
			delivered:  []string{"1/1", "2/1"},
			contiguous: 0, epoch: 3,
		},
		{
			name: "a gap asks for SYNC after gapWait, not before",
			steps: []wstep{login(1, 0, false), syncs(0, 1), syncEnd(1, 0, 0, 1, 0), clock(10), push(1, 2, H),
				needSync(false), clock(10 + testGapWait - 1), needSync(false), clock(10 + testGapWait), needSync(true),
				syncs(0, 1), needSync(false)},
			contiguous: 0, epoch: 1, held: 1,
		},
		{
			name: "behind head after a SYNC that made progress: the next one at once",
			steps: []wstep{login(1, 3, false), syncs(0, 1), push(1, 1, D), syncEnd(1, 1, 3, 1, 0), needSync(true),
				syncs(1, 1), push(1, 2, D), push(1, 3, D), syncEnd(1, 3, 3, 1, 0), needSync(false)},
			delivered:  []string{"1/1", "1/2", "1/3"},
			contiguous: 3, epoch: 1,
		},
		{
			name: "a SYNC without progress while behind: the next waits gapWait",
			steps: []wstep{login(1, 5, false), syncs(0, 1), syncEnd(1, 0, 5, 1, 0), clock(1000), needSync(false),
				clock(1000 + testGapWait - 1), needSync(false), clock(1000 + testGapWait), needSync(true), syncs(0, 1)},
			epoch: 1,
		},
		{
			name: "an outstanding SYNC blocks the next until SYNC_END or disconnect",
			steps: []wstep{login(1, 5, false), needSync(true), syncs(0, 1), needSync(false), disconnected,
				needSync(true), login(1, 5, false), syncs(0, 1), needSync(false)},
			epoch: 1,
		},
		{
			name: "a SYNC refused with ERROR: retried after gapWait",
			steps: []wstep{login(1, 5, false), syncs(0, 1), syncFailed, needSync(false), clock(testGapWait),
				needSync(true)},
			epoch: 1,
		},
		{
			name: "acks: every N, never above a gap, always of the current epoch",
			steps: []wstep{login(7, 0, false), push(7, 1, D), ack(2, 0, 0, false), push(7, 2, D), ack(2, 2, 7, true),
				push(7, 4, H), push(7, 3, D), ack(0, 4, 7, true), push(7, 6, H), push(7, 7, H), ack(0, 0, 0, false),
				push(7, 5, D), ack(3, 7, 7, true)},
			delivered:  []string{"7/1", "7/2", "7/3", "7/4", "7/5", "7/6", "7/7"},
			contiguous: 7, epoch: 7,
		},
		{
			name:       "zero window: the first push adopts its epoch",
			steps:      []wstep{push(4, 1, D), needSync(true), push(4, 1, X)},
			delivered:  []string{"4/1"},
			contiguous: 1, epoch: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Window[string]
			got := runWindow(t, &w, tt.steps)
			if !slices.Equal(got, tt.delivered) {
				t.Errorf("delivered %v, want %v", got, tt.delivered)
			}
			if w.Contiguous() != tt.contiguous || w.Epoch() != tt.epoch || w.Held() != tt.held {
				t.Errorf("contiguous %d epoch %d held %d, want %d %d %d", w.Contiguous(), w.Epoch(), w.Held(),
					tt.contiguous, tt.epoch, tt.held)
			}
		})
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{Delivered: "Delivered", Held: "Held", Duplicate: "Duplicate", 9: "Verdict(9)"} {
		if got := v.String(); got != want {
			t.Errorf("%d: %q, want %q", v, got, want)
		}
	}
}
