package reactor

// wheel is a hashed timing wheel with lazy re-arming, one per epoller, used for idle
// timeouts. A connection sits in exactly one slot. Activity never touches the wheel: it
// only stamps Conn.lastActive. When the slot comes due, the connection is either expired
// or re-inserted at lastActive+timeout. Deadlines beyond the wheel's span land in the
// farthest slot and are re-inserted when it comes round, so any timeout works with a
// fixed number of slots. Epoller-goroutine only.
type wheel struct {
	tick  int64     // slot width in nanoseconds
	slots [][]*Conn // slot i holds connections due in ticks ≡ i (mod len)
	cur   int64     // the last tick processed
	spare []*Conn   // reused backing array for the slot being processed
}

const wheelSlots = 64

func newWheel(tick, now int64) wheel {
	return wheel{tick: tick, slots: make([][]*Conn, wheelSlots), cur: now / tick}
}

// add schedules c at deadline (nanoseconds on the reactor clock). A deadline in the past
// lands in the next slot.
func (w *wheel) add(c *Conn, deadline int64) {
	t := deadline / w.tick
	if t <= w.cur {
		t = w.cur + 1
	}
	if t > w.cur+int64(len(w.slots))-1 {
		t = w.cur + int64(len(w.slots)) - 1
	}
	i := t % int64(len(w.slots))
	w.slots[i] = append(w.slots[i], c)
}

// advance processes every slot due up to now, calling due for each connection found
// there. due may call add (re-insertion lands in a later slot).
func (w *wheel) advance(now int64, due func(*Conn)) {
	end := now / w.tick
	for w.cur < end {
		w.cur++
		i := w.cur % int64(len(w.slots))
		list := w.slots[i]
		if len(list) == 0 {
			continue
		}
		w.slots[i] = w.spare[:0]
		for j, c := range list {
			list[j] = nil
			due(c)
		}
		w.spare = list[:0]
	}
}

// next returns the reactor-clock time at which the next slot is due.
func (w *wheel) next() int64 { return (w.cur + 1) * w.tick }
