package link

import (
	"context"
	"sync"
)

// Ordered dispatch (ServerConfig.Workers and Order).
//
// A connection's reader hands requests to its Handler one at a time, so a handler
// that waits (a store a network round trip away) caps a peer's requests at one per
// round trip, and a slow one holds up everything behind it on that connection — a
// gateway's lease renewal behind its thousands of logins. With Workers set, the
// reader hands each request Order accepts to one of Workers goroutines, chosen by
// the request's key, and reads on: requests with equal keys (one user's, say) are
// handled in arrival order on one goroutine, others side by side. The answers go out
// as each finishes, in any order: a client matches answers to calls by their id.
// Each worker's queue is bounded; when it is full the reader waits, which is the
// peer's backpressure.

// workerQueue is how many requests may wait for one worker.
const workerQueue = 256

// orderedJob is a request handed to a worker: its own copy of the body (the
// reader's buffer is reused at once).
type orderedJob struct {
	peer   *Peer
	id     uint64
	method uint16
	body   []byte
	oneWay bool
}

// workerPool runs a Server's ordered requests.
type workerPool struct {
	queues []chan orderedJob
	wg     sync.WaitGroup
}

func newWorkerPool(n int) *workerPool {
	wp := &workerPool{queues: make([]chan orderedJob, n)}
	for i := range wp.queues {
		wp.queues[i] = make(chan orderedJob, workerQueue)
	}
	return wp
}

// start runs the workers until ctx ends.
func (wp *workerPool) start(ctx context.Context, h Handler) {
	for _, q := range wp.queues {
		wp.wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-q:
					serveOrdered(ctx, h, j)
				}
			}
		})
	}
}

// submit queues j on its key's worker, waiting for room (or until ctx ends: false).
func (wp *workerPool) submit(ctx context.Context, key uint64, j orderedJob) bool {
	select {
	case wp.queues[key%uint64(len(wp.queues))] <- j:
		return true
	case <-ctx.Done():
		return false
	}
}

// serveOrdered handles one job on a worker and sends its answer: queued on the
// peer's writer and flushed at once (or within the handler's Linger). A peer gone
// meanwhile fails the queueing, which is all there is to do about it.
func serveOrdered(ctx context.Context, h Handler, j orderedJob) {
	req := &Request{Peer: j.peer, Method: j.method, Body: j.body, OneWay: j.oneWay}
	resp, herr := h(ctx, req)
	if j.oneWay {
		return
	}
	var err error
	if herr != nil {
		err = j.peer.w.queue(kindError, j.id, j.method, []byte(herr.Error()))
	} else {
		err = j.peer.w.queue(kindResponse, j.id, j.method, resp)
	}
	if err != nil {
		return
	}
	if req.Linger > 0 {
		j.peer.w.flushWithin(req.Linger)
		return
	}
	j.peer.w.flush()
}
