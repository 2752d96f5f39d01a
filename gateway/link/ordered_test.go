package link

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"
)

// orderedByFirstByte orders requests by their body's first byte; method 5 stays on
// the reader.
func orderedByFirstByte(cfg *ServerConfig) {
	cfg.Workers = 4
	cfg.Order = func(r *Request) (uint64, bool) {
		if r.Method == 5 || len(r.Body) == 0 {
			return 0, false
		}
		return uint64(r.Body[0]), true
	}
}

// With Workers, requests of one key are handled in arrival order, every call gets
// its own answer, and a request blocked in its handler does not hold up requests of
// other keys on the same connection — nor those the reader serves itself.
func TestOrderedWorkersKeepOrderPerKeyAndDoNotBlockOtherKeys(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	seen := map[byte][]uint32{}
	h := func(_ context.Context, r *Request) ([]byte, error) {
		if r.Method == 9 { // key 0's blocker
			<-release
			return []byte("released"), nil
		}
		if r.Method == 5 {
			return []byte("reader"), nil
		}
		mu.Lock()
		seen[r.Body[0]] = append(seen[r.Body[0]], binary.BigEndian.Uint32(r.Body[1:]))
		mu.Unlock()
		return r.Body, nil
	}
	s, _ := startServer(t, h, orderedByFirstByte)
	c := dialClient(t, s.Addr())
	waitUp(t, c)

	blocked := make(chan error, 1)
	c.Go(9, []byte{0}, func(b []byte, err error) {
		if err == nil && string(b) != "released" {
			err = fmt.Errorf("answer %q", b)
		}
		blocked <- err
	})
	// Keys 1…3 land on workers other than key 0's (4 workers): all answered while
	// key 0's request is still blocked.
	var wg sync.WaitGroup
	var bad sync.Map
	for i := range 600 {
		key := byte(1 + i%3)
		body := binary.BigEndian.AppendUint32([]byte{key}, uint32(i))
		wg.Add(1)
		c.Go(1, body, func(b []byte, err error) {
			defer wg.Done()
			if err != nil || string(b) != string(body) {
				bad.Store(i, err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("requests of other keys waited for a blocked one")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if b, err := c.Call(ctx, 5, nil); err != nil || string(b) != "reader" {
		t.Fatalf("a request served on the reader: %q, %v", b, err)
	}
	bad.Range(func(k, v any) bool { t.Errorf("call %v: wrong answer (%v)", k, v); return true })
	mu.Lock()
	for key, got := range seen {
		for i := 1; i < len(got); i++ {
			if got[i] < got[i-1] {
				t.Fatalf("key %d: request %d handled after %d", key, got[i], got[i-1])
			}
		}
		if len(got) != 200 {
			t.Fatalf("key %d: %d handled, want 200", key, len(got))
		}
	}
	mu.Unlock()
	select {
	case err := <-blocked:
		t.Fatalf("the blocked request was answered before its release: %v", err)
	default:
	}
	close(release)
	select {
	case err := <-blocked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the released request was never answered")
	}
}
