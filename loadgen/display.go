package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Display shows progress: bars on a terminal, periodic lines otherwise, or JSON
// lines for a controlling process.
type Display interface {
	Update(s Snapshot)
	Close()
}

// NewDisplay returns a display writing to w. mode is "bars", "plain", "json" or
// "auto" (bars when w is a terminal, plain lines otherwise).
func NewDisplay(w io.Writer, mode string, users int) (Display, error) {
	if mode == "auto" {
		mode = "plain"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				mode = "bars"
			}
		}
	}
	switch mode {
	case "bars":
		return newBars(w, users), nil
	case "plain":
		return &lines{w: w, every: 5 * time.Second}, nil
	case "json":
		return &jsonLines{enc: json.NewEncoder(w)}, nil
	}
	return nil, fmt.Errorf("progress %q: want auto, bars, plain or json", mode)
}

type jsonLines struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (j *jsonLines) Update(s Snapshot) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.enc.Encode(struct {
		Event string `json:"event"`
		Snapshot
	}{"progress", s})
}
func (j *jsonLines) Close() {}

type lines struct {
	w     io.Writer
	every time.Duration
	last  time.Time
}

func (l *lines) Update(s Snapshot) {
	if time.Since(l.last) < l.every {
		return
	}
	l.last = time.Now()
	c := s.Counts
	fmt.Fprintf(l.w, "%s %-10s connected %d/%d  sent %d  delivered %d  lost %d  failed %d  in flight %d  reconnects %d\n",
		time.Now().Format("15:04:05"), s.Phase, s.Active, s.Users, c.Sent, c.Delivered, c.Lost, c.Failed, s.InFlight, s.Reconnects)
}
func (l *lines) Close() {}

type bars struct {
	p         *mpb.Progress
	conn, msg *mpb.Bar
	mu        sync.Mutex
	last      Snapshot
}

func newBars(w io.Writer, users int) *bars {
	b := &bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(250*time.Millisecond))}
	b.conn = b.p.AddBar(int64(users),
		mpb.PrependDecorators(decor.Name("connected ", decor.WCSyncSpaceR), decor.CountersNoUnit("%d / %d", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)))
	b.msg = b.p.AddBar(1,
		mpb.PrependDecorators(decor.Name("delivered ", decor.WCSyncSpaceR), decor.CountersNoUnit("%d / %d", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			b.mu.Lock()
			defer b.mu.Unlock()
			c := b.last.Counts
			return fmt.Sprintf("phase %s  lost %d  failed %d  in flight %d  reconnects %d", b.last.Phase, c.Lost, c.Failed, b.last.InFlight, b.last.Reconnects)
		}, decor.WCSyncSpace)))
	return b
}

func (b *bars) Update(s Snapshot) {
	b.mu.Lock()
	b.last = s
	b.mu.Unlock()
	b.conn.SetCurrent(int64(s.Active))
	b.msg.SetTotal(max(int64(s.Counts.Sent), 1), false)
	b.msg.SetCurrent(int64(s.Counts.Delivered))
}

func (b *bars) Close() {
	b.conn.SetTotal(-1, true)
	b.msg.SetTotal(-1, true)
	b.p.Wait()
}
