package runfolder

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/netns"
	"github.com/floodgate/floodgate/scenario"
)

// ModeDistributed is the mode of a run folder assembled by Collect: the agents
// ran wherever they were started (pods of a Kubernetes Job, several machines),
// not in test hosts the runner built.
const ModeDistributed netns.Mode = "distributed"

// CollectOptions says where a distributed run's outputs are and where its run
// folder goes.
type CollectOptions struct {
	// Inputs are directories holding segment outputs (every <name>.json in them
	// that is a loadgen result with a segment), or the files of single outputs
	// (any of <name>.hlog, .json, .plan.json, .progress.jsonl names that output).
	Inputs []string
	// Plan is the plan file the segments ran. Empty: the plan every segment wrote
	// beside its outputs. Either way every segment's own copy must equal it.
	Plan string
	// Scenario is a scenario file to report against (its gates, validity bounds
	// and knee). Empty: one is derived from the plan, with the gates
	// DefaultCollectGates(), named Name.
	Scenario string
	// Name is the derived scenario's name (letters, digits, dashes); default
	// "distributed".
	Name string
	// Out is the run folder to write; it must not exist or be empty.
	Out string
}

// DefaultCollectGates returns the gates of a scenario Collect derives from a plan:
// the push target and the delivery guarantees, which the agents alone measure
// (gates on server metrics would fail for want of them: a collected run has none).
func DefaultCollectGates() []string {
	return []string{"push p99 < 100ms", "lost == 0", "failed == 0"}
}

// segmentOutput is one agent's files, found among the inputs.
type segmentOutput struct {
	name   string // <name>, the path without its suffix
	seg    loadgen.Segment
	result loadgen.Result
	raw    []byte // the result file as written
}

func (o segmentOutput) file(suffix string) string { return o.name + suffix }

// Collect assembles a run folder from the outputs of a plan's segments, each an
// agent run with `floodgate loadgen -segment i/n -out DIR`: hlog/agent-<i>.hlog
// and agent-<i>.json per segment, plan.json, progress.jsonl, scenario.yaml and
// run.json — what reports reads, so that `floodgate report` and `compare` work
// on it; reports merges the segments' histograms and counts as it merges a
// local run's agents. Every segment 0 … n-1 must be present exactly once, with
// its interval log, and have run the same plan; the errors name the file at
// fault. It returns what run.json holds.
func Collect(opts CollectOptions) (*RunInfo, error) {
	outs, err := findSegments(opts.Inputs)
	if err != nil {
		return nil, err
	}
	if err := checkSegments(outs); err != nil {
		return nil, err
	}
	plan, planFrom, err := commonPlan(opts.Plan, outs)
	if err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = "distributed"
	}
	scFile, scSrc, err := scenarioFor(opts.Scenario, name, plan, len(outs), planFrom)
	if err != nil {
		return nil, err
	}
	if err := emptyDir(opts.Out); err != nil {
		return nil, err
	}
	hdir := filepath.Join(opts.Out, DirHlog)
	if err := os.MkdirAll(hdir, 0o755); err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	var progress []ProgressSample
	for _, o := range outs {
		agent := fmt.Sprintf("agent-%d", o.seg.Index)
		if err := copyFile(o.file(loadgen.SuffixHlog), filepath.Join(hdir, agent+".hlog")); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(hdir, agent+".json"), o.raw, 0o644); err != nil {
			return nil, fmt.Errorf("collect: %w", err)
		}
		ps, err := readProgress(o.file(loadgen.SuffixProgress))
		if err != nil {
			return nil, err
		}
		progress = append(progress, ps...)
	}
	if len(progress) > 0 {
		slices.SortStableFunc(progress, func(a, b ProgressSample) int { return a.T.Compare(b.T) })
		if err := writeLines(filepath.Join(opts.Out, FileProgress), progress); err != nil {
			return nil, err
		}
	}
	pub := plan
	pub.Secret = "(redacted)"
	if err := writeJSONFile(filepath.Join(opts.Out, FilePlan), pub); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(opts.Out, FileScenario), scSrc, 0o644); err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	info := collectedInfo(outs, plan, scFile, scSrc, opts.Inputs)
	if err := writeJSONFile(filepath.Join(opts.Out, FileRun), info); err != nil {
		return nil, err
	}
	return info, nil
}

