package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/floodgate/floodgate/scenario"
	"github.com/floodgate/floodgate/sim"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// runDisplay shows a run's progress: bars on a terminal, a line every 5 s otherwise.
type runDisplay struct {
	w      io.Writer
	p      *mpb.Progress
	conn   *mpb.Bar
	phase  *mpb.Bar
	mu     sync.Mutex
	last   sim.Progress
	lastAt time.Time
	start  time.Time
	total  time.Duration
}

func newRunDisplay(w io.Writer, s *scenario.Scenario) *runDisplay {
	d := &runDisplay{w: w, start: time.Now(), total: s.Duration()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			d.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(250*time.Millisecond))
			d.conn = d.p.AddBar(int64(s.Clients.Count),
				mpb.PrependDecorators(decor.Name("established ", decor.WCSyncSpaceR), decor.CountersNoUnit("%d / %d", decor.WCSyncSpace)),
				mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)))
			d.phase = d.p.AddBar(1, mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
				d.mu.Lock()
				defer d.mu.Unlock()
				l := d.last
				return fmt.Sprintf("phase %-12s sent %d  delivered %d  lost %d  failed %d  reconnects %d%s", l.Phase, l.Sent, l.Delivered, l.Lost, l.Failed, l.Reconnects, wrongText(l))
			})))
		}
	}
	return d
}

func (d *runDisplay) update(p sim.Progress) {
	d.mu.Lock()
	d.last = p
	due := time.Since(d.lastAt) >= 5*time.Second
	if due {
		d.lastAt = time.Now()
	}
	d.mu.Unlock()
	if d.p != nil {
		d.conn.SetCurrent(p.Active)
		return
	}
	if due && p.Phase != "" {
		fmt.Fprintf(d.w, "%s %-12s established %d/%d  sent %d  delivered %d  lost %d  failed %d  reconnects %d%s\n",
			time.Now().Format("15:04:05"), p.Phase, p.Active, p.Clients, p.Sent, p.Delivered, p.Lost, p.Failed, p.Reconnects, wrongText(p))
	}
}

func (d *runDisplay) close() {
	if d.p != nil {
		d.conn.SetTotal(-1, true)
		d.phase.SetTotal(-1, true)
		d.p.Wait()
	}
}

// wrongText names the counts that must stay 0 once one is not: duplicates,
// phantom and misdelivered messages.
func wrongText(p sim.Progress) string {
	if p.Duplicates+p.Phantom+p.Misdelivered == 0 {
		return ""
	}
	return fmt.Sprintf("  duplicates %d  phantom %d  misdelivered %d", p.Duplicates, p.Phantom, p.Misdelivered)
}
