// Package progress is the harness's progress display: on a terminal, a bar of
// the connections made and a second line of status (a bar of messages delivered
// of sent, or the status alone); elsewhere a time-stamped line at most every
// few seconds. `floodgate loadgen` and `floodgate scenario run` show their
// progress with it, each saying what its lines hold.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Modes of a display.
const (
	Auto  = "auto"  // Bars when the output is a terminal, else Plain
	Bars  = "bars"  // progress bars redrawn in place
	Plain = "plain" // a line at most every Options.Every
)

// DefaultEvery is how often a plain display prints at most, unless told.
const DefaultEvery = 5 * time.Second

// Options say what a display shows.
type Options struct {
	// Label names the connections bar ("connected ").
	Label string
	// Total is how many connections the run means to make.
	Total int64
	// Messages adds a bar of State.Delivered of State.Sent, the status after it;
	// without it the status stands alone on the second line.
	Messages bool
	// Every is how often a plain display prints at most; 0: DefaultEvery.
	Every time.Duration
}

// State is one update of a display.
type State struct {
	Connected       int64
	Sent, Delivered int64 // the messages bar (Options.Messages)
	// Status is the bars' second line (after the messages bar, if any).
	Status string
	// Line is a plain display's line, printed after the time of day; "" prints
	// nothing (the time until the next line runs all the same).
	Line string
}

// Display shows a run's progress. Its methods are safe for concurrent use.
type Display struct {
	w        io.Writer
	every    time.Duration
	messages bool // Options.Messages

	mu     sync.Mutex
	last   State
	lastAt time.Time // when a plain display's last line was due

	p          *mpb.Progress // nil: plain
	conn, msgs *mpb.Bar
}

// New returns a display of mode (Auto, Bars or Plain) writing to w.
func New(w io.Writer, mode string, o Options) (*Display, error) { return newDisplay(w, mode, o) }

// newDisplay is New with options for the bars' container: mpb draws bars only
// on a terminal unless told otherwise (a test's buffer).
func newDisplay(w io.Writer, mode string, o Options, bars ...mpb.ContainerOption) (*Display, error) {
	if mode == Auto {
		mode = Plain
		if IsTerminal(w) {
			mode = Bars
		}
	}
	d := &Display{w: w, every: o.Every, messages: o.Messages}
	if d.every <= 0 {
		d.every = DefaultEvery
	}
	switch mode {
	case Plain:
	case Bars:
		d.bars(o, bars)
	default:
		return nil, fmt.Errorf("progress %q: want %s, %s or %s", mode, Auto, Bars, Plain)
	}
	return d, nil
}

// IsTerminal reports whether w is a terminal (a character device).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// bars sets up the two bars.
func (d *Display) bars(o Options, extra []mpb.ContainerOption) {
	d.p = mpb.New(append([]mpb.ContainerOption{mpb.WithOutput(d.w), mpb.WithWidth(40), mpb.WithRefreshRate(250 * time.Millisecond)}, extra...)...)
	d.conn = d.p.AddBar(o.Total,
		mpb.PrependDecorators(decor.Name(o.Label, decor.WCSyncSpaceR), decor.CountersNoUnit("%d / %d", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)))
	status := decor.Any(func(decor.Statistics) string {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.last.Status
	}, decor.WCSyncSpace)
	if o.Messages {
		d.msgs = d.p.AddBar(1,
			mpb.PrependDecorators(decor.Name("delivered ", decor.WCSyncSpaceR), decor.CountersNoUnit("%d / %d", decor.WCSyncSpace)),
			mpb.AppendDecorators(status))
	} else {
		d.msgs = d.p.AddBar(1, mpb.PrependDecorators(status))
	}
}

// Update shows s: the bars at once, a plain line if one is due.
func (d *Display) Update(s State) {
	d.mu.Lock()
	d.last = s
	due := time.Since(d.lastAt) >= d.every
	if due {
		d.lastAt = time.Now()
	}
	d.mu.Unlock()
	if d.p != nil {
		d.conn.SetCurrent(s.Connected)
		if d.messages {
			d.msgs.SetTotal(max(s.Sent, 1), false)
			d.msgs.SetCurrent(s.Delivered)
		}
		return
	}
	if due && s.Line != "" {
		fmt.Fprintf(d.w, "%s %s\n", time.Now().Format("15:04:05"), s.Line)
	}
}

// Close completes the bars and waits for their last drawing; a plain display
// has nothing to do.
func (d *Display) Close() {
	if d.p == nil {
		return
	}
	d.conn.SetTotal(-1, true)
	d.msgs.SetTotal(-1, true)
	d.p.Wait()
}
