package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/floodgate/floodgate/runfolder"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// collect samples the running system every second until ctx ends: each process's
// RSS and CPU from /proc, each component's /metrics, control's new alerts, and the
// agents' summed progress (for the peak).
func (r *runner) collect(ctx context.Context) {
	open := func(name string) (*os.File, *bufio.Writer) {
		f, err := os.OpenFile(filepath.Join(r.dir, name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			// Writing on would panic; the run goes on without this file.
			r.log.Warn("collect: the samples cannot be written", "file", name, "err", err)
			return nil, bufio.NewWriter(io.Discard)
		}
		return f, bufio.NewWriter(f)
	}
	mf, mw := open(runfolder.FileMetrics)
	pf, pw := open(runfolder.FileProcesses)
	af, aw := open(runfolder.FileAlerts)
	defer func() {
		for _, w := range []*bufio.Writer{mw, pw, aw} {
			w.Flush()
		}
		for _, f := range []*os.File{mf, pf, af} {
			if f != nil {
				f.Close()
			}
		}
	}()
	write := func(w *bufio.Writer, v any) {
		b, _ := json.Marshal(v)
		w.Write(append(b, '\n'))
	}
	var alertSeq uint64
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.mu.Lock()
			procs := append([]*proc(nil), r.procs...)
			r.mu.Unlock()
			for _, p := range procs {
				if !p.alive() {
					continue
				}
				if rss, cpu, err := procStats(p.cmd.Process.Pid); err == nil {
					write(pw, runfolder.ProcessSample{T: now, Process: p.name, Role: p.role, RSSBytes: rss, CPUSecs: cpu})
				}
				// A blackholed host is not scraped: the scrape would only wait for
				// its timeout and delay the others'. An agent's admin listener (a
				// profiled run's) serves pprof only.
				if p.role == "redis" && r.scrapeable(p.host.Name) {
					if m, err := r.redisScrape.scrape(ctx, p.addr); err == nil {
						write(mw, runfolder.MetricsSample{T: now, Process: p.name, Metrics: m})
					}
				}
				if p.admin != "" && p.role != "redis" && p.role != "agent" && r.scrapeable(p.host.Name) {
					if m, err := r.scrape(ctx, p.admin); err == nil {
						write(mw, runfolder.MetricsSample{T: now, Process: p.name, Metrics: m})
					}
				}
			}
			var alerts struct {
				Events []runfolder.AlertEvent `json:"events"`
			}
			if r.scrapeable("core") && getJSON(ctx, fmt.Sprintf("%s/v1/alerts?since=%d", r.controlURL(), alertSeq), &alerts) == nil {
				for _, e := range alerts.Events {
					e.T = now
					alertSeq = max(alertSeq, e.Seq)
					write(aw, e)
				}
			}
			r.noteProgress()
			for _, w := range []*bufio.Writer{mw, pw, aw} {
				w.Flush()
			}
		}
	}
}

// noteProgress sums the agents' latest snapshots: the peak of established users,
// and the progress callback.
func (r *runner) noteProgress() {
	r.mu.Lock()
	var p Progress
	p.Clients = int64(r.sc.Clients.Count)
	for _, s := range r.snaps {
		p.Active += int64(s.Active)
		p.Sent += s.Counts.Sent
		p.Delivered += s.Counts.Delivered
		p.Lost += s.Counts.Lost
		p.Failed += s.Counts.Failed
		p.Duplicates += s.Counts.Duplicates
		p.Phantom += s.Counts.Phantom
		p.Misdelivered += s.Counts.Misdelivered
		p.Reconnects += s.Reconnects
		p.Phase = s.Phase
	}
	if p.Active > r.info.Peak.Established {
		r.info.Peak = runfolder.PeakConns{Established: p.Active, At: time.Now()}
	}
	r.mu.Unlock()
	if r.opts.Progress != nil {
		r.opts.Progress(p)
	}
}

// scrapedPrefixes are the metric families the runner keeps.
var scrapedPrefixes = []string{"floodgate_", "process_", "go_memstats_heap_"}

// scrape reads one /metrics page into name{labels} → value.
func (r *runner) scrape(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, fam := range fams {
		keep := false
		for _, p := range scrapedPrefixes {
			keep = keep || strings.HasPrefix(name, p)
		}
		if !keep {
			continue
		}
		for _, m := range fam.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[strings.Replace(key, name, name+"_sum", 1)] = m.GetHistogram().GetSampleSum()
				out[strings.Replace(key, name, name+"_count", 1)] = float64(m.GetHistogram().GetSampleCount())
			case m.Untyped != nil:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out, nil
}

// procStats reads a process's resident memory and CPU time so far.
func procStats(pid int) (rss int64, cpuSecs float64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	if rss, cpuSecs, err = parseProcStats(status, stat); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d: %w", pid, err)
	}
	return rss, cpuSecs, nil
}

// parseProcStats reads the resident memory from a /proc/<pid>/status page (0
// when it has no VmRSS line, as a kernel thread's) and the CPU time from a
// /proc/<pid>/stat line. A truncated page is an error.
func parseProcStats(status, stat []byte) (rss int64, cpuSecs float64, err error) {
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				return 0, 0, fmt.Errorf("status: VmRSS without a value")
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("status: VmRSS: %w", err)
			}
			rss = kb << 10
		}
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(stat)
	end := strings.LastIndexByte(s, ')')
	if end < 0 || end+2 > len(s) {
		return 0, 0, fmt.Errorf("stat: no fields after the command name")
	}
	f := strings.Fields(s[end+2:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("stat: CPU times: %w", err)
	}
	return rss, (ut + st) / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100