// findSegments reads the segment outputs the inputs name.
func findSegments(inputs []string) ([]segmentOutput, error) {
	if len(inputs) == 0 {
		return nil, errors.New("collect: no inputs: give the directories (or files) the segments wrote with -out")
	}
	var outs []segmentOutput
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			return nil, fmt.Errorf("collect: %w", err)
		}
		if !st.IsDir() {
			o, isResult, err := readSegment(outputName(in))
			if err != nil {
				return nil, err
			}
			if !isResult {
				return nil, fmt.Errorf("collect: %s is not a loadgen result with a segment", o.file(loadgen.SuffixResult))
			}
			outs = append(outs, o)
			continue
		}
		entries, err := os.ReadDir(in)
		if err != nil {
			return nil, fmt.Errorf("collect: %w", err)
		}
		found := 0
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || !strings.HasSuffix(n, loadgen.SuffixResult) || strings.HasSuffix(n, loadgen.SuffixPlan) {
				continue
			}
			o, isResult, err := readSegment(filepath.Join(in, strings.TrimSuffix(n, loadgen.SuffixResult)))
			if err != nil {
				return nil, err
			}
			if isResult {
				outs = append(outs, o)
				found++
			}
		}
		if found == 0 {
			return nil, fmt.Errorf("collect: %s holds no loadgen output (<name>%s with a segment)", in, loadgen.SuffixResult)
		}
	}
	return outs, nil
}

// outputName is the <name> a file of an output belongs to.
func outputName(path string) string {
	for _, s := range []string{loadgen.SuffixPlan, loadgen.SuffixProgress, loadgen.SuffixHlog, loadgen.SuffixResult} {
		if n, ok := strings.CutSuffix(path, s); ok {
			return n
		}
	}
	return path
}

// readSegment reads <name>.json; isResult is false when it decodes but is not a
// segment's result (another JSON file in the same directory).
func readSegment(name string) (o segmentOutput, isResult bool, err error) {
	o.name = name
	path := o.file(loadgen.SuffixResult)
	if o.raw, err = os.ReadFile(path); err != nil {
		return o, false, fmt.Errorf("collect: %w", err)
	}
	if err := json.Unmarshal(o.raw, &o.result); err != nil {
		return o, false, fmt.Errorf("collect: %s: %w", path, err)
	}
	if o.result.Segment == "" || o.result.Agent == "" {
		return o, false, nil
	}
	if o.seg, err = loadgen.ParseSegment(o.result.Segment); err != nil {
		return o, false, fmt.Errorf("collect: %s: %w", path, err)
	}
	return o, true, nil
}

