package control

// ring keeps the newest events, numbered from 1 in order of occurrence.
type ring struct {
	buf  []Event
	next uint64 // the seq the next event gets
}

func newRing(size int) *ring { return &ring{buf: make([]Event, size), next: 1} }

// add numbers e, keeps it (overwriting the oldest when full) and returns it.
func (r *ring) add(e Event) Event {
	e.Seq = r.next
	r.next++
	r.buf[e.Seq%uint64(len(r.buf))] = e
	return e
}

// last is the newest event's seq, 0 if none.
func (r *ring) last() uint64 { return r.next - 1 }

// since returns the kept events with seq > after, oldest first, and whether some
// such events were already overwritten.
func (r *ring) since(after uint64) (events []Event, truncated bool) {
	oldest := uint64(1)
	if n := uint64(len(r.buf)); r.next > n {
		oldest = r.next - n
	}
	from := after + 1
	if from < oldest {
		from, truncated = oldest, true
	}
	for seq := from; seq < r.next; seq++ {
		events = append(events, r.buf[seq%uint64(len(r.buf))])
	}
	return events, truncated
}
