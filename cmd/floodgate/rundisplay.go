package main

import (
	"fmt"
	"io"

	"github.com/floodgate/floodgate/internal/progress"
	"github.com/floodgate/floodgate/scenario"
	"github.com/floodgate/floodgate/sim"
)

// runDisplay shows a scenario run's progress: bars on a terminal, a line every
// 5 s otherwise (internal/progress).
type runDisplay struct{ d *progress.Display }

func newRunDisplay(w io.Writer, s *scenario.Scenario) *runDisplay {
	// Auto mode cannot fail.
	d, _ := progress.New(w, progress.Auto, progress.Options{Label: "established ", Total: int64(s.Clients.Count)})
	return &runDisplay{d: d}
}

func (d *runDisplay) update(p sim.Progress) { d.d.Update(progressState(p)) }

func (d *runDisplay) close() { d.d.Close() }

// progressState is what the display shows of a run's progress; a plain line only
// once a phase has begun.
func progressState(p sim.Progress) progress.State {
	s := progress.State{
		Connected: int64(p.Active),
		Status: fmt.Sprintf("phase %-12s sent %d  delivered %d  lost %d  failed %d  reconnects %d%s",
			p.Phase, p.Sent, p.Delivered, p.Lost, p.Failed, p.Reconnects, wrongText(p)),
	}
	if p.Phase != "" {
		s.Line = fmt.Sprintf("%-12s established %d/%d  sent %d  delivered %d  lost %d  failed %d  reconnects %d%s",
			p.Phase, p.Active, p.Clients, p.Sent, p.Delivered, p.Lost, p.Failed, p.Reconnects, wrongText(p))
	}
	return s
}

// wrongText names the counts that must stay 0 once one is not: duplicates,
// phantom and misdelivered messages.
func wrongText(p sim.Progress) string {
	if p.Duplicates+p.Phantom+p.Misdelivered == 0 {
		return ""
	}
	return fmt.Sprintf("  duplicates %d  phantom %d  misdelivered %d", p.Duplicates, p.Phantom, p.Misdelivered)
}