// checkSegments requires segments 0 … n-1 of one n, each once and with its
// interval log, and sorts them by index.
func checkSegments(outs []segmentOutput) error {
	n := outs[0].seg.Count
	byIndex := map[int]segmentOutput{}
	for _, o := range outs {
		path := o.file(loadgen.SuffixResult)
		if o.seg.Count != n {
			return fmt.Errorf("collect: %s is segment %v, but %s is segment %v: the outputs are not slices of one run",
				path, o.seg, outs[0].file(loadgen.SuffixResult), outs[0].seg)
		}
		if prev, dup := byIndex[o.seg.Index]; dup {
			return fmt.Errorf("collect: two outputs for segment %v: %s and %s", o.seg, prev.file(loadgen.SuffixResult), path)
		}
		if _, err := os.Stat(o.file(loadgen.SuffixHlog)); err != nil {
			return fmt.Errorf("collect: segment %v: its interval log: %w", o.seg, err)
		}
		byIndex[o.seg.Index] = o
	}
	var missing []string
	for i := range n {
		if _, ok := byIndex[i]; !ok {
			missing = append(missing, fmt.Sprintf("%d/%d", i, n))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("collect: segment(s) %s missing among the inputs (found %d of %d)", strings.Join(missing, ", "), len(outs), n)
	}
	slices.SortFunc(outs, func(a, b segmentOutput) int { return a.seg.Index - b.seg.Index })
	return nil
}

// commonPlan returns the plan the segments ran (validated, its defaults filled,
// its secret empty) and the file it was read from. Every segment's copy
// (<name>.plan.json) must be the same plan; a segment without a copy is taken on
// trust when planFile is given.
func commonPlan(planFile string, outs []segmentOutput) (loadgen.Plan, string, error) {
	var (
		want     []byte
		plan     loadgen.Plan
		planFrom = planFile
	)
	if planFile != "" {
		p, b, err := normalPlan(planFile)
		if err != nil {
			return plan, "", err
		}
		plan, want = p, b
	}
	for _, o := range outs {
		path := o.file(loadgen.SuffixPlan)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && planFile != "" {
			continue
		}
		p, b, err := normalPlan(path)
		if err != nil {
			return plan, "", err
		}
		if want == nil {
			plan, want, planFrom = p, b, path
			continue
		}
		if !bytes.Equal(b, want) {
			return plan, "", fmt.Errorf("collect: %s differs from %s: the segments did not run one plan", path, planFrom)
		}
	}
	return plan, planFrom, nil
}

// normalPlan reads a plan file into the form plans are compared in: defaults
// filled, secret and source addresses (which differ from host to host) empty.
func normalPlan(path string) (loadgen.Plan, []byte, error) {
	p, err := loadgen.ReadPlan(path)
	if err != nil {
		return p, nil, fmt.Errorf("collect: %w", err)
	}
	p.Bind = nil
	if p.Secret == "" {
		p.Secret = strings.Repeat("s", 32) // Validate wants one; it is not kept
	}
	if err := p.Validate(); err != nil {
		return p, nil, fmt.Errorf("collect: %s: %w", path, err)
	}
	p.Secret = ""
	b, err := json.Marshal(p)
	return p, b, err
}

// scenarioFor returns the scenario file's name and text to put in the run folder:
// the given file, or one derived from the plan. It must parse.
func scenarioFor(file, name string, p loadgen.Plan, segments int, planFrom string) (string, []byte, error) {
	var src []byte
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", nil, fmt.Errorf("collect: %w", err)
		}
		src = b
		file = filepath.Base(file)
	} else {
		src = deriveScenario(name, p, segments, planFrom)
		file = name + ".yaml"
	}
	if _, err := scenario.Parse(file, src); err != nil {
		return "", nil, fmt.Errorf("collect: the scenario to report against: %w", err)
	}
	return file, src, nil
}

// maxScenarioAgents is the scenario format's bound on topology.agents.
const maxScenarioAgents = 100

