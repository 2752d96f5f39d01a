package reports

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/loadgen"
)

// Verdicts, from best to worst.
const (
	VerdictPass    = "pass"    // every gate held on a valid run
	VerdictFail    = "fail"    // a gate failed (or could not be measured) on a valid run
	VerdictInvalid = "invalid" // the run's measurements cannot be trusted: no verdict on the system
	VerdictError   = "error"   // the harness itself failed (RunInfo.HarnessError in run.json)
)

// ExitCode maps a verdict to the process exit status; an unknown verdict is a
// harness error.
func ExitCode(verdict string) int {
	switch verdict {
	case VerdictPass:
		return exitcode.OK
	case VerdictFail:
		return exitcode.GateFailed
	case VerdictInvalid:
		return exitcode.Invalid
	}
	return exitcode.Failure
}

// invalidReasons lists why a run's measurements cannot be trusted: what the
// runner already knew, a fatal preflight check, an interrupted run, an overloaded
// generator (lag p99.9 or hiccup beyond the scenario's bounds), too few push
// samples. A knee run (knee non-nil, with steps) has the generator judged on the
// steps up to its knee instead of over the whole run (Knee). Empty: the run is
// valid.
func (a *analysis) invalidReasons(lag, hiccup, push Latency, knee *Knee) []string {
	info := a.r.info
	reasons := slices.Clone(info.Invalid)
	add := func(f string, args ...any) {
		if s := fmt.Sprintf(f, args...); !slices.Contains(reasons, s) {
			reasons = append(reasons, s)
		}
	}
	for _, c := range info.Preflight {
		if c.Fatal && !c.OK {
			add("preflight check %s failed (%s)", c.Name, c.Value)
		}
	}
	if info.Interrupted {
		add("the run was interrupted before its phases ended")
	}
	if knee != nil && len(knee.Steps) > 0 {
		for _, st := range knee.Steps[:judgedIndex(knee.Steps)+1] {
			for _, r := range st.InvalidReasons {
				add("step %s: %s", st.Step, r)
			}
		}
		return reasons
	}
	for _, r := range generatorReasons(lag, hiccup, push, a.r.scenario.Validity) {
		add("%s", r)
	}
	return reasons
}

// verdict decides the run's verdict from the harness error, the invalid reasons
// and the gates: error, then invalid, then fail if any gate failed, else pass.
func verdict(harnessError string, invalid []string, gates []GateResult) string {
	switch {
	case harnessError != "":
		return VerdictError
	case len(invalid) > 0:
		return VerdictInvalid
	}
	for _, g := range gates {
		if !g.Pass {
			return VerdictFail
		}
	}
	return VerdictPass
}

// VerdictLine is the one line `floodgate report` prints: the verdict, the gates,
// the headline figures and where the report is.
func VerdictLine(s *Summary, dir string) string {
	failed := 0
	for _, g := range s.Gates {
		if !g.Pass {
			failed++
		}
	}
	line := fmt.Sprintf("%s: %s (exit %d) — %d/%d gates passed; push p99 %s over %s samples; %s",
		s.Scenario, strings.ToUpper(s.Verdict), s.ExitCode, len(s.Gates)-failed, len(s.Gates),
		fmtUS(float64(s.PushLatencyUS.P99)), fmtCount(float64(s.PushLatencyUS.Count)), lossText(s.Messages))
	if k := kneeText(s.Knee); k != "" {
		line += "; " + k
	}
	if len(s.InvalidReasons) > 0 {
		line += "; invalid: " + strings.Join(s.InvalidReasons, "; ")
	}
	return line + " → " + filepath.Join(dir, FileHTML)
}

