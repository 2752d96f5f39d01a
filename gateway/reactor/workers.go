package reactor

import "sync"

// jobs is one connection's FIFO of deferred frames. Whoever finds it unscheduled when
// enqueuing schedules it (puts it on the pool's queue, once); the worker that takes it
// runs its frames in order and unschedules it only after finding it empty under the
// lock, so a frame enqueued meanwhile is never stranded (the lost wake-up of netpoll's
// connection_onevent.go and nbio#401) and no two workers ever run one connection
// (the ordering bug of a pool fed frame by frame: plato runProc with ants).
type jobs struct {
	mu        sync.Mutex
	c         *Conn
	frames    []*[]byte // pooled copies, oldest first
	bytes     int
	scheduled bool // on the pool queue or being run by a worker
	closeDue  bool // the connection is torn down: OnClose follows the last frame
}

// busy reports whether frames of this connection are queued or being handled, in
// which case a new frame must queue behind them. Epoller-only caller.
func (j *jobs) busy() bool {
	if j == nil {
		return false
	}
	j.mu.Lock()
	b := j.scheduled
	j.mu.Unlock()
	return b
}

// deferFrame copies frame into c's job queue and schedules it. Past MaxDeferred bytes
// the connection stops reading: the kernel's receive window, not our memory, absorbs
// a client that sends faster than its frames are handled. Epoller-only.
func (r *Reactor) deferFrame(c *Conn, frame []byte) {
	j := c.jobs
	if j == nil {
		j = &jobs{c: c}
		c.jobs = j
	}
	b := r.bufs.get(len(frame))
	*b = append(*b, frame...)
	j.mu.Lock()
	j.frames = append(j.frames, b)
	j.bytes += len(frame)
	if j.bytes > r.cfg.MaxDeferred && c.pause.Load()&pauseIn == 0 {
		c.pause.Or(pauseIn)
		c.loop.stats.readPauses.Add(1)
	}
	schedule := !j.scheduled
	j.scheduled = true
	j.mu.Unlock()
	c.loop.stats.deferred.Add(int64(len(frame)))
	if schedule {
		r.jobStarted()
		r.schedule(j)
	}
}

// schedule puts j on the pool's queue without ever blocking the epoller. A jobs is
// on the queue at most once, but connections that closed with frames still queued
// keep their place, so under churn faster than the workers (clients that give up on
// slow logins and reconnect, again and again) the queue can fill: what does not fit
// waits in the overflow list, which the pump feeds to the queue as workers free it.
// Blocking the epoller instead stopped every connection of the gateway at once,
// measured in a login storm: the queue full at 39,024, no frame read any more.
func (r *Reactor) schedule(j *jobs) {
	r.ovMu.Lock()
	if len(r.overflow) == 0 {
		select {
		case r.workq <- j:
			r.ovMu.Unlock()
			return
		default:
		}
	}
	r.overflow = append(r.overflow, j)
	r.ovMu.Unlock()
	select {
	case r.ovKick <- struct{}{}:
	default:
	}
}

// pump moves the overflow list onto the queue, in order, blocking (itself, not an
// epoller) while the queue is full, until quit.
func (r *Reactor) pump() {
	for {
		r.ovMu.Lock()
		if len(r.overflow) == 0 {
			r.ovMu.Unlock()
			select {
			case <-r.ovKick:
				continue
			case <-r.quit:
				return
			}
		}
		j := r.overflow[0]
		r.overflow[0] = nil
		r.overflow = r.overflow[1:]
		if len(r.overflow) == 0 {
			r.overflow = nil // give the backing array back
		}
		r.ovMu.Unlock()
		select {
		case r.workq <- j:
		case <-r.quit:
			return
		}
	}
}

// queued reports how many connections wait for a worker.
func (r *Reactor) queued() int {
	r.ovMu.Lock()
	n := len(r.overflow)
	r.ovMu.Unlock()
	return len(r.workq) + n
}

// workBatch is how many frames a worker handles for one connection before letting the
// others' queues go first.
const workBatch = 64

// work runs a scheduled connection's frames, then OnClose if it is due.
func (r *Reactor) work(j *jobs) {
	h, c := r.cfg.Handler, j.c
	for n := 0; ; n++ {
		j.mu.Lock()
		if len(j.frames) == 0 {
			j.scheduled = false
			j.frames = nil // an idle connection holds no buffers
			closeDue := j.closeDue
			j.closeDue = false
			j.mu.Unlock()
			if closeDue {
				h.OnClose(c, c.reason, c.cause)
			}
			r.jobFinished()
			return
		}
		if n == workBatch {
			n = 0
			select {
			case r.workq <- j: // still scheduled: to the back of the line
				j.mu.Unlock()
				return
			default: // the queue is full: a worker never blocks on it, so keep going
			}
		}
		b := j.frames[0]
		j.frames[0] = nil
		j.frames = j.frames[1:]
		j.bytes -= len(*b)
		resume := false
		if c.pause.Load()&pauseIn != 0 && j.bytes <= r.cfg.MaxDeferred/2 {
			resume = c.pause.And(^pauseIn) == pauseIn
		}
		j.mu.Unlock()
		c.loop.stats.deferred.Add(-int64(len(*b)))
		if resume {
			c.loop.post(task{op: opResume, c: c})
		}
		if c.marks.Load()&markKicked == 0 {
			h.OnDeferred(c, *b) // frames queued behind a KICK are dropped
		}
		r.bufs.put(b)
	}
}

// jobStarted and jobFinished count connections scheduled on the pool, so that
// shutdown stops the workers only once none is left: a worker may put a busy
// connection back on the queue, so the queue must outlive every scheduled job.
func (r *Reactor) jobStarted() {
	r.jobsMu.Lock()
	r.jobsActive++
	r.jobsMu.Unlock()
}

func (r *Reactor) jobFinished() {
	r.jobsMu.Lock()
	r.jobsActive--
	if r.jobsActive == 0 {
		r.jobsIdle.Broadcast()
	}
	r.jobsMu.Unlock()
}

// waitJobs waits until no connection is scheduled on the pool.
func (r *Reactor) waitJobs() {
	r.jobsMu.Lock()
	for r.jobsActive > 0 {
		r.jobsIdle.Wait()
	}
	r.jobsMu.Unlock()
}

// notifyClose delivers OnClose after c's queued frames, or at once if none are queued.
// Epoller-only (called from teardown).
func (r *Reactor) notifyClose(c *Conn) {
	if j := c.jobs; j != nil {
		j.mu.Lock()
		if j.scheduled {
			j.closeDue = true
			j.mu.Unlock()
			return
		}
		j.mu.Unlock()
	}
	r.cfg.Handler.OnClose(c, c.reason, c.cause)
}