// deriveScenario writes a scenario describing the plan, as far as reports reads
// one: its name, phases and gates (DefaultCollectGates).
func deriveScenario(name string, p loadgen.Plan, segments int, planFrom string) []byte {
	rate := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "/s" }
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\n", name)
	fmt.Fprintf(&b, "description: >\n  Assembled by floodgate collect from %d loadgen segments of the plan %s.\n", segments, filepath.Base(planFrom))
	fmt.Fprintf(&b, "seed: %d\n", p.Seed)
	fmt.Fprintf(&b, "topology: {gateways: %d, agents: %d}\n", min(max(len(p.Gateways), 1), maxScenarioAgents), min(segments, maxScenarioAgents))
	fmt.Fprintf(&b, "clients:\n  count: %d\n", p.Users)
	if p.ConnectRate > 0 {
		fmt.Fprintf(&b, "  connect_rate: %s\n", rate(p.ConnectRate))
	}
	if p.Deadline > 0 {
		fmt.Fprintf(&b, "  deadline: %s\n", p.Deadline.D())
	}
	fmt.Fprintf(&b, "traffic:\n  rate: %s\n  payload: %dB\n", rate(p.Traffic.Rate), p.Traffic.PayloadBytes)
	b.WriteString("phases:\n")
	for _, ph := range p.Phases {
		fmt.Fprintf(&b, "  - name: %s\n    duration: %s\n", strconv.Quote(ph.Name), ph.Duration.D())
		if ph.Rate != nil {
			fmt.Fprintf(&b, "    rate: %s\n", rate(*ph.Rate))
		}
		if ph.Users != nil {
			fmt.Fprintf(&b, "    clients: %d\n", *ph.Users)
		}
	}
	b.WriteString("gates:\n")
	for _, g := range DefaultCollectGates() {
		fmt.Fprintf(&b, "  - %s\n", g)
	}
	return []byte(b.String())
}

// collectedInfo is run.json of a collected run: the traffic's window and phases
// from the segments' results and the plan.
func collectedInfo(outs []segmentOutput, p loadgen.Plan, scFile string, scSrc []byte, inputs []string) *RunInfo {
	sum := sha256.Sum256(scSrc)
	info := &RunInfo{
		Scenario: strings.TrimSuffix(scFile, filepath.Ext(scFile)), ScenarioFile: scFile, ScenarioHash: hex.EncodeToString(sum[:]),
		Seed: p.Seed, Mode: ModeDistributed, Agents: len(outs), Clients: int64(p.Users),
		Caveats: []string{fmt.Sprintf("Assembled by floodgate collect from %d loadgen segments run apart: only the agents' measurements are here (no server metrics, process resources or alerts), and their intervals are placed in time by each agent's own clock.", len(outs))},
		Extra:   map[string]any{"collected_from": inputs},
	}
	for _, o := range outs {
		r := o.result
		if info.TrafficStart.IsZero() || (!r.Started.IsZero() && r.Started.Before(info.TrafficStart)) {
			info.TrafficStart = r.Started
		}
		if r.Ended.After(info.Ended) {
			info.Ended = r.Ended
		}
		if r.Interrupted {
			info.Invalid = append(info.Invalid, fmt.Sprintf("segment %v (%s) was interrupted before the end of its plan", o.seg, r.Agent))
		}
		info.Processes = append(info.Processes, ProcessInfo{Name: r.Agent, Role: "agent", Started: r.Started, Exited: r.Ended, ExitCause: "finished"})
	}
	info.Started = info.TrafficStart
	at := info.TrafficStart
	for _, ph := range p.Phases {
		info.Phases = append(info.Phases, PhaseWindow{Name: ph.Name, Start: at, End: at.Add(ph.Duration.D())})
		at = at.Add(ph.Duration.D())
	}
	info.TrafficEnd = at
	return info
}

// emptyDir makes sure dir exists and holds nothing: a collected run is never
// mixed into another.
func emptyDir(dir string) error {
	if dir == "" {
		return errors.New("collect: no output folder")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("collect: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("collect: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("collect: %s is not empty: choose a new folder for the run", dir)
	}
	return nil
}

// readProgress reads a segment's progress log; a missing one (an agent run
// without -out's progress log) gives none. A torn last line, from an agent
// killed mid-write, is skipped.
func readProgress(path string) ([]ProgressSample, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	defer f.Close()
	var out []ProgressSample
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var s ProgressSample
		if json.Unmarshal(sc.Bytes(), &s) == nil && !s.T.IsZero() {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("collect: %s: %w", path, err)
	}
	return out, nil
}

func writeLines[T any](path string, vs []T) error {
	var b bytes.Buffer
	for _, v := range vs {
		line, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(append(line, '\n'))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	return nil
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	return nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	return nil
}