// lossText says how many messages were lost of those sent and, when slow readers
// lost some, how the loss splits: theirs is expected, the normal readers' is not.
func lossText(m Messages) string {
	text := fmt.Sprintf("lost %s of %s sent", fmtCount(float64(m.Lost)), fmtCount(float64(m.Sent)))
	if m.LostSlow > 0 {
		text += fmt.Sprintf(" (%s to normal readers, %s to slow readers)", fmtCount(float64(m.LostNormal())), fmtCount(float64(m.LostSlow)))
	}
	if m.Duplicates+m.Phantom+m.Misdelivered > 0 {
		text += fmt.Sprintf("; %s duplicates, %s phantom, %s misdelivered",
			fmtCount(float64(m.Duplicates)), fmtCount(float64(m.Phantom)), fmtCount(float64(m.Misdelivered)))
	}
	return text
}

// FiguresText is what `floodgate scenario run` prints under its verdict line: the
// whole run's push latency percentiles, connect, reconnect and replace times, how
// long the initial population took to log in, each phase in which one gateway's
// users fared worst (worstGatewayLine), each healed fault's recovery, and each
// hostile class's close times. Every figure is also in summary.json.
func FiguresText(s *Summary) string {
	var b strings.Builder
	us := func(name string, l Latency) {
		if l.Count == 0 {
			return
		}
		fmt.Fprintf(&b, "  %-10s p50 %s · p90 %s · p99 %s · p99.9 %s · max %s  (%s samples)\n", name,
			fmtUS(float64(l.P50)), fmtUS(float64(l.P90)), fmtUS(float64(l.P99)), fmtUS(float64(l.P999)), fmtUS(float64(l.Max)), fmtCount(float64(l.Count)))
	}
	ms := func(name string, m MillisStats) {
		us(name, Latency{Count: m.Count, P50: int64(m.P50 * 1000), P90: int64(m.P90 * 1000), P99: int64(m.P99 * 1000),
			P999: int64(m.P999 * 1000), Max: int64(m.Max * 1000)})
	}
	us("push", s.PushLatencyUS)
	us("push slow", s.LatencyUS[loadgen.TagPushSlow])
	ms("connect", s.ConnectMS)
	ms("reconnect", s.ReconnectMS)
	us("replace", s.LatencyUS[loadgen.TagReplace])
	if c := s.Connections; c.EstablishS > 0 {
		fmt.Fprintf(&b, "  %-10s %s\n", "population", establishText(c))
	}
	if k := kneeText(s.Knee); k != "" {
		fmt.Fprintf(&b, "  %-10s %s\n", "steps", k)
	}
	for _, f := range s.Faults {
		if h, ok := heal(f.FaultEvent); ok && f.HealToLastDeliveryMS != nil {
			fmt.Fprintf(&b, "  %-10s %s %s healed at %+.1f s; the last message pending then was delivered %s later\n", "recovery",
				f.Action, f.Target, h.Sub(s.Run.TrafficStart).Seconds(), fmtUS(*f.HealToLastDeliveryMS*1000))
		}
	}
	if len(s.PushByGateway) > 0 {
		for i, ph := range s.PushByGateway[0].Phases {
			if line, ok := worstGatewayLine(s.PushByGateway, i); ok {
				fmt.Fprintf(&b, "  %-10s phase %s: %s\n", "gateways", ph.Phase, line)
			}
		}
	}
	if n := len(s.Profiles); n > 0 {
		taken := 0
		for _, p := range s.Profiles {
			if p.File != "" {
				taken++
			}
		}
		fmt.Fprintf(&b, "  %-10s %d of %d CPU profiles taken in phase %s (%.0f s each), in profiles/\n", "profiles", taken, n, s.Profiles[0].Phase, s.Profiles[0].Seconds)
	}
	for _, h := range s.Hostile {
		fmt.Fprintf(&b, "  hostile %-18s %s opened, %s over its %s bound, %s open at the end; closed p50 %s · p99 %s · max %s\n",
			h.Class, fmtCount(float64(h.Opened)), fmtCount(float64(h.OverBound)), fmtMS(h.BoundMS), fmtCount(float64(h.OpenAtEnd)),
			fmtMS(h.CloseMS.P50), fmtMS(h.CloseMS.P99), fmtMS(h.CloseMS.Max))
	}
	return b.String()
}
