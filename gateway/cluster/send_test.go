package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// flakyStore is a msg store whose appends fail as scripted, attempt by attempt:
// "lost" stores the message but loses the answer (the outcome is unknown to the
// caller), "refused" fails before storing (msg.ErrNotStored), "full" is refused by
// the recipient's quota (msg.ErrRecipientFull), "down" fails with an
// unknown outcome without storing, "ok" stores. It deduplicates by client message
// id like the real stores, so a retry of a lost append finds the first one.
type flakyStore struct {
	*msg.Memory
	mu     sync.Mutex
	script []string
	seen   map[uint64]msg.Message // ClientMsgID → stored message
	calls  int
}

func (f *flakyStore) Append(ctx context.Context, m *msg.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	step := "ok"
	if f.calls < len(f.script) {
		step = f.script[f.calls]
	}
	f.calls++
	switch step {
	case "refused":
		return msg.ErrNotStored
	case "full":
		return msg.ErrRecipientFull
	case "down":
		return errors.New("msg link: disconnected")
	}
	if first, ok := f.seen[m.ClientMsgID]; ok {
		m.Seq, m.ID, m.Epoch = first.Seq, first.ID, first.Epoch
	} else {
		if err := f.Memory.Append(ctx, m); err != nil {
			return err
		}
		f.seen[m.ClientMsgID] = *m
	}
	if step == "lost" {
		return errors.New("msg link: disconnected")
	}
	return nil
}

// sendOnce runs one SEND through a cluster over store and returns what done got.
func sendOnce(t *testing.T, store msg.Store, closed func() bool, sendTimeout, hold time.Duration) (uint64, error, *Cluster) {
	t.Helper()
	st := state.NewMemory(state.MemoryConfig{})
	c, err := New(Config{ID: "gw-1", LinkAddr: "127.0.0.1:0", Secret: []byte("cluster-test-secret-0123"),
		State: st, Msgs: store, SendTimeout: sendTimeout, SendHold: hold, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c.Attach(newFakeGateway(node.Session{UID: 1, ID: 1}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, ClientAddrs{Addr: "127.0.0.1:7000"}); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-c.Ready()
	type result struct {
		id  uint64
		err error
	}
	res := make(chan result, 2)
	c.Send(1, &proto.Send{ClientMsgID: 77, To: 2, Payload: []byte("hello")}, nil, closed,
		func(id uint64, err error) { res <- result{id, err} })
	select {
	case r := <-res:
		select {
		case again := <-res:
			t.Fatalf("done called twice: %+v then %+v", r, again)
		case <-time.After(100 * time.Millisecond):
		}
		return r.id, r.err, c
	case <-time.After(20 * time.Second):
		t.Fatal("the SEND was never answered")
	}
	return 0, nil, nil
}

func TestSendRetriesUnknownOutcomesWithTheSameID(t *testing.T) {
	notClosed := func() bool { return false }
	refusedFor := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = "refused"
		}
		return s
	}
	for _, tc := range []struct {
		name       string
		script     []string
		timeout    time.Duration
		hold       time.Duration
		closed     func() bool
		wantErr    error // nil: acknowledged
		wantStored int
		retries    float64
	}{
		{"stored at once", nil, time.Minute, time.Minute, notClosed, nil, 1, 0},
		{"the answer was lost: the retry finds it, stored once", []string{"lost"}, time.Minute, time.Minute, notClosed, nil, 1, 1},
		{"msg down twice, then up", []string{"down", "down"}, time.Minute, time.Minute, notClosed, nil, 1, 2},
		{"not stored, then msg is back within the hold: acknowledged late", []string{"refused", "refused"}, time.Minute, time.Minute, notClosed, nil, 1, 2},
		{"certainly not stored for longer than the hold: UNAVAILABLE", refusedFor(100), time.Minute, 300 * time.Millisecond, notClosed, msg.ErrNotStored, 0, -1},
		{"not stored after an unknown outcome proves nothing: keep trying", []string{"lost", "refused"}, time.Minute, time.Minute, notClosed, nil, 1, 2},
		{"never confirmed in time: the outcome stays unknown", []string{"down", "down", "down", "down", "down", "down", "down", "down"},
			300 * time.Millisecond, time.Minute, notClosed, errOutcomeUnknown, 0, -1},
		{"the client left: stop trying", []string{"down", "down", "down"}, time.Minute, time.Minute, func() bool { return true }, errOutcomeUnknown, 0, 0},
		{"not stored and the client left: not stored", []string{"refused"}, time.Minute, time.Minute, func() bool { return true }, msg.ErrNotStored, 0, 0},
		{"recipient full: answered at once, not held or retried", []string{"full", "ok"}, time.Minute, time.Minute, notClosed, msg.ErrRecipientFull, 0, 0},
		{"full after an unknown outcome proves nothing: keep trying", []string{"lost", "full"}, time.Minute, time.Minute, notClosed, nil, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &flakyStore{Memory: msg.NewMemory(64), script: tc.script, seen: map[uint64]msg.Message{}}
			id, err, c := sendOnce(t, store, tc.closed, tc.timeout, tc.hold)
			switch {
			case tc.wantErr == nil && (err != nil || id == 0):
				t.Fatalf("done(%d, %v), want an acknowledgement", id, err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("done(%d, %v), want %v", id, err, tc.wantErr)
			}
			if _, w, _ := store.Range(context.Background(), 2, 0, 0); w.Head != uint64(tc.wantStored) {
				t.Fatalf("stored %d messages, want %d", w.Head, tc.wantStored)
			}
			if got := testutil.ToFloat64(c.m.sendRetries); tc.retries >= 0 && got != tc.retries {
				t.Errorf("%v retries, want %v", got, tc.retries)
			}
		})
	}
}
