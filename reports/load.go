package reports

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
	"github.com/floodgate/floodgate/scenario"
)

// run is everything read from one run folder: the raw facts every derived file is
// computed from.
type run struct {
	dir      string
	info     runfolder.RunInfo
	scenario *scenario.Scenario
	plan     *loadgen.Plan // nil if plan.json is missing
	agents   []agentData   // in agent order
	metrics  []runfolder.MetricsSample
	procs    []runfolder.ProcessSample
	alerts   []runfolder.AlertEvent
	progress []runfolder.ProgressSample
	// notes are problems met while reading that the report must state (skipped
	// lines, imprecise timestamps); they become caveats.
	notes []string
}

// agentData is one agent's files: its result and its interval histograms.
type agentData struct {
	index     int
	result    *loadgen.Result // nil if agent-<i>.json is missing
	intervals []interval
}

// agentFile matches an agent's interval log name.
var agentFile = regexp.MustCompile(`^agent-(\d+)\.hlog$`)

// loadRun reads a run folder. run.json and scenario.yaml are required; every other
// file may be missing (a run that died early), in which case the figures drawn
// from it are missing too and gates on them fail.
func loadRun(dir string, log *slog.Logger) (*run, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &run{dir: dir}
	err := readJSON(filepath.Join(dir, runfolder.FileRun), &r.info)
	if err != nil {
		return nil, fmt.Errorf("run folder %s: %w", dir, err)
	}
	if r.scenario, err = readScenario(dir, r.info); err != nil {
		return nil, err
	}
	var plan loadgen.Plan
	switch err := readJSON(filepath.Join(dir, runfolder.FilePlan), &plan); {
	case err == nil:
		r.plan = &plan
	case errors.Is(err, fs.ErrNotExist):
		r.notes = append(r.notes, "plan.json is missing: offered rates are not plotted and the histogram interval is taken as 1 s")
	default:
		return nil, err
	}
	if r.agents, err = r.loadAgents(log); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		read func(string) (int, error)
	}{
		{runfolder.FileMetrics, func(p string) (int, error) { return readJSONL(p, &r.metrics) }},
		{runfolder.FileProcesses, func(p string) (int, error) { return readJSONL(p, &r.procs) }},
		{runfolder.FileAlerts, func(p string) (int, error) { return readJSONL(p, &r.alerts) }},
		{runfolder.FileProgress, func(p string) (int, error) { return readJSONL(p, &r.progress) }},
	} {
		bad, err := f.read(filepath.Join(dir, f.name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			log.Warn("run folder: file missing", "file", f.name)
			r.notes = append(r.notes, f.name+" is missing: the figures drawn from it are missing too")
		case err != nil:
			return nil, err
		case bad > 0:
			log.Warn("run folder: malformed lines skipped", "file", f.name, "lines", bad)
			r.notes = append(r.notes, fmt.Sprintf("%s: %d malformed line(s) skipped", f.name, bad))
		}
	}
	slices.SortStableFunc(r.metrics, func(a, b runfolder.MetricsSample) int { return a.T.Compare(b.T) })
	slices.SortStableFunc(r.procs, func(a, b runfolder.ProcessSample) int { return a.T.Compare(b.T) })
	slices.SortStableFunc(r.alerts, func(a, b runfolder.AlertEvent) int { return a.Time.Compare(b.Time) })
	slices.SortStableFunc(r.progress, func(a, b runfolder.ProgressSample) int { return a.T.Compare(b.T) })
	return r, nil
}

// readScenario reads the run's copy of its scenario file. The copy is named
// scenario.yaml, but the scenario package insists that a scenario's name match
// its file name, so it is parsed under the name of the file it was copied from.
func readScenario(dir string, info runfolder.RunInfo) (*scenario.Scenario, error) {
	src, err := os.ReadFile(filepath.Join(dir, runfolder.FileScenario))
	if err != nil {
		return nil, fmt.Errorf("run folder %s: %w", dir, err)
	}
	name := info.ScenarioFile
	if name == "" {
		name = info.Scenario + ".yaml"
	}
	sc, err := scenario.Parse(name, src)
	if err != nil {
		return nil, fmt.Errorf("run folder %s: %s: %w", dir, runfolder.FileScenario, err)
	}
	return sc, nil
}

// loadAgents reads hlog/agent-<i>.hlog and agent-<i>.json for every agent.
func (r *run) loadAgents(log *slog.Logger) ([]agentData, error) {
	dir := filepath.Join(r.dir, runfolder.DirHlog)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		r.notes = append(r.notes, "hlog/ is missing: there are no latency samples")
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("run folder: %w", err)
	}
	var agents []agentData
	imprecise := 0
	for _, e := range entries {
		m := agentFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		i, _ := strconv.Atoi(m[1])
		a := agentData{index: i}
		var res loadgen.Result
		switch err := readJSON(filepath.Join(dir, fmt.Sprintf("agent-%d.json", i)), &res); {
		case err == nil:
			a.result = &res
		case errors.Is(err, fs.ErrNotExist):
			r.notes = append(r.notes, fmt.Sprintf("agent-%d.json is missing: that agent's message counts are not in the totals", i))
		default:
			return nil, err
		}
		lg, err := readHlogFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if !lg.precise && a.result != nil && lg.refineBase(a.result.Ended) {
			log.Debug("hlog base time refined from the agent's end time", "agent", i)
		}
		if !lg.precise {
			imprecise++
		}
		a.intervals = lg.intervals()
		agents = append(agents, a)
	}
	if imprecise > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d agent log(s) give their base time in whole seconds only: their intervals are placed in time to within 1 s", imprecise))
	}
	slices.SortFunc(agents, func(a, b agentData) int { return a.index - b.index })
	return agents, nil
}

// readJSON decodes one JSON file.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// readJSONL appends one value per line of path to *out and returns how many lines
// did not decode. A runner killed mid-write leaves a torn last line; a report must
// still be made, so bad lines are skipped and counted, never fatal.
func readJSONL[T any](path string, out *[]T) (bad int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var v T
		if json.Unmarshal(line, &v) != nil {
			bad++
			continue
		}
		*out = append(*out, v)
	}
	if err := sc.Err(); err != nil {
		return bad, fmt.Errorf("%s: %w", path, err)
	}
	return bad, nil
}

// interval returns the run's histogram interval: the plan's, or 1 s.
func (r *run) interval() time.Duration {
	if r.plan != nil && r.plan.Interval > 0 {
		return r.plan.Interval.D()
	}
	return time.Second
}
