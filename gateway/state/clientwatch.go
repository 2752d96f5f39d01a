package state

import (
	"slices"
	"sync"
)

// watchHub hands a Client's snapshots to its watchers on a goroutine of its own, so a
// slow watcher never holds up the link's reader (and with it every call's answer).
// It keeps only the newest undelivered snapshot: watchers see every change that
// outlives their processing time, in order, never an older table after a newer one.
type watchHub struct {
	kick    chan struct{} // capacity 1: wakes run
	done    chan struct{} // closed by close
	stopped chan struct{} // closed when run returns
	once    sync.Once
	mu      sync.Mutex
	fns     []func([]Gateway)
	latest  []Gateway
	fresh   bool // latest is not delivered yet
}

func newWatchHub() *watchHub {
	return &watchHub{kick: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
}

// active reports whether anyone watches (so the Client must subscribe).
func (h *watchHub) active() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.fns) > 0
}

func (h *watchHub) add(fn func([]Gateway)) {
	h.mu.Lock()
	h.fns = append(h.fns, fn)
	h.mu.Unlock()
}

// publish replaces the pending snapshot with gws and wakes run.
func (h *watchHub) publish(gws []Gateway) {
	h.mu.Lock()
	h.latest, h.fresh = gws, true
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// run delivers snapshots until close. Each watcher gets its own copy.
func (h *watchHub) run() {
	defer close(h.stopped)
	for {
		select {
		case <-h.done:
			return
		case <-h.kick:
		}
		h.mu.Lock()
		gws, fresh, fns := h.latest, h.fresh, slices.Clone(h.fns)
		h.fresh = false
		h.mu.Unlock()
		if !fresh {
			continue
		}
		for _, fn := range fns {
			fn(slices.Clone(gws))
		}
	}
}

// close stops run, waiting for a delivery in progress to return.
func (h *watchHub) close() {
	h.once.Do(func() { close(h.done) })
	<-h.stopped
}
